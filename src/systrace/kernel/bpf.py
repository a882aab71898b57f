"""Classic BPF for seccomp: an assembler with labels, a disassembler and an emulator.

The emulator runs a program on a seccomp_data record; tests use it to check generated
filters for every syscall number without involving the kernel.
"""

from __future__ import annotations

import struct

from ..record import record
from . import abi

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from typing import Any

# instruction classes and fields (linux/bpf_common.h)
LD, LDX, ST, STX, ALU, JMP, RET, MISC = range(8)
W, ABS, MEM, IMM, K, X, A = 0x00, 0x20, 0x60, 0x00, 0x00, 0x08, 0x10
JA, JEQ, JGT, JGE, JSET = 0x00, 0x10, 0x20, 0x30, 0x40
AND, OR = 0x50, 0x40
TAX, TXA = 0x00, 0x80

INSN = struct.Struct("=HBBI")
MAX_INSNS = 4096
_JUMP_NAMES = {JEQ: "jeq", JGT: "jgt", JGE: "jge", JSET: "jset"}


@record
class Insn:
    code: int
    jt: int
    jf: int
    k: int

    def pack(self) -> bytes:
        return INSN.pack(self.code, self.jt, self.jf, self.k & 0xFFFFFFFF)


@record
class Label:
    name: str


@record
class Jump:
    """A conditional jump to labels; the assembler picks short or long encodings."""

    op: int  # JEQ, JGT, JGE, JSET
    k: int
    true: str
    false: str


@record
class Goto:
    target: str


Item = Insn | Label | Jump | Goto

# The records' own constructors are Python functions (record.py); a filter is about 1,300
# items and 700 instructions made at every start-up, so the helpers below make them as
# their constructors would, with tuple.__new__ (values in field order, no defaults).
_new: Any = tuple.__new__


def insn(code: int, jt: int, jf: int, k: int) -> Insn:
    return _new(Insn, (code, jt, jf, k))


def label(name: str) -> Label:
    return _new(Label, (name,))


def jump(op: int, k: int, true: str, false: str) -> Jump:
    return _new(Jump, (op, k, true, false))


def goto(target: str) -> Goto:
    return _new(Goto, (target,))


def load_abs(offset: int) -> Insn:
    return _new(Insn, (LD | W | ABS, 0, 0, offset))


def ret(value: int) -> Insn:
    return _new(Insn, (RET | K, 0, 0, value))


def alu_and(mask: int) -> Insn:
    return _new(Insn, (ALU | AND | K, 0, 0, mask))


def assemble(items: list[Item]) -> list[Insn]:
    """Resolve labels. A conditional jump whose target is beyond 255 instructions goes
    through a trampoline `ja` placed right after it; sizes are relaxed until stable."""
    long_true: set[int] = set()
    long_false: set[int] = set()
    kinds = [type(item) for item in items]  # (the four records are never subclassed)
    while True:
        positions: dict[str, int] = {}
        starts: list[int] = []  # each item's first instruction
        pc = 0
        for index, item in enumerate(items):
            starts.append(pc)
            if kinds[index] is Label:
                name = item.name  # type: ignore[union-attr]
                if name in positions:
                    raise ValueError(f"duplicate label {name}")
                positions[name] = pc
            elif long_true or long_false:
                pc += 1 + (index in long_true) + (index in long_false)
            else:
                pc += 1
        grew = False
        out: list[Insn] = []
        for index, item in enumerate(items):
            kind = kinds[index]
            if kind is Label:
                continue
            pc = starts[index]
            if kind is Insn:
                out.append(item)  # type: ignore[arg-type]
            elif kind is Goto:
                out.append(insn(JMP | JA, 0, 0, _target(positions, item.target) - pc - 1))  # type: ignore[union-attr]
            else:
                assert isinstance(item, Jump)
                out.extend(_jump(item, pc, positions, index in long_true, index in long_false))
                if index not in long_true and _target(positions, item.true) - pc - 1 > 255:
                    long_true.add(index)
                    grew = True
                if index not in long_false and _target(positions, item.false) - pc - 1 > 255:
                    long_false.add(index)
                    grew = True
        if not grew:
            if len(out) > MAX_INSNS:
                raise ValueError(f"program too long: {len(out)} instructions")
            return out


def _target(positions: dict[str, int], name: str) -> int:
    try:
        return positions[name]
    except KeyError:
        raise ValueError(f"undefined label {name}") from None


