"""Transparent launch (README "Transparent launch"): the command starts as it would
natively, job control works, a failed execve leaves nothing behind, and per-process
state dies with its process."""

from __future__ import annotations

import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SRC, TIMEOUT, Runner, base_env, run, systrace_argv

SYSTRACE = " ".join(systrace_argv())
TRACED = f"{SYSTRACE} --permit-all -E /dev/null"  # every call goes through systrace


# -- what the command inherits -------------------------------------------------------
def test_sigpipe_is_default_in_the_command(runner: Runner) -> None:
    """`ls | head -1`: natively ls dies of SIGPIPE, silently; so it does under systrace
    (Python's own SIG_IGN is not passed on)."""
    for producer in (["ls", "-l", "/usr/bin", "/usr/lib"], ["seq", "1000000"]):
        words = " ".join(producer)
        native = runner.native("bash", "-c", f'{words} | head -1 >/dev/null; echo "${{PIPESTATUS[0]}}"')
        traced = runner.native("bash", "-c", f'{_prefix(runner)} {words} | head -1 >/dev/null; echo "${{PIPESTATUS[0]}}"')
        assert native.stdout == traced.stdout == b"141\n", (native, traced)
        assert native.stderr == traced.stderr == b""


def test_sigxfsz_kills_dd_past_the_file_size_limit(runner: Runner, shared_dir: Path) -> None:
    out = runner.writable(shared_dir / f"xfsz-{runner.name}")
    script = f"ulimit -f 1; {{}} dd if=/dev/zero of={out} bs=4096 count=10 2>/dev/null; echo $?"
    native = runner.native("bash", "-c", script.format(""))
    traced = runner.native("bash", "-c", script.format(_prefix(runner)))
    assert native.stdout == traced.stdout == f"{128 + signal.SIGXFSZ}\n".encode()


def test_mask_dispositions_umask_rlimits_environment_descriptors(runner: Runner) -> None:
    """A caller that ignores SIGHUP (nohup), blocks SIGUSR1, sets umask 027, 123 open files,
    passes FOO and fd 5: the command sees the same under systrace."""
    probe = ("umask; ulimit -n; readlink /proc/self/fd/5; printenv FOO; ps -o pgid= -p $$ >/dev/null && echo group-ok")
    status = "grep -E '^(SigBlk|SigIgn|SigCgt)' /proc/self/status"
    wrapper = ("import os, signal, subprocess, sys\n"
               "for number in (signal.SIGPIPE, signal.SIGXFSZ):  # as a shell would start it\n"
               "    signal.signal(number, signal.SIG_DFL)\n"
               "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
               "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])\n"
               "os.umask(0o027)\n"
               "import resource; resource.setrlimit(resource.RLIMIT_NOFILE, (123, 123))\n"
               "fd = os.open('/etc/hostname', os.O_RDONLY); os.dup2(fd, 5)\n"
               "os.environ['FOO'] = 'bar baz'\n"
               "os.execvp(sys.argv[1], sys.argv[1:])\n")
    for command in (["sh", "-c", probe], ["sh", "-c", f"exec {status}"]):
        native = runner.native(runner.python, "-c", wrapper, *command)
        traced = runner.native(runner.python, "-c", wrapper, *runner_argv_tail(runner), *command)
        assert native.returncode == 0, native.stderr
        assert traced.stdout == native.stdout, (native.stdout, traced.stdout, traced.stderr)
    assert b"SigBlk:\t0000000000000200" in native.stdout  # SIGUSR1 blocked: what the caller set


def runner_argv_tail(runner: Runner) -> list[str]:
    return [runner.python, "-m", "systrace", "--permit-all", "-E", "/dev/null"]


def _prefix(runner: Runner) -> str:
    return f"{runner.python} -m systrace --permit-all -E /dev/null"


# -- job control through a terminal --------------------------------------------------
class Terminal:
    """An interactive bash on a pseudo-terminal, as a user's would be."""

    def __init__(self) -> None:
        env = base_env(PS1="$ ", TERM="dumb", PROMPT_COMMAND="")
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execvpe("bash", ["bash", "--norc", "--noprofile", "-i"], env)
        self.seen = b""

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def expect(self, pattern: bytes) -> bytes:
        """Read until `pattern` (a regex) appears in what came after the last match."""
        deadline = time.monotonic() + TIMEOUT  # a safety net: the output decides
        while True:
            found = re.search(pattern, self.seen)
            if found:
                self.seen = self.seen[found.end():]
                return found.group(0)
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise AssertionError(f"never saw {pattern!r}; last output {self.seen[-500:]!r}")
            try:
                self.seen += os.read(self.fd, 4096)
            except OSError as error:
                raise AssertionError(f"terminal closed before {pattern!r}: {self.seen[-500:]!r}") from error

    def close(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)
        os.close(self.fd)


