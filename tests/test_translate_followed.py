"""A plain path with symlinks on the way is resolved by the kernel in one O_PATH open
and the descriptor's name (translate/filename.py _followed) instead of a walk of lstat
and readlink per component (merged /usr: every libc open and exec goes through /lib or
/bin). It must answer exactly what the walk answers, whatever the tree: random trees of
directories, files and symlinks (relative, absolute, dangling, looping, through `..`,
into /proc), random paths, each resolved both ways. Pure: a fake tracee over a real
directory tree. Also: under FUSE anywhere a live tracee's lookups are walked."""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from test_translate import FakeTracee

from systrace.translate import filename
from systrace.translate.filename import Unresolvable, _parts, resolve_bytes, walk

NAMES = ["a", "b", "c"]
TARGETS = ["a", "b/c", "../a", "../../b", "/proc/self/status", "/proc/self/fd/0", "nowhere", "c/../a", "a/", "."]


def _walked(tracee: FakeTracee, base: bytes, path: bytes, follow: bool) -> bytes | str:
    try:
        return walk(b"", _parts(base), path, follow, tracee)  # type: ignore[arg-type]
    except Unresolvable as error:
        return type(error).__name__ + getattr(error, "path", b"").decode(errors="replace")


def _resolved(tracee: FakeTracee, path: bytes, follow: bool) -> bytes | str:
    try:
        return resolve_bytes(tracee, path, None, follow)  # type: ignore[arg-type]
    except Unresolvable as error:
        return type(error).__name__ + getattr(error, "path", b"").decode(errors="replace")


entries = st.lists(st.tuples(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3),
                             st.sampled_from(["dir", "file", "link"]), st.sampled_from(TARGETS), st.booleans()),
                   max_size=10)
paths = st.lists(st.sampled_from([*NAMES, "lib", "lib", "real", "zz"]), min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(entries, paths, st.booleans(), st.booleans())
def test_followed_answers_what_the_walk_answers(tree: list, path: list[str], follow: bool, absolute: bool) -> None:
    with tempfile.TemporaryDirectory() as top:
        root = Path(top)
        (root / "real").mkdir()
        (root / "real" / "a").write_text("a")
        (root / "lib").symlink_to("real")  # as merged /usr's
        for parts, kind, target, absolute_target in tree:
            place = root.joinpath(*parts)
            if not place.parent.is_dir() or place.exists() or place.is_symlink():
                continue
            if kind == "dir":
                place.mkdir()
            elif kind == "file":
                place.write_text("x")
            else:
                place.symlink_to(str(root / target) if absolute_target and not target.startswith("/") else target)
        tracee = FakeTracee(root)
        relative = "/".join(path).encode()
        given_path = os.fsencode(root) + b"/" + relative if absolute else relative
        assert _resolved(tracee, given_path, follow) == _walked(tracee, os.fsencode(root), relative, follow)


def test_merged_usr_style_link_is_followed_without_a_walk(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "usr" / "lib").mkdir(parents=True)
    (tmp_path / "usr" / "lib" / "libc.so").write_text("x")
    (tmp_path / "lib").symlink_to("usr/lib")
    (tmp_path / "dangling").symlink_to("usr/none")
    looked: list[str] = []
    real_lstat = os.lstat
    monkeypatch.setattr(filename.os, "lstat", lambda path: looked.append(path) or real_lstat(path))
    tracee = FakeTracee(tmp_path)
    assert resolve_bytes(tracee, b"lib/libc.so", None, True) == os.fsencode(tmp_path / "usr" / "lib" / "libc.so")
    assert resolve_bytes(tracee, b"dangling", None, False) == os.fsencode(tmp_path / "dangling")  # (lstat: the link)
    assert resolve_bytes(tracee, b"usr/lib/none.so", None, True) == os.fsencode(tmp_path / "usr/lib/none.so")  # (missing)
    assert looked == []
    try:  # its directory missing too: the walk says how far it exists
        resolve_bytes(tracee, b"usr/none/x.so", None, True)
    except Unresolvable as missing:
        assert getattr(missing, "path", None) == os.fsencode(tmp_path / "usr/none/x.so")
    assert looked
    looked.clear()
    try:  # a dangling link followed: the walk decides (to be created where it points)
        resolve_bytes(tracee, b"dangling", None, True)
    except Unresolvable:
        pass
    assert looked


class _Live(FakeTracee):
    """A tracee whose lookups must not wait (a live one's may_block)."""

    def may_block(self, path: bytes, tid: int, root: bytes | None) -> bool:
        return False


def test_while_fuse_exists_a_live_tracee_s_symlinks_are_walked(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_text("x")
    (tmp_path / "lib").symlink_to("real")
    calls: list[int] = []
    real_openat2 = filename.openat2

    def counted(dirfd: int, path: bytes, flags: int, mode: int, resolve: int) -> int:
        calls.append(resolve)
        return real_openat2(dirfd, path, flags, mode, resolve)

    monkeypatch.setattr(filename, "openat2", counted)
    monkeypatch.setattr(filename.memory, "fuse_present", lambda: True)
    tracee = _Live(tmp_path)
    assert resolve_bytes(tracee, b"lib/f", None, True) == os.fsencode(tmp_path / "real" / "f")  # type: ignore[arg-type]
    assert calls == [filename.RESOLVE_NO_SYMLINKS | filename.RESOLVE_NO_MAGICLINKS]  # the plain probe, then the walk
    monkeypatch.setattr(filename.memory, "fuse_present", lambda: False)
    calls.clear()
    assert resolve_bytes(tracee, b"lib/f", None, True) == os.fsencode(tmp_path / "real" / "f")  # type: ignore[arg-type]
    assert calls == [filename.RESOLVE_NO_SYMLINKS | filename.RESOLVE_NO_MAGICLINKS, filename.RESOLVE_NO_MAGICLINKS]
    assert errno.ELOOP  # (the plain probe's error that sends it to the kernel's follow)
