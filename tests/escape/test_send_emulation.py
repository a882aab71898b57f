"""sendto, sendmsg and sendmmsg with a destination, decided on it, are sent by systrace on
what was checked, as the tracee (issue 13): a thread swapping the destination after the
check changes nothing (natively it does), and the call answers as the kernel does."""

from __future__ import annotations

import errno
import os
import pwd
import select
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SRC = HERE.parent.parent / "src"
CLEAN_ENV = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(SRC), "LANG": "C.UTF-8", "HOME": "/root"}
ROUNDS = int(os.environ.get("SYSTRACE_RACE_ROUNDS", "2000"))  # the report quotes 20,000 per family
THREADING = ["mmap", "mprotect", "munmap", "clone", "clone3", "madvise", "rseq", "set_robust_list", "futex", "exit",
             "brk", "write"]
SO_RCVBUFFORCE = 33


def compile_c(name: str, directory: Path, *flags: str) -> str:
    out = directory / name
    subprocess.run(["gcc", "-O1", "-o", str(out), str(HERE / f"{name}.c"), *flags], check=True, timeout=120)
    out.chmod(0o755)
    return str(out)


def systrace(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "systrace", *args], capture_output=True, env=CLEAN_ENV, timeout=900)


class Receivers:
    """Two datagram sockets (the permitted destination and the other), read all along;
    `counts` says how many datagrams each got."""

    def __init__(self, family: str, directory: Path):
        kind = socket.AF_INET if family == "inet" else socket.AF_UNIX
        self.sockets = [socket.socket(kind, socket.SOCK_DGRAM) for _ in range(2)]
        if family == "inet":
            for sock in self.sockets:
                sock.bind(("127.0.0.1", 0))
            self.names = [str(sock.getsockname()[1]) for sock in self.sockets]
        else:
            self.names = [str(directory / "good.sock"), str(directory / "evil.sock")]  # the same length
            for sock, name in zip(self.sockets, self.names, strict=True):
                sock.bind(name)
        for sock in self.sockets:
            if os.geteuid() == 0:  # room for every datagram: none may be dropped unseen
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 1 << 24)
            sock.setblocking(False)
        self.counts = [0, 0]
        self.stop_read, self.stop_write = os.pipe()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        while True:
            ready, _, _ = select.select([*self.sockets, self.stop_read], [], [])
            for index, sock in enumerate(self.sockets):
                while sock in ready:
                    try:
                        sock.recv(64)
                    except BlockingIOError:
                        break
                    self.counts[index] += 1
            if self.stop_read in ready:
                if not select.select(self.sockets, [], [], 0)[0]:
                    return

    def finish(self) -> list[int]:
        """Every datagram sent so far has been queued (the senders have exited): read them
        all, then stop."""
        os.write(self.stop_write, b"x")
        self.thread.join(timeout=60)
        for sock in self.sockets:
            sock.close()
        os.close(self.stop_read)
        os.close(self.stop_write)
        return self.counts


def counts(result: subprocess.CompletedProcess) -> dict[str, int]:
    words = result.stdout.decode().split()
    assert len(words) == 6, (result.stdout, result.stderr[-2000:])
    return dict(zip(words[::2], map(int, words[1::2]), strict=True))


@pytest.fixture(scope="module")
def swap_binary(tmp_path_factory) -> str:
    return compile_c("send_swap", tmp_path_factory.mktemp("send"), "-pthread")


@pytest.mark.parametrize("family", ["inet", "unix"])
@pytest.mark.parametrize("call", ["sendto", "sendmsg"])
def test_send_destination_swapped_during_the_check(swap_binary: str, tmp_path: Path, call: str, family: str) -> None:
    native_dir = tmp_path / "native"
    native_dir.mkdir()
    receivers = Receivers(family, native_dir)
    native = subprocess.run([swap_binary, call, family, *receivers.names, "20000"], capture_output=True, timeout=300)
    got = receivers.finish()
    # natively the swap gets through (a send may fail now and then: the name being swapped)
    assert counts(native)["sent"] > 0 and got[1] > 0, (native.stdout, got)

    directory = tmp_path / "dir"
    directory.mkdir()
    receivers = Receivers(family, directory)
    policies, log = tmp_path / "policies", tmp_path / "log"
    try:
        learn = systrace("-d", str(policies), "-A", swap_binary, call, family, *receivers.names, "0")
        assert learn.returncode == 0, learn.stderr
        policy = next(policies.glob("*send_swap"))
        assert receivers.names[1] not in policy.read_text()
        policy.write_text(policy.read_text() + "".join(f"\tnative-{name}: permit\n" for name in THREADING))
        result = systrace("-d", str(policies), "-a", "-E", str(log), swap_binary, call, family, *receivers.names,
                          str(ROUNDS))
    finally:
        got = receivers.finish()
    sent = counts(result)
    assert got[1] == 0, (got, log.read_text()[-3000:])  # never the other destination
    assert got[0] == sent["sent"] + 1 and sent["failed"] == 0, (got, sent)  # and learning's datagram
    assert sent["denied"] > 0  # the race did present the other destination to the check
    assert sent["sent"] + sent["denied"] == ROUNDS
    assert "internal error" not in log.read_text()


