"""decide/roots.py: the roots a tracee may have (pure)."""

from __future__ import annotations

from systrace.decide.roots import Roots, new_root


def test_a_chroot_names_its_new_root_as_proc_tid_root_shows_it_to_systrace() -> None:
    assert new_root("/", "/srv/jail") == "/srv/jail"
    assert new_root("/srv/jail", "/inner") == "/srv/jail/inner"  # a chroot inside a chroot: below the first
    assert new_root("/srv/jail/", "/inner") == "/srv/jail/inner"
    assert new_root("/srv/jail", "/") == "/srv/jail"  # chroot("/") in a jail: the same root
    assert new_root("/", "/") == "/"


def test_only_systraces_own_root_and_the_roots_checked_chroots_named_are_allowed() -> None:
    roots = Roots("/")
    assert roots.allows("/") and roots.allows(None) and roots.only_own()
    assert not roots.allows("/srv/jail") and not roots.allows("/tmp/s")
    roots.approve("/", "/srv/jail")
    assert roots.allows("/srv/jail") and not roots.only_own()
    assert not roots.allows("/srv/jail/inner") and not roots.allows("/srv") and not roots.allows("/srv/jail/")
    roots.approve("/srv/jail", "/inner")
    assert roots.allows("/srv/jail/inner")
    assert not Roots("").allows("/x") and Roots("").allows("/")  # (no root read: "/")
