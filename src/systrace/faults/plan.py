"""Deciding which call fails (pure): random faults that depend only on the seed, the
binary's name, the system call and how many such calls the process made (not on timing);
rules from --inject/--fault; and replaying a recorded set.

A binary is known by its file name, not its path: the same seed fails the same calls of
`./crashy` whether it was built in /tmp or in a clone elsewhere (README's worked example
depends on it), and a log replays after the binary moved. The name still tells a shell
from the programs it starts, so each gets its own faults."""

from __future__ import annotations

import hashlib
import json
import os
import re

from ..record import record
from .spec import InjectRule
from .tables import ERRNOS, NEVER_FAIL

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable


@record
class Fault:
    error: int | None = None  # fail with this errno
    retval: int | None = None  # or return this value without running the call
    signal: int | None = None  # and/or deliver this signal
    index: int = 0  # which call of its kind in the process (1-based)
    source: str = "random"


def _unit(seed: int, *parts: object) -> float:
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


def binary_key(binary: str) -> str:
    """What a binary is known by for random and replayed faults: its file name."""
    return os.path.basename(binary)


class RandomFaults:
    """-r PERCENT: each eligible call fails with that probability, with an errno from its
    table, chosen from (seed, binary's name, syscall, call index)."""

    def __init__(self, percent: float, seed: int, eligible: frozenset[str] | None = None):
        if not 0 <= percent <= 100:
            raise ValueError("percent must be between 0 and 100")
        self.probability = percent / 100
        self.seed = seed
        names = set(ERRNOS) - set(NEVER_FAIL)
        self.eligible = frozenset(names & eligible if eligible is not None else names)

    def syscalls(self) -> frozenset[str]:
        return self.eligible

    def decide(self, binary: str, syscall: str, index: int) -> Fault | None:
        if syscall not in self.eligible or self.probability <= 0:
            return None
        binary = binary_key(binary)
        if _unit(self.seed, binary, syscall, index) >= self.probability:
            return None
        table = ERRNOS[syscall]
        error = table[int(_unit(self.seed, "errno", binary, syscall, index) * len(table))]
        return Fault(error=error, index=index, source="random")


class RuleFaults:
    """--inject / --fault rules: the first rule whose set, path and when= select the call."""

    def __init__(self, rules: list[InjectRule]):
        self.rules = rules

    def syscalls(self) -> frozenset[str]:
        return frozenset().union(*(rule.syscalls for rule in self.rules)) if self.rules else frozenset()

    def decide(self, syscall: str, counts: dict[int, int], path_matches: Callable[[str], bool]) -> Fault | None:
        """`counts` maps rule number -> how many calls the rule selected so far in this
        process (updated here); `path_matches(glob)` tells whether the call names a path
        matching the glob."""
        chosen = None
        for number, rule in enumerate(self.rules):  # every selecting rule counts the call
            if syscall not in rule.syscalls:
                continue
            if rule.path is not None and not path_matches(rule.path):
                continue
            counts[number] = counts.get(number, 0) + 1
            if chosen is None and rule.when.fires(counts[number]):
                chosen = Fault(rule.error, rule.retval, rule.signal, counts[number], source="inject")
        return chosen


class ReplayFaults:
    """Inject exactly the faults a log recorded: (binary, syscall, call index) -> errno."""

    def __init__(self, recorded: dict[tuple[str, str, int], int]):
        self.recorded = {(binary_key(binary), name, index): code for (binary, name, index), code in recorded.items()}

    def syscalls(self) -> frozenset[str]:
        return frozenset(name for _, name, _ in self.recorded)

    def decide(self, binary: str, syscall: str, index: int) -> Fault | None:
        error = self.recorded.get((binary_key(binary), syscall, index))
        return Fault(error=error, index=index, source="replay") if error is not None else None


# (a value of a text record holds no ", ": frontend/question.py escapes it, so each ", NAME: "
# below is systrace's own field)
_TEXT_FAULT = re.compile(
    r"fault\[(?P<errno>\w+)\] user: [^,]*, prog: (?P<binary>.*?), pid: \d+\(\d+\)\[\d+\], policy: .*?, "
    r"filters: \d+, syscall: linux-(?P<syscall>\w+)\(\d+\)(?:, .*)?, call: (?P<index>\d+)$"
)


def parse_fault_log(text: str) -> dict[tuple[str, str, int], int]:
    """The faults in a log written by -E (text or --json-log). Other lines are skipped."""
    from ..policy import errnos

    recorded: dict[tuple[str, str, int], int] = {}
    for line in text.splitlines():
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("event") == "fault" and record.get("errno"):
                recorded[(record["binary"], record["syscall"], int(record["call"]))] = int(record["errno"])
            continue
        match = _TEXT_FAULT.search(line)
        if match:
            number = errnos.lookup(match.group("errno"))
            if number is not None:
                binary = match.group("binary")
                if "\\" in binary:  # written escaped, as in a policy (",\x20", \xNN)
                    from ..policy.parse import BadEscape, unescape

                    try:
                        binary = unescape(binary)
                    except BadEscape:
                        continue
                recorded[(binary, match.group("syscall"), int(match.group("index")))] = number
    return recorded
