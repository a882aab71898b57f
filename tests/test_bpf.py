"""The BPF assembler, the filter compiler, the disassembler and the emulator (pure)."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from systrace.baseline import ALWAYS_ALLOWED, ALWAYS_NOTIFIED, ALWAYS_REFUSED, base_plan
from systrace.kernel import abi, bpf
from systrace.kernel.filter import ArgRule, ArgTest, FilterPlan, compile_plan, evaluate
from systrace.kernel.syscalls_x86_64 import SYSCALLS

ACTIONS = [abi.RET_ALLOW, abi.RET_USER_NOTIF, abi.RET_KILL_PROCESS, abi.ret_errno(errno.EPERM), abi.ret_errno(errno.ENOENT)]


def test_syscall_table_is_complete_and_consistent() -> None:
    assert SYSCALLS["read"] == 0 and SYSCALLS["openat"] == 257 and SYSCALLS["openat2"] == 437
    assert SYSCALLS["io_uring_setup"] == 425 and SYSCALLS["file_setattr"] == 469
    assert len(set(SYSCALLS.values())) == len(SYSCALLS)
    assert len(SYSCALLS) > 370


def test_foreign_arch_is_killed_and_x32_refused() -> None:
    program = compile_plan(base_plan(abi.RET_ALLOW))
    assert bpf.run(program, bpf.seccomp_data(5, arch=abi.AUDIT_ARCH_I386)) == abi.RET_KILL_PROCESS
    assert bpf.run(program, bpf.seccomp_data(0x40000000 | 39)) == abi.ret_errno(errno.ENOSYS)
    assert bpf.run(program, bpf.seccomp_data(-1)) == abi.ret_errno(errno.ENOSYS)
    assert bpf.run(program, bpf.seccomp_data(39)) == abi.RET_ALLOW


def test_baseline_wins_in_every_mode() -> None:
    for default in (abi.RET_ALLOW, abi.RET_USER_NOTIF, abi.ret_errno(errno.EPERM)):
        program = compile_plan(base_plan(default))
        for name in ALWAYS_ALLOWED:
            assert bpf.run(program, bpf.seccomp_data(SYSCALLS[name])) == abi.RET_ALLOW
        for name, code in ALWAYS_REFUSED.items():
            assert bpf.run(program, bpf.seccomp_data(SYSCALLS[name])) == abi.ret_errno(code)
        for name in ALWAYS_NOTIFIED:
            assert bpf.run(program, bpf.seccomp_data(SYSCALLS[name])) == abi.RET_USER_NOTIF
        assert bpf.run(program, bpf.seccomp_data(SYSCALLS["getcwd"])) == default


def test_disassembly_reads_as_expected() -> None:
    plan = FilterPlan(default=abi.RET_ALLOW, actions={SYSCALLS["openat"]: abi.RET_USER_NOTIF})
    text = "\n".join(bpf.disassemble(compile_plan(plan)))
    assert "   0: ld [arch]" in text
    assert "jeq #0xc000003e 3 2" in text
    assert "ret KILL_PROCESS" in text
    assert "jge #0x40000000" in text
    assert "ret ERRNO(ENOSYS)" in text
    assert "jge #0x101" in text and "jge #0x102" in text
    assert "ret USER_NOTIF" in text


def test_dispatch_is_logarithmic() -> None:
    """Every syscall its own action: still a short path for each (binary search)."""
    plan = FilterPlan(default=abi.RET_ALLOW, actions={nr: ACTIONS[nr % len(ACTIONS)] for nr in range(0, 470)})
    program = compile_plan(plan)
    for nr in range(0, 470):
        assert bpf.run(program, bpf.seccomp_data(nr)) == ACTIONS[nr % len(ACTIONS)]
    assert len(program) > 255  # long jumps were needed and resolved


def test_long_arg_blocks_need_trampolines() -> None:
    rules = tuple(ArgRule((ArgTest(0, "eq", value),), abi.ret_errno(1 + value % 100)) for value in range(200))
    plan = FilterPlan(default=abi.RET_USER_NOTIF, arg_rules={SYSCALLS["ioctl"]: rules, SYSCALLS["fcntl"]: rules[:3]})
    program = compile_plan(plan)
    for value in (0, 7, 199, 200, 1 << 40):
        for nr in (SYSCALLS["ioctl"], SYSCALLS["fcntl"], SYSCALLS["read"]):
            data = bpf.seccomp_data(nr, args=(value,))
            assert bpf.run(program, data) == evaluate(plan, nr, (value,))


def test_int_arguments_ignore_the_upper_half() -> None:
    """The kernel truncates an int argument: a test on it must too, or 1<<32|PROT_EXEC passes."""
    plan = FilterPlan(default=abi.RET_ALLOW,
                      arg_rules={SYSCALLS["mmap"]: (ArgRule((ArgTest(2, "any_set", 0, mask=4, width=32),), abi.RET_KILL_PROCESS),)})
    program = compile_plan(plan)
    assert bpf.run(program, bpf.seccomp_data(SYSCALLS["mmap"], args=(0, 4096, (1 << 32) | 4))) == abi.RET_KILL_PROCESS
    assert bpf.run(program, bpf.seccomp_data(SYSCALLS["mmap"], args=(0, 4096, 3))) == abi.RET_ALLOW


def test_bad_plans_are_rejected() -> None:
    with pytest.raises(ValueError):
        ArgTest(6, "eq", 0)
    with pytest.raises(ValueError):
        ArgTest(0, "like", 0)
    with pytest.raises(ValueError):
        compile_plan(FilterPlan(actions={0x40000001: abi.RET_ALLOW}))
    with pytest.raises(ValueError):
        abi.ret_errno(0)


def test_round_trip_through_bytes() -> None:
    program = compile_plan(base_plan(abi.RET_USER_NOTIF))
    assert bpf.from_bytes(bpf.to_bytes(program)) == program


values = st.one_of(st.sampled_from([0, 1, 4, 5, 0xFFFFFFFF, 1 << 32, (1 << 32) | 5, (1 << 64) - 1]), st.integers(0, (1 << 64) - 1))
tests = st.builds(
    ArgTest,
    index=st.integers(0, 5),
    op=st.sampled_from(["eq", "ne", "gt", "ge", "lt", "le", "masked_eq", "any_set"]),
    value=values,
    mask=st.one_of(st.just((1 << 64) - 1), values),
    width=st.sampled_from([32, 64]),
)
rules = st.builds(ArgRule, tests=st.lists(tests, min_size=1, max_size=3).map(tuple), action=st.sampled_from(ACTIONS))
nrs = st.integers(0, 470)
plans = st.builds(
    FilterPlan,
    default=st.sampled_from(ACTIONS),
    actions=st.dictionaries(nrs, st.sampled_from(ACTIONS), max_size=40),
    arg_rules=st.dictionaries(nrs, st.lists(rules, min_size=1, max_size=4).map(tuple), max_size=5),
)


@settings(max_examples=150, deadline=None)
@given(plan=plans, probes=st.lists(st.tuples(nrs, st.lists(values, min_size=6, max_size=6)), min_size=1, max_size=30))
def test_compiled_program_means_the_plan(plan: FilterPlan, probes) -> None:
    program = compile_plan(plan)
    for nr, args in probes:
        for probe_nr in [nr, *plan.arg_rules][:4]:
            assert bpf.run(program, bpf.seccomp_data(probe_nr, args=tuple(args))) == evaluate(plan, probe_nr, tuple(args))
