"""The engine against the real kernel and real programs (issue: engine)."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import TIMEOUT, Runner, base_env, run, systrace, systrace_argv

PERMIT = ["--permit-all"]
LOG_EVERYTHING = [*PERMIT, "-E", "/dev/null"]  # every call goes through the supervisor


IDENTICAL = [
    ["cat", "/etc/hostname", "/etc/passwd"],
    ["sh", "-c", "echo one; echo two >&2; for i in 1 2 3; do echo $i; done | wc -l; exit 3"],
    ["python3", "-c", "import json, sys; print(json.dumps({'a': [1, 2]})); sys.exit(4)"],
    ["ls", "-R", "/usr/share/doc/coreutils", "/usr/include/linux/netfilter"],
    ["cat", "/nonexistent/file"],
]


@pytest.mark.parametrize("argv", IDENTICAL, ids=["cat", "sh", "python3", "ls-R", "cat-missing"])
@pytest.mark.parametrize("mode", [PERMIT, LOG_EVERYTHING], ids=["default", "every-call"])
def test_output_and_status_identical(runner: Runner, argv: list[str], mode: list[str]) -> None:
    native = runner.native(*argv)
    traced = runner(*mode, *argv)
    assert traced.stdout == native.stdout
    assert traced.stderr == native.stderr
    assert traced.returncode == native.returncode


def test_processes_threads_and_exec_from_thread(runner: Runner, cbin, shared_dir: Path) -> None:
    zoo = cbin("zoo")
    native = runner.native(zoo)
    assert native.returncode == 0, native.stderr
    assert b"exec from thread" in native.stdout
    log = runner.writable(shared_dir / f"zoo-{runner.name}.log")
    traced = runner(*PERMIT, "--json-log", "-E", str(log), zoo)
    assert traced.stdout == native.stdout
    assert traced.returncode == native.returncode
    records = [json.loads(line) for line in log.read_text().splitlines()]
    binaries = {r["binary"] for r in records}
    pids = {r["pid"] for r in records}
    tids = {r["tid"] for r in records}
    # the forked, vforked and spawned children, the threads, and the exec'd echo were all seen
    assert {zoo, "/usr/bin/echo", "/usr/bin/dash"} <= binaries or {zoo, "/bin/echo"} <= binaries
    assert len(pids) >= 4
    assert len(tids) >= 10


def test_int80_is_killed(runner: Runner, cbin) -> None:
    binary = cbin("int80")
    native = runner.native(binary)
    assert b"int80 open returned" in native.stdout
    traced = runner(*PERMIT, binary)
    assert traced.returncode == 128 + signal.SIGSYS
    assert traced.stdout == b""


def test_io_uring_is_refused(runner: Runner, cbin) -> None:
    traced = runner(*PERMIT, cbin("uring"))
    assert traced.stdout == b"io_uring_setup: Function not implemented\n"
    assert traced.returncode == 1


def test_x32_syscalls_are_refused(runner: Runner, cbin) -> None:
    traced = runner(*PERMIT, cbin("x32"))
    assert traced.stdout == b"x32 getpid: Function not implemented\n"


@pytest.mark.parametrize("mode", [PERMIT, LOG_EVERYTHING], ids=["default", "every-call"])
def test_listener_never_reaches_the_tracee(runner: Runner, cbin, mode: list[str]) -> None:
    traced = runner(*mode, cbin("fds"))
    assert traced.returncode == 0
    lines = traced.stdout.decode().splitlines()
    assert any(line.startswith("parent ") for line in lines)
    assert any(line.startswith("child ") for line in lines)
    assert not [line for line in lines if "seccomp" in line]


@pytest.mark.parametrize(
    ("script", "status"),
    [("exit 0", 0), ("exit 3", 3), ("exit 255", 255), ("kill -KILL $$", 128 + 9), ("kill -SEGV $$", 128 + 11)],
)
def test_exit_status_propagates(runner: Runner, script: str, status: int) -> None:
    assert runner(*PERMIT, "sh", "-c", script).returncode == status


def test_fifty_concurrent_children(runner: Runner, shared_dir: Path) -> None:
    script = "for i in $(seq 50); do cat /etc/hostname >/dev/null & done; wait; echo all done"
    log = runner.writable(shared_dir / f"fifty-{runner.name}.log")
    traced = runner(*PERMIT, "--json-log", "-E", str(log), "sh", "-c", script)
    assert traced.stdout == b"all done\n"
    assert traced.returncode == 0
    cats = {r["pid"] for r in map(json.loads, log.read_text().splitlines()) if r["binary"].endswith("/cat")}
    assert len(cats) == 50


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_signals_to_systrace_reach_the_command(runner: Runner, signame: str) -> None:
    number = int(getattr(signal, signame))
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        # os.write: the signal may land while print("ready") is still returning
        signal.signal({number}, lambda n, f: (os.write(1, b"got %d\\n" % n), sys.exit(40)))
        print("ready", flush=True)
        while True:
            signal.pause()
        """
    )
    # the interpreter itself, not a PATH wrapper (pyenv's shims are shell scripts that
    # may still be the direct child when the signal arrives)
    proc = subprocess.Popen(runner.argv(*PERMIT, runner.python, "-c", script), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=runner.env, cwd=runner.cwd)
    try:
        assert proc.stdout.readline() == b"ready\n"
        proc.send_signal(number)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    assert out == f"got {number}\n".encode(), (proc.returncode, err)
    assert proc.returncode == 40, err


