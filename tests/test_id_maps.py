"""Ids across a tracee's user namespace in the calls systrace carries out (kernel/id_maps.py).

In `unshare -Ur` a file that root owns stats as 65534, the caller's own files as 0, and
`chown(f, 0, 0)` means the user who made the namespace. Carried out by systrace, the
kernel mapped the ids for systrace instead: stat showed 0 for root's files and 1001 for
the caller's, every chown to the caller's own ids failed (EPERM), and an ACL entry naming
an id the namespace does not map was set (natively EINVAL). The pure half is tested
alone; the real half runs a script natively and under -A and -a, as root (in a namespace
mapping it to 5) and as the user (`unshare -Ur`), and requires the native output."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from conftest import Runner

from systrace.kernel import id_maps

MAPS = id_maps.Maps(((0, 1001, 1), (1, 100000, 65536)), ((0, 1001, 1),), 65534, 65533)


def test_parse_reads_a_map_of_several_lines() -> None:
    text = b"         0       1001          1\n         1     100000      65536\n"
    assert id_maps.parse(text) == ((0, 1001, 1), (1, 100000, 65536))
    assert id_maps.parse(b"") == ()


@pytest.mark.parametrize(("value", "expected"), [(1001, 0), (100000, 1), (165535, 65536), (165536, 65534), (0, 65534)])
def test_inside_maps_each_extent_and_overflows_the_rest(value: int, expected: int) -> None:
    assert id_maps.inside(MAPS.uids, value, 65534) == expected


def test_outside_is_none_for_an_unmapped_id() -> None:
    assert id_maps.outside(MAPS.uids, 0) == 1001
    assert id_maps.outside(MAPS.uids, 2) == 100001
    assert id_maps.outside(MAPS.uids, 70000) is None


def test_chown_keeps_minus_one_and_refuses_an_unmapped_id() -> None:
    assert id_maps.owner_outside(MAPS, 0, 0) == (1001, 1001)
    assert id_maps.owner_outside(MAPS, id_maps.NO_ID, 0) == (id_maps.NO_ID, 1001)
    assert id_maps.owner_outside(MAPS, 0, 5) is None  # gid 5 unmapped


def test_stat_and_statx_owners_are_rewritten() -> None:
    raw = bytearray(144)
    raw[28:36] = struct.pack("<II", 0, 1001)
    mapped = id_maps.stat_inside(MAPS, id_maps.NEWFSTATAT, bytes(raw))
    assert struct.unpack_from("<II", mapped, 28) == (65534, 0)
    assert mapped[:28] == raw[:28] and mapped[36:] == raw[36:]
    statx = bytearray(256)
    statx[20:28] = struct.pack("<II", 1001, 1001)
    struct.pack_into("<I", statx, 0, id_maps.STATX_UID)  # the group not asked for: left alone
    mapped = id_maps.stat_inside(MAPS, id_maps.STATX, bytes(statx))
    assert struct.unpack_from("<II", mapped, 20) == (0, 1001)


def _acl(*entries: tuple[int, int]) -> bytes:
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", tag, 4, id_) for tag, id_ in entries)


def test_acl_ids_are_mapped_both_ways() -> None:
    value = _acl((1, 0xFFFFFFFF), (2, 1001), (8, 7), (0x20, 0xFFFFFFFF))
    assert id_maps.acl_inside(MAPS, value) == _acl((1, 0xFFFFFFFF), (2, 0), (8, 65533), (0x20, 0xFFFFFFFF))
    assert id_maps.acl_outside(MAPS, _acl((2, 0), (8, 0))) == _acl((2, 1001), (8, 1001))
    assert id_maps.acl_outside(MAPS, _acl((2, 0), (8, 3))) is None
    assert id_maps.acl_outside(MAPS, b"\x02\x00\x00\x00\x01") == b"\x02\x00\x00\x00\x01"  # malformed: the kernel's answer


SCRIPT = r'''
import os, struct, subprocess, sys
p = os.path.join(sys.argv[1], "f")
open(p, "w").close()
fd = os.open(p, os.O_RDONLY)
out = []
for what, st in (("fstat", os.fstat(fd)), ("stat-root-file", os.stat("/etc/passwd")), ("stat-own", os.stat(p)),
                 ("lstat", os.lstat("/etc"))):
    out.append(f"{what} {st.st_uid} {st.st_gid}")
out.append("statx " + subprocess.run(["stat", "-c", "%u %g", p, "/etc/passwd"], capture_output=True,
                                     text=True).stdout.replace("\n", " "))
uid, gid = os.getuid(), os.getgid()
for ids in ((uid, gid), (-1, gid), (uid, -1), (4000, gid), (uid, 4000)):
    try:
        os.chown(p, *ids)
        out.append(f"chown {ids} ok")
    except OSError as error:
        out.append(f"chown {ids} {error.strerror}")
for who in (uid, 4000):
    value = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", t, perm, i) for t, perm, i in
        ((1, 6, 0xFFFFFFFF), (2, 4, who), (4, 4, 0xFFFFFFFF), (0x10, 4, 0xFFFFFFFF), (0x20, 0, 0xFFFFFFFF)))
    try:
        os.setxattr(p, "system.posix_acl_access", value)
        result = "ok"
    except OSError as error:
        result = error.strerror
    got = os.getxattr(p, "system.posix_acl_access")
    ids = [struct.unpack_from("<HHI", got, 4 + 8 * k) for k in range((len(got) - 4) // 8)]
    out.append(f"acl {who} set {result} get " + " ".join(f"{t}:{i}" for t, _, i in ids if t in (2, 8)))
os.unlink(p)
print("\n".join(out))
'''


def test_ids_cross_the_tracee_s_user_namespace_as_natively(runner: Runner, shared_dir: Path) -> None:
    script = shared_dir / "ids.py"
    script.write_text(SCRIPT)
    work = shared_dir / f"ids-{runner.name}"
    work.mkdir()
    work.chmod(0o777)
    # root: a namespace that maps it to 5 (no newuidmap needed for one's own id); the user: -Ur
    unshare = ["unshare", "-U", "--map-user=5", "--map-group=5"] if runner.name == "root" else ["unshare", "-Ur"]
    argv = [*unshare, "python3", "-S", str(script), str(work)]
    native = runner.native(*argv)
    assert native.returncode == 0, native.stderr
    lines = native.stdout.splitlines()
    assert len(lines) == 12 and b"chown (4000" in native.stdout
    policies = runner.policy_dir(shared_dir / f"ids-policies-{runner.name}")
    for mode in ("-A", "-a"):
        result = runner(mode, "-d", str(policies), *argv)
        assert b"Traceback" not in result.stderr, result.stderr
        differ = sum(a != b for a, b in zip(lines, result.stdout.splitlines(), strict=False))
        print(f"{runner.name} {mode}: {differ} of {len(lines)} lines differ from the native run")
        assert (result.returncode, result.stdout) == (0, native.stdout), (mode, result.stdout, result.stderr[-2000:])
