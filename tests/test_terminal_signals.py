"""Terminal signals through a real pseudo-terminal (SECURITY.md "Out of reach"): the
terminal's SIGINT, SIGQUIT, SIGWINCH and hangup reach the command as natively, never
end or stop systrace, and systrace exits with the command's status; TIOCSTI (typing
into the terminal) is refused. The command shares systrace's process group, as natively
it shares its job's; systrace blocks every asynchronous signal and decides itself."""

from __future__ import annotations

import fcntl
import os
import select
import shlex
import signal
import struct
import termios
import time
from pathlib import Path

import pytest
from conftest import TIMEOUT, Runner
from on_pty import fork_on_pty

from systrace.kernel.syscalls_x86_64 import SYSCALLS

# The command: says "ready", then waits for a signal with the default action for
# SIGINT/SIGQUIT/SIGHUP, and a handler for SIGWINCH that exits 7.
WAITER = ("import os, signal\n"
          "for n in (signal.SIGINT, signal.SIGQUIT, signal.SIGHUP): signal.signal(n, signal.SIG_DFL)\n"
          "signal.signal(signal.SIGWINCH, lambda *a: os._exit(7))\n"
          "print('ready', flush=True)\n"
          "while True: signal.pause()\n")
TIOCSTI_PROBE = ("import fcntl, termios\n"
                 "try:\n    fcntl.ioctl(0, termios.TIOCSTI, b'x'); print('tiocsti ok')\n"
                 "except OSError as e:\n    print('tiocsti', e.errno)\n")
ACTIONS = {"ctrl-c": 128 + signal.SIGINT, "ctrl-backslash": 128 + signal.SIGQUIT, "winch": 7,
           "hangup": 128 + signal.SIGHUP}


def _on_pty(argv: list[str], env: dict[str, str], action: str) -> tuple[int, bytes]:
    """Run argv as the session leader of a new pty; once it says ready, do `action`
    as a terminal would. Its status as a shell reports it (128+N when killed by N)."""
    pid, master = fork_on_pty(argv, env)
    out = b""
    closed = False
    try:
        deadline = time.monotonic() + TIMEOUT  # a safety net: the output decides
        while b"ready" not in out and time.monotonic() < deadline:
            if select.select([master], [], [], 1)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
        assert b"ready" in out, out
        if action == "ctrl-c":
            os.write(master, b"\x03")
        elif action == "ctrl-backslash":
            os.write(master, b"\x1c")
        elif action == "winch":  # the terminal is resized: SIGWINCH to its foreground group
            fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 132, 0, 0))
        elif action == "hangup":
            os.close(master)
            closed = True
        while not closed and select.select([master], [], [], TIMEOUT)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every process of the terminal is gone
                break
            if not chunk:
                break
            out += chunk
        _, status = os.waitpid(pid, 0)
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        if not closed:
            os.close(master)
    return (128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)), out


@pytest.mark.parametrize("action", list(ACTIONS))
def test_terminal_signals_reach_the_command_not_systrace(runner: Runner, action: str) -> None:
    native, _ = _on_pty(runner.native_argv(runner.python, "-c", WAITER), runner.env, action)
    traced, out = _on_pty(runner.argv("--permit-all", runner.python, "-c", WAITER), runner.env, action)
    print(f"{runner.name} {action}: natively status {native}, under systrace {traced}")
    assert native == ACTIONS[action]
    assert traced == native, out
    assert b"Traceback" not in out


def test_tiocsti_is_refused(runner: Runner) -> None:
    """Natively root may type into its terminal (the unprivileged user may not, unless
    dev.tty.legacy_tiocsti is set); under systrace nobody may."""
    probe = "print('ready')\n" + TIOCSTI_PROBE
    _, native = _on_pty(runner.native_argv(runner.python, "-c", probe), runner.env, "none")
    _, traced = _on_pty(runner.argv("--permit-all", runner.python, "-c", probe), runner.env, "none")
    print(f"{runner.name}: natively {native!r}, under systrace {traced!r}")
    try:
        legacy = open("/proc/sys/dev/tty/legacy_tiocsti").read().strip() == "1"
    except OSError:
        legacy = True  # before Linux 6.2 anyone could
    if runner.name == "root" or legacy:
        assert b"tiocsti ok" in native
    assert b"tiocsti 1\r\n" in traced  # EPERM


