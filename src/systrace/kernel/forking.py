"""Forking a helper with a pid no continued call of the tracee may still reach.

A call that names another process by pid and is checked only by uid (setpriority,
prlimit64, sched_setaffinity...) is checked by systrace, then continued: the kernel
looks the pid up afterwards. If that process died meanwhile and a helper forked now got
its pid, the call would act on the helper. So every helper is forked here: a child
whose pid is among those still named by such calls exits at once, before doing
anything, and another is forked. The reserved pids are taken before the fork, so the
child knows them from its copy of our memory.

The set comes from the supervisor (`reserve_from`); a process has one supervisor loop,
and a fork is a process-wide act, so this one provider is the process's."""

from __future__ import annotations

import errno
import os

from .plain_signal import signal

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable, Container

MAX_TRIES = 64  # each try takes a new pid; the reserved set is one pid per tracee thread at most
DISCARDED = 0  # exit status of a child forked with a reserved pid (systrace reaps it)


def _nothing_reserved() -> frozenset[int]:
    return frozenset()


_reserved: Callable[[], Container[int]] = _nothing_reserved
_discarded: Callable[[int], None] = lambda pid: None


def reserve_from(reserved: Callable[[], Container[int]], discarded: Callable[[int], None]) -> None:
    """`reserved()`: the pids no helper may get now (a set, or a view of memory another
    supervisor process writes: a replica's); `discarded(pid)` hears of a child forked
    with one (it has exited)."""
    global _reserved, _discarded
    _reserved, _discarded = reserved, discarded


def fork_helper() -> int:
    """os.fork(), with a pid no continued call still names (0 in the child)."""
    for _ in range(MAX_TRIES):
        reserved = _reserved()
        pid = os.fork()
        if pid == 0:
            if reserved and os.getpid() in reserved:
                os._exit(DISCARDED)
            return 0
        if pid not in reserved:
            return pid
        _discarded(pid)
    raise OSError(errno.EAGAIN, "every pid forked for a helper is named by a call of the tracee in flight")


# -- ending a helper by its pidfd ------------------------------------------------------------
# The supervisor's loop reaps every child it hears of (children.py: waitpid(-1), as a
# subreaper must), helpers included, so a helper's pid may be another process's by the
# time its holder ends it: a kill or a wait by pid could reach an outside process (or
# another helper). A pidfd taken in the parent right after the fork names the helper
# whatever happens to its pid: nothing can reap the child before it (the loop waits for
# children only in its own thread, which is here; a helper forked by the Landlock thread
# is returned to this thread, which waits for it, before anything else), and a
# pidfd keeps naming its process, not the pid.
def pidfd_of(pid: int) -> int:
    """A pidfd of the child `pid` just forked by this thread and not waited for (-1 if none
    can be opened, EMFILE: the helper is then ended by pid, as before)."""
    try:
        return os.pidfd_open(pid)
    except OSError:
        return -1


def end_helper(pid: int, pidfd: int, kill: bool) -> None:
    """Reap a helper (SIGKILLed first when `kill`) through its pidfd, which is closed."""
    if pidfd < 0:
        _end_by_pid(pid, kill)
        return
    try:
        if kill:
            kill_helper(pidfd)
        try:
            os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
        except ChildProcessError:
            pass  # reaped by the supervisor's loop already: its pid may be anyone's now
    finally:
        os.close(pidfd)


def kill_helper(pidfd: int) -> None:
    """SIGKILL the process of `pidfd` (nothing if it has ended, or there is no pidfd: a
    helper dies with systrace, PR_SET_PDEATHSIG)."""
    if pidfd < 0:
        return
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _end_by_pid(pid: int, kill: bool) -> None:
    if kill:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
