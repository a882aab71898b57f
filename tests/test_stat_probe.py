"""A stat, readlink or access of a plain path the path cache answers is made on the probe
translation opened (kernel/emulate_path.PathCall.use_probe): in process, over the fake
listener, it answers and writes what the native call does, looks no directory up by
name, and falls back to the lookup by name when the file moved after the check."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest
from test_pipeline_in_process import AT_FDCWD, Parts, Path_

from systrace.decide.modes import Enforce
from systrace.kernel import emulate_path
from systrace.kernel.syscalls_x86_64 import SYSCALLS

libc = ctypes.CDLL(None, use_errno=True)
AT_SYMLINK_NOFOLLOW = 0x100
STAT_SIZE, STATX_SIZE = 144, 256


@pytest.fixture
def arena(tmp_path: Path) -> Path:
    directory = tmp_path / "dir"
    directory.mkdir()
    (directory / "file").write_text("hello\n")
    return directory


def native(nr: int, args: tuple[int, ...]) -> int:
    return libc.syscall(ctypes.c_long(nr), *[ctypes.c_ulong(arg) for arg in args])  # (not ctypes' int)


# (call, its arguments from (dirfd, relative path, absolute path, buffer))
SHAPES = {
    "newfstatat on a dirfd": ("newfstatat", lambda d, rel, abs_, buf: (d, rel, buf, AT_SYMLINK_NOFOLLOW)),
    "newfstatat absolute": ("newfstatat", lambda d, rel, abs_, buf: (AT_FDCWD, abs_, buf, 0)),
    "lstat": ("lstat", lambda d, rel, abs_, buf: (abs_, buf)),
    "statx": ("statx", lambda d, rel, abs_, buf: (d, rel, AT_SYMLINK_NOFOLLOW, 0xFFF, buf)),
    # (no symlink: EINVAL, as natively, from the probe without a call)
    "readlinkat on a dirfd": ("readlinkat", lambda d, rel, abs_, buf: (d, rel, buf, 100)),
    "readlink absolute": ("readlink", lambda d, rel, abs_, buf: (abs_, buf, 100)),
    # (the file's mode is 0644: X_OK fails EACCES even for root)
    "access R_OK": ("access", lambda d, rel, abs_, buf: (abs_, os.R_OK)),
    "faccessat X_OK on a dirfd": ("faccessat", lambda d, rel, abs_, buf: (d, rel, os.X_OK)),
    "faccessat2 W_OK|X_OK AT_EACCESS": ("faccessat2", lambda d, rel, abs_, buf: (d, rel, os.W_OK | os.X_OK, 0x200)),
    "faccessat2 W_OK nofollow": ("faccessat2", lambda d, rel, abs_, buf: (d, rel, os.W_OK, AT_SYMLINK_NOFOLLOW)),
}


def serve_stat(tmp_path: Path, arena: Path, shape: str, between=None, calls: int = 3):
    """Serve `calls` stats of arena/file; each buffer written and each answer."""
    name, arguments = SHAPES[shape]
    parts = Parts(lambda p: [p.policy_decider(), Enforce()], tmp_path,
                  f'\tnative-fsread: filename eq "{arena / "file"}" then permit\n')
    dirfd = os.open(arena, os.O_RDONLY | os.O_DIRECTORY)
    relative, absolute = Path_("file"), Path_(str(arena / "file"))
    results = []
    try:
        for _ in range(calls):
            buffer = ctypes.create_string_buffer(STATX_SIZE)
            args = arguments(dirfd, relative.address, absolute.address, ctypes.addressof(buffer))
            parts.listener.push(SYSCALLS[name], args=args)
            if between is not None:
                between(parts)
            (answer,) = parts.serve()
            expected = ctypes.create_string_buffer(STATX_SIZE)
            native_args = arguments(dirfd, relative.address, absolute.address, ctypes.addressof(expected))
            native_result = native(SYSCALLS[name], native_args)
            native_errno = ctypes.get_errno() if native_result < 0 else 0
            results.append((answer, buffer.raw, expected.raw, native_errno))
    finally:
        os.close(dirfd)
    return parts, results


def _same_stat(name: str, ours: bytes, theirs: bytes) -> bool:
    if name == "statx":  # (stx_atime and the rest as natively: the whole struct)
        return ours == theirs
    return ours[:STAT_SIZE] == theirs[:STAT_SIZE]


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_a_repeated_stat_or_readlink_is_made_on_the_probe_as_natively(tmp_path: Path, arena: Path,
                                                                                   shape: str, monkeypatch) -> None:
    looked_up: list[bytes] = []
    original = emulate_path.open_directory
    monkeypatch.setattr(emulate_path, "open_directory", lambda root, path: looked_up.append(path) or original(root, path))
    parts, results = serve_stat(tmp_path, arena, shape)
    for answer, ours, theirs, native_errno in results:
        assert answer[::2] == (("fail", native_errno) if native_errno else ("succeed", 0))
        assert _same_stat(SHAPES[shape][0], ours, theirs)
    assert parts.supervisor.translate.paths.hits == 2  # the first is translated in full
    assert looked_up == [os.fsencode(arena)]  # by name only for the first: the others on the probe


@pytest.mark.parametrize("shape", ["newfstatat on a dirfd", "readlinkat on a dirfd"])
def test_a_file_moved_after_the_check_is_looked_up_by_name_as_natively(tmp_path: Path, arena: Path, monkeypatch,
                                                                      shape: str) -> None:
    """Renamed away and replaced between translation and carrying out: the probe is not at
    the checked path any more, so the stat looks the name up (the new file's, as natively)."""
    original = emulate_path.PathCall.use_probe
    moved = []

    def swap_then_use(self, probe: int) -> None:
        if probe >= 0:
            os.rename(arena / "file", arena / f"old{len(moved)}")
            if shape.startswith("readlink"):  # a symlink now: the native call reads it
                (arena / "file").symlink_to(f"old{len(moved)}")
            else:
                (arena / "file").write_text("another\n")
            moved.append(probe)
        original(self, probe)

    monkeypatch.setattr(emulate_path.PathCall, "use_probe", swap_then_use)
    _, results = serve_stat(tmp_path, arena, shape)
    assert moved  # the hits held a probe
    for answer, ours, theirs, native_errno in results[1:]:
        assert native_errno == 0 and answer[0] == "succeed"
        assert ours[:STAT_SIZE] == theirs[:STAT_SIZE]  # the file at the path now, not the probe's


def test_a_stat_as_another_identity_is_looked_up_by_name(tmp_path: Path, arena: Path, monkeypatch) -> None:
    """The probe was opened as systrace: a tracee of another identity searches the
    directories as itself, by name."""
    monkeypatch.setattr(emulate_path.Identity, "same_as_own", lambda self: False)
    if os.geteuid() != 0:
        pytest.skip("switching identity needs root")
    looked_up: list[bytes] = []
    original = emulate_path.open_directory
    monkeypatch.setattr(emulate_path, "open_directory", lambda root, path: looked_up.append(path) or original(root, path))
    _, results = serve_stat(tmp_path, arena, "newfstatat absolute")
    assert [answer[0] for answer, *_ in results] == ["succeed"] * 3
    assert looked_up == [os.fsencode(arena)] * 3
