"""What every filter does whatever the mode (documented in README "Always decided")."""

from __future__ import annotations

import errno

from .kernel import abi
from .kernel.filter import FilterPlan
from .kernel.syscalls_x86_64 import SYSCALLS

# Cannot usefully be refused, and must work even if the supervisor is gone.
ALWAYS_ALLOWED = ("exit", "exit_group", "rt_sigreturn", "restart_syscall")
# io_uring performs opens, connects... without system calls: seccomp never sees them.
ALWAYS_REFUSED = {"io_uring_setup": errno.ENOSYS, "io_uring_enter": errno.ENOSYS, "io_uring_register": errno.ENOSYS}
# The supervisor must see these: exec changes the binary and its policy.
ALWAYS_NOTIFIED = ("execve", "execveat")


def base_plan(default: int) -> FilterPlan:
    plan = FilterPlan(default=default)
    apply_baseline(plan)
    return plan


def apply_baseline(plan: FilterPlan) -> None:
    """Force the fixed decisions into a plan (they override anything a policy says)."""
    for name in ALWAYS_ALLOWED:
        plan.actions[SYSCALLS[name]] = abi.RET_ALLOW
        plan.arg_rules.pop(SYSCALLS[name], None)
    for name, code in ALWAYS_REFUSED.items():
        plan.actions[SYSCALLS[name]] = abi.ret_errno(code)
        plan.arg_rules.pop(SYSCALLS[name], None)
    for name in ALWAYS_NOTIFIED:
        plan.actions[SYSCALLS[name]] = abi.RET_USER_NOTIF
        plan.arg_rules.pop(SYSCALLS[name], None)
