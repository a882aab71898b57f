"""Compile a filter plan (what the kernel decides per syscall) into a seccomp BPF program.

Layout: arch check (foreign arch -> KILL_PROCESS), x32 bit -> ERRNO(ENOSYS), then a
binary search over syscall-number ranges that share an action, so every syscall costs
O(log n) instructions. A syscall with argument rules gets a block that tests them in
order (first match wins) and falls back to its own action.
"""

from __future__ import annotations

import errno as errno_codes

from ..record import record
from . import abi, bpf
from .bpf import Insn, Item

U32 = 0xFFFFFFFF
U64 = 0xFFFFFFFFFFFFFFFF
ARG_OPS = ("eq", "ne", "gt", "ge", "lt", "le", "masked_eq", "any_set")


@record
class ArgTest:
    """One comparison on syscall argument `index`. `width` 32 compares the low word only:
    the kernel ignores the upper half of an int argument, so a 64-bit test on it could be
    bypassed by setting those bits."""

    index: int
    op: str
    value: int
    mask: int = U64
    width: int = 64

    def __post_init__(self) -> None:
        if not 0 <= self.index < 6:
            raise ValueError(f"argument index out of range: {self.index}")
        if self.op not in ARG_OPS:
            raise ValueError(f"unknown comparison {self.op!r}")
        if self.width not in (32, 64):
            raise ValueError(f"width must be 32 or 64, not {self.width}")


@record
class ArgRule:
    tests: tuple[ArgTest, ...]  # all must hold
    action: int


class FilterPlan:
    def __init__(self, default: int = abi.RET_ALLOW, actions: dict[int, int] | None = None,
                 arg_rules: dict[int, tuple[ArgRule, ...]] | None = None):
        self.default = default
        self.actions: dict[int, int] = {} if actions is None else actions
        self.arg_rules: dict[int, tuple[ArgRule, ...]] = {} if arg_rules is None else arg_rules

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FilterPlan) and (self.default, self.actions, self.arg_rules) == (
            other.default, other.actions, other.arg_rules)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"FilterPlan({self.default:#x}, {self.actions!r}, {self.arg_rules!r})"

    def action_of(self, nr: int) -> int:
        return self.actions.get(nr, self.default)


def compile_plan(plan: FilterPlan) -> list[Insn]:
    items: list[Item] = [
        bpf.load_abs(abi.DATA_ARCH),
        bpf.jump(bpf.JEQ, abi.AUDIT_ARCH_X86_64, "native", "foreign"),
        bpf.label("foreign"),
        bpf.ret(abi.RET_KILL_PROCESS),
        bpf.label("native"),
        bpf.load_abs(abi.DATA_NR),
        bpf.jump(bpf.JGE, abi.X32_SYSCALL_BIT, "x32", "dispatch"),
        bpf.label("x32"),
        bpf.ret(abi.ret_errno(errno_codes.ENOSYS)),
        bpf.label("dispatch"),
    ]
    segments = _segments(plan)
    _emit_tree(items, segments, 0, len(segments), "t")
    for nr, rules in sorted(plan.arg_rules.items()):
        items.extend(_arg_block(nr, rules, plan.action_of(nr)))
    return bpf.assemble(items)


def _segments(plan: FilterPlan) -> list[tuple[int, object]]:
    """[(first_nr, leaf)] sorted, covering 0..X32_SYSCALL_BIT; leaf is a return value or
    ('args', nr) for a syscall with argument rules."""
    special = sorted(set(plan.actions) | set(plan.arg_rules))
    segments: list[tuple[int, object]] = []

    def add(start: int, leaf: object) -> None:
        if segments and segments[-1][1] == leaf:
            return
        segments.append((start, leaf))

    add(0, plan.default)
    for nr in special:
        if not 0 <= nr < abi.X32_SYSCALL_BIT:
            raise ValueError(f"syscall number out of range: {nr}")
        leaf: object = ("args", nr) if nr in plan.arg_rules else plan.actions[nr]
        if segments[-1][0] == nr:  # replace a default segment starting here
            segments.pop()
            if segments and segments[-1][1] == leaf:
                continue
            segments.append((nr, leaf))
        else:
            add(nr, leaf)
        if nr + 1 not in plan.actions and nr + 1 not in plan.arg_rules:
            add(nr + 1, plan.default)
    return segments


