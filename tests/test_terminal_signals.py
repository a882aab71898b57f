"""Terminal signals through a real pseudo-terminal (SECURITY.md "Out of reach"): the
terminal's SIGINT, SIGQUIT, SIGWINCH and hangup reach the command as natively, never
end or stop systrace, and systrace exits with the command's status; TIOCSTI (typing
into the terminal) is refused. The command shares systrace's process group, as natively
it shares its job's; systrace blocks every asynchronous signal and decides itself."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import termios
import time

import pytest
from conftest import TIMEOUT, Runner

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
    pid, master = pty.fork()
    if pid == 0:
        try:
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
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
