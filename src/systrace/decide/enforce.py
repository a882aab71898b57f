"""The fallback of -a: a call no rule matched is denied and logged, or its process killed."""

from __future__ import annotations

import errno

from ..call import syscall_name
from ..facts import ROWS
from . import DENY, KILL, Decision

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from ..call import Call


class Enforce:
    """-a: an unmatched call is denied and logged (or, with --kill-on-violation, its
    process is killed). The errno is the one a program expects from that call (the facts
    table's `deny`: EACCES for file access, ENOMEM for memory calls, EPERM otherwise)."""

    reads_arguments_of: frozenset[str] = frozenset()  # by name alone (its denials are logged with them)

    def __init__(self, kill: bool = False):
        self.decision = Decision(KILL if kill else DENY, errno.EPERM, log=True, source="enforce")
        self.kill = kill
        self.by_errno: dict[int, Decision] = {errno.EPERM: self.decision}

    def decide(self, call: Call) -> Decision:
        return self.for_name(call.name)

    def by_name(self, exe: str, nr: int) -> Decision:
        return self.for_name(syscall_name(nr))  # logged: never answered without the chain

    def for_name(self, name: str) -> Decision:
        row = ROWS.get(name)
        if self.kill or row is None:
            return self.decision
        decision = self.by_errno.get(row.deny)
        if decision is None:
            decision = self.by_errno[row.deny] = Decision(DENY, row.deny, log=True, source="enforce")
        return decision