# -- a question while an interactive command's foreground job reads the terminal ------
def _expect(master: int, out: bytearray, wanted: bytes) -> bool:
    """Read the pty until `wanted` appears (True) or it closes (False)."""
    deadline = time.monotonic() + TIMEOUT  # a safety net: the output decides
    while wanted not in out:
        if time.monotonic() > deadline:
            return False
        if not select.select([master], [], [], 1)[0]:
            continue
        try:
            chunk = os.read(master, 4096)
        except OSError:
            return False
        if not chunk:
            return False
        out += chunk
    return True


def _shell_session(argv: list[str], env: dict[str, str], job: str | None, asked: bool) -> tuple[bytes, list[str]]:
    """An interactive shell on a new pty (argv, as its session leader) runs `job` in the
    foreground (job None: argv is the job itself); it reads the terminal while another of
    its threads opens a file, which under systrace is a question, answered `permit`
    through the pty. Then the job's read gets "hello". Returns the output and the steps
    that went as expected."""
    pid, master = fork_on_pty(argv, {**env, "PS1": "$ ", "ENV": ""})
    out = bytearray()
    steps = []
    try:
        if job is None or _expect(master, out, b"$ "):
            steps.append("prompt")
            if job is not None:
                os.write(master, job.encode() + b"\n")
            if not asked or _expect(master, out, b"Answer: "):
                steps.append("question")
                if asked:
                    os.write(master, b"permit\n")
                if _expect(master, out, b"opened ok"):
                    steps.append("opened")
                    os.write(master, b"hello\n")
                    if _expect(master, out, b"line:"):
                        _expect(master, out, b"\n$ " if job is not None else b"\n")  # the line, the next prompt
                        steps.append("read " + out.split(b"line:")[1].split(b"\r")[0].decode(errors="replace"))
                        if job is not None:
                            os.write(master, b"exit\n")
                        _, status = os.waitpid(pid, 0)
                        steps.append(f"status {os.waitstatus_to_exitcode(status)}")
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(master)
    return bytes(out), steps


def _job_policies(path: Path, job: str) -> Path:
    sh = os.path.realpath("/bin/sh")
    lines = [f"Policy: {sh}, Emulation: native"] + [f"\tnative-{name}: permit" for name in SYSCALLS]
    lines += [f"Policy: {job}, Emulation: native"]
    lines += [f"\tnative-{name}: permit" for name in SYSCALLS if name != "openat"]
    lines.append('\tnative-openat: filename neq "/etc/hostname" then permit')
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o644)
    return path


@pytest.mark.parametrize("how", ["shell-job", "command"])
def test_a_question_while_a_foreground_job_reads_the_terminal(runner: Runner, cbin, shared_dir: Path, how: str) -> None:
    """`sh -i` under -t runs a job in the foreground (its own process group, put there
    with tcsetpgrp), or -t runs it as the command: one of its threads waits in a read of
    the terminal when another makes a call systrace asks about. The answer goes to
    systrace, not to the waiting read; the read then gets the next line; the shell's job
    control goes on as natively (the job's end, the prompt, exit). Before, the read was
    handed the answer (the stop sent to the group was taken by the thread waiting in
    the call, and the reader went on reading)."""
    job = cbin("ttyjob")
    sh = os.path.realpath("/bin/sh")
    policy = _job_policies(shared_dir / f"ttyjob-policy-{runner.name}", job)
    if how == "shell-job":
        _, native = _shell_session(runner.native_argv(sh, "-i"), runner.env, job, asked=False)
        out, traced = _shell_session(runner.argv("-U", "-f", str(policy), "-t", sh, "-i"), runner.env, job, asked=True)
    else:
        _, native = _shell_session(runner.native_argv(job), runner.env, None, asked=False)
        out, traced = _shell_session(runner.argv("-U", "-f", str(policy), "-t", job), runner.env, None, asked=True)
    print(f"{runner.name} {how}: natively {native}, under systrace {traced}")
    assert native == ["prompt", "question", "opened", "read hello", "status 0"]
    assert traced == native, out.decode(errors="replace")
    assert b"Traceback" not in out


# -- a foreground group that holds processes outside the run --------------------------
def _state_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/task/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def _settled_state_of(pid: int) -> str:
    """Its state once it stops running: a shell that just started waiting for its job is
    still R for a moment (a wait on a condition, bounded by a safety net)."""
    deadline = time.monotonic() + 10
    state = _state_of(pid)
    while state == "R" and time.monotonic() < deadline:
        time.sleep(0.002)
        state = _state_of(pid)
    return state


