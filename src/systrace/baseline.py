"""What every filter does whatever the mode (documented in README "Always decided").
Which calls get each fixed decision is read from the system call facts table (`kernel`)."""

from __future__ import annotations

import errno

from .facts import names_with
from .kernel import abi
from .kernel.filter import ArgRule, ArgTest, FilterPlan
from .kernel.syscalls_x86_64 import SYSCALLS

# Cannot usefully be refused, and must work even if the supervisor is gone.
ALWAYS_ALLOWED = names_with(kernel="allowed")
# Cannot fail, so programs do not check them: a refused getpid() returns -1 and the
# program goes on to kill(-1, SIGABRT) -- every process it may signal.
NEVER_FAIL = names_with(kernel="never-fail")
# Descriptor and signal plumbing that grants no access, and whose spurious failure
# programs never check: a notified close() hit by a signal before the supervisor reads
# it returns EINTR *without closing*, so a shell keeps a pipe's write end open and the
# reader waits forever.
PLUMBING = names_with(kernel="plumbing")
# io_uring performs opens, connects... without system calls: seccomp never sees them.
ALWAYS_REFUSED = {name: errno.ENOSYS for name in names_with(kernel="refused") if name != "clone3"}
# The supervisor must see these: exec changes the binary and its policy; chroot the root
# every later path of the caller is checked below (decide/roots.py: only checked roots).
ALWAYS_NOTIFIED = names_with(kernel="notified")
# Creating a process or thread grants nothing (the child is under the same filter, its
# exec is checked), and a notified fork is unsafe: a signal that arrives before the
# supervisor reads the notification turns it into EINTR, which a native fork never
# returns ("sh: Cannot fork"). So fork and vfork, and clone without namespace flags, are
# decided in the kernel; clone3 hides its flags in memory, so it gets ENOSYS and glibc
# falls back to clone. A clone that creates namespaces still goes to the policy.
PROCESS_CREATION = tuple(name for name in names_with(kernel="process") if name != "clone")
CLONE_NAMESPACE_FLAGS = 0x7E020000  # NEWNS NEWCGROUP NEWUTS NEWIPC NEWUSER NEWPID NEWNET
ALWAYS_REFUSED_CLONE3 = errno.ENOSYS
# Refused in the kernel whatever a policy says (SECURITY.md, "Out of reach"): a seccomp
# listener of the tracee's own (it would answer its own calls once systrace's listener is
# gone), PR_SET_MM (it rewrites /proc/PID/exe, the binary a policy is chosen by) and
# TIOCSTI (typing into systrace's terminal: a fake Ctrl-Z stops systrace, a fake line
# reaches the shell after the run). Each is (syscall, tests, errno).
SECCOMP_SET_MODE_FILTER = 1
PR_SET_MM = 35
TIOCSTI = 0x5412
KERNEL_REFUSED = (
    ("seccomp", (ArgTest(0, "eq", SECCOMP_SET_MODE_FILTER, width=32),
                 ArgTest(1, "any_set", 0, mask=abi.FILTER_FLAG_NEW_LISTENER, width=32)), errno.EPERM),
    ("prctl", (ArgTest(0, "eq", PR_SET_MM, width=32),), errno.EPERM),
    ("ioctl", (ArgTest(1, "eq", TIOCSTI, width=32),), errno.EPERM),
)


def base_plan(default: int) -> FilterPlan:
    plan = FilterPlan(default=default)
    apply_baseline(plan)
    return plan


def apply_baseline(plan: FilterPlan) -> None:
    """Force the fixed decisions into a plan (they override anything a policy says)."""
    clone = SYSCALLS["clone"]
    plain_clone = ArgRule((ArgTest(0, "masked_eq", 0, mask=CLONE_NAMESPACE_FLAGS),), abi.RET_ALLOW)
    plan.arg_rules[clone] = (plain_clone,) + tuple(r for r in plan.arg_rules.get(clone, ()) if r != plain_clone)
    plan.actions[SYSCALLS["clone3"]] = abi.ret_errno(ALWAYS_REFUSED_CLONE3)
    plan.arg_rules.pop(SYSCALLS["clone3"], None)
    for name in ALWAYS_ALLOWED + NEVER_FAIL + PLUMBING + PROCESS_CREATION:
        plan.actions[SYSCALLS[name]] = abi.RET_ALLOW
        plan.arg_rules.pop(SYSCALLS[name], None)
    for name, code in ALWAYS_REFUSED.items():
        plan.actions[SYSCALLS[name]] = abi.ret_errno(code)
        plan.arg_rules.pop(SYSCALLS[name], None)
    for name in ALWAYS_NOTIFIED:
        plan.actions[SYSCALLS[name]] = abi.RET_USER_NOTIF
        plan.arg_rules.pop(SYSCALLS[name], None)
    for name, tests, code in KERNEL_REFUSED:
        _guard(plan, SYSCALLS[name], ArgRule(tests, abi.ret_errno(code)))


