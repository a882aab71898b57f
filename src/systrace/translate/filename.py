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

from ..kernel import memory, procfs
from ..kernel.emulate import RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, openat2
from ..kernel.proc_names import FD_LINK, PID
from ..policy.match import UNREADABLE
from .pids import NO_SUCH_PROCESS, OUTSIDE_RUN, relation

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from .tracee import Tracee


AT_FDCWD = -100
MAX_LINKS = 40
NONEXISTENT = "/<non-existent filename>: "


class Unresolvable(Exception):
    pass


class BadBase(Unresolvable):
    """A relative path on a descriptor that is not open (EBADF) or names no path (a
    pipe, a socket: ENOTDIR): the kernel fails the call with `errno` before any lookup."""

    def __init__(self, reason: str, code: int, path: bytes):
        super().__init__(reason)
        self.errno, self.path = code, path


class LookupFailed(Unresolvable):
    """A lookup on the way failed with an error the kernel's own lookup gives the call
    too (ENOTCONN: a FUSE connection aborted, EIO...): not a missing name."""

    def __init__(self, code: int):
        super().__init__(os.strerror(code))
        self.errno = code


class MayBlock(Exception):
    """Resolving would look a name up on a mount the tracee may serve (FUSE), which can
    wait forever: the caller does it elsewhere (kernel/offload.py)."""


def _may_look_up(tracee: Tracee | None, path: bytes, root: bytes | None = None) -> None:
    """`root`: `path` is below the tracee's own root (looked up through /proc/TID/root)."""
    check = getattr(tracee, "may_block", None)  # a live tracee's; fakes have none
    if check is not None and tracee is not None and check(path, tracee.tid, root):
        raise MayBlock(path)


class Missing(Unresolvable):
    """A directory on the way does not exist (or cannot be searched): `path` is the
    absolute path, resolved up to there, the rest appended as written."""

    def __init__(self, path: bytes, denied: bool = False):
        super().__init__("missing directory")
        self.path = path
        self.denied = denied  # EACCES on the way (below /proc/PID: no ptrace access to PID)


def resolve(tracee: Tracee, path: bytes, dirfd: int | None = None, follow: bool = True,
            slash_follows: bool = True) -> str:
    """The canonical path the call would act on, or `/<non-existent filename>: PATH`.
    `slash_follows`: a trailing slash makes a lookup follow a final symlink; the calls
    that make or remove a name (unlink, rename, mkdir...) never follow it."""
    try:
        return resolve_target(tracee, path, dirfd, follow, slash_follows)[0]
    except BadBase:
        return NONEXISTENT + os.fsdecode(path)


def resolve_target(tracee: Tracee, path: bytes, dirfd: int | None = None, follow: bool = True,
                   slash_follows: bool = True, failed: list[int] | None = None) -> tuple[str, bytes | int | None]:
    """(the name the policy sees, what the call acts on): the canonical path with the
    real numbers; the caller's own descriptor N when the path ends on its /proc/self/fd/N
    naming an object with no path (stat of /dev/fd/63, a pipe, is fstat of it); None when
    it cannot be resolved (the call fails as missing; `failed` gets the errno of a
    lookup that failed otherwise than on a missing name). Raises BadBase for a relative
    path on a descriptor that names no directory."""
    hops: list[tuple[bytes, bytes] | None] = []
    try:
        canonical = resolve_bytes(tracee, path, dirfd, follow, hops, slash_follows)
    except BadBase:
        raise
    except Missing as missing:
        return _missing_name(missing.path, tracee), missing.path if _acted_on(missing, tracee) else None
    except Unresolvable as error:
        if failed is not None and isinstance(error, LookupFailed):
            failed.append(error.errno or 0)
        return NONEXISTENT + os.fsdecode(path), None
    last = hops[-1] if hops else None
    if last is not None and own_descriptor(last[0], tracee) is None and _FD_LINK.match(last[0]):
        return _through(canonical, last, tracee)
    name = stable_name(canonical, tracee)
    if canonical.startswith(b"/") and not (last and _unreachable(canonical)):
        return name, canonical
    return name, own_descriptor(last[0], tracee) if last else None


