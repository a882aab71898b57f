"""Keep wake-ups between systrace and its tracees on one CPU.

Pinning: systrace keeps to the CPU it starts supervising on (its command keeps every CPU
it had). Its listener wakes tracees on the waker's CPU (SYNC_WAKE_UP), so the tracees
that talk to it most gather on that CPU and the scheduler is free to move them away when
it is busy; systrace itself never migrates. On the 2-vCPU test machine this made routed
calls 5-13% cheaper (`--no-cpu-pin` to compare).

ADDFD: have a blocked tracee thread woken on systrace's own CPU.

ADDFD is a round trip through the tracee: the kernel wakes the waiting thread, which
installs the fd in its own table and wakes systrace back. Neither wake-up is a "sync"
one, so with systrace busy on its CPU the scheduler wakes the tracee on an idle CPU; on
this 2-vCPU VM each such cross-CPU wake-up costs about 18 µs (measured with a C
supervisor: ADDFD after 20 µs of work costs 62 µs per open unpinned, 27 µs with the
thread's affinity narrowed to systrace's CPU for the duration).

So for the ADDFD only, the waiting thread's affinity is narrowed to the CPU systrace runs
on; it is restored before the call is answered. It costs three system calls per open
(~15 µs of systrace's CPU), and pays on a quiet machine: bench/wakeup_hint.py, one
supervisor, 5,000 opens, medians of 3: 136 µs wall and 138 µs CPU per open with it,
252 and 219 without (on a machine loaded by other work, 118 against 146 µs CPU
without it was measured once: then the other CPU is busy anyway). The main process
and each replica of --supervisors use it. The thread itself never runs its own
code with the narrowed mask (it is inside the system call throughout), and nothing it
forks can inherit it. Only when that CPU is already one the thread may run on, so a
user's pinning is never overridden; any failure just skips the hint. Visible to the
program only if another of its threads queries or sets this thread's affinity during
those few microseconds (documented in SECURITY.md).
"""

from __future__ import annotations

import os

from .libc import libc


class WakeHere:
    def __init__(self) -> None:
        self.enabled = (os.cpu_count() or 1) > 1

    def narrow(self, tid: int) -> set[int] | None:
        """Narrow the blocked thread to our CPU; return the mask to restore (None: not done)."""
        if not self.enabled:
            return None
        cpu = _pinned if _pinned is not None else libc.sched_getcpu()  # pinned: no ctypes call per open
        try:
            allowed = os.sched_getaffinity(tid)
            if cpu < 0 or cpu not in allowed or len(allowed) == 1:
                return None
            os.sched_setaffinity(tid, (cpu,))
        except OSError:
            return None
        return allowed

    @staticmethod
    def restore(tid: int, allowed: set[int]) -> None:
        try:
            os.sched_setaffinity(tid, allowed)
        except OSError:
            pass  # the thread is gone


_original: set[int] | None = None  # systrace's CPUs before pin_here()
_pinned: int | None = None  # the CPU pin_here() keeps systrace on


def pin_here() -> int | None:
    """Keep systrace on the CPU it runs on now; return it (None: not done, e.g. one CPU)."""
    global _original, _pinned
    try:
        allowed = os.sched_getaffinity(0)
        cpu = libc.sched_getcpu()
        if len(allowed) < 2 or cpu not in allowed:
            return None
        os.sched_setaffinity(0, (cpu,))
    except OSError:
        return None
    _original = allowed
    _pinned = cpu
    return cpu


def unpin() -> None:
    """Give back the CPUs systrace had (in a child about to run another program)."""
    global _pinned
    if _original is not None:
        os.sched_setaffinity(0, _original)
    _pinned = None
