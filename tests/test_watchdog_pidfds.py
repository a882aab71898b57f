"""The watchdog (kernel/watchdog.py) and the helpers' holders (kernel/forking.py) kill
through pidfds, never by a pid read earlier: between the look at /proc that names a
process of the run and the kill, that process may end, be reaped (by its parent, or by
systrace, a subreaper that reaps every child) and its pid go to an outside process.

The reuse is made, not hoped for: in a PID namespace of its own (root) the next pid is
set through /proc/sys/kernel/ns_last_pid, so an outside process gets exactly the pid of
a process of the run that the scan named and that has since been reaped."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import SRC, TIMEOUT

# Run in a PID namespace of its own (pid 1 is this script): RUN is a shell, the run's
# first process, with a child (the one whose pid is reused) and a child with a child of
# its own (two generations the kill must reach).
SCENARIO = r"""
import os, signal, subprocess, sys, time
from systrace.kernel import watchdog

def gone(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return handle.read().rsplit(b")", 1)[1].split()[0] in (b"Z", b"X")
    except OSError:
        return True

run = subprocess.Popen(["/bin/sh", "-c", "sleep 1000 & echo $!; sh -c 'sleep 1000 & wait' & echo $!; wait"],
                       stdout=subprocess.PIPE)
first, second = int(run.stdout.readline()), int(run.stdout.readline())
while len(watchdog._descendants(run.pid)) < 3:  # first, second and second's sleep
    time.sleep(0.001)  # the test's own wait for the shells to fork (not systrace's)
scanned = dict(watchdog._descendants_with_parents(run.pid))
assert scanned[first] == run.pid, scanned
os.kill(first, signal.SIGKILL)  # it ends; its parent, the run's shell, reaps it
while os.path.exists(f"/proc/{first}"):
    time.sleep(0.001)
with open("/proc/sys/kernel/ns_last_pid", "w") as handle:
    handle.write(str(first - 1))
outsider = subprocess.Popen(["sleep", "1000"])  # not of the run: a child of pid 1
assert outsider.pid == first, (outsider.pid, first)

# a kill by the pid the scan named reaches the outsider (signal 0: only asks)
os.kill(first, 0)
reached_by_pid = not gone(outsider.pid)

watched = watchdog.Watched(os.getpid(), run=run.pid)
watched.run_fd = os.pidfd_open(run.pid)
members = {run.pid: watched.run_fd}
named = watchdog._member(first, scanned[first], members)
killed = watchdog._kill_run(watched)
tree = [second, *[pid for pid, parent in scanned.items() if parent == second]]
deadline = time.monotonic() + 30  # a safety net: SIGKILL makes them zombies at once
while not all(gone(pid) for pid in tree) and time.monotonic() < deadline:
    time.sleep(0.001)
second_gone = all(gone(pid) for pid in tree)
print(f"reached_by_pid={int(reached_by_pid)} member={int(named >= 0)} killed={int(killed)} "
      f"outsider_alive={int(not gone(outsider.pid))} run_tree_gone={int(second_gone)}")
outsider.kill()
run.kill()
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="a PID namespace of its own and ns_last_pid need root")
def test_a_reused_pid_of_the_run_is_never_killed() -> None:
    """A process of the run named by the scan ends and its pid goes to an outside process.
    A kill by that pid reaches the outsider (1/1); the watchdog's pidfd check refuses it
    (the pid's parent is not the run's: 0/1 named, 0/1 killed), while the rest of the
    run, two generations, is killed."""
    proc = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", SCENARIO],
                          capture_output=True, env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=TIMEOUT,
                          start_new_session=True)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    facts = dict(item.split("=") for item in proc.stdout.decode().split())
    print(f"a reused pid: reached by a kill by pid {facts['reached_by_pid']}/1; named a process of the run by the "
          f"watchdog {facts['member']}/1; outsider alive after the run was killed: {facts['outsider_alive']}/1; "
          f"the run's other processes killed: {facts['run_tree_gone']}/1")
    assert facts == {"reached_by_pid": "1", "member": "0", "killed": "1", "outsider_alive": "1",
                     "run_tree_gone": "1"}, facts


def test_a_helper_reaped_already_is_not_signalled_again() -> None:
    """forking.end_helper reaps through the pidfd taken at the fork: a helper the loop
    reaped already (waitpid(-1)) is neither signalled nor waited for by pid again, so a
    process that got its pid is left alone."""
    from systrace.kernel import forking

    pid = os.fork()
    if pid == 0:
        os._exit(0)
    pidfd = forking.pidfd_of(pid)
    assert pidfd >= 0
    os.waitpid(pid, 0)  # as the loop does, for any child
    forking.end_helper(pid, pidfd, kill=True)  # no error, nothing signalled (ESRCH through the pidfd)
    with pytest.raises(OSError):
        os.fstat(pidfd)  # closed