def _guard(plan: FilterPlan, nr: int, guard: ArgRule) -> None:
    """Put `guard` first among the call's argument rules (first match wins), once."""
    plan.arg_rules[nr] = (guard,) + tuple(r for r in plan.arg_rules.get(nr, ()) if r != guard)


# Calls that name a process by its pid, and the argument holding it: aimed at the
# supervisor they are refused in the kernel, for root tracees too. Signals, ptrace and
# every call that checks ptrace access (pidfd_getfd, process_vm_*, kcmp, perf_event_open,
# /proc/PID/mem...) are also refused by the Landlock domain the command runs in, for
# systrace's helpers as well (kernel/landlock.py); the scheduler and rlimit calls are not
# Landlock's business, so their pid is checked here.
TARGETS_A_PROCESS = {"kill": 0, "tkill": 0, "tgkill": 0, "rt_sigqueueinfo": 0, "rt_tgsigqueueinfo": 0,
                     "pidfd_open": 0, "process_vm_readv": 0, "process_vm_writev": 0, "ptrace": 1,
                     "prlimit64": 0, "sched_setaffinity": 0, "sched_setscheduler": 0, "sched_setparam": 0,
                     "sched_setattr": 0, "migrate_pages": 0, "move_pages": 0, "get_robust_list": 0,
                     "kcmp": 0, "perf_event_open": 1}
# Calls that read another process's state by its pid (scheduling, affinity, process group,
# session): aimed at systrace or a helper they answer ESRCH, as for a pid naming nothing
# (tests/escape/test_pid_naming_audit.py has the audit of every call taking a pid).
READS_A_PROCESS = {"getpgid": 0, "getsid": 0, "sched_getparam": 0, "sched_getscheduler": 0,
                   "sched_getaffinity": 0, "sched_getattr": 0, "sched_rr_get_interval": 0}
# A clock id below 0 is the CPU-time clock of a process or thread, its pid encoded as
# ~pid << 3 (the low 3 bits: which clock, per thread or not): any process of the PID
# namespace may read it, time it, sleep on it. For no such process the kernel says EINVAL.
CPU_CLOCK_CALLS = ("clock_gettime", "clock_getres", "clock_nanosleep", "timer_create")
CPU_CLOCK_BIT, CPU_CLOCK_PID_MASK = 0x80000000, 0xFFFFFFF8
KCMP_SECOND_PID = 1
# which/who pairs: PRIO_PROCESS / IOPRIO_WHO_PROCESS name a pid, PRIO_PGRP / IOPRIO_WHO_PGRP
# a process group; PRIO_USER / IOPRIO_WHO_USER every process of a user. The group and user
# forms reach systrace natively: they are routed, and systrace does them over the same
# threads minus its own (kernel/group_priority.py).
PRIO_PROCESS, PRIO_PGRP, PRIO_USER = 0, 1, 2
IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER = 1, 2, 3
F_SETOWN = 8


def protect_supervisor(plan: FilterPlan, supervisor_pid: int, supervisor_pgid: int | None = None,
                       signals_scoped: bool = False) -> None:
    """Answer ESRCH to every call that names systrace's pid (as if no process had it), and
    refuse (EPERM), when no Landlock domain scopes signals, those naming its process group
    (`kill(-pgid)` and `F_SETOWN -pgid`, which then also refuses the command's own group
    signals: it shares the group with systrace, as natively it shares it with its job)."""
    refuse = abi.ret_errno(errno.EPERM)
    absent = abi.ret_errno(errno.ESRCH)

    def pid_is(index: int, value: int) -> ArgTest:
        return ArgTest(index, "eq", value & 0xFFFFFFFF, width=32)

    named: list[tuple[str, tuple[ArgTest, ...]]] = [(name, (pid_is(index, supervisor_pid),))
                                                     for name, index in (TARGETS_A_PROCESS | READS_A_PROCESS).items()]
    named.append(("kcmp", (pid_is(KCMP_SECOND_PID, supervisor_pid),)))
    for call in ("setpriority", "getpriority"):
        named.append((call, (pid_is(0, PRIO_PROCESS), pid_is(1, supervisor_pid))))
    for call in ("ioprio_set", "ioprio_get"):
        named.append((call, (pid_is(0, IOPRIO_WHO_PROCESS), pid_is(1, supervisor_pid))))
    named.append(("fcntl", (pid_is(1, F_SETOWN), pid_is(2, supervisor_pid))))
    clock_of_systrace = ArgTest(0, "masked_eq", cpu_clock(supervisor_pid), mask=CPU_CLOCK_PID_MASK, width=32)
    guards: list[tuple[str, tuple[ArgTest, ...]]] = []
    if supervisor_pgid is not None and not signals_scoped:
        guards.append(("kill", (pid_is(0, -supervisor_pgid),)))
        guards.append(("kill", (pid_is(0, -1),)))  # every process the caller may signal
        guards.append(("fcntl", (pid_is(1, F_SETOWN), pid_is(2, -supervisor_pgid))))
    rules = [(name, ArgRule(tests, absent)) for name, tests in named]
    rules += [(name, ArgRule((clock_of_systrace,), abi.ret_errno(errno.EINVAL))) for name in CPU_CLOCK_CALLS]
    rules += [(name, ArgRule(tests, refuse)) for name, tests in guards]
    rules += [(name, ArgRule(tests, abi.RET_USER_NOTIF)) for name, tests in _naming_another_process()
              if _may_run(plan, SYSCALLS[name])]
    for name, rule in reversed(rules):
        _guard(plan, SYSCALLS[name], rule)


