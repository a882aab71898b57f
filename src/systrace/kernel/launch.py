"""Start a command under a seccomp filter whose listener only the supervisor holds.

Hand-off: before installing the filter the child tells the parent which fd number the
listener will get (the lowest free one; the child allocates nothing in between), then
installs the filter and execs. The parent takes the listener out of the child with
pidfd_getfd. No syscall of the child needs an exception in the filter, and any that
is notified before exec (the execve itself included) simply waits for the parent.
The listener is created O_CLOEXEC, so it is closed in the tracee by the exec.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import stat
import struct
import time

from . import abi, landlock
from .libc import check, libc, pidfd_getfd, pidfd_send_signal, prctl
from .plain_signal import signal

LISTENER_LINK = "anon_inode:seccomp notify"
HANDOFF_DEADLINE = 10.0  # seconds; a safety net, the hand-off takes microseconds


class LaunchError(Exception):
    """The command could not be started; `status` is systrace's exit status."""

    def __init__(self, message: str, status: int = 2):
        super().__init__(message)
        self.status = status


class Launched:
    def __init__(self, pid: int, pidfd: int, listener_fd: int, report_fd: int):
        self.pid = pid
        self.pidfd = pidfd
        self.listener_fd = listener_fd
        # Read end of the child's report pipe (CLOEXEC in the child): EOF once its exec
        # succeeded; a 4-byte errno if the exec failed.
        self.report_fd = report_fd


def exec_outcome(report_fd: int) -> int | None:
    """0 if the child's exec succeeded, its errno if it failed, None if not known yet."""
    ready, _, _ = select.select([report_fd], [], [], 0)
    if not ready:
        return None
    data = _read_report(report_fd, 4)
    if len(data) < 4:
        return 0 if not data else errno.EIO
    return struct.unpack("=i", data)[0]


def resolve_command(name: str, path_env: str | None) -> str:
    """Find the program as a shell would: 127 when absent, 126 when not executable."""
    if not name:
        raise LaunchError(": command not found", 127)
    if "/" in name:
        return _check_executable(name, name)
    found_unexecutable = None
    for directory in (path_env if path_env is not None else os.defpath).split(":"):
        candidate = os.path.join(directory or ".", name)
        try:
            mode = os.stat(candidate).st_mode
        except OSError:
            continue
        if stat.S_ISREG(mode) and os.access(candidate, os.X_OK):
            return candidate
        found_unexecutable = found_unexecutable or candidate
    if found_unexecutable:
        raise LaunchError(f"{name}: Permission denied", 126)
    raise LaunchError(f"{name}: command not found", 127)


def _check_executable(shown: str, path: str) -> str:
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise LaunchError(f"{shown}: No such file or directory", 127) from None
    except OSError as error:
        raise LaunchError(f"{shown}: {error.strerror}", 126) from None
    if stat.S_ISDIR(mode):
        raise LaunchError(f"{shown}: Is a directory", 126)
    if not os.access(path, os.X_OK):
        raise LaunchError(f"{shown}: Permission denied", 126)
    return path


def exec_failure(shown: str, path: str, error: int) -> str:
    """What a failed exec of the command says, as a shell would: an ENOENT of a file that
    is there names what is missing, the interpreter of a #! script (bash: "bad
    interpreter") or a binary's dynamic loader ("required file not found"), never the
    file itself as missing."""
    if error == errno.ENOENT and os.path.lexists(path):
        try:
            with open(path, "rb") as file:
                head = file.read(256)
        except OSError:
            head = b""
        if head.startswith(b"#!"):
            words = head[2:].split(b"\n", 1)[0].split()
            if words:
                interpreter = os.fsdecode(words[0])
                return f"{shown}: {interpreter}: bad interpreter: No such file or directory"
        return f"{shown}: cannot execute: required file not found"
    return f"{shown}: {os.strerror(error)}"


def user_notification_available() -> bool:
    """Does this kernel know SECCOMP_RET_USER_NOTIF?"""
    action = ctypes.c_uint32(abi.RET_USER_NOTIF)
    return libc.syscall(abi.SYS_seccomp, abi.SECCOMP_GET_ACTION_AVAIL, 0, ctypes.byref(action)) == 0


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


# The interpreter ignores these at start-up, whatever it inherited; a command started
# with them ignored would see EPIPE instead of dying (`ls | head`: "write error: Broken
# pipe") and EFBIG instead of SIGXFSZ. Python cannot see what it inherited, so they are
# reset to the default, as subprocess's restore_signals does (README "Transparent launch").
PYTHON_IGNORED = (signal.SIGPIPE, signal.SIGXFSZ)


def spawn(path: str, argv: list[str], env: dict[str, str], program: bytes, child_sigmask: set[int],
          credentials: tuple[int, int] | None = None, domain: int | None = None) -> Launched:
    """Fork, install `program` in the child and exec `path`. The caller must have
    imported everything it needs: after the filter is installed the child only calls
    into ctypes objects built before it. `credentials`: (uid, gid) to run as (-c).
    `domain` is a Landlock ruleset the child enters (kernel/landlock.py)."""
    report_r, report_w = os.pipe2(os.O_CLOEXEC)
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # child: never returns
        os.close(report_r)
        _child(parent, path, argv, env, program, report_w, child_sigmask, credentials, domain)
    os.close(report_w)
    pidfd = -1
    try:
        pidfd = os.pidfd_open(pid)
        listener = _receive_listener(pid, pidfd, report_r)
    except BaseException:
        if pidfd >= 0:
            try:
                pidfd_send_signal(pidfd, signal.SIGKILL)
            except OSError:
                pass
            os.close(pidfd)
        os.waitpid(pid, 0)
        os.close(report_r)
        raise
    return Launched(pid, pidfd, listener, report_r)


