"""The original systrace's question line, also used as the log's `prog:` text.

`BINARY, pid: PID(POLICYNR)[PPID], policy: NAME, filters: N, syscall: EMUL-NAME(NR), ARG: VALUE...`
or `..., args: N` when no translator applies. Values are escaped as the original did
(\\ \" \n \r); other control bytes and bytes that are not UTF-8 become \\xNN, and the ", "
that separates fields becomes ",\\x20" inside a value."""

from __future__ import annotations

from ..policy.escaping import escape, escape_field
from ..record import record

__all__ = ["Question", "escape", "escape_field", "question_args", "question_head"]


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
        return question_head(self.binary, self.pid, self.policy_number, self.ppid, self.policy_name, self.filters,
                             self.emulation, self.syscall, self.nr) + question_args(self.args, self.arg_count)


# The line in two parts, without building a Question: a log record writes one per call,
# and its head repeats call after call (decide/reporting.py keeps each; issue 16).
def question_head(binary: str, pid: int, policy_number: int, ppid: int, policy_name: str, filters: int,
                  emulation: str, syscall: str, nr: int) -> str:
    return (f"{escape_field(binary)}, pid: {pid}({policy_number})[{ppid}], policy: {escape_field(policy_name)}, "
            f"filters: {filters}, syscall: {emulation}-{syscall}({nr})")


def question_args(args: tuple[tuple[str, str], ...], arg_count: int) -> str:
    if not args:
        return f", args: {arg_count}"
    return "".join([f", {name}: {escape_field(value)}" for name, value in args])
