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
# The supervisor must see these: exec changes the binary and its policy.
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


# Calls that name a process: aimed at the supervisor they are refused in the kernel, so a
# tracee cannot signal it, open a pidfd on it, trace it or touch its memory.
TARGETS_A_PROCESS = {"kill": 0, "tkill": 0, "tgkill": 0, "rt_sigqueueinfo": 0, "rt_tgsigqueueinfo": 0,
                     "pidfd_open": 0, "process_vm_readv": 0, "process_vm_writev": 0, "ptrace": 1}


def protect_supervisor(plan: FilterPlan, supervisor_pid: int) -> None:
    for name, index in TARGETS_A_PROCESS.items():
        nr = SYSCALLS[name]
        guard = ArgRule((ArgTest(index, "eq", supervisor_pid, width=32),), abi.ret_errno(errno.EPERM))
        plan.arg_rules[nr] = (guard,) + tuple(r for r in plan.arg_rules.get(nr, ()) if r != guard)


def never_notified() -> frozenset[str]:
    """System calls the filter always decides itself: they never reach the supervisor."""
    plan = base_plan(abi.RET_USER_NOTIF)
    names = {name for name, nr in SYSCALLS.items() if nr in plan.actions and plan.actions[nr] != abi.RET_USER_NOTIF}
    return frozenset(names)
