"""Resolving a path as the tracee would see it: its root, its cwd or a dirfd, `..`, and
symlinks (the last one kept for lstat/unlink/rename...). /proc/self and /dev/fd mean the
tracee, never the supervisor."""

from __future__ import annotations

import errno
import os
import stat

from ..kernel.emulate import RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, openat2

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from .tracee import Tracee


AT_FDCWD = -100
MAX_LINKS = 40
NONEXISTENT = "/<non-existent filename>: "


class Unresolvable(Exception):
    pass


def resolve(tracee: Tracee, path: bytes, dirfd: int | None = None, follow: bool = True) -> str:
    """The canonical path the call would act on, or `/<non-existent filename>: PATH`."""
    try:
        return os.fsdecode(resolve_bytes(tracee, path, dirfd, follow))
    except Unresolvable:
        return NONEXISTENT + os.fsdecode(path)


def resolve_for_open(tracee: Tracee, path: bytes, dirfd: int | None, follow: bool) -> tuple[str, bytes | None]:
    """(the name the policy sees, what the emulated open should open): the canonical path
    twice, or /proc/TGID/fd/N when the path ends on one of the tracee's descriptors, or
    None when it cannot be opened faithfully by the supervisor (fail closed)."""
    hops: list[bytes | None] = []
    try:
        canonical = resolve_bytes(tracee, path, dirfd, follow, hops)
    except Unresolvable:
        return NONEXISTENT + os.fsdecode(path), None
    return os.fsdecode(canonical), hops[-1] if hops else canonical


def resolve_bytes(tracee: Tracee, path: bytes, dirfd: int | None, follow: bool,
                  hops: list[bytes | None] | None = None) -> bytes:
    if not path:
        raise Unresolvable("empty path")
    if path.startswith(b"/"):
        base = b"/"
    elif dirfd is None or dirfd == AT_FDCWD:
        base = tracee.cwd()
    else:
        try:
            base = tracee.fd_path(dirfd)
        except OSError as error:
            raise Unresolvable(f"bad dirfd {dirfd}") from error
    if not base.startswith(b"/"):
        raise Unresolvable(f"dirfd {dirfd} is not a directory ({base!r})")
    root = tracee.root()
    if root == b"/":
        plain = _plain(base, path)
        if plain is not None:
            return plain
    prefix = b"" if root == b"/" else f"/proc/{tracee.tid}/root".encode()
    return walk(prefix, _parts(base), path, follow, tracee, hops)


def _plain(base: bytes, path: bytes) -> bytes | None:
    """The common case in one system call instead of a walk: no `.` or `..`, not below
    /proc, and the kernel finds no symlink on the way (RESOLVE_NO_SYMLINKS). Then the
    path, with repeated slashes dropped, is already canonical. None: walk it."""
    joined = path if path.startswith(b"/") else base + b"/" + path
    parts = _parts(joined)
    if not parts or parts[0] == b"proc" or b"." in parts or b".." in parts:
        return None
    canonical = b"/" + b"/".join(parts)
    try:
        fd = openat2(AT_FDCWD, canonical, os.O_PATH | os.O_CLOEXEC, 0, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
    except OSError:
        return None  # missing, a symlink on the way, no permission...: the walk decides
    os.close(fd)
    return canonical


def _parts(path: bytes) -> list[bytes]:
    return [part for part in path.split(b"/") if part]


def walk(prefix: bytes, parts: list[bytes], path: bytes, follow_last: bool, tracee: Tracee,
         hops: list[bytes | None] | None = None) -> bytes:
    """`hops` collects the descriptor magic links followed: /proc/T/fd/N when it was the
    last step, None when the path went on below it."""
    pending = path.split(b"/")
    trailing_slash = path.endswith(b"/")
    links = 0
    while pending:
        component = pending.pop(0)
        if component in (b"", b"."):
            continue
        if component == b"..":
            if parts:
                parts.pop()
            continue
        last = all(c in (b"", b".") for c in pending)
        if parts == [b"proc"] and component == b"self":
            component = str(tracee.tgid).encode()
        elif parts == [b"proc"] and component == b"thread-self":
            parts = [b"proc", str(tracee.tgid).encode(), b"task"]
            component = str(tracee.tid).encode()
        candidate = parts + [component]
        full = prefix + b"/" + b"/".join(candidate)
        try:
            mode = os.lstat(full).st_mode
        except OSError as error:
            if last and error.errno == errno.ENOENT:
                return b"/" + b"/".join(candidate)  # to be created
            raise Unresolvable(os.strerror(error.errno)) from None
        if stat.S_ISLNK(mode) and (not last or follow_last or trailing_slash):
            links += 1
            if links > MAX_LINKS:
                raise Unresolvable("too many levels of symbolic links")
            target = os.readlink(full)
            magic = len(candidate) >= 3 and candidate[0] == b"proc" and candidate[-2] == b"fd"
            if magic and hops is not None:
                hops.append(b"/" + b"/".join(candidate) if last else None)
            if not target.startswith(b"/") and len(candidate) >= 3 and candidate[0] == b"proc":
                # a magic link naming no path (pipe:[123], anon_inode:...)
                if last:
                    return target
                raise Unresolvable("not a directory")
            if target.startswith(b"/"):
                parts = []
            pending = target.split(b"/") + pending
            continue
        parts = candidate
    return b"/" + b"/".join(parts)