def _through(canonical: bytes, hop: tuple[bytes, bytes], tracee: Tracee) -> tuple[str, procfs.FdLink]:
    """A path that ends on another process's descriptor (/proc/PID/fd/N, followed): named
    by the file's path when it leads to one; else by the entry, the process's relation
    and what it names (`/proc/<descendant: /usr/bin/cat>/fd/<pipe:>`): that pipe is that
    process's, not the caller's. Either way PID is pinned (its start time), and the call
    follows the link as the tracee (procfs.FdLink)."""
    entry, link = hop
    name = stable_name(entry, tracee)
    parts = name.split("/")
    inside = len(parts) > 2 and parts[2] != OUTSIDE_RUN
    return name if _unreachable(canonical) else stable_name(canonical, tracee), procfs.FdLink(entry, link, inside)


def _unreachable(link: bytes) -> bool:
    """A descriptor's link that names no reachable path: a pipe, a socket, an anon_inode,
    a memfd, a deleted file."""
    return not link.startswith(b"/") or link.startswith(b"/memfd:") or link.endswith(b" (deleted)")


def own_descriptor(link: bytes, tracee: Tracee) -> int | None:
    """N when `link` is the caller's /proc/TGID/fd/N (or /proc/TGID/task/TID/fd/N)."""
    match = _FD_LINK.match(link)
    if match is None or int(match.group(1)) != tracee.tgid:
        return None
    return int(match.group(2))


_FD_LINK = FD_LINK  # ^/proc/([0-9]+)/(?:task/[0-9]+/)?fd/([0-9]+)$, without re (start-up)
_PID = PID  # [1-9][0-9]*: how /proc spells a pid (a leading zero names nothing)


def _missing_name(path: bytes, tracee: Tracee) -> str:
    """A path below a missing directory; below /proc/PID of a pid that is no process, the
    path as if it existed (`/proc/<outside the run>/stat`): a process that exits while
    ps reads /proc must not give the learned policy a name of its own."""
    if _below_gone_pid(path, tracee):
        return stable_name(path, tracee)
    name = stable_name(path, tracee)
    return name if name is UNREADABLE else NONEXISTENT + name


def _acted_on(missing: Missing, tracee: Tracee) -> bool:
    """Is a path systrace could not resolve still tried by the call (as the tracee, it
    then fails as natively)? Below /proc/PID of a pid that is no process (ENOENT), and
    where systrace was refused (another process's /proc/PID/fd: EACCES for the tracee
    too, not the ENOENT of a missing directory)."""
    return _below_gone_pid(missing.path, tracee) or missing.denied and missing.path.startswith(b"/proc/")


def _below_gone_pid(path: bytes, tracee: Tracee) -> bool:
    parts = path.split(b"/")
    return (len(parts) > 2 and parts[1] == b"proc" and _PID.fullmatch(os.fsdecode(parts[2])) is not None
            and tracee.tgid_of(int(parts[2])) is None)


def object_name(link: str) -> str:
    """What a descriptor names, by kind (kernel/procfs.object_name)."""
    return procfs.object_name(link)


def stable_name(path: bytes, tracee: Tracee, links: bool = True) -> str:
    """The policy's name for a canonical path: the caller's /proc/TGID is /proc/self, its
    /proc/TGID/task/TID (or /proc/TID) is /proc/thread-self; another pid below /proc is
    named by its relation to the caller (translate/pids.py), never by its number:
    `/proc/<supervised: /usr/bin/bash>/stat`, `/proc/<outside the run>/environ`;
    anonymous objects by kind; a descriptor's entry itself (not followed) by what it
    names: `/proc/self/fd/<pipe:>`, `/proc/self/fd/</home/u/f.txt>`."""
    text = os.fsdecode(path)
    if not text.startswith("/") or text.startswith("/memfd:"):
        return object_name(text)
    if text.startswith("/proc/"):
        parts = text.split("/")
        if parts[2] == str(tracee.tgid):
            if len(parts) >= 5 and parts[3] == "task" and parts[4] == str(tracee.tid):
                parts = ["", "proc", "thread-self", *parts[5:]]
            else:
                parts[2] = "self"
        elif parts[2] == str(tracee.tid):
            parts = ["", "proc", "thread-self", *parts[3:]]
        elif _PID.fullmatch(parts[2]):
            parts[2] = proc_relation(int(parts[2]), tracee)
        else:
            return text
        if len(parts) >= 5 and parts[2] != "thread-self" and parts[3] == "task" and _PID.fullmatch(parts[4]):
            parts[4] = proc_relation(int(parts[4]), tracee, thread=True)
        if links and (len(parts) == 5 or len(parts) == 7 and parts[3] == "task") and parts[-2] == "fd" \
                and parts[-1].isdigit():
            kind = entry_kind(path, tracee)
            if kind is None:
                return UNREADABLE  # every comparison on it fails closed
            parts[-1] = "<" + kind + ">"
        return "/".join(parts)
    return text