@pytest.fixture
def terminal():
    term = Terminal()
    term.expect(rb"\$ ")
    yield term
    term.close()


READER = "sh -c 'echo st\"\"arted; read x; echo got $x'"  # the echoed command line never says "started"


@pytest.mark.parametrize("prefix", ["", TRACED], ids=["native", "systrace"])
def test_ctrl_z_and_fg(terminal: Terminal, prefix: str) -> None:
    terminal.send(f"{prefix} {READER}\n".encode())
    terminal.expect(rb"started")
    terminal.send(b"\x1a")  # Ctrl-Z
    terminal.expect(rb"Stopped")
    terminal.send(b"fg\n")
    terminal.send(b"hello\n")  # read by the resumed command, from the terminal
    terminal.expect(rb"got hello")
    terminal.send(b"echo status=$?\n")
    terminal.expect(rb"status=0")


@pytest.mark.parametrize("prefix", ["", TRACED], ids=["native", "systrace"])
def test_a_program_that_suspends_itself_like_vim(terminal: Terminal, prefix: str) -> None:
    """vim's Ctrl-Z is kill(0, SIGTSTP): its group stops, not systrace (Landlock keeps the
    signal off it), so systrace stops itself for the shell to see the job stopped."""
    program = ("import os, signal; print('st' + 'arted', flush=True); os.kill(0, signal.SIGTSTP); "
               "print('res' + 'umed', input(), flush=True)")
    terminal.send(f'{prefix} {sys.executable} -c "{program}"\n'.encode())
    terminal.expect(rb"started")
    terminal.expect(rb"Stopped")
    terminal.send(b"fg\n")
    terminal.send(b"again\n")
    terminal.expect(rb"resumed again")


@pytest.mark.parametrize("prefix", ["", TRACED], ids=["native", "systrace"])
def test_interactive_bash_job_control(terminal: Terminal, prefix: str) -> None:
    terminal.send(f"{prefix} bash --norc --noprofile -i\n".encode())
    terminal.send(b"echo in''ner; PS1='inner$ '\n")
    terminal.expect(rb"inner\$ ")
    terminal.send(f"{READER}\n".encode())
    terminal.expect(rb"started")
    terminal.send(b"\x1a")
    terminal.expect(rb"Stopped")
    terminal.expect(rb"inner\$ ")
    terminal.send(b"fg\n")
    terminal.send(b"hello\n")
    terminal.expect(rb"got hello")
    terminal.send(b"exit\n")
    terminal.send(b"echo ou''ter $?\n")
    terminal.expect(rb"outer 0")


# -- a failed execve -----------------------------------------------------------------
@pytest.fixture(scope="module")
def search_path(tmp_path_factory) -> str:
    """A PATH with a missing directory, a repeated one, a mode-644 `prog` ahead of the real
    one, and a shell-script shim ahead of echo (as pyenv's are)."""
    base = tmp_path_factory.mktemp("path")
    first, second, shims = base / "first", base / "second", base / "shims"
    for directory in (first, second, shims):
        directory.mkdir()
    (first / "prog").write_text("#!/bin/sh\necho wrong\n")
    (first / "prog").chmod(0o644)
    (second / "prog").symlink_to("/usr/bin/echo")
    (shims / "echo").write_text('#!/bin/sh\nexec /usr/bin/echo shimmed "$@"\n')
    (shims / "echo").chmod(0o755)
    return ":".join([str(base / "missing"), str(shims), "/usr/bin", "/usr/bin", str(first), str(second), "/bin"])


@pytest.mark.parametrize("argv", [["env", "nosuchprog"], ["env", "prog", "hello"], ["env", "echo", "hi"],
                                  ["sh", "-c", "nosuch; echo status $?"]],
                         ids=["missing", "mode-644-first", "shim", "sh-not-found"])