def _receive_listener(pid: int, pidfd: int, report_r: int) -> int:
    head = _read_report(report_r, 4)
    if len(head) < 4 or head.startswith(b"E"):  # the child failed before the hand-off
        raise LaunchError(_child_failure(head + _read_report(report_r, 4096)))
    (number,) = struct.unpack("=i", head)
    deadline = time.monotonic() + HANDOFF_DEADLINE
    while True:
        try:
            listener = pidfd_getfd(pidfd, number)
            break
        except OSError as error:
            if error.errno == errno.ESRCH:  # the child is gone: its report says why
                raise LaunchError(_child_failure(_read_report(report_r, 4096))) from None
            if error.errno != errno.EBADF:
                raise LaunchError(f"cannot take the seccomp listener from the child: {error.strerror}") from None
        ready, _, _ = select.select([report_r], [], [], 0)
        if ready:  # the child reported a failure, or died
            raise LaunchError(_child_failure(_read_report(report_r, 4096)))
        if time.monotonic() > deadline:
            raise LaunchError("the child did not install its seccomp filter in time")
        os.sched_yield()
    if os.readlink(f"/proc/self/fd/{listener}") != LISTENER_LINK:
        os.close(listener)
        raise LaunchError("the child's fd is not a seccomp listener")
    return listener


def _read_report(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _child_failure(data: bytes) -> str:
    if data.startswith(b"E"):
        return data[1:].decode("utf-8", "replace")
    return "the child died before installing its seccomp filter"


def become(uid: int, gid: int) -> None:
    """-c: drop to uid:gid with only that group, as the original did (setgroups, setgid,
    setuid, in that order: each needs the privilege the next one drops). In the child,
    before its death signal is set (a change of credentials clears it) and before the
    filter exists (these calls must not wait for the supervisor)."""
    os.setgroups([gid])
    os.setgid(gid)
    os.setuid(uid)


def _child(parent: int, path: str, argv: list[str], env: dict[str, str], program: bytes, report: int, sigmask: set[int],
           credentials: tuple[int, int] | None = None, domain: int | None = None) -> None:
    status = 2
    try:
        for number in PYTHON_IGNORED:
            signal.signal(number, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, sigmask)
        if credentials is not None:
            become(*credentials)
        prctl(abi.PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the supervisor is already gone
            os._exit(status)
        # Everything execve needs, built before the filter exists.
        c_path = ctypes.c_char_p(os.fsencode(path))
        c_argv = (ctypes.c_char_p * (len(argv) + 1))(*(os.fsencode(a) for a in argv), None)
        c_envp = (ctypes.c_char_p * (len(env) + 1))(*(os.fsencode(f"{k}={v}") for k, v in env.items()), None)
        code = ctypes.create_string_buffer(program, len(program))
        fprog = _SockFprog(len(program) // 8, ctypes.addressof(code))
        execve = libc.execve
        get_errno = ctypes.get_errno
        exit_now = os._exit
        check(libc.prctl(abi.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
        if domain is not None:  # out of reach of systrace and its helpers, or not at all
            failure = landlock.enter(domain)
            if failure:
                os.write(report, b"E" + f"cannot enter the Landlock domain: {os.strerror(failure)}".encode())
                exit_now(2)
            os.close(domain)
        probe = os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC)
        os.close(probe)  # the listener will take this number
        os.write(report, struct.pack("=i", probe))
        flags = abi.FILTER_FLAG_NEW_LISTENER | abi.FILTER_FLAG_WAIT_KILLABLE_RECV
        listener = libc.syscall(abi.SYS_seccomp, abi.SECCOMP_SET_MODE_FILTER, flags, ctypes.byref(fprog))
        if listener < 0 and get_errno() == errno.EINVAL:  # kernel older than 5.19
            flags &= ~abi.FILTER_FLAG_WAIT_KILLABLE_RECV
            listener = libc.syscall(abi.SYS_seccomp, abi.SECCOMP_SET_MODE_FILTER, flags, ctypes.byref(fprog))
        if listener < 0:
            code_ = get_errno()
            # EBUSY: another listener is in the chain; EPERM: systrace's baseline refuses
            # NEW_LISTENER to every tracee
            hint = " (already under a seccomp supervisor?)" if code_ in (errno.EBUSY, errno.EPERM) else ""
            os.write(report, b"E" + f"cannot install the seccomp filter: {os.strerror(code_)}{hint}".encode())
            exit_now(2)
        if listener != probe:  # filter installed: write nothing more, just go
            exit_now(2)
        # From here every notified call waits for the supervisor; execve is one.
        execve(c_path, c_argv, c_envp)
        failure = get_errno()
        os.write(report, struct.pack("=i", failure))
        exit_now(127 if failure == errno.ENOENT else 126)
    except BaseException as error:  # noqa: BLE001 - nothing may escape a forked child
        try:
            os.write(report, b"E" + f"cannot start the command: {error}".encode())
        finally:
            os._exit(status)