def _jump(item: Jump, pc: int, positions: dict[str, int], far_t: bool, far_f: bool) -> list[Insn]:
    code = JMP | item.op | K
    true_at = _target(positions, item.true)
    false_at = _target(positions, item.false)
    if true_at <= pc or false_at <= pc:
        raise ValueError("BPF jumps go forward only")
    extra = far_t + far_f
    after = pc + 1 + extra  # first instruction after the jump and its trampolines
    out = []
    jt = 0 if far_t else true_at - after + extra
    jf = (1 if far_t else 0) if far_f else false_at - after + extra
    out.append(insn(code, jt, jf, item.k))
    slot = pc + 1
    if far_t:
        out.append(insn(JMP | JA, 0, 0, true_at - slot - 1))
        slot += 1
    if far_f:
        out.append(insn(JMP | JA, 0, 0, false_at - slot - 1))
    return out


def to_bytes(program: list[Insn]) -> bytes:
    return b"".join(insn.pack() for insn in program)


def from_bytes(data: bytes) -> list[Insn]:
    return [Insn(*INSN.unpack_from(data, offset)) for offset in range(0, len(data), INSN.size)]


_FIELDS = {abi.DATA_NR: "nr", abi.DATA_ARCH: "arch", abi.DATA_IP: "ip", abi.DATA_IP + 4: "ip_hi"}
for _i in range(6):
    _FIELDS[abi.DATA_ARGS + 8 * _i] = f"args[{_i}].lo"
    _FIELDS[abi.DATA_ARGS + 8 * _i + 4] = f"args[{_i}].hi"


def describe_return(value: int) -> str:
    action = value & 0xFFFF0000
    if value == abi.RET_ALLOW:
        return "ALLOW"
    if value == abi.RET_USER_NOTIF:
        return "USER_NOTIF"
    if value == abi.RET_KILL_PROCESS:
        return "KILL_PROCESS"
    if value == abi.RET_KILL_THREAD:
        return "KILL_THREAD"
    if action == abi.RET_ERRNO:
        import errno

        code = value & abi.RET_DATA
        return f"ERRNO({errno.errorcode.get(code, code)})"
    return f"{value:#x}"


def disassemble(program: list[Insn]) -> list[str]:
    """One line per instruction, with absolute jump targets: `  3: jeq #0x101 5 4`."""
    lines = []
    for pc, insn in enumerate(program):
        cls, op = insn.code & 0x07, insn.code & 0xF0
        if insn.code == LD | W | ABS:
            text = f"ld [{_FIELDS.get(insn.k, insn.k)}]"
        elif insn.code == RET | K:
            text = f"ret {describe_return(insn.k)}"
        elif insn.code == JMP | JA:
            text = f"ja {pc + 1 + insn.k}"
        elif cls == JMP and op in _JUMP_NAMES:
            text = f"{_JUMP_NAMES[op]} #{insn.k:#x} {pc + 1 + insn.jt} {pc + 1 + insn.jf}"
        elif insn.code == ALU | AND | K:
            text = f"and #{insn.k:#x}"
        else:
            text = f"raw {insn.code:#06x} {insn.jt} {insn.jf} {insn.k:#x}"
        lines.append(f"{pc:4d}: {text}")
    return lines


def seccomp_data(nr: int, arch: int = abi.AUDIT_ARCH_X86_64, args: tuple[int, ...] = (), ip: int = 0) -> bytes:
    full = tuple(args) + (0,) * (6 - len(args))
    return struct.pack("=iIQ6Q", nr, arch, ip, *(a & 0xFFFFFFFFFFFFFFFF for a in full))


def run(program: list[Insn], data: bytes) -> int:
    """Evaluate a seccomp program as the kernel would (the subset we emit)."""
    acc = 0
    pc = 0
    for _ in range(len(program) + 1):
        insn = program[pc]
        cls, op = insn.code & 0x07, insn.code & 0xF0
        if insn.code == LD | W | ABS:
            if insn.k % 4 or insn.k + 4 > len(data):
                raise ValueError(f"bad load offset {insn.k}")
            acc = struct.unpack_from("=I", data, insn.k)[0]
            pc += 1
        elif insn.code == RET | K:
            return insn.k
        elif insn.code == ALU | AND | K:
            acc &= insn.k
            pc += 1
        elif insn.code == JMP | JA:
            pc += 1 + insn.k
        elif cls == JMP and op in _JUMP_NAMES:
            if op == JEQ:
                taken = acc == insn.k
            elif op == JGT:
                taken = acc > insn.k
            elif op == JGE:
                taken = acc >= insn.k
            else:
                taken = bool(acc & insn.k)
            pc += 1 + (insn.jt if taken else insn.jf)
        else:
            raise ValueError(f"unsupported instruction {insn}")
        if pc >= len(program):
            raise ValueError("fell off the end of the program")
    raise ValueError("program does not terminate")
