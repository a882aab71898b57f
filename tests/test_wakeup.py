"""The ADDFD wake-up hint (kernel/wakeup.py, used with --supervisors) against the real
scheduler: it narrows a blocked thread to systrace's CPU and always restores the
thread's own mask."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Runner

from systrace.kernel.wakeup import WakeHere

SEVERAL_CPUS = pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")


@SEVERAL_CPUS
def test_narrow_then_restore_a_blocked_process() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        original = os.sched_getaffinity(child.pid)
        wake = WakeHere()
        allowed = wake.narrow(child.pid)
        assert allowed == original
        assert len(os.sched_getaffinity(child.pid)) == 1
        wake.restore(child.pid, allowed)
        assert os.sched_getaffinity(child.pid) == original
    finally:
        child.communicate(b"", timeout=30)


@SEVERAL_CPUS
def test_a_pinned_thread_is_left_alone() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        elsewhere = max(os.sched_getaffinity(0))
        os.sched_setaffinity(child.pid, {elsewhere})
        assert WakeHere().narrow(child.pid) is None  # one CPU only: nothing to narrow
        assert os.sched_getaffinity(child.pid) == {elsewhere}
    finally:
        child.communicate(b"", timeout=30)


def test_gone_thread_is_skipped() -> None:
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    gone = int(child.stdout)
    assert WakeHere().narrow(gone) is None
    WakeHere.restore(gone, {0})  # nothing raised


def _policy_for_affinity(runner: Runner, policy_dir: Path, binary: str) -> None:
    for args in (["3"], ["3", "pin"]):
        learned = runner("-d", str(policy_dir), "-A", binary, *args)
        assert learned.returncode == 0, learned.stderr


@pytest.mark.parametrize("supervisors", ["1", "2"])  # the hint is used with --supervisors only
@pytest.mark.parametrize("pin", [False, True])
def test_emulated_opens_leave_the_program_its_affinity(runner: Runner, cbin, shared_dir: Path, pin: bool,
                                                       supervisors: str) -> None:
    binary = cbin("affinity")
    policy_dir = shared_dir / f"policies-affinity-{runner.name}-{pin}-{supervisors}"
    runner.policy_dir(policy_dir)
    _policy_for_affinity(runner, policy_dir, binary)
    extra = ["pin"] if pin else []
    native = runner.native(binary, "400", *extra)
    enforced = runner("-d", str(policy_dir), "-a", "--supervisors", supervisors, binary, "400", *extra)
    assert enforced.returncode == 0, enforced.stderr
    assert enforced.stdout == native.stdout  # before == min_after == child_min, as natively
    before, min_after, child_min = (int(part.split(b"=")[1]) for part in enforced.stdout.split())
    assert before == min_after == child_min


PIN_PROBE = """
import os, sys
from systrace.kernel import wakeup
before = os.sched_getaffinity(0)
cpu = wakeup.pin_here()
pinned = os.sched_getaffinity(0)
wakeup.unpin()
print(cpu in before, pinned == {cpu}, os.sched_getaffinity(0) == before)
"""


@SEVERAL_CPUS
def test_pin_here_then_unpin() -> None:
    result = subprocess.run([sys.executable, "-c", PIN_PROBE], capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent / "src")))
    assert result.stdout.split() == ["True", "True", "True"], result.stderr


@SEVERAL_CPUS
@pytest.mark.parametrize("pin", [True, False])
def test_systrace_pins_itself_not_the_command(runner: Runner, pin: bool) -> None:
    script = "grep Cpus_allowed_list /proc/$PPID/status /proc/self/status"
    args = ["--permit-all"] + ([] if pin else ["--no-cpu-pin"])
    result = runner(*args, "/bin/sh", "-c", script)
    assert result.returncode == 0, result.stderr
    supervisor, command = (line.split(b"\t")[1] for line in result.stdout.splitlines())
    everything = runner.native("/bin/sh", "-c", "grep Cpus_allowed_list /proc/self/status").stdout.split(b"\t")[1].strip()
    assert command == everything  # the command keeps every CPU it had
    if pin:
        assert supervisor.strip().isdigit()  # one CPU
    else:
        assert supervisor == everything
