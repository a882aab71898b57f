"""kernel/open_as.py gives back every descriptor it opened when the tracee's view cannot
be entered (the tracee died between its call and systrace's open of /proc/TID/root)."""

from __future__ import annotations

import errno
import os
import subprocess

import pytest

from systrace.kernel import open_as
from systrace.kernel.emulate_identity import EmulationError


def _own_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(os.geteuid() != 0, reason="joining another user namespace's view is root's case here")
def test_a_failed_open_of_the_tracee_root_leaks_no_descriptor() -> None:
    """A process that made a user namespace of its own and exited (a zombie: its
    /proc/PID/ns/user still opens, its /proc/PID/root does not)."""
    child = subprocess.Popen(["unshare", "-U", "true"])
    try:
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, not reaped
        assert os.readlink(f"/proc/{child.pid}/ns/user") != os.readlink("/proc/self/ns/user")
        with pytest.raises(OSError):
            os.open(f"/proc/{child.pid}/root", os.O_PATH)
        status = open(f"/proc/{child.pid}/status", "rb").read()
        before = _own_fds()
        leaked = 0
        for _ in range(20):
            with pytest.raises((OSError, EmulationError)) as failure:
                open_as.in_own_view(1, child.pid, child.pid, b"/tmp/x", -100, os.O_WRONLY, 0, status, -1, set())
            assert getattr(failure.value, "errno", errno.ENOENT) in (errno.ENOENT, errno.ESRCH, errno.EACCES)
            leaked = len(_own_fds() - before)
        print(f"descriptors left open after 20 failed views: {leaked}")
        assert leaked == 0
    finally:
        child.wait()
