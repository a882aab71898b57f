"""What the BPF filter decides for a set of policies (pure: compiled and emulated)."""

from __future__ import annotations

import errno

from systrace.baseline import apply_baseline
from systrace.kernel import abi, bpf
from systrace.kernel.filter import compile_plan
from systrace.kernel.syscalls_x86_64 import SYSCALLS
from systrace.policy.compile import kernel_plan
from systrace.wiring import make_parser

NR = SYSCALLS


def policies(*texts: str):
    out = []
    for index, body in enumerate(texts):
        text = f"Policy: /bin/p{index}, Emulation: native\n" + "".join(f"\tnative-{line}\n" for line in body.strip().splitlines())
        out.extend(make_parser().parse_file(text).policies)
    return out


def program_for(*texts: str):
    plan = kernel_plan(policies(*texts))
    apply_baseline(plan)
    return plan, compile_plan(plan)


def verdict(program, name: str, *args: int) -> int:
    return bpf.run(program, bpf.seccomp_data(NR[name], args=args))


def test_plain_rules_are_decided_in_the_kernel() -> None:
    plan, program = program_for("brk: permit\nsocket: deny[eacces]\nptrace: kill\nread: permit log\nwrite: permit, if user = 0")
    assert verdict(program, "brk") == abi.RET_ALLOW
    assert verdict(program, "socket") == abi.ret_errno(errno.EACCES)
    assert verdict(program, "ptrace") == abi.RET_KILL_PROCESS
    assert verdict(program, "read") == abi.RET_USER_NOTIF  # log needs the supervisor
    assert verdict(program, "write") == abi.RET_USER_NOTIF  # so does a predicate
    assert verdict(program, "lseek") == abi.RET_USER_NOTIF  # unmatched: denied *and logged*
    text = "\n".join(bpf.disassemble(program))
    assert "ret ERRNO(EACCES)" in text and "ret KILL_PROCESS" in text


def test_only_decisions_every_policy_shares_go_to_the_kernel() -> None:
    _, program = program_for("brk: permit\nlseek: permit", "brk: permit\nlseek: deny")
    assert verdict(program, "brk") == abi.RET_ALLOW
    assert verdict(program, "lseek") == abi.RET_USER_NOTIF


def test_integer_argument_rules_compile_to_bpf() -> None:
    plan, program = program_for('mmap: prot eq "PROT_READ|PROT_WRITE" then permit\n'
                                'mmap: prot eq "PROT_READ|PROT_EXEC" or prot eq "PROT_NONE" then permit\n'
                                'mprotect: not prot neq "PROT_READ" then permit\n'
                                'mprotect: prot eq "PROT_WRITE|PROT_READ" then permit\n'
                                'fcntl: cmd eq "F_GETFD" and fd eq "3" then deny[ebadf]\n'
                                'socket: sockdom eq "AF_UNIX" then permit\nsocket: kill')
    assert NR["mmap"] in plan.arg_rules
    assert verdict(program, "mmap", 0, 4096, 3) == abi.RET_ALLOW
    assert verdict(program, "mmap", 0, 4096, 5) == abi.RET_ALLOW
    assert verdict(program, "mmap", 0, 4096, 0) == abi.RET_ALLOW
    assert verdict(program, "mmap", 0, 4096, 7) == abi.RET_USER_NOTIF  # no rule: supervisor
    assert verdict(program, "mmap", 0, 4096, (1 << 32) | 3) == abi.RET_ALLOW  # int: low half only
    assert verdict(program, "mprotect", 0, 4096, 1) == abi.RET_ALLOW
    assert verdict(program, "mprotect", 0, 4096, 3) == abi.RET_USER_NOTIF  # "PROT_WRITE|PROT_READ" is no value's spelling
    assert verdict(program, "fcntl", 3, 1) == abi.ret_errno(errno.EBADF)
    assert verdict(program, "fcntl", 4, 1) == abi.RET_USER_NOTIF
    assert verdict(program, "socket", 1, 1) == abi.RET_ALLOW
    assert verdict(program, "socket", 2, 1) == abi.RET_KILL_PROCESS
    text = "\n".join(bpf.disassemble(program))
    assert "ld [args[2].lo]" in text and "args[2].hi" not in text


def test_path_rules_stay_in_the_supervisor() -> None:
    plan, program = program_for('fsread: filename eq "/etc/hostname" then permit\nopenat: filename eq "/x" then permit')
    assert verdict(program, "openat") == abi.RET_USER_NOTIF
    assert verdict(program, "newfstatat") == abi.RET_USER_NOTIF
    assert NR["openat"] not in plan.arg_rules and NR["openat"] not in plan.actions


def test_baseline_overrides_policies() -> None:
    _, program = program_for("execve: permit\nio_uring_setup: permit\ngetpid: deny\nexit_group: kill")
    assert verdict(program, "execve") == abi.RET_USER_NOTIF
    assert verdict(program, "io_uring_setup") == abi.ret_errno(errno.ENOSYS)
    assert verdict(program, "getpid") == abi.RET_ALLOW
    assert verdict(program, "exit_group") == abi.RET_ALLOW


def test_a_rule_that_can_never_match_leaves_the_plan_as_it_was() -> None:
    """lseek has no translated argument: `fd eq "3"` on it never holds (the parser warns),
    so the plan must not route lseek for it, whatever its action; `not` of it always holds."""
    parser = make_parser()
    parser.parse_file('Policy: /bin/p, Emulation: native\n\tnative-lseek: fd eq "3" then permit\n')
    assert any("never matches" in str(warning) for warning in parser.warnings)
    without = kernel_plan(policies("lseek: permit", "lseek: permit"))
    for never in ('lseek: fd eq "3" then deny', 'lseek: fd eq "3" then permit log', 'lseek: fd eq "3" then ask',
                  'lseek: fd eq "3" and cmd eq "F_GETFD" then deny', 'lseek: fd neq "3" or filename match "/x" then kill'):
        plan = kernel_plan(policies("lseek: permit", f"{never}\nlseek: permit"))
        assert (plan.actions, plan.arg_rules) == (without.actions, without.arg_rules), never
        assert plan.actions[NR["lseek"]] == abi.RET_ALLOW
    always = kernel_plan(policies("lseek: permit", 'lseek: not fd eq "3" then permit\nlseek: deny'))
    assert always.actions[NR["lseek"]] == abi.RET_ALLOW
    # an argument the call has still goes by its value
    _, program = program_for('fcntl: fd eq "3" then deny[ebadf]\nfcntl: permit')
    assert verdict(program, "fcntl", 3, 1) == abi.ret_errno(errno.EBADF)
    assert verdict(program, "fcntl", 4, 1) == abi.RET_ALLOW
