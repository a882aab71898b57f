"""Shared fixtures: run systrace on real programs, compile C helpers, act as a user."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
C_SOURCES = Path(__file__).resolve().parent / "c"
TEST_USER = os.environ.get("SYSTRACE_TEST_USER", "systrace-test")
TIMEOUT = 120  # safety net only


def systrace_argv(python: str = sys.executable) -> list[str]:
    return [python, "-m", "systrace"]


def base_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC)
    env.update(extra)
    return env


def run(argv: list[str], *, input: bytes | None = None, env: dict[str, str] | None = None, cwd: str | None = None,
        timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run(argv, input=input, capture_output=True, env=env or base_env(), cwd=cwd, timeout=timeout)


def systrace(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return run(systrace_argv() + list(args), **kwargs)


# -- a guard on pytest's own process state ---------------------------------------------------
_RLIMITS = sorted(value for name, value in vars(__import__("resource")).items() if name.startswith("RLIMIT_"))
_STATUS_FIELDS = (b"SigBlk:", b"SigIgn:")  # the main thread's blocked and ignored signals
IOPRIO_GET, IOPRIO_WHO_PROCESS = 252, 1


def _own_state() -> dict[str, object]:
    """What a test must not change in the process that runs the suite: attacks and the
    commands under test run in processes (and groups) of their own, and a change here
    (a renice through the process group, say) makes later tests fail far from its cause."""
    import ctypes
    import resource
    import signal

    state: dict[str, object] = {
        "nice": os.getpriority(os.PRIO_PROCESS, 0),
        "I/O priority": ctypes.CDLL(None, use_errno=True).syscall(IOPRIO_GET, IOPRIO_WHO_PROCESS, 0),
        "scheduling policy": (os.sched_getscheduler(0), os.sched_getparam(0).sched_priority),
        "CPU affinity": sorted(os.sched_getaffinity(0)),
        "rlimits": [resource.getrlimit(number) for number in _RLIMITS],
        "signal mask": sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])),
        "process group": os.getpgrp(),
        "session": os.getsid(0),
        "cwd": os.getcwd(),
    }
    umask = os.umask(0o022)
    os.umask(umask)
    state["umask"] = oct(umask)
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(_STATUS_FIELDS):
                key = "blocked signals" if line.startswith(b"SigBlk") else "ignored signals"
                state[key] = line.split()[1].decode()
    return state


@pytest.fixture(autouse=True)
def _pytest_process_state_unchanged(request):
    """Fail the test that changed pytest's own process state (nice value, I/O priority,
    scheduling, CPU affinity, rlimits, signal mask and ignored signals, umask, cwd,
    process group or session), naming it and what changed."""
    before = _own_state()
    yield
    after = _own_state()
    changed = {key: (before[key], after[key]) for key in before if before[key] != after[key]}
    if changed:
        _restore(before, after)
        what = "; ".join(f"{key}: {old} -> {new}" for key, (old, new) in changed.items())
        pytest.fail(f"{request.node.nodeid} changed pytest's own process state ({what}); run what changes "
                    "it in a process (and group or session) of its own", pytrace=False)


def _restore(before: dict[str, object], after: dict[str, object]) -> None:
    """Put back what can be put back (as root, a raised nice value too), so that the
    tests after the one named are not failed by its change."""
    import contextlib
    import resource

    with contextlib.suppress(OSError, ValueError):
        if before["nice"] != after["nice"]:
            os.setpriority(os.PRIO_PROCESS, 0, before["nice"])  # type: ignore[arg-type]
    with contextlib.suppress(OSError, ValueError):
        if before["CPU affinity"] != after["CPU affinity"]:
            os.sched_setaffinity(0, before["CPU affinity"])  # type: ignore[arg-type]
    with contextlib.suppress(OSError, ValueError):
        for number, limit in zip(_RLIMITS, before["rlimits"], strict=True):  # type: ignore[call-overload]
            resource.setrlimit(number, limit)
    with contextlib.suppress(OSError, ValueError):
        if before["cwd"] != after["cwd"]:
            os.chdir(before["cwd"])  # type: ignore[arg-type]
    os.umask(int(before["umask"], 8))  # type: ignore[call-overload]


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """A world-readable scratch directory (pytest's tmp dirs are private to root)."""
    path = Path(tempfile.mkdtemp(prefix="systrace-tests-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def cbin(shared_dir: Path):
    """cbin("zoo") compiles tests/c/zoo.c once and returns the binary's path."""
    built: dict[str, str] = {}

    def build(name: str, *flags: str) -> str:
        if name not in built:
            out = shared_dir / name
            source = C_SOURCES / f"{name}.c"
            subprocess.run(["gcc", "-O1", "-o", str(out), str(source), "-pthread", *flags], check=True, timeout=TIMEOUT)
            out.chmod(0o755)
            built[name] = str(out)
        return built[name]

    return build


@pytest.fixture(scope="session")
def test_user(shared_dir: Path) -> pwd.struct_passwd:
    """An unprivileged account to run systrace as (created when we are root)."""
    if os.geteuid() != 0:
        pytest.skip("switching to another user needs root")
    try:
        return pwd.getpwnam(TEST_USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", TEST_USER], check=True)
        return pwd.getpwnam(TEST_USER)


class Runner:
    """Runs argv natively or under systrace, as root or as the unprivileged test user."""

    def __init__(self, name: str, prefix: list[str], python: str, env: dict[str, str], cwd: str | None):
        self.name, self.prefix, self.python, self.env, self.cwd = name, prefix, python, env, cwd

    def argv(self, *args: str) -> list[str]:
        return self.prefix + [self.python, "-m", "systrace", *args]

    def native_argv(self, *args: str) -> list[str]:
        return self.prefix + list(args)

    def __call__(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return run(self.argv(*args), env=self.env, cwd=self.cwd, **kwargs)

    def native(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return run(self.native_argv(*args), env=self.env, cwd=self.cwd, **kwargs)

    @property
    def uid(self) -> int:
        """The user this runner's commands run as (from setpriv's --reuid)."""
        for word in self.prefix:
            if word.startswith("--reuid="):
                return int(word.split("=", 1)[1])
        return os.geteuid()

    def policy_dir(self, path: Path) -> Path:
        """A fresh, private policy directory of this runner's user (systrace refuses one
        others may write, as ssh does)."""
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(mode=0o700)
        os.chown(path, self.uid, -1)
        return path

    def writable(self, path: Path) -> Path:
        """A fresh file this runner's systrace may write (a log, a map)."""
        path.unlink(missing_ok=True)
        path.touch()
        path.chmod(0o666)
        return path


@pytest.fixture(scope="session")
def root_runner() -> Runner:
    return Runner("root", [], sys.executable, base_env(), None)


@pytest.fixture(scope="session")
def user_runner(test_user: pwd.struct_passwd, shared_dir: Path) -> Runner:
    """systrace as the test user, importable from a world-readable copy of src/ (the
    supervisor needs only the standard library, so the system python will do)."""
    src_copy = shared_dir / "src"
    shutil.copytree(SRC / "systrace", src_copy / "systrace", ignore=shutil.ignore_patterns("__pycache__"))
    for path in [src_copy, *src_copy.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": test_user.pw_dir,
        "USER": test_user.pw_name,
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(src_copy),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    prefix = ["setpriv", f"--reuid={test_user.pw_uid}", f"--regid={test_user.pw_gid}", "--init-groups", "--"]
    return Runner("user", prefix, python, env, "/")


@pytest.fixture(params=["root", "user"])
def runner(request) -> Runner:
    """Parametrizes a test over root and the unprivileged user."""
    return request.getfixturevalue(f"{request.param}_runner")


@pytest.fixture
def syslog_socket():
    """A datagram socket standing in for /dev/log (SYSTRACE_SYSLOG_SOCKET), read all along
    as a daemon would (its queue holds only 10 datagrams); `received()` gives what came."""
    import select
    import socket
    import threading

    home = Path(tempfile.mkdtemp(prefix="systrace-syslog-"))
    home.chmod(0o755)  # the unprivileged test user sends to it too
    path = home / "log.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    path.chmod(0o777)
    stop_read, stop_write = os.pipe()
    got: list[bytes] = []

    def serve() -> None:
        while True:
            ready = select.select([sock, stop_read], [], [])[0]
            if sock in ready:
                got.append(sock.recv(65536))
            elif stop_read in ready:
                return

    reader = threading.Thread(target=serve, daemon=True)
    reader.start()

    class Syslog:
        def __init__(self) -> None:
            self.path = str(path)
            self.env = base_env(SYSTRACE_SYSLOG_SOCKET=str(path))

        def received(self) -> list[bytes]:
            """Everything sent so far (the reading stops: call it once, at the end)."""
            if reader.is_alive():
                os.write(stop_write, b"x")
                reader.join()
            sock.setblocking(False)
            while True:  # what is still queued
                try:
                    got.append(sock.recv(65536))
                except BlockingIOError:
                    return list(got)

    yield Syslog()
    if reader.is_alive():
        os.write(stop_write, b"x")
        reader.join()
    sock.close()
    os.close(stop_read)
    os.close(stop_write)
    shutil.rmtree(home, ignore_errors=True)