def test_a_failed_exec_leaves_nothing_behind(tmp_path: Path, search_path: str, argv: list[str]) -> None:
    """Learn twice, then enforce: each run says and exits what the native run does. The
    PATH search's failed execve calls return their native error (ENOENT, EACCES), nobody
    is killed at its next call, and under -a a missing target is ENOENT, not "no policy"."""
    env = base_env(PATH=search_path)
    native = run(argv, env=env)
    log = tmp_path / "log"
    for mode in ("-A", "-A", "-a"):
        traced = run([*systrace_argv(), "-d", str(tmp_path / "p"), "-E", str(log), mode, *argv], env=env)
        assert (traced.returncode, traced.stdout, traced.stderr) == (native.returncode, native.stdout, native.stderr), mode
    text = log.read_text() if log.exists() else ""
    assert "kill" not in text and "no policy" not in text, text


def test_no_policy_only_for_a_target_that_could_run(tmp_path: Path) -> None:
    """Under -a an existing binary without a policy is refused (EACCES, logged); a missing
    one gets ENOENT, as natively."""
    policies = tmp_path / "p"
    script = "/usr/bin/true; echo true $?; /usr/bin/nosuch-xyz; echo missing $?; /usr/bin/id >/dev/null; echo id $?"
    learn = run([*systrace_argv(), "-d", str(policies), "-A", "sh", "-c", script])
    assert learn.returncode == 0
    (policies / "usr_bin_id").unlink()  # learned with the rest: now it has no policy
    log = tmp_path / "log"
    enforce = run([*systrace_argv(), "-d", str(policies), "-a", "-E", str(log), "sh", "-c", script])
    native = run(["sh", "-c", script])
    assert native.stdout == b"true 0\nmissing 127\n" + native.stdout.split(b"missing 127\n")[1]
    assert enforce.stdout.startswith(b"true 0\nmissing 127\n")
    assert enforce.stdout.endswith(b"id 126\n")  # refused: sh says Permission denied
    assert b"/usr/bin/nosuch-xyz: not found" in enforce.stderr
    assert "(no policy for /usr/bin/id)" in log.read_text() and "nosuch" not in log.read_text()


def test_a_target_being_written_is_text_busy_not_no_policy(tmp_path: Path) -> None:
    """A binary without a policy that some process holds open for writing cannot run
    (ETXTBSY): under -a it gets that, as natively, not "no policy" (EACCES)."""
    policies = tmp_path / "p"
    busy = tmp_path / "busy"
    shutil.copy("/usr/bin/true", busy)
    script = f"{busy}; echo busy $?"
    learn = run([*systrace_argv(), "-d", str(policies), "-A", "sh", "-c", script])
    assert learn.stdout == b"busy 0\n", learn
    for name in os.listdir(policies):
        if name != "usr_bin_dash":
            (policies / name).unlink()  # the copy of true now has no policy
    with open(busy, "r+b"):  # held open for writing while the command runs
        native = run(["sh", "-c", script])
        log = tmp_path / "log"
        enforce = run([*systrace_argv(), "-d", str(policies), "-a", "-E", str(log), "sh", "-c", script])
    assert native.stdout == b"busy 126\n" and b"busy" in native.stderr, native
    assert (enforce.stdout, enforce.stderr) == (native.stdout, native.stderr), (enforce, native)
    assert "no policy" not in (log.read_text() if log.exists() else "")


# -- per-process state -----------------------------------------------------------
def test_per_process_state_dies_with_the_process_even_when_its_tgid_is_reused() -> None:
    """A process gets state (here `detached`), exits and is reaped; ns_last_pid (in a PID
    namespace of the test's own) gives its tgid to the next fork. The new process finds
    nothing."""
    if os.geteuid() != 0:
        pytest.skip("ns_last_pid needs root")
    script = (
        "import os\n"
        "from systrace.processes import PerProcess\n"
        "state = PerProcess()\n"
        "r, w = os.pipe()\n"
        "first = os.fork()\n"
        "if first == 0:\n"
        "    os.read(r, 1); os._exit(0)\n"
        "state.add(first)\n"
        "assert first in state\n"
        "os.write(w, b'x'); os.waitpid(first, 0)\n"
        "with open('/proc/sys/kernel/ns_last_pid', 'w') as f: f.write(str(first - 1))\n"
        "second = os.fork()\n"
        "if second == 0:\n"
        "    os.read(r, 1); os._exit(0)\n"
        "print('reused' if second == first else 'not reused', 'kept' if second in state else 'dropped')\n"
        "os.write(w, b'x'); os.waitpid(second, 0)\n"
    )
    result = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", script],
                            capture_output=True, env=base_env(), timeout=TIMEOUT)
    if b"unshare" in result.stderr:
        pytest.skip(f"no PID namespace: {result.stderr!r}")
    assert result.stdout == b"reused dropped\n", result.stderr