# Calls that act on another process checked only by uid or a capability (not by
# ptrace_may_access, which the Landlock domain refuses towards systrace's helpers): they
# go to the supervisor whenever they name a process other than the caller, so it can
# refuse those naming a helper it started after this filter was built (their pids are
# not known yet). perf_event_open's pid -1 (every process on a CPU) only counts.
PERF_FLAG_PID_CGROUP = 1 << 2


def _naming_another_process() -> list[tuple[str, tuple[ArgTest, ...]]]:
    def is_(index: int, value: int) -> ArgTest:
        return ArgTest(index, "eq", value & 0xFFFFFFFF, width=32)

    def not_(index: int, value: int) -> ArgTest:
        return ArgTest(index, "ne", value & 0xFFFFFFFF, width=32)

    own_pid_calls = ("sched_setaffinity", "sched_setscheduler", "sched_setparam", "sched_setattr", *READS_A_PROCESS)
    routed: list[tuple[str, tuple[ArgTest, ...]]] = [(name, (not_(0, 0),)) for name in own_pid_calls]
    routed.append(("prlimit64", (not_(0, 0), ArgTest(2, "ne", 0))))  # with a new limit
    for name in ("setpriority", "getpriority"):
        routed.append((name, (is_(0, PRIO_PROCESS), not_(1, 0))))
        routed += [(name, (is_(0, which),)) for which in (PRIO_PGRP, PRIO_USER)]  # systrace's included
    for name in ("ioprio_set", "ioprio_get"):
        routed.append((name, (is_(0, IOPRIO_WHO_PROCESS), not_(1, 0))))
        routed += [(name, (is_(0, which),)) for which in (IOPRIO_WHO_PGRP, IOPRIO_WHO_USER)]
    routed.append(("perf_event_open", (not_(1, 0), not_(1, -1))))
    routed.append(("pidfd_open", ()))  # its pid is never 0
    routed.append(("capget", ()))  # its pid is in memory: systrace makes the call (kernel/capget_for.py)
    another_cpu_clock = (ArgTest(0, "any_set", 0, mask=CPU_CLOCK_BIT, width=32),
                         ArgTest(0, "ne", cpu_clock(0), mask=CPU_CLOCK_PID_MASK, width=32))
    routed += [(name, another_cpu_clock) for name in CPU_CLOCK_CALLS]
    return routed


def cpu_clock(pid: int) -> int:
    """The clock ids of a process's CPU-time clocks, their low 3 bits cleared (pid 0: the caller)."""
    return (~pid << 3) & CPU_CLOCK_PID_MASK


def absent_errno(nr: int) -> int:
    """What the kernel answers a call of process_named()'s naming a pid no process has."""
    return errno.EINVAL if _NAMED_BY.get(nr) in CPU_CLOCK_CALLS else errno.ESRCH


def _may_run(plan: FilterPlan, nr: int) -> bool:
    """Not refused outright by the plan: the kernel might run it."""
    return nr in plan.arg_rules or plan.action_of(nr) in (abi.RET_ALLOW, abi.RET_USER_NOTIF)


def process_named(nr: int, args: tuple[int, ...]) -> int | None:
    """The pid a routed call acts on when it names another process than the caller (as
    the filter routes them, above), else None."""
    name = _NAMED_BY.get(nr)
    if name is None or name == "capget":  # (its pid is in memory)
        return None
    if name in ("setpriority", "getpriority", "ioprio_set", "ioprio_get"):
        which = PRIO_PROCESS if name.endswith("priority") else IOPRIO_WHO_PROCESS
        pid = abi.s32(args[1]) if abi.s32(args[0]) == which else 0
    elif name == "perf_event_open":
        pid = 0 if args[4] & PERF_FLAG_PID_CGROUP else abi.s32(args[1])
    elif name == "prlimit64" and not args[2]:
        pid = 0  # only reads the limits
    elif name in CPU_CLOCK_CALLS:
        clock = abi.s32(args[0])
        pid = ~(clock >> 3) if clock < 0 else 0
    else:
        pid = abi.s32(args[0])
    return pid if pid > 0 else None


_NAMED_BY = {SYSCALLS[name]: name for name, _ in _naming_another_process()}
NAMING_A_PROCESS = frozenset(_NAMED_BY)  # calls process_named() may find a pid in


def never_notified() -> frozenset[str]:
    """System calls the filter always decides itself: they never reach the supervisor."""
    plan = base_plan(abi.RET_USER_NOTIF)
    names = {name for name, nr in SYSCALLS.items() if nr in plan.actions and plan.actions[nr] != abi.RET_USER_NOTIF}
    return frozenset(names)
