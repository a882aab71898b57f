"""openat2's RESOLVE_* flags, kept when systrace opens for the tracee.

The check resolves an openat2 path as an openat one, and the emulated open opens that
canonical path: a tracee that asked for RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS,
RESOLVE_NO_MAGICLINKS, RESOLVE_NO_XDEV or RESOLVE_CACHED (restrictions it puts on
itself, as a sandboxed parser does) got the file anyway, and RESOLVE_IN_ROOT (the
directory descriptor as root) got the file of the same name in the real root. So
before an emulated openat2 with resolve flags, systrace resolves the path as the tracee
asked: its directory descriptor (pidfd_getfd) or working directory, its flags, as the
tracee, into an O_PATH descriptor (which opens nothing). Its error is the tracee's
answer (EXDEV, ELOOP, EAGAIN, as natively); what it names must be the file checked (or,
for a file to create, its directory the checked one's), else the open is refused: the
check did not see that file. With RESOLVE_IN_ROOT the check itself resolves the path with
the directory as root (translate/filename.resolve_in_root), so the two agree and the
open opens the checked file. For a tracee whose own root is not "/" (chroot), an
absolute path, an absolute symlink or `..` at its root start from its root, not
systrace's: that lookup is made by a helper that takes the tracee's root (chroot into
/proc/TID/root, joining its user namespace when it has its own) and identity, and
passes the descriptor back; what it names is compared below the tracee's root.
RESOLVE_IN_ROOT's lookup needs no helper (its root is the directory, whatever the
tracee's root is); the check resolves it so too (translate/filename.resolve_in_root)."""

from __future__ import annotations

import errno
import os
import signal

from . import closer, memory
from .emulate import VALID_FLAGS, openat2
from .emulate_identity import EmulationError, Identity, set_effective
from .libc import check, libc, pidfd_getfd

AT_FDCWD = -100
PR_SET_PDEATHSIG = 1
CLONE_NEWUSER = 0x10000000
RESOLVE_MASK = 0x3F  # NO_XDEV NO_MAGICLINKS NO_SYMLINKS BENEATH IN_ROOT CACHED
RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_CACHED = 0x08, 0x10, 0x20
O_TMPFILE = getattr(os, "O_TMPFILE", 0)


def resolve_of(tid: int, args: tuple[int, ...]) -> int:
    """The resolve field of the tracee's struct open_how (0 when it has none). Read again
    here: a tracee that changes it meanwhile only changes its own restrictions."""
    if args[3] < 24:
        return 0
    return int.from_bytes(memory.read(tid, args[2] + 16, 8), "little")


def _invalid(flags: int, mode: int, resolve: int) -> bool:
    """What openat2 refuses with EINVAL before any lookup (fs/open.c build_open_flags)."""
    if flags & ~VALID_FLAGS or resolve & ~RESOLVE_MASK:
        return True
    if mode and not flags & (os.O_CREAT | O_TMPFILE) or mode & ~0o7777:
        return True
    if resolve & RESOLVE_BENEATH and resolve & RESOLVE_IN_ROOT:
        return True
    return bool(flags & O_TMPFILE == O_TMPFILE and not flags & (os.O_WRONLY | os.O_RDWR))


