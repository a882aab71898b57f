"""The original systrace's question line, also used as the log's `prog:` text.

`BINARY, pid: PID(POLICYNR)[PPID], policy: NAME, filters: N, syscall: EMUL-NAME(NR), ARG: VALUE...`
or `..., args: N` when no translator applies. Values are escaped as the original did
(\\ \" \n \r); other control bytes and bytes that are not UTF-8 become \\xNN."""

from __future__ import annotations

from ..policy.escaping import escape
from ..record import record

__all__ = ["Question", "escape"]


@record
class Question:
    binary: str
    pid: int
    policy_number: int
    ppid: int
    policy_name: str
    filters: int
    emulation: str
    syscall: str
    nr: int
    args: tuple[tuple[str, str], ...] = ()
    arg_count: int = 0

    def line(self) -> str:
        head = (
            f"{escape(self.binary)}, pid: {self.pid}({self.policy_number})[{self.ppid}], "
            f"policy: {escape(self.policy_name)}, filters: {self.filters}, "
            f"syscall: {self.emulation}-{self.syscall}({self.nr})"
        )
        if not self.args:
            return f"{head}, args: {self.arg_count}"
        return head + "".join(f", {name}: {escape(value)}" for name, value in self.args)
