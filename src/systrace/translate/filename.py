"""Resolving a path as the tracee would see it: its root, its cwd or a dirfd, `..`, and
symlinks (the last one kept for lstat/unlink/rename...). /proc/self and /dev/fd mean the
tracee, never the supervisor.

The name a policy sees is stable from run to run: the caller's own /proc entries are
/proc/self and /proc/thread-self (what an emulated open opens keeps the number),
anonymous objects are named by kind (`pipe:`, `socket:`, `anon_inode:[eventfd]`,
`memfd:NAME`), and a path below a missing directory is `/<non-existent filename>: ` and
the absolute path, resolved as far as it exists."""

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


class Missing(Unresolvable):
    """A directory on the way does not exist (or cannot be searched): `path` is the
    absolute path, resolved up to there, the rest appended as written."""

    def __init__(self, path: bytes):
        super().__init__("missing directory")
        self.path = path


def resolve(tracee: Tracee, path: bytes, dirfd: int | None = None, follow: bool = True,
            slash_follows: bool = True) -> str:
    """The canonical path the call would act on, or `/<non-existent filename>: PATH`.
    `slash_follows`: a trailing slash makes a lookup follow a final symlink; the calls
    that make or remove a name (unlink, rename, mkdir...) never follow it."""
    try:
        return stable_name(resolve_bytes(tracee, path, dirfd, follow, slash_follows=slash_follows), tracee)
    except Missing as missing:
        return NONEXISTENT + stable_name(missing.path, tracee)
    except Unresolvable:
        return NONEXISTENT + os.fsdecode(path)


def object_name(link: str) -> str:
    """What a descriptor names, stable from run to run: `pipe:[58731]` -> `pipe:`,
    `socket:[123]` -> `socket:`, `/memfd:NAME (deleted)` -> `memfd:NAME`; anon_inode
    names (`anon_inode:[eventfd]`) carry no number and stay."""
    for kind in ("pipe:[", "socket:["):
        if link.startswith(kind) and link.endswith("]"):
            return kind[:-1]
    if link.startswith("/memfd:") and link.endswith(" (deleted)"):
        return link[1 : -len(" (deleted)")]
    return link


def stable_name(path: bytes, tracee: Tracee) -> str:
    """The policy's name for a canonical path: the caller's /proc/TGID is /proc/self, its
    /proc/TGID/task/TID (or /proc/TID) is /proc/thread-self; anonymous objects by kind."""
    text = os.fsdecode(path)
    if not text.startswith("/") or text.startswith("/memfd:"):
        return object_name(text)
    if text.startswith("/proc/"):
        parts = text.split("/")
        if parts[2] == str(tracee.tgid):
            if len(parts) >= 5 and parts[3] == "task" and parts[4] == str(tracee.tid):
                return "/".join(["", "proc", "thread-self", *parts[5:]])
            return "/".join(["", "proc", "self", *parts[3:]])
        if parts[2] == str(tracee.tid):
            return "/".join(["", "proc", "thread-self", *parts[3:]])
    return text


def numbered(name: str, tracee: Tracee) -> bytes:
    """The inverse of stable_name for what systrace itself acts on (emulation): its own
    /proc/self is not the tracee's, so /proc/self and /proc/thread-self get the numbers."""
    for stable, real in (("/proc/thread-self", f"/proc/{tracee.tgid}/task/{tracee.tid}"),
                         ("/proc/self", f"/proc/{tracee.tgid}")):
        if name == stable or name.startswith(stable + "/"):
            return os.fsencode(real + name[len(stable):])
    return os.fsencode(name)


def resolve_for_open(tracee: Tracee, path: bytes, dirfd: int | None, follow: bool) -> tuple[str, bytes | None]:
    """(the name the policy sees, what the emulated open should open): the canonical path
    twice, or /proc/TGID/fd/N when the path ends on one of the tracee's descriptors, or
    None when it cannot be opened faithfully by the supervisor (fail closed)."""
    hops: list[bytes | None] = []
    try:
        canonical = resolve_bytes(tracee, path, dirfd, follow, hops)
    except Missing as missing:
        return NONEXISTENT + stable_name(missing.path, tracee), None
    except Unresolvable:
        return NONEXISTENT + os.fsdecode(path), None
    return stable_name(canonical, tracee), hops[-1] if hops else canonical


def resolve_bytes(tracee: Tracee, path: bytes, dirfd: int | None, follow: bool,
                  hops: list[bytes | None] | None = None, slash_follows: bool = True) -> bytes:
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
    return walk(prefix, _parts(base), path, follow, tracee, hops, slash_follows)


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


def _lexical(parts: list[bytes], pending: list[bytes]) -> bytes:
    """Where a path below a missing directory would lead, `.` and `..` applied as written."""
    out = list(parts)
    for component in pending:
        if component == b"..":
            if out:
                out.pop()
        elif component not in (b"", b"."):
            out.append(component)
    return b"/" + b"/".join(out)


def _parts(path: bytes) -> list[bytes]:
    return [part for part in path.split(b"/") if part]


def walk(prefix: bytes, parts: list[bytes], path: bytes, follow_last: bool, tracee: Tracee,
         hops: list[bytes | None] | None = None, slash_follows: bool = True) -> bytes:
    """`hops` collects the descriptor magic links followed: /proc/T/fd/N when it was the
    last step, None when the path went on below it."""
    pending = path.split(b"/")
    trailing_slash = path.endswith(b"/") and slash_follows
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
            if error.errno in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
                raise Missing(_lexical(candidate, pending)) from None
            raise Unresolvable(os.strerror(error.errno or errno.EIO)) from None
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
        following = next((c for c in pending if c), None)
        if following in (b".", b"..") and not stat.S_ISDIR(mode):  # "file/..": ENOTDIR natively
            raise Missing(_lexical(candidate, pending))
        parts = candidate
    return b"/" + b"/".join(parts)