def test_killing_the_supervisor_leaves_nothing_running_unsupervised(runner: Runner, cbin, shared_dir: Path) -> None:
    shared = runner.writable(shared_dir / f"survivor-{runner.name}.map")
    shared.write_bytes(bytes(4096))
    proc = subprocess.Popen(runner.argv(*LOG_EVERYTHING, cbin("survivor"), str(shared)), stdout=subprocess.PIPE,
                            env=runner.env, cwd=runner.cwd)
    try:
        ready = proc.stdout.readline().split()
        assert ready[0] == b"ready", ready
        child = os.pidfd_open(int(ready[1]))
        os.kill(proc.pid, signal.SIGKILL)  # setpriv execs in place: this is the supervisor
        # The grandchild's next supervised call fails, and it exits; stdout then closes.
        assert proc.stdout.read() == b""
        # The direct child dies with the supervisor (PDEATHSIG).
        assert select.select([child], [], [], TIMEOUT)[0] == [child]
        os.close(child)
    finally:
        proc.kill()
        proc.wait()
    assert shared.read_bytes().split(b"\n")[0] == f"errno {38}".encode()  # ENOSYS


def test_failing_decider_denies_and_serving_goes_on(cbin, tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from systrace.baseline import base_plan
        from systrace.decide import Chain, PermitAll
        from systrace.engine import supervise
        from systrace.kernel import abi
        from systrace.log import Log, stderr_sink
        from systrace.session import Session

        class Broken:
            def decide(self, call):
                if call.name == "getcwd":
                    raise RuntimeError("deliberate failure")
                return None

        session = Session(log=Log([stderr_sink(False)]), chain=Chain([Broken(), PermitAll(log=False)]))
        status = supervise({cbin("errpath")!r}, ["errpath"], {{}}, session, base_plan(abi.RET_USER_NOTIF))
        sys.exit(status)
        """
    )
    result = run([sys.executable, "-c", script], env=base_env())
    assert result.stdout == b"getcwd 0: Operation not permitted\ngetcwd 1: Operation not permitted\nopen: ok\n"
    assert result.returncode == 0
    assert result.stderr.count(b"internal error deciding getcwd") == 2
    assert b"RuntimeError('deliberate failure')" in result.stderr


# -- bad input ---------------------------------------------------------------------
def test_no_command_prints_usage() -> None:
    result = systrace()
    assert result.returncode == 2
    assert b"usage: systrace" in result.stderr
    assert b"Traceback" not in result.stderr


@pytest.mark.parametrize("columns", ["50", "", "junk"])
def test_help_fits_the_terminal_width(columns: str) -> None:
    """$COLUMNS as shutil would read it (systrace's formatter avoids importing shutil)."""
    env = base_env(COLUMNS=columns)
    result = run(systrace_argv() + ["-h"], env=env)
    assert result.returncode == 0 and b"Traceback" not in result.stderr
    width = int(columns) if columns.isdigit() else 80  # not a terminal here: 80
    body = result.stdout.decode().split("\n\n", 1)[1]  # the usage line is never wrapped
    assert max(len(line) for line in body.splitlines()) <= width
    assert "--no-cpu-pin" in body


def test_started_with_stdout_closed() -> None:
    result = subprocess.run(systrace_argv() + ["--permit-all", "true"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=base_env(COLUMNS=""), timeout=TIMEOUT, pass_fds=(), close_fds=True,
                            preexec_fn=lambda: os.close(1))
    assert result.returncode == 0 and b"Traceback" not in result.stderr


def test_command_not_found() -> None:
    result = systrace("no-such-command-xyz")
    assert result.returncode == 127
    assert result.stderr == b"systrace: no-such-command-xyz: command not found\n"


@pytest.mark.parametrize(("mode", "message"), [(0o644, b"Permission denied"), (None, b"Is a directory")])
def test_command_not_executable(tmp_path: Path, mode: int | None, message: bytes) -> None:
    target = tmp_path / "prog"
    if mode is None:
        target.mkdir()
    else:
        target.write_text("#!/bin/sh\necho never\n")
        target.chmod(mode)
    result = systrace(str(target))
    assert result.returncode == 126
    assert result.stderr == b"systrace: " + bytes(target) + b": " + message + b"\n"
    assert result.stdout == b""


@pytest.mark.parametrize("mode", [PERMIT, LOG_EVERYTHING], ids=["default", "every-call"])
def test_exec_format_error(tmp_path: Path, mode: list[str]) -> None:
    """The kernel refuses the exec itself (no #! and not ELF): reported as the shell would."""
    target = tmp_path / "notaprogram"
    target.write_text("just text\n")
    target.chmod(0o755)
    result = systrace(*mode, str(target))
    assert result.returncode == 126
    assert result.stderr == b"systrace: " + bytes(target) + b": Exec format error\n"


@pytest.mark.parametrize("mode", [["-A"], ["-a"], PERMIT], ids=["learn", "enforce", "default"])
def test_missing_interpreter_named(tmp_path: Path, mode: list[str]) -> None:
    """A script whose #! interpreter is missing fails with ENOENT, as natively (127), and
    the message names the interpreter, not the script, as missing (found in a new user's
    trial: "s.sh: No such file or directory" under -A, "no policy for /nonexistent/interp"
    under -a). Nothing is learned for it."""
    script = tmp_path / "s.sh"
    script.write_text("#!/nonexistent/interp -x\necho never\n")
    script.chmod(0o755)
    with pytest.raises(FileNotFoundError):  # natively: the exec fails with ENOENT
        subprocess.run([str(script)], capture_output=True, timeout=TIMEOUT)
    policies = tmp_path / "policies"
    policies.mkdir(mode=0o700)
    argv = [*mode, str(script)] if mode == PERMIT else ["-d", str(policies), *mode, str(script)]
    result = systrace(*argv)
    assert result.returncode == 127
    assert result.stderr == b"systrace: " + bytes(script) + b": /nonexistent/interp: bad interpreter: No such file or directory\n"
    assert result.stdout == b""
    assert [path.name for path in policies.iterdir() if path.name != ".lock"] == []


def test_missing_loader_named(tmp_path: Path) -> None:
    """A binary whose dynamic loader is missing: ENOENT for a file that is there, said as
    bash says it, 127."""
    binary = bytearray(Path("/bin/true").read_bytes())
    at = binary.find(b"/lib64/ld-linux-x86-64.so.2")
    if at < 0:
        pytest.skip("/bin/true names another loader")
    binary[at:at + 5] = b"/nope"
    target = tmp_path / "noloader"
    target.write_bytes(bytes(binary))
    target.chmod(0o755)
    with pytest.raises(FileNotFoundError):
        subprocess.run([str(target)], capture_output=True, timeout=TIMEOUT)
    result = systrace(*PERMIT, str(target))
    assert result.returncode == 127
    assert result.stderr == b"systrace: " + bytes(target) + b": cannot execute: required file not found\n"


def test_command_not_found_via_path(tmp_path: Path) -> None:
    (tmp_path / "tool").write_text("#!/bin/sh\n")
    (tmp_path / "tool").chmod(0o644)
    result = systrace("tool", env=base_env(PATH=str(tmp_path)))
    assert result.returncode == 126
    assert result.stderr == b"systrace: tool: Permission denied\n"


def test_missing_path_with_slash() -> None:
    result = systrace("./nope/nothing")
    assert result.returncode == 127
    assert result.stderr == b"systrace: ./nope/nothing: No such file or directory\n"


def test_unknown_option() -> None:
    result = systrace("--no-such-option", "true")
    assert result.returncode == 2
    assert b"usage:" in result.stderr and b"Traceback" not in result.stderr


def test_unwritable_log_file() -> None:
    result = systrace("-E", "/nonexistent-dir/log", "true")
    assert result.returncode == 2
    assert result.stderr == b"systrace: /nonexistent-dir/log: No such file or directory\n"


def test_kernel_without_user_notification() -> None:
    """strace makes the probe seccomp(GET_ACTION_AVAIL, USER_NOTIF) fail as an old kernel would."""
    result = run(["strace", "-f", "-qq", "-o", "/dev/null", "-e", "trace=seccomp", "-e", "inject=seccomp:error=EOPNOTSUPP",
                  *systrace_argv(), "true"])
    assert result.returncode == 2
    assert result.stderr == b"systrace: this kernel does not support seccomp user notification (Linux 5.5 or later is needed)\n"


def test_nested_supervisor_is_a_clear_error() -> None:
    inner = " ".join(systrace_argv() + [*PERMIT, "true"])
    result = systrace(*PERMIT, "sh", "-c", inner)
    assert result.returncode == 2
    assert b"cannot install the seccomp filter: Operation not permitted (already under a seccomp supervisor?)" in result.stderr
    assert b"Traceback" not in result.stderr


def test_fork_is_not_turned_into_eintr(runner: Runner) -> None:
    """Regression: with clone notified, a SIGCHLD arriving before the supervisor read the
    notification made dash's fork() fail with EINTR ("Cannot fork"). 300 pipelines whose
    children exit while the shell forks the next one."""
    script = "for i in $(seq 300); do echo x | wc -l >/dev/null; done; echo finished"
    traced = runner(*LOG_EVERYTHING, "sh", "-c", script)
    assert traced.stderr == b""
    assert traced.stdout == b"finished\n"


def test_stats_report_calls_and_memory() -> None:
    result = systrace(*PERMIT, "--stats", "-E", "/dev/null", "cat", "/etc/hostname")
    assert result.returncode == 0
    line, cache, routed, carried = result.stderr.decode().strip().splitlines()
    assert re.fullmatch(r"systrace: (\d+) calls reached systrace, 0 faults injected, peak RSS (\d+) KiB", line), line
    # the logged calls' paths, translated (README "Caches": the path cache)
    assert re.fullmatch(r'systrace: path cache: \d+ path calls translated from it \(\d+ of them from another file\'s of the same shape\), '
                        r'[1-9]\d* in full \(README "Caches"\)',
                        cache), cache
    total = int(re.search(r"(\d+) calls", line).group(1))
    assert total > 10
    # every routed call, by system call, most frequent first
    assert routed.startswith("systrace: routed by system call: "), routed
    counts = [(name, int(count)) for name, count in
              (item.split(" ") for item in routed.removeprefix("systrace: routed by system call: ").split(", "))]
    assert sum(count for _, count in counts) == total
    assert [count for _, count in counts] == sorted((count for _, count in counts), reverse=True)
    assert "openat" in dict(counts) and "execve" in dict(counts)
    # ... and by how each was carried out (what bench/bench.py's floors price, kind by kind)
    assert carried.startswith("systrace: carried out as: "), carried
    kinds = dict((kind, int(count)) for kind, count in
                 (item.split(" ") for item in carried.removeprefix("systrace: carried out as: ").split(", ")))
    assert sum(kinds.values()) == total and kinds["continue"] > 0  # --permit-all: each call continued...
    assert set(kinds) <= {"continue", "emulate-open"}  # ... or, a write open, emulated (decide/protected.py)
