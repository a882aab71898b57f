"""The kernel's fast path never decides a call otherwise than the supervisor would.

Policies are generated (hypothesis) over calls whose arguments the kernel can see; each
call is run through the compiled BPF program (bpf.run, the kernel's semantics) and, in
process, through the PolicyDecider and the enforce fallback with a fake call (no tracee).
Wherever the filter decides by itself, every policy it serves must decide the same."""

from __future__ import annotations

import errno

from hypothesis import given, settings
from hypothesis import strategies as st

from systrace.baseline import apply_baseline
from systrace.call import Call
from systrace.decide import DENY, KILL, PERMIT, Chain
from systrace.decide.modes import Enforce
from systrace.decide.policy import PolicyDecider
from systrace.kernel import abi, bpf
from systrace.kernel.filter import compile_plan
from systrace.kernel.notify import Notification
from systrace.kernel.syscalls_x86_64 import SYSCALLS
from systrace.policy.compile import kernel_plan
from systrace.policy.store import StoredPolicy
from systrace.translate.translator import arg_count, translate
from systrace.wiring import make_parser

# system call -> (argument name, index, spellings a rule may use, raw values a call may pass)
ARGUMENTS = {
    "mprotect": [("prot", 2, ["PROT_READ", "PROT_READ|PROT_WRITE", "PROT_NONE", "PROT_EXEC"], [0, 1, 3, 4, 5, 1 << 32 | 1])],
    "socket": [("sockdom", 0, ["AF_INET", "AF_UNIX", "AF_INET6"], [1, 2, 10, 16, 1 << 33 | 2]),
               ("socktype", 1, ["SOCK_STREAM", "SOCK_DGRAM", "SOCK_STREAM|SOCK_CLOEXEC"], [1, 2, 0x80001, 3])],
    "fcntl": [("fd", 0, ["0", "1", "3"], [0, 1, 3, 7, 1 << 32]),
              ("cmd", 1, ["F_GETFL", "F_SETFD", "F_DUPFD_CLOEXEC"], [1, 2, 3, 1030, 4])],
    "getcwd": [],
}
ACTIONS = ["permit", "deny", "deny[eacces]", "kill", "permit log"]


@st.composite
def expressions(draw, syscall: str, depth: int = 2) -> str:
    arguments = ARGUMENTS[syscall]
    if not arguments:
        return ""
    if depth == 0 or draw(st.booleans()):
        name, _, spellings, _ = draw(st.sampled_from(arguments))
        op = draw(st.sampled_from(["eq", "neq"]))
        return f'{name} {op} "{draw(st.sampled_from(spellings))}"'
    kind = draw(st.sampled_from(["and", "or", "not"]))
    if kind == "not":
        return f"not ({draw(expressions(syscall, depth - 1))})"
    return f"({draw(expressions(syscall, depth - 1))}) {kind} ({draw(expressions(syscall, depth - 1))})"


@st.composite
def rules(draw) -> str:
    syscall = draw(st.sampled_from(sorted(ARGUMENTS)))
    expr = draw(expressions(syscall))
    action = draw(st.sampled_from(ACTIONS))
    return f"native-{syscall}: {expr + ' then ' if expr else ''}{action}"


@st.composite
def calls(draw) -> tuple[str, tuple[int, ...]]:
    syscall = draw(st.sampled_from(sorted(ARGUMENTS)))
    args = [0] * 6
    for _, index, _, raw in ARGUMENTS[syscall]:
        args[index] = draw(st.sampled_from(raw))
    return syscall, tuple(args)


class _Store:
    def __init__(self, stored: StoredPolicy):
        self.stored = stored

    def find(self, binary: str) -> StoredPolicy:
        return self.stored


class _NoTracee:
    """These calls' arguments are all integers: translating them reads nothing."""

    tid = tgid = 4242

    def __getattr__(self, name: str):
        raise AssertionError(f"translation of an integer argument asked the tracee for {name}")


def supervisor_verdict(policy, syscall: str, args: tuple[int, ...]) -> int:
    stored = StoredPolicy(policy, None, False)
    chain = Chain([PolicyDecider(_Store(stored), str, require_policy=True), Enforce()])  # type: ignore[arg-type]
    call = Call(Notification(1, 4242, 0, SYSCALLS[syscall], abi.AUDIT_ARCH_X86_64, 0, args), 4242, 1, policy.name)
    translation = translate(syscall, args, _NoTracee())  # type: ignore[arg-type]
    call.translation, call.translated, call.arg_count = translation, tuple(translation.args), arg_count(syscall)
    decision = chain.decide(call)
    if decision.verdict == PERMIT:
        return abi.RET_ALLOW
    if decision.verdict == DENY:
        return abi.ret_errno(decision.errno)
    assert decision.verdict == KILL
    return abi.RET_KILL_PROCESS


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.lists(rules(), max_size=5), min_size=1, max_size=3), st.lists(calls(), min_size=1, max_size=8))
def test_the_kernel_decides_only_as_every_policy_would(bodies: list[list[str]], made: list) -> None:
    text = "".join(f"Policy: /bin/p{i}, Emulation: native\n" + "".join(f"\t{r}\n" for r in body)
                   for i, body in enumerate(bodies))
    policies = make_parser().parse_file(text).policies
    plan = kernel_plan(policies)
    apply_baseline(plan)
    program = compile_plan(plan)
    for syscall, args in made:
        kernel = bpf.run(program, bpf.seccomp_data(SYSCALLS[syscall], args=args))
        if kernel == abi.RET_USER_NOTIF:
            continue  # the supervisor decides: nothing to agree on
        for policy in policies:
            assert supervisor_verdict(policy, syscall, args) == kernel, (syscall, args, policy.name, text)


def test_a_call_no_rule_matches_is_not_decided_in_the_kernel() -> None:
    """Enforce's denial must be logged, which only the supervisor can do."""
    policies = make_parser().parse_file('Policy: /bin/p, Emulation: native\n\tnative-mprotect: prot eq "PROT_READ" then permit\n'
                                        ).policies
    plan = kernel_plan(policies)
    program = compile_plan(plan)
    assert bpf.run(program, bpf.seccomp_data(SYSCALLS["mprotect"], args=(0, 0, 1))) == abi.RET_ALLOW
    assert bpf.run(program, bpf.seccomp_data(SYSCALLS["mprotect"], args=(0, 0, 3))) == abi.RET_USER_NOTIF
    # the errno a memory call can return (facts table `deny`), not EPERM
    assert supervisor_verdict(policies[0], "mprotect", (0, 0, 3, 0, 0, 0)) == abi.ret_errno(errno.ENOMEM)
