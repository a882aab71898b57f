"""A terminal the tracee opens never becomes systrace's controlling terminal (found by
the red team). systrace is often a session leader without one (a service, `ssh host
systrace ...`, `setsid`): a terminal opened without O_NOCTTY by a session leader becomes
its controlling terminal, so a pseudo-terminal the tracee made and systrace opened for it
became systrace's, and the tracee, holding its master, had a terminal whose signals
(TIOCSIG, ^C, ^Z, hangup: sent by the kernel, which Landlock does not check) go to
systrace's process group. Natively the tracee (not a session leader) gets no such
terminal. Emulated opens of character devices are made O_NOCTTY."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import TIMEOUT, Runner
from test_supervisor_integrity import _compile


def _as_session_leader(argv: list[str], runner: Runner) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, env=runner.env, cwd=runner.cwd, timeout=TIMEOUT,
                          start_new_session=True)


def test_a_terminal_the_tracee_opens_never_becomes_systrace_s(runner: Runner, shared_dir: Path) -> None:
    binary = _compile("pty_ctty", shared_dir)
    # natively: under a session leader (sh), the pty is nobody's controlling terminal
    native = _as_session_leader(runner.native_argv("sh", "-c", f"{binary}; true"), runner)
    assert native.stdout == b"foreground 0\nsurvived\n", native
    policies = runner.policy_dir(shared_dir / f"pty-ctty-{runner.name}")
    acquired = {}
    for mode in (["--permit-all"], ["-A", "-d", str(policies)], ["-a", "-d", str(policies)]):
        result = _as_session_leader(runner.argv(*mode, binary), runner)
        assert b"Traceback" not in result.stderr, result.stderr
        lines = result.stdout.split(b"\n")
        # (under -a the slave's number differs from the learned one: refused, nothing acquired)
        acquired[mode[0]] = lines[0].startswith(b"foreground ") and lines[0] != b"foreground 0"
    print(f"{runner.name}: the pty became a controlling terminal natively 0/1, under systrace "
          f"{sum(acquired.values())}/3")
    assert not any(acquired.values()), acquired
