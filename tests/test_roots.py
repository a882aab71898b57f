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
    roots = Roots(_nothing)
    assert roots.allows("/", 1) and roots.allows(None, 1)
    assert not roots.allows("/srv/jail", 1) and not roots.allows("/tmp/s", 1)
    roots.approve("/", "/srv/jail")
    assert roots.allows("/srv/jail", 1)
    assert not roots.allows("/srv/jail/inner", 1) and not roots.allows("/srv", 1) and not roots.allows("/srv/jail/", 1)
    roots.approve("/srv/jail", "/inner")
    assert roots.allows("/srv/jail/inner", 1)


def test_a_jail_renamed_or_deleted_in_use_is_still_the_root_checked_and_no_other_directory_is(tmp_path: Path) -> None:
    jail, other, moved = tmp_path / "jail", tmp_path / "s", tmp_path / "jail2"
    jail.mkdir()
    other.mkdir()
    roots_of = {1: str(moved), 2: str(other), 3: str(tmp_path / "gone")}  # thread -> the directory its root is

    def identity_of(path: str) -> tuple[int, int] | None:  # /proc/TID/root of the threads above
        for tid, root in roots_of.items():
            if path == f"/proc/{tid}/root":
                return directory_identity(root)
        return directory_identity(path)

    roots = Roots(identity_of)
    roots.approve("/", str(jail))
    jail.rename(moved)  # /proc/TID/root now names it jail2
    assert roots.allows(str(moved), 1)
    held = os.open(moved, os.O_RDONLY | os.O_DIRECTORY)
    try:
        moved.rmdir()  # "... (deleted)": the directory itself, held open, is the same
        roots_of[1] = f"/proc/self/fd/{held}"
        assert roots.allows(f"{moved} (deleted)", 1)
    finally:
        os.close(held)
    assert not roots.allows(str(other), 2)  # a swap's landing place
    assert not roots.allows(str(other), 3)  # (its root unreadable: not allowed)
