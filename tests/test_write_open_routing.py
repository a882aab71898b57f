"""Every open that may write reaches systrace whatever the policy (decide/protected.py
route_write_opens), read on the compiled BPF program (bpf.run, the kernel's semantics)."""

from __future__ import annotations

import errno
import os

import pytest

from systrace.baseline import base_plan
from systrace.decide import protected
from systrace.kernel import abi, bpf
from systrace.kernel.filter import compile_plan
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
    for call in ("creat", "openat2"):  # creat always writes; openat2's flags are in memory
        assert _verdict(plan, call, os.O_RDONLY) == abi.RET_USER_NOTIF


def test_refused_opens_stay_refused() -> None:
    plan = _policy_plan("native-openat: deny[eacces]")
    protected.route_write_opens(plan)
    assert _verdict(plan, "openat", os.O_WRONLY) == abi.ret_errno(errno.EACCES)


@pytest.mark.parametrize(("name", "args", "routed"), [
    ("openat", (0, 0, os.O_RDONLY), False), ("openat", (0, 0, os.O_WRONLY), True), ("open", (0, os.O_RDWR), True),
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
