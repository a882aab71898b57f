"""--supervisors N: more supervisor processes on one listener (src/systrace/replicas.py).
They must share the work, keep every decision the single process would take (exec checks
and races are in tests/escape/test_escapes.py, parametrized over --supervisors), log each
record once, refuse the modes whose order matters, and never stall the command."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import TIMEOUT, Runner, systrace

from systrace.policy.store import file_name

ROOT = Path(__file__).resolve().parent.parent
SERVED_ELSEWHERE = re.compile(rb"systrace: (\d+) of them served by the supervisor processes sharing the listener \((\d+)\)")


@pytest.fixture(scope="module")
def threads_open(shared_dir: Path) -> str:
    """bench/threads_open.c: 16 threads opening /etc/hostname N times each."""
    out = shared_dir / "threads_open"
    subprocess.run(["gcc", "-O1", "-pthread", "-o", str(out), str(ROOT / "bench" / "threads_open.c")], check=True,
                   timeout=TIMEOUT)
    out.chmod(0o755)
    return str(out)


def _learn(runner: Runner, policies: Path, *argv: str) -> None:
    for _ in range(2):
        learned = runner("-d", str(policies), "-A", *argv)
        assert learned.returncode == 0, learned.stderr


@pytest.mark.unprivileged
def test_sixteen_threads_are_served_by_both_processes(runner: Runner, threads_open: str, shared_dir: Path) -> None:
    policies = runner.policy_dir(shared_dir / f"replicas-{runner.name}")
    _learn(runner, policies, threads_open, "20")
    result = runner("-d", str(policies), "-a", "--supervisors", "2", "--stats", threads_open, "300")
    assert result.returncode == 0, result.stderr
    assert b"Traceback" not in result.stderr and b"internal error" not in result.stderr
    total = int(re.search(rb"systrace: (\d+) calls reached systrace", result.stderr).group(1))
    elsewhere, others = map(int, SERVED_ELSEWHERE.search(result.stderr).groups())
    assert others == 2
    assert total >= 16 * 300  # every open reached systrace, and was answered
    assert 0 < elsewhere < total  # the replicas served the opens, the main process what came before the exec


def test_a_denial_is_decided_by_the_main_process_and_logged_once(threads_open: str, tmp_path: Path) -> None:
    """A policy that permits /etc/hostname to nobody: every open is denied and logged, and
    each denial is one record (a replica hands a logged decision to the main process)."""
    policies = tmp_path / "policies"
    _learn(Runner("root", [], os.sys.executable, {**os.environ, "PYTHONPATH": str(ROOT / "src")}, None), policies,
           threads_open, "5")
    policy = next(policies.glob("*threads_open"))
    policy.write_text("\n".join(line for line in policy.read_text().splitlines() if "/etc/hostname" not in line) + "\n")
    log = tmp_path / "log"
    result = systrace("-d", str(policies), "-a", "--supervisors", "2", "-E", str(log), "--stats", threads_open, "5")
    assert result.returncode == 1 and b"open: Permission denied" in result.stderr  # the program saw EACCES
    denials = [line for line in log.read_text().splitlines() if "deny[eacces]" in line and "/etc/hostname" in line]
    # each thread's first open is denied (the program then exits): at least one, never one twice
    assert denials and len(denials) <= 16
    assert b"Traceback" not in result.stderr


@pytest.mark.parametrize("mode", [["-A"], ["-a", "-r", "5"], ["-a", "--inject", "openat:error=ENOENT"], ["--permit-all"]])
def test_modes_whose_order_matters_are_refused(mode: list[str], tmp_path: Path) -> None:
    result = systrace("-d", str(tmp_path / "p"), *mode, "--supervisors", "2", "true")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (b"systrace: --supervisors needs -a without fault injection (learning, "
                                             b"asking and faults are decided in one process, in the order of the calls)")
    assert b"Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["0", "-1", "two"])
def test_a_bad_count_is_refused(value: str) -> None:
    result = systrace("--supervisors", value, "-a", "true")
    assert result.returncode == 2
    assert b"argument --supervisors:" in result.stderr.splitlines()[0] and b"Traceback" not in result.stderr


def test_a_replica_that_dies_leaves_the_command_served(threads_open: str, tmp_path: Path) -> None:
    """SIGKILL the other supervisor process in the middle of the run: the main process
    fails the call it was serving (if any) and serves the rest alone; nothing stalls."""
    policies = tmp_path / "policies"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    _learn(Runner("root", [], os.sys.executable, env, None), policies, threads_open, "5")
    process = subprocess.Popen([os.sys.executable, "-m", "systrace", "-d", str(policies), "-a", "--supervisors", "2",
                                "--stats", threads_open, "4000"], stderr=subprocess.PIPE, env=env)
    try:
        replica = _wait_for_replica(process.pid)
        os.kill(replica, signal.SIGKILL)
        _, stderr = process.communicate(timeout=TIMEOUT)  # safety net: it must end by itself
    finally:
        process.kill()
    assert process.returncode in (0, 1)  # 1: a thread's open was failed closed
    assert b"Traceback" not in stderr
    assert int(re.search(rb"systrace: (\d+) calls reached systrace", stderr).group(1)) > 0


def _wait_for_replica(systrace_pid: int) -> int:
    """The python child of systrace (the command is threads_open): once it serves."""
    deadline = time.monotonic() + TIMEOUT  # safety net
    while time.monotonic() < deadline:
        for child in _children(systrace_pid):
            try:
                with open(f"/proc/{child}/comm") as handle:  # not the watchdog (kernel/watchdog.py)
                    watchdog = handle.read().strip() == "systrace-watch"
                if not watchdog and os.readlink(f"/proc/{child}/exe") == os.path.realpath(os.sys.executable):
                    return child
            except OSError:
                continue
        time.sleep(0.01)  # polling for a process to appear, not for a result
    raise AssertionError("no replica appeared")


def _children(pid: int) -> list[int]:
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            out += [int(c) for c in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
        except OSError:
            continue
    return out


def test_a_failed_exec_ends_as_with_one_process(tmp_path: Path) -> None:
    """The replicas never get the listener when the command's exec fails: they end with
    systrace, and the status and message are those of one process."""
    program = tmp_path / "prog"
    program.write_bytes(Path("/bin/true").read_bytes())
    program.chmod(0o755)
    policies = tmp_path / "policies"
    assert systrace("-d", str(policies), "-A", str(program)).returncode == 0
    program.write_bytes(b"\x7fELFgarbage")
    one = systrace("-d", str(policies), "-a", str(program))
    two = systrace("-d", str(policies), "-a", "--supervisors", "2", str(program))
    assert (two.returncode, two.stderr) == (one.returncode, one.stderr) == (126, f"systrace: {program}: Exec format error\n".encode())


THREADS, REPEAT = 8, 10
PROC_PROBE = rf"""
import errno, os, sys, threading
print("ready", flush=True)
def opens(path, outcomes):
    for _ in range({REPEAT}):
        try:
            os.close(os.open(path, os.O_RDONLY))
            outcomes.add("ok")
        except OSError as error:
            outcomes.add(errno.errorcode[error.errno])
