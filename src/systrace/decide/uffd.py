"""userfaultfd is refused unless the process's policy names it.

Memory registered with a userfaultfd blocks whoever touches it until the fault is served,
process_vm_readv included: a tracee could point a system call's argument at such a page
and stall systrace's one thread, and with it every supervised process. So systrace does
not read tracee memory with a bound; it refuses the ways to get a userfaultfd, the
`userfaultfd` call and `ioctl(USERFAULTFD_IOC_NEW)` on /dev/userfaultfd, unless the
binary's policy has a rule for `userfaultfd` (then its author accepts the risk:
SECURITY.md). Both are routed to the supervisor in every mode for this check.

fanotify permission events (`fanotify_init` with FAN_CLASS_CONTENT or
FAN_CLASS_PRE_CONTENT, root only) do the same to systrace's own opens and reads of a
marked file: they wait until the tracee answers. They are refused in the same way unless
the policy has a rule for `fanotify_init` (so -A never learns them)."""

from __future__ import annotations

import errno

from ..kernel import abi
from ..kernel.filter import ArgRule, ArgTest, FilterPlan
from ..kernel.syscalls_x86_64 import SYSCALLS
from . import DENY, PASSES, Decision

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from ..call import Call
    from ..policy.store import Store

USERFAULTFD_IOC_NEW = 0xAA00  # _IO(0xAA, 0x00)
USERFAULTFD = SYSCALLS["userfaultfd"]
IOCTL = SYSCALLS["ioctl"]
REASON = "userfaultfd could stall systrace's reads of tracee memory: refused unless the policy names it"
_NEW = ArgRule((ArgTest(1, "eq", USERFAULTFD_IOC_NEW, width=32),), abi.RET_USER_NOTIF)
FANOTIFY_INIT = SYSCALLS["fanotify_init"]
FAN_PERMISSION_CLASSES = 0x4 | 0x8  # FAN_CLASS_CONTENT, FAN_CLASS_PRE_CONTENT
FANOTIFY_REASON = ("fanotify permission events could stall systrace's own opens: refused unless the policy names "
                   "fanotify_init")
_PERMISSION_CLASS = ArgRule((ArgTest(0, "any_set", 0, mask=FAN_PERMISSION_CLASSES, width=32),), abi.RET_USER_NOTIF)


def route_userfaultfd(plan: FilterPlan) -> None:
    """The filter sends both ways of getting a userfaultfd to the supervisor, unless it
    refuses them already."""
    if _decided_by_kernel_alone(plan, USERFAULTFD) is None:
        plan.actions[USERFAULTFD] = abi.RET_USER_NOTIF
        plan.arg_rules.pop(USERFAULTFD, None)
    if _decided_by_kernel_alone(plan, IOCTL) is None:
        plan.arg_rules[IOCTL] = (_NEW,) + tuple(rule for rule in plan.arg_rules.get(IOCTL, ()) if rule != _NEW)
    if _decided_by_kernel_alone(plan, FANOTIFY_INIT) is None:
        plan.arg_rules[FANOTIFY_INIT] = (_PERMISSION_CLASS,) + tuple(
            rule for rule in plan.arg_rules.get(FANOTIFY_INIT, ()) if rule != _PERMISSION_CLASS)


def _decided_by_kernel_alone(plan: FilterPlan, nr: int) -> int | None:
    """The action when the kernel always refuses the call (an errno, a kill), else None."""
    action = plan.action_of(nr)
    if nr in plan.arg_rules or action in (abi.RET_ALLOW, abi.RET_USER_NOTIF):
        return None
    return action


class UffdGuard:
    reads_arguments_of: frozenset[str] = frozenset()  # the raw ioctl request only

    def __init__(self, store: Store | None = None):
        self.store = store

    def by_name(self, exe: str, nr: int) -> str | None:
        return None if nr in (USERFAULTFD, IOCTL, FANOTIFY_INIT) else PASSES  # their flags or request decide

    def decide(self, call: Call) -> Decision | None:
        if call.nr == USERFAULTFD or call.nr == IOCTL and call.args[1] & 0xFFFFFFFF == USERFAULTFD_IOC_NEW:
            stored = self.store.find(call.exe) if self.store is not None else None
            if stored is not None and stored.policy.rules_for("userfaultfd"):
                return None  # named: the policy decides
            call.reason = REASON
            return Decision(DENY, errno.EPERM, log=True, source="userfaultfd")
        if call.nr == FANOTIFY_INIT and call.args[0] & FAN_PERMISSION_CLASSES:
            stored = self.store.find(call.exe) if self.store is not None else None
            if stored is not None and stored.policy.rules_for("fanotify_init"):
                return None
            call.reason = FANOTIFY_REASON
            return Decision(DENY, errno.EPERM, log=True, source="fanotify")
        return None
