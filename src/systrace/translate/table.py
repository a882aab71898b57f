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
    MsgNameArg,
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

__all__ = ["TRANSLATORS", "ARG_COUNTS", "arg_names", "AT_SYMLINK_NOFOLLOW", "AT_SYMLINK_FOLLOW", "AT_EMPTY_PATH", "ArgSpec",
           "ArgvArg", "FdArg", "HandleArg", "IntArg", "MsgNameArg", "OpenHowArg", "PathArg", "PidArg", "SockaddrArg", "StrArg",
           "UnameArg"]


def arg_names(syscall: str) -> list[str]:
    """The names of the translated arguments a call's translators give (README
    "Translated arguments"); a path in its descriptor form gives `fd` and `fdname`."""
    names: list[str] = []
    for spec in TRANSLATORS.get(syscall, ()):
        if isinstance(spec, PathArg):
            names += ["filename"] + (["fd", "fdname"] if spec.nullable or spec.flags is not None else [])
        elif isinstance(spec, (IntArg, StrArg)):
            names.append(spec.name)
        elif isinstance(spec, OpenHowArg):
            names += ["oflags", "mode"]
        elif isinstance(spec, FdArg):
            names += ["fd", "fdname"]
        else:
            names.append({SockaddrArg: "sockaddr", MsgNameArg: "sockaddr", ArgvArg: "argv", PidArg: "pidname", UnameArg: "uname",
                          HandleArg: "handle"}[type(spec)])
    return names