for line in sys.stdin:
    if line.strip() == "done":
        break
    out = []
    for entry in ("status", "environ"):  # from {THREADS} threads at once: the replicas get their share
        outcomes = set()
        threads = [threading.Thread(target=opens, args=(f"/proc/{{line.strip()}}/{{entry}}", outcomes))
                   for _ in range({THREADS})]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        out.append(f"{{entry}}={{'|'.join(sorted(outcomes))}}")
    print(" ".join(out), flush=True)
"""


def _probe(argv: list[str], targets: dict[str, int], supervisor_targets: bool) -> tuple[dict[str, list[str]], bytes]:
    """Run the probe; ask it to open each target's entries (and, under systrace, systrace's
    and its replicas', found as its children without a filter). Its answers and stderr."""
    from conftest import base_env

    process = subprocess.Popen([*argv, os.sys.executable, "-c", PROC_PROBE], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=base_env())
    answers: dict[str, list[str]] = {}
    try:
        assert process.stdout.readline() == b"ready\n"
        asked = dict(targets)
        if supervisor_targets:
            children = [int(pid) for pid in Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()]
            replicas = [pid for pid in children if "Seccomp:\t0" in Path(f"/proc/{pid}/status").read_text()
                        and Path(f"/proc/{pid}/comm").read_text().strip() not in ("systrace-watch", "systrace-memory")]
            # (not the watchdog, kernel/watchdog.py, nor the memory reader while FUSE exists, kernel/memory.py)
            assert len(replicas) == 2, children
            asked.update({"systrace": process.pid, "replica 1": replicas[0], "replica 2": replicas[1]})
        for name, pid in asked.items():
            process.stdin.write(f"{pid}\n".encode())
            process.stdin.flush()
            answers[name] = process.stdout.readline().decode().split()
        process.stdin.write(b"done\n")
        process.stdin.close()
        stderr = process.stderr.read()
        assert process.wait(timeout=TIMEOUT) == 0, stderr
    finally:
        process.kill()
        process.wait()
    return answers, stderr


