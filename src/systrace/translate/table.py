"""Which arguments of which system call are translated, and how (the translator table,
documented in README "Translated arguments"). Read from the system call facts table."""

from __future__ import annotations

from ..facts import ROWS
from ..facts.args import (
    ArgSpec,
    ArgvArg,
    FdArg,
    HandleArg,
    IntArg,
    OpenHowArg,
    PathArg,
    PidArg,
    SockaddrArg,
    StrArg,
    UnameArg,
)

AT_SYMLINK_NOFOLLOW = 0x100
AT_SYMLINK_FOLLOW = 0x400
AT_EMPTY_PATH = 0x1000

TRANSLATORS: dict[str, tuple[ArgSpec, ...]] = {name: row.args for name, row in ROWS.items() if row.args}
# How many arguments each system call takes, for `args: N` in question lines of calls
# without translators.
ARG_COUNTS: dict[str, int] = {name: row.nargs for name, row in ROWS.items()}

__all__ = ["TRANSLATORS", "ARG_COUNTS", "AT_SYMLINK_NOFOLLOW", "AT_SYMLINK_FOLLOW", "AT_EMPTY_PATH", "ArgSpec",
           "ArgvArg", "FdArg", "HandleArg", "IntArg", "OpenHowArg", "PathArg", "PidArg", "SockaddrArg", "StrArg",
           "UnameArg"]