def test_detached_does_not_pass_to_a_recycled_tgid(tmp_path: Path) -> None:
    """End to end in a PID namespace: a process detached by its exec ends; the next fork
    gets its tgid (ns_last_pid) and runs cat on a secret. Natively cat reads it; under -a
    the policy still applies to the newcomer: denied."""
    if os.geteuid() != 0:
        pytest.skip("ns_last_pid needs root")
    detachme = tmp_path / "detachme"
    detachme.symlink_to("/usr/bin/true")
    secret, harmless = tmp_path / "secret", tmp_path / "harmless"
    secret.write_text("SECRET\n")
    harmless.write_text("harmless\n")
    # the file is named in the environment, so every argv is the same in both runs. systrace
    # refuses ns_last_pid to the command (SECURITY.md): a process of the namespace outside
    # the run writes it when the run names the pid (REQ) and says so (ACK); neither forks
    # meanwhile, so the next fork gets the pid
    req, ack = tmp_path / "req", tmp_path / "ack"
    aim = (f"until [ -s {req} ]; do :; done; read n < {req}; echo $((n - 1)) > /proc/sys/kernel/ns_last_pid; "
           f"echo > {ack}")
    script = (f"{detachme} & n=$!; wait; echo $n > {req}; until read x < {ack}; do :; done 2>/dev/null; "
              + "N=$n sh -c '[ $$ = \"$N\" ] && echo reused; cat < \"$F\"'")
    policies = tmp_path / "p"

    def inside(read: Path, *argv: str) -> subprocess.CompletedProcess:
        req.unlink(missing_ok=True)
        ack.unlink(missing_ok=True)
        return subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", f'({aim}) & exec "$@"', "sh",
                               *argv], capture_output=True, env=base_env(PYTHONPATH=str(SRC), F=str(read)),
                              timeout=TIMEOUT)

    native = inside(secret, "sh", "-c", script)
    if b"unshare" in native.stderr:
        pytest.skip(f"no PID namespace: {native.stderr!r}")
    assert native.stdout == b"reused\nSECRET\n", native.stderr
    learn = inside(harmless, *systrace_argv(), "-d", str(policies), "-A", "sh", "-c", script)
    assert learn.stdout == b"reused\nharmless\n", learn.stderr
    sh_policy = next(p for p in policies.iterdir() if p.name.endswith("dash") or p.name.endswith("bin_sh"))
    text = sh_policy.read_text()
    lines = [line.replace(" then permit", " then permit[detach]") if str(detachme) in line and "execve" in line else line
             for line in text.splitlines()]
    assert lines != text.splitlines()
    sh_policy.write_text("\n".join(lines) + "\n")
    attack = inside(secret, *systrace_argv(), "-d", str(policies), "-a", "sh", "-c", script)
    assert attack.stdout == b"reused\n", (attack.stdout, attack.stderr)  # the recycled tgid: not detached
    assert b"SECRET" not in attack.stdout


# -- /proc/PID/exe cannot be rewritten -------------------------------------------------
PR_SET_MM = 35
PR_SET_MM_OPTIONS = list(range(1, 15))  # START_CODE .. MAP_SIZE, EXE_FILE and MAP included


def test_pr_set_mm_is_refused_in_the_kernel(runner: Runner) -> None:
    """Every PR_SET_MM sub-option: natively the kernel looks at the request (EINVAL, EBADF,
    EPERM without CAP_SYS_RESOURCE...); under systrace, whatever the policy, EPERM before
    the kernel looks at it. Shown with arguments natively invalid for root, so nothing
    changes even natively."""
    probe = ("import ctypes, errno\nlibc = ctypes.CDLL(None, use_errno=True)\n"
             f"for option in {PR_SET_MM_OPTIONS}:\n"
             f"    r = libc.prctl({PR_SET_MM}, option, ctypes.c_ulong(1), ctypes.c_ulong(1), 0)\n"
             "    print(option, errno.errorcode[ctypes.get_errno()] if r else 'ok')\n")
    native = runner.native(runner.python, "-c", probe)
    traced = runner("--permit-all", runner.python, "-c", probe)
    assert traced.stdout == b"".join(f"{o} EPERM\n".encode() for o in PR_SET_MM_OPTIONS), traced.stderr
    if runner.name == "root":  # natively the kernel examined each one (not refused outright)
        assert native.stdout.count(b"EINVAL") >= 10, native.stdout