def test_systrace_s_and_the_replicas_proc_entries_are_refused_by_every_supervisor(tmp_path: Path) -> None:
    """The replicas decide opens too: for them as for the main process, systrace's own /proc
    entries (its, its replicas') are systrace's, whatever a policy that opens
    /proc/<outside the run>/... says. Natively the same opens of a same-user process work."""
    from conftest import systrace_argv

    outsider = subprocess.Popen(["sleep", str(TIMEOUT)])
    try:
        native, _ = _probe([], {"outsider": outsider.pid}, supervisor_targets=False)
        assert native == {"outsider": ["status=ok", "environ=ok"]}
        policies = tmp_path / "p"
        for _ in range(2):  # learned from a run that read an outsider's entries
            _probe([*systrace_argv(), "-d", str(policies), "-A"], {"outsider": outsider.pid}, supervisor_targets=False)
        log = tmp_path / "log"
        answers, stderr = _probe([*systrace_argv(), "-d", str(policies), "-a", "--supervisors", "3", "-E", str(log),
                                  "--stats"], {"outsider": outsider.pid}, supervisor_targets=True)
    finally:
        outsider.kill()
        outsider.wait()
    refused = ["status=EACCES", "environ=EACCES"]
    assert answers == {"outsider": ["status=ok", "environ=ok"], "systrace": refused, "replica 1": refused,
                       "replica 2": refused}, answers
    assert log.read_text().count("(systrace's own /proc entry, whatever the policy says)") == 3 * 2 * THREADS * REPEAT
    assert int(SERVED_ELSEWHERE.search(stderr).group(1)) > 0, stderr  # the replicas served some of the opens


def test_a_one_thread_command_is_served_by_the_main_process_alone(shared_dir: Path, tmp_path: Path) -> None:
    """One thread never has two calls pending: no call is handed to a replica, so nothing
    pays a hand-off or a cross-CPU wake-up (before, every replica received: tar took 61 s
    instead of 3.2 s on a quiet machine). The opens are emulated and checked as with one."""
    loop = shared_dir / "openat_loop"
    subprocess.run(["gcc", "-O1", "-o", str(loop), str(ROOT / "bench" / "openat_loop.c")], check=True, timeout=TIMEOUT)
    policies = tmp_path / "policies"
    for _ in range(2):
        assert systrace("-d", str(policies), "-A", str(loop), "10").returncode == 0
    result = systrace("-d", str(policies), "-a", "--supervisors", "2", "--stats", str(loop), "500")
    assert result.returncode == 0, result.stderr
    assert re.search(rb"routed by system call: openat 50\d", result.stderr), result.stderr
    assert SERVED_ELSEWHERE.search(result.stderr).groups() == (b"0", b"2"), result.stderr
    denied = policies / file_name(str(loop))  # and the main process still enforces the policy
    denied.write_text("\n".join(line for line in denied.read_text().splitlines() if "/etc/hostname" not in line) + "\n")
    result = systrace("-d", str(policies), "-a", "--supervisors", "2", str(loop), "500")
    assert result.returncode == 1 and b"openat: Permission denied" in result.stderr, result.stderr