def check_as_asked(tid: int, tgid: int, args: tuple[int, ...], flags: int, checked: bytes, root: str | None,
                   identity: Identity, listener_fd: int = -1) -> None:
    """Raise OSError (the tracee's own error) or EmulationError unless the path resolved
    with the tracee's resolve flags names `checked` (module docstring)."""
    size = args[3]
    if size < 24:
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    if size > 4096:
        raise OSError(errno.E2BIG, os.strerror(errno.E2BIG))
    how = memory.read(tid, args[2], size)
    if any(how[24:]):  # fields of a later struct version this kernel does not know
        raise OSError(errno.E2BIG, os.strerror(errno.E2BIG))
    mode, resolve = int.from_bytes(how[8:16], "little"), int.from_bytes(how[16:24], "little")
    if _invalid(flags, mode, resolve):
        raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
    if resolve & RESOLVE_CACHED and flags & (os.O_CREAT | os.O_TRUNC | O_TMPFILE):
        raise OSError(errno.EAGAIN, os.strerror(errno.EAGAIN))  # (build_open_flags: never from the cache)
    if not resolve:
        return
    # below another root: its lookups start there, made in a helper, except RESOLVE_IN_ROOT's,
    # whose root is the directory, whatever the tracee's root is (names compared below it)
    prefix = os.fsencode(root or "/") if root not in (None, "/") else b""
    below = bool(prefix) and not resolve & RESOLVE_IN_ROOT
    path = memory.read_cstring(tid, args[1])
    dirfd = (args[0] & 0xFFFFFFFF) - (1 << 32) if args[0] & 0x80000000 else args[0] & 0xFFFFFFFF
    start = starting_directory(tid, tgid, dirfd)

    def probe(name: bytes, probe_flags: int) -> int:
        if below:
            return in_root_of(tid, start, name, probe_flags, resolve, identity, listener_fd)
        return identity.run(lambda: openat2(start, name, probe_flags, 0, resolve))

    try:
        probe_flags = os.O_PATH | os.O_CLOEXEC | (flags & (os.O_NOFOLLOW | os.O_DIRECTORY))
        if flags & os.O_CREAT and flags & os.O_EXCL:
            probe_flags |= os.O_NOFOLLOW  # O_EXCL creates the name itself, never what a link names
        try:
            _expect(probe(path, probe_flags), checked, prefix)
        except FileNotFoundError:
            if not flags & os.O_CREAT:
                raise
            parent = path.rstrip(b"/").rpartition(b"/")[0] if b"/" in path.rstrip(b"/") else b"."
            fd = probe(parent or b"/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            _expect(fd, checked.rstrip(b"/").rpartition(b"/")[0] or b"/", prefix)
    finally:
        closer.close_taken(start)  # (the tracee's own open file: its last close may wait)


def in_root_of(tid: int, start: int, path: bytes, flags: int, resolve: int, identity: Identity, listener_fd: int) -> int:
    """openat2(start, path, flags, resolve) looked up as the tracee in its own root: a
    helper chroots into /proc/TID/root (joining the tracee's user namespace when it has
    its own, which a tracee that is not root chrooted in), takes the tracee's identity,
    and passes the descriptor back. Raises the lookup's OSError, or EmulationError."""
    import socket  # (only for a chrooted tracee's openat2 with RESOLVE flags)

    from .forking import fork_helper

    unprivileged = os.geteuid() != 0
    userns = -1
    if os.readlink(f"/proc/{tid}/ns/user") != os.readlink("/proc/self/ns/user"):
        userns = os.open(f"/proc/{tid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    root = os.open(f"/proc/{tid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
    try:
        if unprivileged and (userns < 0 or identity.euid != os.geteuid()):
            raise EmulationError(errno.EACCES, "a lookup in another root as another user, and systrace is not root")
        pid = fork_helper()
        if pid == 0:  # the helper: look up, pass the result back, exit
            code = 70
            try:
                libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # never outlive systrace
                if listener_fd >= 0:
                    os.close(listener_fd)  # a helper never holds the listener
                ours.close()
                failed = _looked_up(root, userns, unprivileged, start, path, flags, resolve, identity, theirs)
                if failed:
                    theirs.send(failed)
                code = 0
            finally:
                os._exit(code)
        theirs.close()
        try:
            data, fds, _, _ = socket.recv_fds(ours, 512, 1)
        finally:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:  # (reaped already)
                pass
        if fds:
            return fds[0]
        if data[:1] == b"O":
            code = int(data[1:] or errno.EIO)
            raise OSError(code, os.strerror(code))
        raise EmulationError(errno.EACCES, data[1:].decode("utf-8", "replace") or "the lookup helper died")
    finally:
        ours.close()
        theirs.close()
        os.close(root)
        if userns >= 0:
            os.close(userns)


def _looked_up(root: int, userns: int, unprivileged: bool, start: int, path: bytes, flags: int, resolve: int,
               identity: Identity, sock: object) -> bytes:
    """In the helper: the lookup as the tracee in its root; the descriptor is sent on
    `sock` (b"" then), or the answer is b"O<errno>" (the tracee's error) or b"E<why>"."""
    import socket

    try:
        if unprivileged:  # the user's own namespace: its creator holds every capability there
            check(libc.setns(userns, CLONE_NEWUSER))
        os.fchdir(root)
        os.chroot(".")
        if unprivileged:
            set_effective(identity.caps)  # the same ids as systrace's (checked before the fork)
        else:
            identity.apply()  # (in a helper: never undone)
            if userns >= 0:  # its creator's ids: every capability there, then exactly the tracee's
                check(libc.setns(userns, CLONE_NEWUSER))
                set_effective(identity.caps)
    except (OSError, EmulationError) as error:
        return b"Ecannot take the tracee's root and identity: " + str(error).encode("utf-8", "replace")[:300]
    try:
        fd = openat2(start, path, flags, 0, resolve)
    except OSError as error:
        return b"O%d" % (error.errno or errno.EIO)
    socket.send_fds(sock, [b"F"], [fd])  # type: ignore[arg-type]
    return b""


def starting_directory(tid: int, tgid: int, dirfd: int) -> int:
    """Our descriptor of where the tracee's relative path starts: its working directory
    (AT_FDCWD) or its descriptor `dirfd` (the same file description, pidfd_getfd).
    Raises OSError with the errno the tracee would get (EBADF)."""
    if dirfd == AT_FDCWD:
        return os.open(f"/proc/{tid}/cwd", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    pidfd = os.pidfd_open(tgid)
    try:
        return pidfd_getfd(pidfd, dirfd)
    except OSError as error:
        code = error.errno or errno.EBADF
        raise OSError(code, os.strerror(code)) from None
    finally:
        os.close(pidfd)


def _expect(fd: int, wanted: bytes, prefix: bytes = b"") -> None:
    """`fd` names `wanted` (below the tracee's root `prefix`, when it has another)."""
    try:
        actual = os.readlink(f"/proc/self/fd/{fd}".encode())
    finally:
        os.close(fd)
    if prefix:
        if actual != prefix and not actual.startswith(prefix.rstrip(b"/") + b"/"):
            raise EmulationError(errno.EACCES, f"openat2's RESOLVE flags resolve to {actual!r}, outside the tracee's root")
        actual = actual[len(prefix.rstrip(b"/")):] or b"/"
    if actual != wanted and actual != wanted.rstrip(b"/"):
        raise EmulationError(errno.EACCES, f"openat2's RESOLVE flags resolve to {actual!r}, not the checked {wanted!r}")