def _emit_tree(items: list[Item], segments: list, lo: int, hi: int, name: str) -> None:
    if hi - lo == 1:
        leaf = segments[lo][1]
        if isinstance(leaf, tuple):
            items.append(bpf.goto(f"args_{leaf[1]}"))
        else:
            items.append(bpf.ret(leaf))
        return
    mid = (lo + hi) // 2
    items.append(bpf.jump(bpf.JGE, segments[mid][0], f"{name}r", f"{name}l"))
    items.append(bpf.label(f"{name}l"))
    _emit_tree(items, segments, lo, mid, f"{name}l")
    items.append(bpf.label(f"{name}r"))
    _emit_tree(items, segments, mid, hi, f"{name}r")


def _arg_block(nr: int, rules: tuple[ArgRule, ...], fallback: int) -> list[Item]:
    items: list[Item] = [bpf.label(f"args_{nr}")]
    for r, rule in enumerate(rules):
        fail = f"a{nr}_r{r + 1}"
        for t, test in enumerate(rule.tests):
            ok = f"a{nr}_r{r}_t{t + 1}"
            items.extend(_test(test, ok, fail, f"a{nr}_r{r}_t{t}"))
            items.append(bpf.label(ok))
        items.append(bpf.ret(rule.action))
        items.append(bpf.label(fail))
    items.append(bpf.ret(fallback))
    return items


def _test(test: ArgTest, ok: str, fail: str, prefix: str) -> list[Item]:
    """Items that jump to `ok` when the test holds and to `fail` otherwise."""
    lo_at = abi.DATA_ARGS + 8 * test.index
    hi_at = lo_at + 4
    mask = test.mask if test.width == 64 else test.mask & U32
    value = test.value & mask
    v_hi, v_lo, m_hi, m_lo = value >> 32, value & U32, mask >> 32, mask & U32
    wide = test.width == 64
    nxt = f"{prefix}_lo"
    out: list[Item] = []

    def load(offset: int, word_mask: int) -> None:
        out.append(bpf.load_abs(offset))
        if word_mask != U32:
            out.append(bpf.alu_and(word_mask))

    op = test.op
    if op in ("lt", "le"):  # lt = not ge, le = not gt
        return _test(ArgTest(test.index, "ge" if op == "lt" else "gt", test.value, test.mask, test.width), fail, ok, prefix)
    if op in ("eq", "masked_eq", "ne"):
        pass_, miss = (ok, fail) if op != "ne" else (fail, ok)
        if wide:
            load(hi_at, m_hi)
            out.append(bpf.jump(bpf.JEQ, v_hi, nxt, miss))
            out.append(bpf.label(nxt))
        load(lo_at, m_lo)
        out.append(bpf.jump(bpf.JEQ, v_lo, pass_, miss))
    elif op == "any_set":
        if wide and m_hi:
            out.append(bpf.load_abs(hi_at))
            out.append(bpf.jump(bpf.JSET, m_hi, ok, nxt))
            out.append(bpf.label(nxt))
        if m_lo:
            out.append(bpf.load_abs(lo_at))
            out.append(bpf.jump(bpf.JSET, m_lo, ok, fail))
        else:
            out.append(bpf.goto(fail))
    else:  # gt, ge: unsigned, high word first
        low_op = bpf.JGT if op == "gt" else bpf.JGE
        if wide:
            eq_hi = f"{prefix}_eqhi"
            load(hi_at, m_hi)
            out.append(bpf.jump(bpf.JGT, v_hi, ok, eq_hi))
            out.append(bpf.label(eq_hi))
            out.append(bpf.jump(bpf.JEQ, v_hi, nxt, fail))
            out.append(bpf.label(nxt))
        load(lo_at, m_lo)
        out.append(bpf.jump(low_op, v_lo, ok, fail))
    return out


def evaluate(plan: FilterPlan, nr: int, args: tuple[int, ...] = ()) -> int:
    """What the plan means, computed directly (the reference the compiled program is
    tested against)."""
    for rule in plan.arg_rules.get(nr, ()):
        if all(_holds(test, args) for test in rule.tests):
            return rule.action
    return plan.action_of(nr)


def _holds(test: ArgTest, args: tuple[int, ...]) -> bool:
    full = tuple(args) + (0,) * 6
    width_mask = U64 if test.width == 64 else U32
    arg = full[test.index] & width_mask & test.mask
    value = test.value & width_mask & test.mask
    return {
        "eq": arg == value,
        "masked_eq": arg == value,
        "ne": arg != value,
        "gt": arg > value,
        "ge": arg >= value,
        "lt": arg < value,
        "le": arg <= value,
        "any_set": bool(arg),
    }[test.op]
