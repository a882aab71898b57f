"""`-c user:group`: the identity the command runs as (root only), parsed as the original's
get_uid_gid did: a user name gives its uid and primary group (the group part is then
optional); a number needs an explicit group; a group is a name or a number."""

from __future__ import annotations

import grp
import pwd

from .record import record

MAX_ID = 0xFFFFFFFE  # (uid_t)-1 means "unchanged" to set*id: not an identity


class CredentialsError(Exception):
    """`usage`: the original printed its usage line after this message."""

    def __init__(self, message: str, usage: bool = False):
        super().__init__(message)
        self.usage = usage


@record
class Credentials:
    uid: int
    gid: int


def parse_credentials(text: str) -> Credentials:
    user, colon, group = text.partition(":")
    try:
        entry = pwd.getpwnam(user) if user else None
    except (KeyError, ValueError):
        entry = None
    if entry is not None:
        uid, gid = entry.pw_uid, entry.pw_gid
        if not colon:
            return Credentials(uid, gid)
    else:
        uid = _number(user, "no such user", "invalid uid")
        if not colon:
            raise CredentialsError(f"-c {text}: a numeric uid needs a group (-c UID:GROUP)", usage=True)
    try:
        gid = grp.getgrnam(group).gr_gid if group else _number(group, "no such group", "invalid gid")
    except (KeyError, ValueError):
        gid = _number(group, "no such group", "invalid gid")
    return Credentials(uid, gid)


def _number(text: str, missing: str, invalid: str) -> int:
    if not text or not text.isascii() or not text.isdigit():
        raise CredentialsError(f"{missing} '{text}'")
    value = int(text)
    if value > MAX_ID:
        raise CredentialsError(f"{invalid} {text}")
    return value
