"""Every open that may write reaches systrace whatever the policy (decide/protected.py
route_write_opens), read on the compiled BPF program (bpf.run, the kernel's semantics)."""

from __future__ import annotations

import errno
import os

import pytest

from systrace.baseline import base_plan
from systrace.decide import protected
from systrace.kernel import abi, bpf
from systrace.kernel.filter import ArgRule, ArgTest, FilterPlan, compile_plan, evaluate
from systrace.kernel.syscalls_x86_64 import SYSCALLS
from systrace.policy.compile import kernel_plan
from systrace.wiring import make_parser


def _verdict(plan, name: str, flags: int) -> int:
    args = [0] * 6
    args[{"open": 1, "openat": 2}.get(name, 1)] = flags
    return bpf.run(compile_plan(plan), bpf.seccomp_data(SYSCALLS[name], args=tuple(args)))


def _policy_plan(rule: str):
    return kernel_plan(make_parser().parse_file(f"Policy: /bin/p, Emulation: native\n\t{rule}\n").policies)


@pytest.mark.parametrize("plan_of", [lambda: base_plan(abi.RET_ALLOW), lambda: _policy_plan("native-openat: permit"),
                                     lambda: _policy_plan("native-open: permit")],
                         ids=["permit-all", "plain-permit-openat", "plain-permit-open"])
def test_write_opens_are_routed_and_read_opens_stay_in_the_kernel(plan_of) -> None:
    plan = plan_of()
    protected.route_write_opens(plan)
    for call in ("open", "openat"):
        if plan.action_of(SYSCALLS[call]) != abi.RET_ALLOW and SYSCALLS[call] not in plan.arg_rules:
            continue  # this plan sends every such call to systrace anyway
        assert _verdict(plan, call, os.O_RDONLY | os.O_CLOEXEC) == abi.RET_ALLOW
        assert _verdict(plan, call, 1 << 32) == abi.RET_ALLOW  # the kernel reads the low word only: a read open
        for flags in (os.O_WRONLY, os.O_RDWR | os.O_CLOEXEC, os.O_CREAT, os.O_TRUNC, os.O_WRONLY | (1 << 32)):
            assert _verdict(plan, call, flags) == abi.RET_USER_NOTIF, (call, flags)
        for flags in NEW_FILE_ONLY:  # can only make a new file: left to the kernel (as the plan says)
            assert _verdict(plan, call, flags) == abi.RET_ALLOW, (call, flags)
    for call in ("creat", "openat2"):  # creat always writes; openat2's flags are in memory
        assert _verdict(plan, call, os.O_RDONLY) == abi.RET_USER_NOTIF


C, E, W, TMP = os.O_CREAT, os.O_EXCL, os.O_WRONLY, os.O_TMPFILE
# opens that cannot open an existing file: O_CREAT|O_EXCL (EEXIST on any existing name) and O_TMPFILE
NEW_FILE_ONLY = (C | E | W, C | E | os.O_RDWR | os.O_TRUNC | os.O_CLOEXEC, C | E, TMP | os.O_RDWR, TMP | W | E,
                 C | E | W | (1 << 32))
# every other combination of the flags that matter, with and without write access
ALL_SHAPES = [access | extra for access in (os.O_RDONLY, W, os.O_RDWR)
              for extra in (0, C, E, os.O_TRUNC, C | E, C | os.O_TRUNC, E | os.O_TRUNC, C | E | os.O_TRUNC, TMP, TMP | E)]


def _own_rules_plan() -> FilterPlan:
    """openat permitted, but refused from descriptor 7 (argument rules of the plan's own)."""
    return FilterPlan(abi.RET_ALLOW, arg_rules={SYSCALLS["openat"]: (
        ArgRule((ArgTest(0, "eq", 7, width=32),), abi.ret_errno(errno.EPERM)),)})


@pytest.mark.parametrize("flags", ALL_SHAPES)
def test_the_filter_and_the_supervisor_agree_on_every_flag_shape(flags: int) -> None:
    """A write open is routed exactly when it may open an existing file for writing: the
    compiled filter, the plan's meaning and routed_write_open agree, with a plan of argument
    rules of its own kept behind the routing."""
    may_write = protected.may_open_existing_for_writing(flags)
    assert may_write is (bool(flags & (W | os.O_RDWR | os.O_TRUNC | C))
                         and not (flags & C and flags & E) and not flags & (TMP & ~os.O_DIRECTORY))
    for plan, own in ((base_plan(abi.RET_ALLOW), abi.RET_ALLOW), (_own_rules_plan(), abi.ret_errno(errno.EPERM))):
        protected.route_write_opens(plan)
        assert protected.routed_write_open("openat", (0, 0, flags, 0, 0, 0)) is may_write
        expected = abi.RET_USER_NOTIF if may_write else own  # else: what the plan says without the routing
        args = (7, 0, flags, 0, 0, 0)
        assert bpf.run(compile_plan(plan), bpf.seccomp_data(SYSCALLS["openat"], args=args)) == expected
        assert evaluate(plan, SYSCALLS["openat"], args) == expected


def test_a_new_file_open_still_gets_the_plans_own_rules() -> None:
    plan = _own_rules_plan()
    protected.route_write_opens(plan)
    assert bpf.run(compile_plan(plan), bpf.seccomp_data(SYSCALLS["openat"], args=(7, 0, C | E | W, 0, 0, 0))) \
        == abi.ret_errno(errno.EPERM)
    assert bpf.run(compile_plan(plan), bpf.seccomp_data(SYSCALLS["openat"], args=(7, 0, W, 0, 0, 0))) \
        == abi.RET_USER_NOTIF  # the routing first


def test_routing_twice_changes_nothing() -> None:
    plan = base_plan(abi.RET_ALLOW)
    protected.route_write_opens(plan)
    once = FilterPlan(plan.default, dict(plan.actions), dict(plan.arg_rules))
    protected.route_write_opens(plan)
    assert plan == once


def test_refused_opens_stay_refused() -> None:
    plan = _policy_plan("native-openat: deny[eacces]")
    protected.route_write_opens(plan)
    assert _verdict(plan, "openat", os.O_WRONLY) == abi.ret_errno(errno.EACCES)


@pytest.mark.parametrize(("name", "args", "routed"), [
    ("openat", (0, 0, os.O_RDONLY), False), ("openat", (0, 0, os.O_WRONLY), True), ("open", (0, os.O_RDWR), True),
    ("openat", (0, 0, os.O_WRONLY | os.O_CREAT | os.O_EXCL), False), ("open", (0, os.O_RDWR | os.O_TMPFILE), False),
    ("open", (0, os.O_WRONLY | os.O_EXCL), True), ("open", (0, os.O_CREAT | os.O_TRUNC), True),
    ("open", (0, os.O_RDONLY), False), ("creat", (0, 0o644), True), ("openat2", (0, 0, 0, 24), True),
    ("stat", (0, 0), False)])
def test_the_supervisor_knows_which_opens_were_routed(name: str, args: tuple[int, ...], routed: bool) -> None:
    assert protected.routed_write_open(name, args + (0,) * (6 - len(args))) is routed


def test_opener_checked_files_are_continued() -> None:
    """A write to a user namespace map is checked against who opened it: systrace must not."""
    assert protected.opener_checked("/proc/<own process>/uid_map")
    assert protected.opener_checked("/proc/123/setgroups")
    assert not protected.opener_checked("/proc/sys/kernel/ns_last_pid")
    assert not protected.opener_checked("/tmp/uid_map")
