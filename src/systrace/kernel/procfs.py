"""What /proc says about a tracee thread."""

from __future__ import annotations

import os

from ..record import record


@record
class Status:
    tgid: int
    ppid: int
    uid: int  # real
    euid: int
    gid: int
    egid: int
    umask: int


def status(tid: int) -> Status:
    fields: dict[str, str] = {}
    with open(f"/proc/{tid}/status", "rb") as handle:
        for line in handle.read().decode("utf-8", "replace").splitlines():
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    uids = fields["Uid"].split()
    gids = fields["Gid"].split()
    return Status(
        tgid=int(fields["Tgid"]),
        ppid=int(fields["PPid"]),
        uid=int(uids[0]),
        euid=int(uids[1]),
        gid=int(gids[0]),
        egid=int(gids[1]),
        umask=int(fields.get("Umask", "0022"), 8),
    )


def exe(tid: int) -> str:
    return os.readlink(f"/proc/{tid}/exe")


def exe_bytes(tid: int) -> bytes:
    return os.readlink(f"/proc/{tid}/exe".encode())


def cwd(tid: int) -> bytes:
    return os.readlink(f"/proc/{tid}/cwd".encode())


def root(tid: int) -> bytes:
    return os.readlink(f"/proc/{tid}/root".encode())


def fd_path(tid: int, fd: int) -> bytes:
    return os.readlink(f"/proc/{tid}/fd/{fd}".encode())


def fd_targets(pid: int) -> list[str]:
    """Where each open fd of a process points (used to prove the listener never leaks)."""
    out = []
    base = f"/proc/{pid}/fd"
    for name in os.listdir(base):
        try:
            out.append(os.readlink(f"{base}/{name}"))
        except OSError:
            continue
    return out