def parity_run(binary: str, arena: Path, home: Path, extra: list[str], prefix: list[str] = (),
               python: str = sys.executable, env: dict[str, str] = CLEAN_ENV) -> tuple[bytes, bytes, str]:
    """(native output, output under -a with the policy learned from the same run, log);
    the sockets in `arena`, policies and log in `home`."""
    with socket.socket() as probe:  # a free port, for UDP (nobody reads) and a TCP listener of the program's
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    argv = [binary, str(arena), port, *extra]
    native = subprocess.run([*prefix, *argv], capture_output=True, timeout=120)
    assert native.returncode == 0, native.stderr
    policies, log = home / "policies", home / "log"
    learned = subprocess.run([*prefix, python, "-m", "systrace", "-d", str(policies), "-A", *argv],
                             capture_output=True, env=env, timeout=300)
    assert learned.returncode == 0, learned.stderr
    policy = next(policies.glob("*send_cases"))
    policy.write_text(policy.read_text() + "".join(f"\tnative-{name}: permit\n"
                                                   for name in ("setgroups", "setgid", "setuid", "wait4")))
    enforced = subprocess.run([*prefix, python, "-m", "systrace", "-d", str(policies), "-a", "-E", str(log), *argv],
                              capture_output=True, env=env, timeout=300)
    assert enforced.returncode == 0, (enforced.stdout, enforced.stderr)
    return native.stdout, enforced.stdout, log.read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="systrace as root (it can send the tracee's pid)")
@pytest.mark.parametrize("who", ["root", "nobody"])
def test_emulated_sends_answer_as_the_kernel_does(shared_dir: Path, tmp_path: Path, who: str) -> None:
    """Bad buffers, iovecs, msghdrs, control data, descriptors and flags get the kernel's
    errno; data, SCM_RIGHTS (the tracee's descriptor numbers), SCM_CREDENTIALS (checked for
    the tracee: a tracee that dropped to nobody may not claim pid 1, nor is systrace's
    root seen by the receiver) and sendmmsg's msg_len arrive as natively; a blocking send
    to a full receiver waits in a helper while systrace serves the reader."""
    arena = shared_dir / f"send-{who}-{os.getpid()}"
    arena.mkdir(mode=0o777)
    arena.chmod(0o777)
    binary = compile_c("send_cases", arena)
    native, enforced, log = parity_run(binary, arena, tmp_path, ["drop"] if who == "nobody" else [])
    assert b"creds pid self" in native and b"rights stdout" in native and b"EFAULT" in native
    assert (b"credentials pid 1: EPERM" in native) == (who == "nobody")
    assert b"peer gone: EPIPE 1 SIGPIPE 1\npeer gone MSG_NOSIGNAL: EPIPE 1 SIGPIPE 0\n" in native
    assert enforced == native, log[-3000:]
    assert "internal error" not in log


def test_unprivileged_systrace_sends_as_the_same_user(user_runner, shared_dir: Path) -> None:
    """systrace not root cannot send another pid than its own: an explicit SCM_CREDENTIALS
    is refused (EACCES, logged) and the receiver sees systrace's pid for the implicit ones
    (SECURITY.md); everything else answers as natively."""
    arena = shared_dir / f"send-user-{os.getpid()}"
    arena.mkdir()
    os.chown(arena, user_runner.uid, -1)  # the user's own (policies below it: a trusted directory)
    binary = compile_c("send_cases", arena)
    home = arena / "home"
    home.mkdir()
    os.chown(home, user_runner.uid, -1)
    native, enforced, log = parity_run(binary, arena, home, [], prefix=user_runner.prefix, python=user_runner.python,
                                       env=user_runner.env)
    differing = [(a, b) for a, b in zip(native.decode().splitlines(), enforced.decode().splitlines(), strict=True)
                 if a != b]
    refused = [("credentials own: 2", "credentials own: EACCES"),
               (f"  credentials own got 2 bytes 'cm' creds pid self uid {user_runner.uid} gid {pwd.getpwuid(user_runner.uid).pw_gid}",
                "  credentials own got: EAGAIN")]
    pids = [(a, b) for a, b in differing if (a, b) not in refused]
    assert all(a.replace("creds pid self", "creds pid other") == b for a, b in pids) and len(pids) == 7, differing
    assert all(pair in differing for pair in refused), differing
    assert "cannot send the tracee's credentials" in log


