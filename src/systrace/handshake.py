"""The launch handshake: systrace's own child, between installing the filter and the
exec of the command, makes notified calls too (the execve itself among them). They are
systrace's code, not the command's: let them run unrecorded until the child reports that
its exec succeeded (kernel/launch.py: EOF on the report pipe, or an errno)."""

from __future__ import annotations

import os

from .kernel.launch import Launched, exec_outcome
from .kernel.syscalls_x86_64 import SYSCALLS

EXECVE_NRS = frozenset((SYSCALLS["execve"], SYSCALLS["execveat"]))


class LaunchHandshake:
    def __init__(self, launched: Launched):
        self.child_pid = launched.pid
        self.report_fd = launched.report_fd
        self.exec_pending = False  # the child asked to exec the command
        self.child_started = False  # ... and that exec succeeded
        self.exec_error = 0  # errno of a failed exec of the command

    def launcher_call(self, tgid: int, nr: int) -> bool:
        """Is this notification the launcher's own call (to continue without a record)?
        The child is single-threaded until its exec succeeds, so its tgid says it."""
        if self.child_started or tgid != self.child_pid:
            return False
        if self.exec_pending and self.child_exec_succeeded():
            self.child_started = True
            return False
        self.exec_pending = self.exec_pending or nr in EXECVE_NRS
        return True

    def child_exec_succeeded(self) -> bool:
        if self.report_fd < 0:
            return True
        outcome = exec_outcome(self.report_fd)
        if outcome is None:
            return False  # the child is reporting a failed exec right now
        os.close(self.report_fd)
        self.report_fd = -1
        self.exec_error = outcome
        return outcome == 0

    def finish(self) -> None:
        """At the end of the run: read the exec's outcome if nothing asked for it yet."""
        if self.report_fd >= 0:
            self.child_exec_succeeded()
