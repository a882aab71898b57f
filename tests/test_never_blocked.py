"""The tracee cannot stall systrace (issue 12 item 4): an emulated open that would wait
goes to a helper while every other call is served, and a signal to systrace is honoured
at once even then."""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import TIMEOUT, Runner


def _owned_dir(path: Path, runner: Runner) -> Path:
    """A fresh directory the runner's user owns (a policy directory, a FIFO's home)."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o755)
    if runner.name == "user":
        import pwd

        entry = pwd.getpwnam(runner.env["USER"])
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


@pytest.fixture
def fifo_setup(runner: Runner, cbin, shared_dir: Path, request) -> tuple[Runner, str, Path, str]:
    """(runner, the fifo_wait binary, a policy directory with its learned policy, a FIFO)."""
    program = cbin("fifo_wait")
    base = _owned_dir(shared_dir / f"fifo-{request.node.name}".replace("[", "-").replace("]", ""), runner)
    policies = _owned_dir(base / "policies", runner)
    fifo = str(base / "fifo")
    assert runner.native("mkfifo", fifo).returncode == 0
    learned = runner("-d", str(policies), "-A", program, fifo, "serve", "20")
    assert learned.returncode == 0, learned.stderr
    policy = next(path for path in policies.iterdir() if path.name.endswith("fifo_wait"))
    text = re.sub(r'filename eq "/proc/(?:self|\d+)/task/\d+/syscall"', 'filename match "/proc/*/task/*/syscall"',
                  policy.read_text())
    # what threads may or may not need from run to run (a futex wait only under contention)
    extra = ["futex", "madvise", "munmap", "mmap", "mprotect", "clone", "rseq", "set_robust_list"]
    policy.write_text(text.rstrip("\n") + "\n" + "".join(f"\tnative-{name}: permit\n" for name in extra))
    return runner, program, policies, fifo


def test_fifo_open_with_no_writer_does_not_stop_other_calls(fifo_setup) -> None:
    """The reader's emulated open waits for a writer in a helper; meanwhile the other
    thread's 300 calls are served, then its own open of the FIFO for writing (emulated at
    once: a reader is there) lets the reader through. Natively the same; with the open
    done in systrace's loop every call after the reader's would wait forever."""
    runner, program, policies, fifo = fifo_setup
    native = runner.native(program, fifo, "serve", "300")
    assert native.stdout == b"served 300 of 300 calls while the reader waited; it read: hello\n"
    log_path = runner.writable(Path(fifo).parent / "log")
    traced = runner("-d", str(policies), "-a", "-E", str(log_path), program, fifo, "serve", "300")
    denied = [line for line in log_path.read_text().splitlines() if "deny" in line]
    assert traced.stdout == native.stdout, (traced.returncode, traced.stderr, denied)
    assert traced.returncode == 0
    assert "deny" not in log_path.read_text()  # every call permitted by the learned policy


def test_signal_to_systrace_is_honoured_while_an_open_waits(fifo_setup) -> None:
    """No writer ever comes: SIGTERM to systrace reaches the command at once, systrace ends
    with its status (143) and its helper does not outlive it."""
    runner, program, policies, fifo = fifo_setup
    process = subprocess.Popen(runner.argv("-d", str(policies), "-a", program, fifo, "hang", "50"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=runner.env, cwd=runner.cwd)
    try:
        assert process.stdout.readline() == b"waiting\n"  # 50 calls were served after the reader's open
        systrace_pid = _systrace_pid(process.pid)
        helpers = _children(systrace_pid)
        assert len(helpers) == 2  # the command, and the helper waiting in the FIFO's open
        os.kill(systrace_pid, signal.SIGTERM)
        assert process.wait(timeout=TIMEOUT) == 128 + signal.SIGTERM, process.stderr.read()
    finally:
        process.kill()
        process.wait()
    for pid in helpers:
        assert not os.path.exists(f"/proc/{pid}") or _state(pid) == "Z"


def _systrace_pid(pid: int) -> int:
    """The systrace process (the runner may start it through setpriv, which execs it)."""
    return pid


def _children(pid: int) -> list[int]:
    """systrace's children, but its reader of tracee memory (started while a FUSE mount
    exists anywhere on the machine, kernel/memory.py) and its watchdog (kernel/watchdog.py)."""
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            found += [int(child) for child in handle.read().split()]
    return [child for child in found if _comm(child) not in ("systrace-memory", "systrace-watch")]


def _comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_userfaultfd_is_refused_unless_the_policy_names_it(cbin, tmp_path: Path) -> None:
    """Natively root gets a userfaultfd both ways (2 of 2); under systrace, in every mode,
    neither (0 of 2) until the binary's policy has a userfaultfd rule."""
    from conftest import run, systrace_argv

    program = cbin("uffd")
    native = run([program])
    assert native.stdout == b"syscall: ok\ndevice: ok\n"
    for mode in (["--permit-all"], ["--permit-all", "-E", str(tmp_path / "log")], ["-d", str(tmp_path / "p"), "-A"]):
        traced = run(systrace_argv() + mode + [program])
        assert traced.stdout == b"syscall: 1\ndevice: 1\n", mode  # EPERM
    assert (tmp_path / "log").read_text().count("refused unless the policy names it") == 2
    policy = next(path for path in (tmp_path / "p").iterdir() if path.name.endswith("uffd"))
    assert "native-userfaultfd" not in policy.read_text()  # a refusal is not learned
    policy.write_text(policy.read_text().rstrip("\n") + "\n\tnative-userfaultfd: permit\n\tnative-ioctl: permit\n")
    named = run(systrace_argv() + ["-d", str(tmp_path / "p"), "-a", program])
    assert named.stdout == native.stdout, named.stderr


def test_a_connect_that_became_blocking_is_cut_short(tmp_path: Path) -> None:
    """systrace connects a socket it found non-blocking; if the tracee made it blocking
    meanwhile (they share the file description) the connect is interrupted by a timer
    instead of waiting in the loop, and the rest is done by a helper. Here the race is
    played out: a blocking unix socket, to a listener whose queue is full, would wait
    forever."""
    import socket
    import time

    from systrace.kernel.sockets import CONNECT_BOUND, _bounded_connect

    path = str(tmp_path / "full.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(0)
    queued = []
    while True:  # fill the listener's queue
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.setblocking(False)
        try:
            client.connect(path)
        except BlockingIOError:
            client.close()
            break
        queued.append(client)
    victim = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # blocking
    address = b"\x01\x00" + path.encode() + b"\x00"  # struct sockaddr_un
    started = time.monotonic()
    assert _bounded_connect(victim.fileno(), address) == errno.EINTR
    assert time.monotonic() - started < TIMEOUT  # safety net: it returned at all
    assert CONNECT_BOUND < 1
    for sock in [victim, server, *queued]:
        sock.close()