def entry_kind(entry: bytes, tracee: Tracee) -> str | None:
    """What a /proc/PID/fd/N entry itself (a call that does not follow it: lstat,
    readlink, O_NOFOLLOW...) is named by: what its descriptor names, as a descriptor
    argument is named (`pipe:`, `socket:`, the file's path), never the number, which
    varies from run to run; `<bad descriptor>` when none is open there; None when it
    cannot be read."""
    root = tracee.root()
    try:
        link = os.readlink(entry if root == b"/" else f"/proc/{tracee.tid}/root".encode() + entry)
    except OSError as error:
        return "bad descriptor" if error.errno == errno.ENOENT else None
    return stable_name(link, tracee, links=False)  # an O_PATH descriptor of an entry: no loop


def proc_relation(pid: int, tracee: Tracee, thread: bool = False) -> str:
    """A pid's relation as a /proc component: a pid that is no process is outside the
    run too (its entries do not exist, whoever asks). The pid is pinned to the process
    the relation was computed for (its start time, the same before and after): the
    emulated call is refused if the number names another process by then."""
    started = tracee.start_time(pid)
    name = relation(pid, tracee, thread)
    if started is None or name == NO_SUCH_PROCESS:
        return OUTSIDE_RUN
    if name == OUTSIDE_RUN and tracee.of_systrace(pid):
        tracee.reaches_systrace = True  # refused whatever the policy says (decide/policy.py)
    tracee.pins[pid] = started if tracee.start_time(pid) == started and tracee.pins.get(pid, started) == started else None
    return name


def resolve_for_open(tracee: Tracee, path: bytes, dirfd: int | None, follow: bool,
                     probes: list[int] | None = None) -> tuple[str, bytes | None, bytes | None]:
    """(the name the policy sees, what the emulated open should open, what the
    descriptor it reopens named): the canonical path twice, or /proc/TGID/fd/N and the
    link it read when the path ends on one of the tracee's descriptors (the open checks
    the descriptor still names it), or None when it cannot be opened faithfully by the
    supervisor (fail closed). `probes`: where the O_PATH descriptor of the canonical
    path goes when resolving opened one (the caller owns it)."""
    hops: list[tuple[bytes, bytes] | None] = []
    try:
        canonical = resolve_bytes(tracee, path, dirfd, follow, hops, probes=probes)
    except BadBase:
        raise
    except Missing as missing:
        return _missing_name(missing.path, tracee), missing.path if _acted_on(missing, tracee) else None, None
    except Unresolvable:
        return NONEXISTENT + os.fsdecode(path), None, None
    last = hops[-1] if hops else None
    if last is None:
        return stable_name(canonical, tracee), None if hops else canonical, None
    if own_descriptor(last[0], tracee) is None and _FD_LINK.match(last[0]):
        name, through = _through(canonical, last, tracee)
        return name, through, last[1]
    return stable_name(canonical, tracee), last[0], last[1]


class _InRoot:
    """The tracee, with a directory of its as its root (openat2's RESOLVE_IN_ROOT)."""

    def __init__(self, tracee: Tracee, top: bytes):
        self._tracee, self._top = tracee, top

    def root(self) -> bytes:
        return self._top

    def __getattr__(self, name: str) -> object:
        return getattr(self._tracee, name)


