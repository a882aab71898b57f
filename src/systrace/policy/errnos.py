"""Linux errno names, as policies spell them (case-insensitive: enoent, ENOENT)."""

from __future__ import annotations

import errno

BY_NAME: dict[str, int] = {name.lower(): number for number, name in errno.errorcode.items()}
# errno.errorcode keeps one name per number; add the aliases Linux also accepts.
for _alias in ("EWOULDBLOCK", "EDEADLOCK", "ENOTSUP"):
    if hasattr(errno, _alias):
        BY_NAME[_alias.lower()] = getattr(errno, _alias)


def lookup(name: str) -> int | None:
    return BY_NAME.get(name.lower())


def name_of(number: int) -> str:
    return errno.errorcode.get(number, str(number)).lower()
