"""Aliases: one policy name for many system calls (documented in README, "Aliases").

fsread  = reading a file's name space: open/openat/openat2 read-only, the stat family,
          access, readlink, xattr and attribute reads, statfs, chdir
fswrite = changing it: open/openat/openat2/creat for writing, unlink, rmdir, mkdir,
          rename, link, symlink, truncate, chmod, chown, mknod, utimes, xattr and
          attribute writes
seteuid = setresuid / setreuid that change the effective uid; setegid likewise for gids
          (BSD policies name these; Linux has no such system calls)
Only the filename arguments are passed to fsread/fswrite rules, and the new effective id
(uid and uname, or gid) to seteuid/setegid rules. For open-family calls the alias depends
on the access mode, so it is chosen per call.
"""

from __future__ import annotations

import os

from ..facts import ROWS

# Read from the system call facts table (facts/rows.py, the `alias` field).
OPEN_FAMILY = tuple(name for name, row in ROWS.items() if row.alias == "open")
FSREAD = tuple(name for name, row in ROWS.items() if row.alias == "fsread")
FSWRITE = tuple(name for name, row in ROWS.items() if row.alias == "fswrite")
ALIASES = ("fsread", "fswrite", "seteuid", "setegid")
# syscall -> (alias, index of the effective-id argument)
EFFECTIVE_ID = {name: (row.alias, 1) for name, row in ROWS.items() if row.alias in ("seteuid", "setegid")}
_STATIC = {name: "fsread" for name in FSREAD} | {name: "fswrite" for name in FSWRITE}


def alias_of(syscall: str, open_flags: int | None = None) -> str | None:
    """The alias a call belongs to; open-family calls need their flags."""
    if syscall in OPEN_FAMILY:
        if syscall == "creat":
            return "fswrite"
        if open_flags is None:
            return None
        writes = (open_flags & 0o3) != os.O_RDONLY or open_flags & (os.O_CREAT | os.O_TRUNC)
        return "fswrite" if writes else "fsread"
    return _STATIC.get(syscall)


def members(alias: str) -> tuple[str, ...]:
    """Every syscall an alias may cover."""
    if alias in ("seteuid", "setegid"):
        return tuple(name for name, (a, _) in EFFECTIVE_ID.items() if a == alias)
    static = tuple(name for name, a in _STATIC.items() if a == alias)
    return OPEN_FAMILY + static if alias in ALIASES else ()