def resolve_in_root(tracee: Tracee, path: bytes, dirfd: int | None, follow: bool) -> tuple[str, bytes | None]:
    """openat2 with RESOLVE_IN_ROOT: (the name the policy sees, what an emulated open
    opens, or None), `path` resolved as the kernel does it, with the directory `dirfd`
    (or the working directory) as the root: an absolute path or symlink starts there,
    `..` stops there. Walked through /proc/TID/fd/N (or cwd), so each step is looked up
    in that directory, whatever its path is now. For a tracee with another root (chroot)
    the names are given below it; a directory outside that root is left unresolved (the
    open fails closed)."""
    if not path:
        raise BadBase("empty path", errno.ENOENT, path)
    entry = b"cwd" if dirfd is None or dirfd == AT_FDCWD else str(dirfd).encode()
    try:
        top = tracee.cwd() if entry == b"cwd" else tracee.fd_path(dirfd or 0)
    except OSError as error:
        raise BadBase(f"bad dirfd {dirfd}", errno.EBADF, path) from error
    if not top.startswith(b"/"):
        raise BadBase(f"dirfd {dirfd} is not a directory ({top!r})", errno.ENOTDIR, path)
    root = tracee.root().rstrip(b"/")  # (b"" for "/"; top and the walk are in systrace's view)
    if root and top != root and not top.startswith(root + b"/"):
        return NONEXISTENT + os.fsdecode(path), None
    prefix = f"/proc/{tracee.tid}/".encode() + (b"cwd" if entry == b"cwd" else b"fd/" + entry)
    try:
        below = walk(prefix, [], path, follow, _InRoot(tracee, top), None)  # type: ignore[arg-type]
    except Missing as missing:
        return _missing_name((top.rstrip(b"/") + missing.path)[len(root):], tracee), None
    except Unresolvable:
        return NONEXISTENT + os.fsdecode(path), None
    canonical = (top.rstrip(b"/") + below if below != b"/" else top)[len(root):] or b"/"
    return stable_name(canonical, tracee), canonical


def resolve_bytes(tracee: Tracee, path: bytes, dirfd: int | None, follow: bool,
                  hops: list[tuple[bytes, bytes] | None] | None = None, slash_follows: bool = True,
                  probes: list[int] | None = None) -> bytes:
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
            raise BadBase(f"bad dirfd {dirfd}", errno.EBADF, path) from error
    if not base.startswith(b"/"):
        raise BadBase(f"dirfd {dirfd} is not a directory ({base!r})", errno.ENOTDIR, path)
    root = tracee.root()
    if root == b"/":
        failed: list[int] = []
        plain = _plain(base, path, tracee, probes, failed)
        if plain is not None:
            return plain
        if failed == [errno.ELOOP]:  # a symlink on the way (merged /usr's /lib, /bin): the kernel follows it
            followed = _followed(base, path, follow, tracee)
            if followed is not None:
                return followed
        elif failed == [errno.ENOENT]:  # (a search path's miss: gcc's headers, ld.so.preload)
            missing = _missing_last(base, path)
            if missing is not None:
                return missing
    elif base != b"/" and (base == root.rstrip(b"/") or base.startswith(root.rstrip(b"/") + b"/")):
        # (the kernel names the working directory and descriptors in systrace's view, here
        # below the tracee's root: the walk below is in the tracee's)
        base = base[len(root.rstrip(b"/")):] or b"/"
    prefix = b"" if root == b"/" else f"/proc/{tracee.tid}/root".encode()
    return walk(prefix, _parts(base), path, follow, tracee, hops, slash_follows)


def _plain(base: bytes, path: bytes, tracee: Tracee | None = None, probes: list[int] | None = None,
           failed: list[int] | None = None) -> bytes | None:
    """The common case in one system call instead of a walk: no `.` or `..`, not below
    /proc, and the kernel finds no symlink on the way (RESOLVE_NO_SYMLINKS). Then the
    path, with repeated slashes dropped, is already canonical. None: walk it. With
    `probes`, the O_PATH descriptor of it is kept there (an emulated open reuses it);
    `failed` gets the errno of a probe that failed."""
    joined = path if path.startswith(b"/") else base + b"/" + path
    parts = _parts(joined)
    if not parts or parts[0] == b"proc" or b"." in parts or b".." in parts:
        return None
    canonical = b"/" + b"/".join(parts)
    unplain = getattr(tracee, "unplain", None)
    if unplain is not None and canonical == unplain[0]:
        if failed is not None:
            failed.append(unplain[1])
        return None  # the path cache's probe of it failed in this call: not made again
    _may_look_up(tracee, canonical)
    try:
        fd = openat2(AT_FDCWD, canonical, os.O_PATH | os.O_CLOEXEC, 0, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
    except OSError as error:
        if failed is not None:
            failed.append(error.errno or 0)
        return None  # missing, a symlink on the way, no permission...: the walk decides
    if probes is not None:
        probes.append(fd)
    else:
        os.close(fd)
    return canonical


def _followed(base: bytes, path: bytes, follow: bool, tracee: Tracee) -> bytes | None:
    """A plain path (as _plain's) with symlinks on the way, in two system calls instead of
    a walk's lstat and readlink per component: the kernel follows them in an O_PATH open
    (its last component too when `follow`), and the descriptor names where it led. Only
    for what the walk would find the same way: no magic link (RESOLVE_NO_MAGICLINKS, which
    fails: walked), an end outside /proc (a symlink there, /etc/mtab's ../proc/self, would
    mean systrace: walked), no trailing slash, a file that exists and is not unlinked
    meanwhile (" (deleted)"). A symlink's target is not known before the lookup, so it
    could lead onto a FUSE mount: only while none exists anywhere (kernel/mounts.py
    ServedAnywhere) for a tracee whose lookups must not wait (`may_block`). None: walk it."""
    if path.endswith(b"/"):
        return None
    if getattr(tracee, "may_block", None) is not None and memory.fuse_present():
        return None
    joined = path if path.startswith(b"/") else base + b"/" + path
    canonical = b"/" + b"/".join(_parts(joined))
    try:
        fd = openat2(AT_FDCWD, canonical, os.O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW), 0,
                     RESOLVE_NO_MAGICLINKS)
    except OSError:
        return None
    try:
        real = procfs.own_link(fd)
    except OSError:
        return None
    finally:
        os.close(fd)
    if not real.startswith(b"/") or real.endswith(b" (deleted)") or real == b"/proc" or real.startswith(b"/proc/"):
        return None
    return real


