"""The baseline's refusals and systrace's pid guards, evaluated on the filter plan (pure
logic; the same plan compiled to BPF is tested against this evaluation in test_bpf)."""

from __future__ import annotations

import errno

import pytest

from systrace.baseline import apply_baseline, base_plan, protect_supervisor
from systrace.kernel import abi, bpf
from systrace.kernel import filter as kfilter
from systrace.kernel.filter import FilterPlan, evaluate
from systrace.kernel.syscalls_x86_64 import SYSCALLS

EPERM = abi.ret_errno(errno.EPERM)
ESRCH = abi.ret_errno(errno.ESRCH)  # a call naming systrace's pid: as if no process had it
SUPERVISOR, GROUP = 4242, 4200


def _plan_permitting_everything() -> FilterPlan:
    """What a policy that plainly permits every call compiles to."""
    plan = FilterPlan(default=abi.RET_ALLOW, actions={nr: abi.RET_ALLOW for nr in SYSCALLS.values()})
    apply_baseline(plan)
    protect_supervisor(plan, SUPERVISOR, GROUP, signals_scoped=True)
    return plan


@pytest.mark.parametrize(("name", "args", "refused"), [  # refused: EPERM, or ESRCH when it names systrace's pid
    ("seccomp", (1, abi.FILTER_FLAG_NEW_LISTENER), True),
    ("seccomp", (1, abi.FILTER_FLAG_NEW_LISTENER | abi.FILTER_FLAG_TSYNC_ESRCH), True),
    ("seccomp", (1, 0), False),  # a filter without a listener cannot weaken systrace's
    ("seccomp", (2, 0), False),  # GET_ACTION_AVAIL
    ("prctl", (35, 13), True),  # PR_SET_MM, PR_SET_MM_EXE_FILE
    ("prctl", (35 | (1 << 32), 14), True),  # only the low word counts, as in the kernel
    ("prctl", (15, 0), False),  # PR_SET_NAME
    ("ioctl", (0, 0x5412), True),  # TIOCSTI
    ("ioctl", (0, 0x541B), False),  # FIONREAD
    ("kill", (SUPERVISOR, 9), True),
    ("kill", (SUPERVISOR + 1, 9), False),
    ("kill", (0, 9), False),  # the command's own group: Landlock skips systrace
    ("prlimit64", (SUPERVISOR, 0), True),
    ("prlimit64", (0, 0), False),
    ("sched_setaffinity", (SUPERVISOR,), True),
    ("setpriority", (0, SUPERVISOR, 19), True),  # PRIO_PROCESS
    ("setpriority", (1, GROUP, 19), False),  # PRIO_PGRP: routed, done without systrace (below)
    ("setpriority", (1, 0, 19), False),  # ... as the caller's own group
    ("setpriority", (2, 1000, 19), False),  # PRIO_USER
    ("setpriority", (0, 0, 19), False),  # itself
    ("ioprio_set", (1, SUPERVISOR, 0), True),
    ("ioprio_set", (3, 1000, 0), False),
    ("fcntl", (3, 8, SUPERVISOR), True),  # F_SETOWN
    ("fcntl", (3, 8, 0), False),
    ("kcmp", (1, SUPERVISOR, 0), True),
    ("perf_event_open", (0, SUPERVISOR), True),
    ("getpgid", (SUPERVISOR,), True),
    ("getsid", (SUPERVISOR,), True),
    ("getpgid", (0,), False),
    ("sched_getaffinity", (SUPERVISOR, 128, 0), True),
    ("sched_getaffinity", (0, 128, 0), False),
    ("getpriority", (0, SUPERVISOR), True),  # PRIO_PROCESS
    ("getpriority", (2, 1000), False),  # PRIO_USER only reads
    ("ioprio_get", (1, SUPERVISOR), True),
    ("clock_gettime", (((~SUPERVISOR << 3) | 2) & 0xFFFFFFFF, 0), True),  # its CPU-time clock: EINVAL
    ("timer_create", (((~SUPERVISOR << 3) | 6) & 0xFFFFFFFF, 0), True),  # a thread's
    ("clock_gettime", (2, 0), False),  # CLOCK_PROCESS_CPUTIME_ID
])
def test_refused_whatever_the_policy(name: str, args: tuple[int, ...], refused: bool) -> None:
    plan = _plan_permitting_everything()
    action = evaluate(plan, SYSCALLS[name], args)
    assert (action in (EPERM, ESRCH, abi.ret_errno(errno.EINVAL))) == refused, hex(action)
    compiled = kfilter.compile_plan(plan)  # and the BPF program the kernel runs agrees
    assert bpf.run(compiled, bpf.seccomp_data(SYSCALLS[name], args=args)) == action


@pytest.mark.parametrize(("name", "args"), [
    ("setpriority", (1, GROUP, 19)), ("setpriority", (1, 0, 19)), ("setpriority", (2, 1000, 19)),
    ("getpriority", (1, 0)), ("getpriority", (2, 0)), ("ioprio_set", (2, 0, 0)), ("ioprio_set", (3, 1000, 0)),
    ("ioprio_get", (2, GROUP)), ("ioprio_get", (3, 0)),
])
def test_group_and_user_priorities_go_to_systrace(name: str, args: tuple[int, ...]) -> None:
    """By process group or user they reach systrace's threads natively: systrace does
    them over the others (kernel/group_priority.py), whatever the policy permits."""
    plan = _plan_permitting_everything()
    assert evaluate(plan, SYSCALLS[name], args) == abi.RET_USER_NOTIF
    assert bpf.run(kfilter.compile_plan(plan), bpf.seccomp_data(SYSCALLS[name], args=args)) == abi.RET_USER_NOTIF


def test_without_landlock_group_and_broadcast_kills_are_refused() -> None:
    plan = base_plan(abi.RET_ALLOW)
    protect_supervisor(plan, SUPERVISOR, GROUP, signals_scoped=False)
    assert evaluate(plan, SYSCALLS["kill"], (-1 & 0xFFFFFFFF, 9)) == EPERM
    assert evaluate(plan, SYSCALLS["kill"], (-GROUP & 0xFFFFFFFF, 9)) == EPERM
    assert evaluate(plan, SYSCALLS["fcntl"], (3, 8, -GROUP & 0xFFFFFFFF)) == EPERM