def test_a_symlink_at_an_allowed_send_destination_is_not_followed(swap_binary: str, tmp_path: Path) -> None:
    """The unix name a sendto was permitted for is resolved once; a symlink put at that
    name afterwards leads nowhere (natively it leads to the other socket)."""
    receivers = Receivers("unix", tmp_path)
    good, evil = receivers.names
    policies, log = tmp_path / "policies", tmp_path / "log"
    try:
        learn = systrace("-d", str(policies), "-A", swap_binary, "sendto", "unix", good, evil, "0")
        assert learn.returncode == 0, learn.stderr
        os.unlink(good)
        os.symlink(evil, good)
        native = subprocess.run([swap_binary, "sendto", "unix", good, evil, "0"], capture_output=True, timeout=60)
        assert counts(native)["sent"] == 1
        result = systrace("-d", str(policies), "-a", "-E", str(log), swap_binary, "sendto", "unix", good, evil, "0")
        assert counts(result)["denied"] == 1, (result.stdout, log.read_text())
    finally:
        got = receivers.finish()
    assert got == [1, 1]  # learning's datagram, and the native one through the symlink
    assert f"sockaddr: {evil}" in log.read_text()
    shutil.rmtree(policies)


# -- pure logic --------------------------------------------------------------------------
def test_credentials_are_checked_as_the_kernel_checks_them_for_the_tracee() -> None:
    from systrace.kernel.send import UCRED, TraceeIds, check_credentials

    status = b"Name:\tx\nUid:\t1000\t1000\t1000\t1000\nGid:\t100\t100\t100\t100\nNStgid:\t42\n"
    ids = TraceeIds(42, status, 0)
    assert check_credentials(UCRED.pack(42, 1000, 100), ids) == 0
    assert check_credentials(UCRED.pack(1, 1000, 100), ids) == errno.EPERM  # another pid
    assert check_credentials(UCRED.pack(42, 0, 100), ids) == errno.EPERM  # systrace's uid is not the tracee's
    assert check_credentials(UCRED.pack(42, 1000, 0), ids) == errno.EPERM
    assert check_credentials(UCRED.pack(42, 0xFFFFFFFF, 100), ids) == errno.EINVAL
    privileged = TraceeIds(42, status, 1 << 21 | 1 << 7 | 1 << 6)  # CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID
    assert check_credentials(UCRED.pack(1, 0, 0), privileged) == 0
    with pytest.raises(Exception, match="credentials"):
        TraceeIds(42, b"Name:\tx\n", 0)


def test_control_messages_are_walked_as_the_kernel_walks_them() -> None:
    from systrace.kernel.send import cmsgs, pack_cmsgs

    messages = [(1, 1, b"\x03\0\0\0\x04\0\0\0"), (1, 2, bytes(12)), (0, 8, b"\x01")]
    packed = pack_cmsgs(messages)
    assert len(packed) % 8 == 0 and cmsgs(packed) == messages
    assert cmsgs(packed + bytes(15)) == messages  # a tail shorter than a header is ignored
    with pytest.raises(OSError) as bad:
        cmsgs(pack_cmsgs(messages[:2]) + (100).to_bytes(8, "little") + bytes(8))  # cmsg_len past the end
    assert bad.value.errno == errno.EINVAL


def test_a_stream_message_finished_by_a_helper_counts_both_parts() -> None:
    from systrace.kernel.send import Outcome, _joined

    assert _joined(Outcome([10]), 10, Outcome([90])).lengths == [100]
    partial = _joined(Outcome([10]), 10, Outcome([], errno.EPIPE))
    assert (partial.lengths, partial.error) == ([10], 0)  # what was sent, as the kernel returns it
    blocked = _joined(Outcome([]), 0, Outcome([], errno.EAGAIN))
    assert (blocked.lengths, blocked.error) == ([], errno.EAGAIN)
    assert _joined(Outcome([5, 5]), 0, Outcome([5], errno.EPIPE)).lengths == [5, 5, 5]
