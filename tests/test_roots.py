"""decide/roots.py: the roots a tracee may have (pure; a directory's identity is given)."""

from __future__ import annotations

import os
from pathlib import Path

from systrace.decide.roots import Roots, new_root
from systrace.kernel.procfs import directory_identity


def _nothing(path: str) -> None:
    return None


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
    roots.approve("/", "/srv/jail", _nothing)
    assert roots.allows("/srv/jail") and not roots.only_own()
    assert not roots.allows("/srv/jail/inner") and not roots.allows("/srv") and not roots.allows("/srv/jail/")
    roots.approve("/srv/jail", "/inner", _nothing)
    assert roots.allows("/srv/jail/inner")
    assert not Roots("").allows("/x") and Roots("").allows("/")  # (no root read: "/")


def test_a_jail_renamed_or_deleted_in_use_is_still_the_root_checked_and_no_other_directory_is(tmp_path: Path) -> None:
    jail, other = tmp_path / "jail", tmp_path / "s"
    jail.mkdir()
    other.mkdir()
    roots = Roots("/", directory_identity("/"))
    roots.approve("/", str(jail), directory_identity)
    moved = tmp_path / "jail2"
    jail.rename(moved)  # /proc/TID/root now names it jail2
    assert roots.allows(str(moved), lambda: directory_identity(str(moved)))
    held = os.open(moved, os.O_RDONLY | os.O_DIRECTORY)
    try:
        moved.rmdir()  # "... (deleted)": the directory itself, held open, is the same
        assert roots.allows(f"{moved} (deleted)", lambda: directory_identity(f"/proc/self/fd/{held}"))
    finally:
        os.close(held)
    assert not roots.allows(str(other), lambda: directory_identity(str(other)))  # a swap's landing place
    assert not roots.allows(str(other), lambda: None)  # (its root unreadable: not allowed)
    assert roots.allows("/", lambda: None)
