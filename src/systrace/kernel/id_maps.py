"""User and group ids across a tracee's user namespace, for the calls systrace carries out.

The kernel shows a caller ids as its own user namespace maps them: a stat of a file that
root owns gives 65534 (the overflow id) to a process in `unshare -Ur`, and `chown(f, 0, 0)`
there means the user who made the namespace. When systrace makes the call itself, the
kernel maps the ids for systrace instead. So the ids a carried-out call returns are mapped
into the tracee's namespace (`stat_inside`, `acl_inside`), and the ids it passes are mapped
out of it (`outside`, `acl_outside`), as the kernel would for the tracee.

The parsing and the mapping are pure; `maps_of` reads /proc. A namespace's maps are written
when a thread in a user namespace of its own calls (a thread's namespaces are systrace's
otherwise: kernel/namespaces.py)."""

from __future__ import annotations

from . import namespaces

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable

Extents = tuple[tuple[int, int, int], ...]  # (first inside, first outside, count)
NEWFSTATAT, STATX = 262, 332
STAT_IDS, STATX_IDS = (28, 32), (20, 24)  # offsets of (uid, gid) in struct stat, struct statx
STATX_UID, STATX_GID = 0x8, 0x10
ACL_NAMES = (b"system.posix_acl_access", b"system.posix_acl_default")
ACL_USER, ACL_GROUP = 0x02, 0x08  # the tags whose entry carries an id
ACL_VERSION, ACL_HEADER, ACL_ENTRY = 2, 4, 8
NO_ID = 0xFFFFFFFF  # chown's "unchanged", and an unmapped id


def parse(text: bytes) -> Extents:
    """The extents of a /proc/PID/uid_map or gid_map text."""
    extents = []
    for line in text.split(b"\n"):
        fields = line.split()
        if len(fields) == 3:
            inside, outside, count = (int(field) for field in fields)
            extents.append((inside, outside, count))
    return tuple(extents)


def inside(extents: Extents, value: int, overflow: int) -> int:
    """The id an outside `value` is in the namespace, or `overflow` where it is unmapped."""
    for first_inside, first_outside, count in extents:
        if first_outside <= value < first_outside + count:
            return first_inside + value - first_outside
    return overflow


def outside(extents: Extents, value: int) -> int | None:
    """The outside id of an inside `value`, or None where it is unmapped."""
    for first_inside, first_outside, count in extents:
        if first_inside <= value < first_inside + count:
            return first_outside + value - first_inside
    return None


class Maps:
    def __init__(self, uids: Extents, gids: Extents, overflow_uid: int = 65534, overflow_gid: int = 65534):
        self.uids, self.gids = uids, gids
        self.overflow_uid, self.overflow_gid = overflow_uid, overflow_gid


def stat_inside(maps: Maps, nr: int, raw: bytes) -> bytes:
    """A struct stat (newfstatat) or struct statx with its owner and group as the tracee sees them."""
    if nr == STATX:
        mask = int.from_bytes(raw[:4], "little")
        (uid_at, gid_at), has_uid, has_gid = STATX_IDS, mask & STATX_UID, mask & STATX_GID
    else:
        (uid_at, gid_at), has_uid, has_gid = STAT_IDS, True, True
    data = bytearray(raw)
    if has_uid:
        uid = int.from_bytes(data[uid_at:uid_at + 4], "little")
        data[uid_at:uid_at + 4] = inside(maps.uids, uid, maps.overflow_uid).to_bytes(4, "little")
    if has_gid:
        gid = int.from_bytes(data[gid_at:gid_at + 4], "little")
        data[gid_at:gid_at + 4] = inside(maps.gids, gid, maps.overflow_gid).to_bytes(4, "little")
    return bytes(data)


def _acl(value: bytes, convert: Callable[[int, int], int | None]) -> bytes | None:
    """A POSIX ACL xattr value with each entry's id converted; None when one cannot be."""
    if len(value) < ACL_HEADER or (len(value) - ACL_HEADER) % ACL_ENTRY:
        return value  # not an ACL the kernel wrote or accepts: the kernel answers it
    data = bytearray(value)
    for at in range(ACL_HEADER, len(data), ACL_ENTRY):
        tag = int.from_bytes(data[at:at + 2], "little")
        if tag not in (ACL_USER, ACL_GROUP):
            continue
        converted = convert(tag, int.from_bytes(data[at + 4:at + 8], "little"))
        if converted is None:
            return None
        data[at + 4:at + 8] = converted.to_bytes(4, "little")
    return bytes(data)


def acl_inside(maps: Maps, value: bytes) -> bytes:
    """An ACL read by systrace, its ids as the tracee reads them (unmapped: the overflow id)."""
    converted = _acl(value, lambda tag, id_: inside(maps.uids, id_, maps.overflow_uid) if tag == ACL_USER
                     else inside(maps.gids, id_, maps.overflow_gid))
    assert converted is not None  # (inside() always has an answer)
    return converted


def acl_outside(maps: Maps, value: bytes) -> bytes | None:
    """An ACL the tracee sets, its ids as systrace must set them; None: an id is unmapped
    (EINVAL natively)."""
    return _acl(value, lambda tag, id_: outside(maps.uids if tag == ACL_USER else maps.gids, id_))


def owner_outside(maps: Maps, uid: int, gid: int) -> tuple[int, int] | None:
    """chown's ids mapped out of the namespace (-1, unchanged, stays); None: one is unmapped
    (EINVAL natively)."""
    mapped_uid = uid if uid == NO_ID else outside(maps.uids, uid)
    mapped_gid = gid if gid == NO_ID else outside(maps.gids, gid)
    if mapped_uid is None or mapped_gid is None:
        return None
    return mapped_uid, mapped_gid


# -- reading them --------------------------------------------------------------------
_overflow: tuple[int, int] | None = None


def _overflow_ids() -> tuple[int, int]:
    global _overflow
    if _overflow is None:
        ids = []
        for kind in ("uid", "gid"):
            try:
                with open(f"/proc/sys/kernel/overflow{kind}", "rb") as handle:
                    ids.append(int(handle.read()))
            except (OSError, ValueError):
                ids.append(65534)
        _overflow = (ids[0], ids[1])
    return _overflow


def maps_of(tid: int) -> Maps | None:
    """The maps of thread `tid`'s user namespace, or None when it is systrace's (nothing to
    map). Read at each call: only threads in a user namespace of their own pay it, and a
    namespace's inode number may name another namespace once it is freed, so nothing is
    kept by it. OSError: the thread is gone."""
    if not namespaces.differs(tid, "user"):
        return None
    with open(f"/proc/{tid}/uid_map", "rb") as handle:
        uids = parse(handle.read())
    with open(f"/proc/{tid}/gid_map", "rb") as handle:
        gids = parse(handle.read())
    return Maps(uids, gids, *_overflow_ids())


def stat_seen_by(tid: int, nr: int, raw: bytes) -> bytes:
    """A stat result (newfstatat or statx) systrace made for thread `tid`, its owner and
    group as the thread's user namespace shows them."""
    maps = maps_of(tid)
    return raw if maps is None else stat_inside(maps, nr, raw)
