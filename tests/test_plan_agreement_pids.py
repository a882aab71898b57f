"""The kernel decides a call that names its own process by pid 0 (prlimit64(0, ...),
sched_setaffinity(0, ...)), and `limit eq "get"/"set"`, as the supervisor would: the
compiled plan and the policy agree wherever the filter decides alone (policies drawn by
hypothesis, calls naming the caller by 0 and by its number, a child, another process)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from test_plan_agreement import _Store

from systrace.baseline import apply_baseline
from systrace.call import Call
from systrace.decide import DENY, KILL, PERMIT, Chain
from systrace.decide.modes import Enforce
from systrace.decide.policy import PolicyDecider
from systrace.kernel import abi, bpf
from systrace.kernel.filter import compile_plan
from systrace.kernel.notify import Notification
from systrace.kernel.syscalls_x86_64 import SYSCALLS
from systrace.policy.compile import CONSTANT_GROUP_PIDNAMES, CONSTANT_PIDNAMES, kernel_plan
from systrace.policy.store import StoredPolicy
from systrace.translate import formats
from systrace.translate.pids import pidname
from systrace.translate.translator import arg_count, translate
from systrace.wiring import make_parser

ME, CHILD, OTHER = 4242, 4300, 5000
PIDS = [0, ME, CHILD, OTHER, -1 & 0xFFFFFFFF, (1 << 32) | 0]  # raw values: the kernel reads the low word
PIDNAMES = ["<own process>", "<own thread>", "<descendant: /bin/c>", "<outside the run>", "<own process group>",
            "<every process: -1>", "<no such process>"]
# system call -> [(argument name, index, spellings, raw values)]
ARGUMENTS = {
    "prlimit64": [("pidname", 0, PIDNAMES, PIDS), ("resource", 1, ["RLIMIT_NOFILE", "RLIMIT_STACK"], [7, 3, 0]),
                  ("limit", 2, ["get", "set", "GET", "neither"], [0, 0x7000, 1 << 40])],
    "kill": [("pidname", 0, PIDNAMES, PIDS), ("signame", 1, ["SIGTERM", "SIGKILL"], [15, 9])],
    "sched_setaffinity": [("pidname", 0, PIDNAMES, PIDS)],
}
ACTIONS = ["permit", "deny", "deny[eacces]", "kill"]


class _Tracee:
    """Process 4242 (one thread), its child 4300 running /bin/c, and 5000 outside."""

    tid = tgid = ME

    def tgid_of(self, tid: int) -> int | None:
        return tid if tid in (ME, CHILD, OTHER) else None

    def exe_of(self, pid: int) -> str | None:
        return "/bin/c" if pid == CHILD else "/bin/o"

    def ppid_of(self, pid: int) -> int | None:
        return ME if pid == CHILD else 1

    def pgid_of(self, pid: int) -> int | None:
        return ME

    def supervised(self, pid: int) -> bool:
        return pid == CHILD

    def namespace_ids(self) -> tuple[int, int] | None:
        return None  # in systrace's pid namespace


@st.composite
def expressions(draw, syscall: str, depth: int = 2) -> str:
    if depth == 0 or draw(st.booleans()):
        name, _, spellings, _ = draw(st.sampled_from(ARGUMENTS[syscall]))
        return f'{name} {draw(st.sampled_from(["eq", "neq"]))} "{draw(st.sampled_from(spellings))}"'
    kind = draw(st.sampled_from(["and", "or", "not"]))
    if kind == "not":
        return f"not ({draw(expressions(syscall, depth - 1))})"
    return f"({draw(expressions(syscall, depth - 1))}) {kind} ({draw(expressions(syscall, depth - 1))})"


@st.composite
def rules(draw) -> str:
    syscall = draw(st.sampled_from(sorted(ARGUMENTS)))
    expr = draw(st.one_of(st.just(""), expressions(syscall)))
    return f"native-{syscall}: {expr + ' then ' if expr else ''}{draw(st.sampled_from(ACTIONS))}"


@st.composite
def calls(draw) -> tuple[str, tuple[int, ...]]:
    syscall = draw(st.sampled_from(sorted(ARGUMENTS)))
    args = [0] * 6
    for _, index, _, raw in ARGUMENTS[syscall]:
        args[index] = draw(st.sampled_from(raw))
    return syscall, tuple(args)


def supervisor_verdict(policy, syscall: str, args: tuple[int, ...]) -> int:
    stored = StoredPolicy(policy, None, False)
    chain = Chain([PolicyDecider(_Store(stored), str, require_policy=True), Enforce()])  # type: ignore[arg-type]
    call = Call(Notification(1, ME, 0, SYSCALLS[syscall], abi.AUDIT_ARCH_X86_64, 0, args), ME, 1, policy.name)
    translation = translate(syscall, args, _Tracee())  # type: ignore[arg-type]
    call.translation, call.translated, call.arg_count = translation, tuple(translation.args), arg_count(syscall)
    decision = chain.decide(call)
    if decision.verdict == PERMIT:
        return abi.RET_ALLOW
    if decision.verdict == DENY:
        return abi.ret_errno(decision.errno)
    assert decision.verdict == KILL
    return abi.RET_KILL_PROCESS


def _plan(text: str):
    policies = make_parser().parse_file(text).policies
    plan = kernel_plan(policies)
    apply_baseline(plan)
    return policies, compile_plan(plan)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.lists(rules(), max_size=5), min_size=1, max_size=3), st.lists(calls(), min_size=1, max_size=8))
def test_the_kernel_decides_pids_only_as_every_policy_would(bodies: list[list[str]], made: list) -> None:
    text = "".join(f"Policy: /bin/p{i}, Emulation: native\n" + "".join(f"\t{r}\n" for r in body)
                   for i, body in enumerate(bodies))
    policies, program = _plan(text)
    for syscall, args in made:
        kernel = bpf.run(program, bpf.seccomp_data(SYSCALLS[syscall], args=args))
        if kernel == abi.RET_USER_NOTIF:
            continue  # the supervisor decides: nothing to agree on
        for policy in policies:
            assert supervisor_verdict(policy, syscall, args) == kernel, (syscall, args, policy.name, text)


def test_the_compiler_names_constant_pids_as_translation_does() -> None:
    tracee = _Tracee()
    for number, name in CONSTANT_PIDNAMES.items():
        assert pidname(formats.s32(number), tracee) == name  # type: ignore[arg-type]
    for number, name in CONSTANT_GROUP_PIDNAMES.items():
        assert pidname(formats.s32(number), tracee, group=True) == name  # type: ignore[arg-type]


def test_a_learned_rlimit_rule_is_decided_in_the_kernel_for_pid_0() -> None:
    """What -A learns from `ulimit -n` (dash): prlimit64(0, ...) stays in the kernel;
    the same call naming the caller by its number, or another limit, goes to systrace."""
    _, program = _plan('Policy: /bin/p, Emulation: native\n'
                       '\tnative-prlimit64: pidname eq "<own process>" and resource eq "RLIMIT_STACK" and limit eq "get"'
                       ' then permit\n'
                       '\tnative-prlimit64: pidname eq "<own process>" and resource eq "RLIMIT_NOFILE" then permit\n')

    def verdict(*args: int) -> int:
        return bpf.run(program, bpf.seccomp_data(SYSCALLS["prlimit64"], args=(*args, 0, 0, 0)[:6]))

    assert verdict(0, 3, 0) == abi.RET_ALLOW  # get RLIMIT_STACK
    assert verdict(0, 7, 0x7000) == abi.RET_ALLOW  # set RLIMIT_NOFILE: the second rule, for pid 0 too
    assert verdict(0, 3, 0x7000) == abi.RET_USER_NOTIF  # set RLIMIT_STACK: no rule (enforce logs its denial)
    assert verdict(ME, 3, 0) == abi.RET_USER_NOTIF  # its own number: only the supervisor knows it is its own