def _child_named(parent: int, name: str) -> int | None:
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == str(parent) and f"({name})" in stat:
                return int(entry)
    return None


def _interactive(env: dict[str, str]) -> tuple[int, int]:
    return fork_on_pty(["/bin/sh", "-i"], {**env, "PS1": "$ ", "ENV": ""})


def _end(pid: int, master: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
    os.close(master)


def test_a_question_is_not_asked_when_the_foreground_group_holds_outsiders(runner: Runner, cbin, shared_dir: Path,
                                                                           tmp_path: Path) -> None:
    """The command joins the interactive shell's own group (outside the run) and makes it
    the terminal's foreground, while one of its threads reads the terminal. Natively its
    open goes on and the read gets the next line. Under -t systrace may not stop the
    shell, and the shell (or the command's reader, now in the shell's group) could take
    the answer: the question is not asked, the call is denied (EPERM, logged), the shell
    is never stopped and the reader still gets the next line. (Before: the question was
    asked with the terminal taken from the shell's group, whose reader took the answer.)"""
    job = cbin("ttyjob")
    policy = _job_policies(shared_dir / f"ttyjob-outsiders-{runner.name}", job)
    log = runner.writable(shared_dir / f"ttyjob-outsiders-{runner.name}.log")
    results = {}
    for name, argv in (("native", runner.native_argv(job, "join-session")),
                       ("traced", runner.argv("-U", "-f", str(policy), "-E", str(log), "-t", job, "join-session"))):
        pid, master = _interactive(runner.env)
        out = bytearray()
        steps = []
        try:
            assert _expect(master, out, b"$ "), out
            os.write(master, shlex.join(argv).encode() + b"\n")
            if _expect(master, out, b"joined") and _expect(master, out, b"opened "):
                _expect(master, out, b"\n")
                steps.append(out.split(b"opened ")[1].split(b"\r")[0].decode())
                steps.append(f"shell {_settled_state_of(pid)}")
                os.write(master, b"hello\n")
                if _expect(master, out, b"line:") and _expect(master, out, b"\n$ "):
                    steps.append("read " + out.split(b"line:")[1].split(b"\r")[0].decode(errors="replace"))
                    os.write(master, b"echo alive\n")
                    if _expect(master, out, b"alive\r\n"):
                        steps.append("shell answers")
        finally:
            _end(pid, master)
        results[name] = (steps, bytes(out))
    print(f"{runner.name}: natively {results['native'][0]}, under systrace {results['traced'][0]}")
    assert results["native"][0] == ["ok", "shell S", "read hello", "shell answers"], results["native"][1]
    assert results["traced"][0] == ["1", "shell S", "read hello", "shell answers"], results["traced"][1]
    assert b"Answer:" not in results["traced"][1] and b"Traceback" not in results["traced"][1]
    assert "question not asked: the terminal's foreground process group" in log.read_text()


def test_a_question_stops_only_the_runs_processes_in_systraces_group(runner: Runner, cbin, shared_dir: Path) -> None:
    """`systrace -t JOB | cat` in an interactive shell: cat shares systrace's group (the
    shell's job). JOB joins that group and makes it the foreground while one of its
    threads reads the terminal; another asks. systrace stops JOB (its reader must not
    take the answer), never cat; the answer goes to systrace and the read gets the next
    line. (Before: nothing was stopped in systrace's own group, and the reader took the
    answer.)"""
    job = cbin("ttyjob")
    policy = _job_policies(shared_dir / f"ttyjob-own-group-{runner.name}", job)
    argv = runner.argv("-U", "-f", str(policy), "-E", "/dev/null", "-t", job, "join-parent")
    pid, master = _interactive(runner.env)
    out = bytearray()
    steps = []
    try:
        assert _expect(master, out, b"$ "), out
        os.write(master, shlex.join(argv).encode() + b" | cat\n")
        if _expect(master, out, b"Answer: "):
            cat = _child_named(pid, "cat")
            systrace = _child_named(pid, "python3")
            command = _child_named(systrace, "ttyjob") if systrace is not None else None
            threads = sorted({_state_of(int(t)) for t in os.listdir(f"/proc/{command}/task")}) if command else []
            steps.append(f"asked; cat {_state_of(cat) if cat else 'none'}; command's threads {''.join(threads)}")
            os.write(master, b"permit\n")
            if _expect(master, out, b"opened ok"):
                steps.append("opened")
                os.write(master, b"hello\n")
                if _expect(master, out, b"line:") and _expect(master, out, b"\n$ "):
                    steps.append("read " + out.split(b"line:")[1].split(b"\r")[0].decode(errors="replace"))
    finally:
        _end(pid, master)
    print(f"{runner.name}: {steps}")
    assert b"joined" in out, out
    # the command's threads: stopped (T), the asking one waiting in its call (D)
    assert steps == ["asked; cat S; command's threads DT", "opened", "read hello"], bytes(out)


def test_group_and_foreground_changes_reach_systrace_under_t() -> None:
    """Whatever a plan decided in the kernel, setpgid, setsid and ioctl(TIOCSPGRP,
    TIOCSCTTY) reach systrace under -t (its loop asks one question at a time: none of
    them runs while a question waits); a refusal stays a refusal; other ioctls and the
    TIOCSTI guard are as they were."""
    from systrace.baseline import apply_baseline
    from systrace.frontend.terminal import TIOCSCTTY, TIOCSPGRP, route_job_control
    from systrace.kernel import abi
    from systrace.kernel.filter import FilterPlan

    plan = FilterPlan(default=abi.RET_ALLOW)
    plan.actions[SYSCALLS["setsid"]] = abi.ret_errno(1)
    apply_baseline(plan)
    before = plan.arg_rules[SYSCALLS["ioctl"]]
    route_job_control(plan)
    assert plan.action_of(SYSCALLS["setpgid"]) == abi.RET_USER_NOTIF
    assert plan.action_of(SYSCALLS["setsid"]) == abi.ret_errno(1)
    rules = plan.arg_rules[SYSCALLS["ioctl"]]
    routed = [rule.tests[0].value for rule in rules if rule.action == abi.RET_USER_NOTIF]
    assert routed == [TIOCSPGRP, TIOCSCTTY] and all(rule in rules for rule in before)
    assert plan.action_of(SYSCALLS["ioctl"]) == abi.RET_ALLOW  # other requests stay in the kernel


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_ctrl_c_and_sigterm_at_a_question_in_an_interactive_shell(runner: Runner, cbin, shared_dir: Path,
                                                                  how: str) -> None:
    """An interactive shell runs `systrace -t JOB` (JOB reads the terminal in one thread
    while another's open is asked about, so JOB is stopped meanwhile). Ctrl-C at
    `Answer:` ends the run at once (status 130, the message README gives); SIGTERM to
    systrace abandons the question and is passed on to JOB, which dies of it (143). The
    shell gets its terminal back and goes on either way."""
    job = cbin("ttyjob")
    policy = _job_policies(shared_dir / f"ttyjob-interrupt-{runner.name}", job)
    argv = runner.argv("-U", "-f", str(policy), "-E", "/dev/null", "-t", job)
    pid, master = _interactive(runner.env)
    out = bytearray()
    steps = []
    try:
        assert _expect(master, out, b"$ "), out
        os.write(master, shlex.join(argv).encode() + b"\n")
        if _expect(master, out, b"Answer: "):
            steps.append("asked")
            if how == "ctrl-c":
                os.write(master, b"\x03")
            else:
                systrace = next(c for c in os.listdir("/proc") if c.isdigit() and _is_child(int(c), pid))
                os.kill(int(systrace), signal.SIGTERM)
            if _expect(master, out, b"\n$ "):
                os.write(master, b"echo status $?\n")
                mark = len(out)
                if _expect(master, out, b"\r\nstatus ") and _expect(master, out, b"\r\n$ "):
                    steps.append(out[mark:].rsplit(b"\r\nstatus ", 1)[1].split(b"\r")[0].decode())
    finally:
        _end(pid, master)
    text = bytes(out).decode(errors="replace")
    print(f"{runner.name} {how}: {steps}")
    expected = {"ctrl-c": "130", "sigterm": "143"}[how]
    assert steps == ["asked", expected], text
    if how == "ctrl-c":
        assert "systrace: interrupted at a question (Ctrl-C): the command was killed" in text
    else:
        assert "(SIGTERM: question abandoned, denied)" in text
    assert "Traceback" not in text


def _is_child(pid: int, parent: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1] == str(parent)
    except OSError:
        return False