def _missing_last(base: bytes, path: bytes) -> bytes | None:
    """A plain path the kernel found missing (RESOLVE_NO_SYMLINKS: ENOENT, so no symlink
    before the missing name) whose directory is there, a directory reached without a
    symlink: only its last name is missing, and the walk would answer the path itself
    (to be created), after an lstat per component. One open of the directory instead.
    None: walk it."""
    joined = path if path.startswith(b"/") else base + b"/" + path
    parts = _parts(joined)
    try:
        fd = openat2(AT_FDCWD, b"/" + b"/".join(parts[:-1]), os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0,
                     RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
    except OSError:
        return None
    os.close(fd)
    return b"/" + b"/".join(parts)


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


def _note_systrace(parts: list[bytes], tracee: Tracee) -> None:
    """A path through /proc/PID of systrace or a helper, whatever it goes on to (a link
    it holds, its cwd, exe, map_files...): refused whatever the policy (decide/policy.py)."""
    if parts[0] == b"proc" and parts[1].isdigit():
        pid = int(parts[1])
        if pid not in (tracee.tgid, tracee.tid) and tracee.of_systrace(pid):
            tracee.reaches_systrace = True


def walk(prefix: bytes, parts: list[bytes], path: bytes, follow_last: bool, tracee: Tracee,
         hops: list[tuple[bytes, bytes] | None] | None = None, slash_follows: bool = True) -> bytes:
    """`hops` collects the descriptor magic links followed: (/proc/T/fd/N, what it
    named) when it was the last step, None when the path went on below it."""
    pending = path.split(b"/")
    trailing_slash = path.endswith(b"/") and slash_follows
    links = 0
    if len(parts) >= 2:  # relative to a directory below /proc/PID
        _note_systrace(parts[:2], tracee)
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
        if len(candidate) == 2:
            _note_systrace(candidate, tracee)
        full = prefix + b"/" + b"/".join(candidate)
        if prefix:
            _may_look_up(tracee, b"/" + b"/".join(candidate), tracee.root())
        else:
            _may_look_up(tracee, full)
        try:
            mode = os.lstat(full).st_mode
        except OSError as error:
            if last and error.errno == errno.ENOENT:
                return b"/" + b"/".join(candidate)  # to be created
            if error.errno in (errno.ENOENT, errno.ENOTDIR, errno.EACCES):
                raise Missing(_lexical(candidate, pending), error.errno == errno.EACCES) from None
            raise LookupFailed(error.errno or errno.EIO) from None
        if stat.S_ISLNK(mode) and (not last or follow_last or trailing_slash):
            links += 1
            if links > MAX_LINKS:
                raise Unresolvable("too many levels of symbolic links")
            try:
                target = os.readlink(full)
            except OSError as error:
                if error.errno not in (errno.ENOENT, errno.EINVAL):
                    raise LookupFailed(error.errno or errno.EIO) from None
                # gone, or no symlink any more, since the lstat (a rename racing the check):
                # that name is looked at again, as the kernel's lookup would find it now
                pending.insert(0, component)
                continue
            magic = len(candidate) >= 3 and candidate[0] == b"proc" and candidate[-2] == b"fd"
            if magic and hops is not None:
                hops.append((b"/" + b"/".join(candidate), target) if last else None)
            if magic and last and _unreachable(target):  # a memfd, a deleted file: no path leads there
                return target
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
