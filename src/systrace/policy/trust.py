"""Which policy files and directories may be trusted, as ssh's StrictModes decides: owned
by the user systrace runs as or by root, and writable by nobody else. Anyone else who can
write a policy decides what the command may do. Works on stat results (the caller opened
the file without following links and stats what it opened, so the check is of the file
that is then read)."""

from __future__ import annotations

import os
import pwd
import stat

from .errors import PolicyError


def _owner(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def check(info: os.stat_result, path: str, what: str, uid: int | None = None, sticky_ok: bool = False) -> None:
    """Raise PolicyError naming `path` unless it is safe. `what`: "policy file",
    "policy directory"... `sticky_ok`: a root-owned sticky directory (/tmp) is fine, since
    nobody else can replace the files in it (only for the directory of a -f file)."""
    me = os.geteuid() if uid is None else uid
    if info.st_uid not in (0, me):
        trusted = "root" if me == 0 else f"{_owner(me)} or root"  # (not "root or root" when systrace runs as root)
        raise PolicyError(f"untrusted {what}: owned by {_owner(info.st_uid)}, not by {trusted}; refusing it", path)
    if info.st_mode & 0o022:
        if sticky_ok and stat.S_ISDIR(info.st_mode) and info.st_mode & stat.S_ISVTX and info.st_uid == 0:
            return
        who = "group and others" if info.st_mode & 0o022 == 0o022 else "group" if info.st_mode & 0o020 else "others"
        raise PolicyError(f"untrusted {what}: writable by {who} (mode {stat.S_IMODE(info.st_mode):04o}); "
                          "refusing it (chmod go-w)", path)


def check_ancestors(directory: str, uid: int | None = None) -> None:
    """Every directory above a policy directory must be trusted too (ssh's StrictModes
    walks up the same way): whoever may rename an ancestor may put another tree, and its
    policies, in the policy directory's place. A root-owned sticky directory (/tmp) is
    fine: nobody else can rename what is in it."""
    current = os.path.dirname(os.path.realpath(directory))
    while True:
        try:
            info = os.stat(current)
        except OSError as error:
            raise PolicyError(f"cannot check the directories above a policy directory: {error.strerror}", current) from None
        check(info, current, "directory above a policy directory", uid, sticky_ok=True)
        parent = os.path.dirname(current)
        if parent == current:
            return
        current = parent
