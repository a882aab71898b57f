"""Formatting integer arguments as policies spell them (pure)."""

from __future__ import annotations

import os
import signal

O_ACCMODE = 0o3
_OFLAG_LETTERS = ((os.O_NONBLOCK, "n"), (os.O_APPEND, "a"), (os.O_CREAT, "c"), (os.O_TRUNC, "t"), (os.O_EXCL, "x"))
PROT_NAMES = (("PROT_READ", 1), ("PROT_WRITE", 2), ("PROT_EXEC", 4))
# Linux ABI values, so that the socket module (a few ms of start-up) loads only when needed
SOCK_FLAGS = (("SOCK_NONBLOCK", os.O_NONBLOCK), ("SOCK_CLOEXEC", os.O_CLOEXEC))  # the same bits on Linux
AF_UNIX, AF_INET, AF_INET6 = 1, 2, 10
FCNTL_COMMANDS = {
    0: "F_DUPFD", 1: "F_GETFD", 2: "F_SETFD", 3: "F_GETFL", 4: "F_SETFL", 5: "F_GETLK", 6: "F_SETLK", 7: "F_SETLKW",
    8: "F_SETOWN", 9: "F_GETOWN", 10: "F_SETSIG", 11: "F_GETSIG", 15: "F_SETOWN_EX", 16: "F_GETOWN_EX",
    36: "F_OFD_GETLK", 37: "F_OFD_SETLK", 38: "F_OFD_SETLKW", 1024: "F_SETLEASE", 1025: "F_GETLEASE",
    1026: "F_NOTIFY", 1030: "F_DUPFD_CLOEXEC", 1031: "F_SETPIPE_SZ", 1032: "F_GETPIPE_SZ",
    1033: "F_ADD_SEALS", 1034: "F_GET_SEALS",
}
_TYPES = {1: "SOCK_STREAM", 2: "SOCK_DGRAM", 3: "SOCK_RAW", 4: "SOCK_RDM", 5: "SOCK_SEQPACKET", 10: "SOCK_PACKET"}
_families: dict[int, str] = {}


def _family_names() -> dict[int, str]:
    if not _families:
        import socket

        _families.update((int(v), k) for k, v in vars(socket).items() if k.startswith("AF_") and isinstance(v, int))
        _families[AF_UNIX] = "AF_UNIX"
    return _families


def s32(value: int) -> int:
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def oflags(flags: int) -> str:
    """ro / wo / rw, then n(onblock) a(ppend) c(reat) t(runc) x (excl)."""
    access = {os.O_RDONLY: "ro", os.O_WRONLY: "wo", os.O_RDWR: "rw"}.get(flags & O_ACCMODE, "--")
    return access + "".join(letter for bit, letter in _OFLAG_LETTERS if flags & bit)


def mode(value: int) -> str:
    return f"0{value & 0o7777:o}" if value & 0o7777 else "0"


def prot(value: int) -> str:
    value &= 0xFFFFFFFF
    names = [name for name, bit in PROT_NAMES if value & bit]
    rest = value & ~0x7
    if rest:
        names.append(f"{rest:#x}")
    return "|".join(names) if names else "PROT_NONE"


def sockdom(value: int) -> str:
    return _family_names().get(s32(value), f"AF_{s32(value)}")


def socktype(value: int) -> str:
    value = s32(value)
    base = value & 0xF
    names = [_TYPES.get(base, f"SOCK_{base}")]
    names += [name for name, bit in SOCK_FLAGS if value & bit]
    return "|".join(names)


def signame(value: int) -> str:
    number = s32(value)
    if number == 0:
        return "SIG0"
    try:
        return signal.Signals(number).name
    except ValueError:
        if signal.SIGRTMIN <= number <= signal.SIGRTMAX:
            return f"SIGRTMIN+{number - signal.SIGRTMIN}"
        return f"SIG{number}"


def fcntl_cmd(value: int) -> str:
    return FCNTL_COMMANDS.get(s32(value), str(s32(value)))


def decimal(value: int) -> str:
    return str(s32(value))


def sockaddr(data: bytes) -> str:
    """inet-[1.2.3.4]:80, inet6-[::1]:80, a unix path, @abstract, family(N)."""
    if len(data) < 2:
        return "<short sockaddr>"
    from socket import inet_ntop

    family = int.from_bytes(data[:2], "little")
    if family == AF_INET and len(data) >= 8:
        port = int.from_bytes(data[2:4], "big")
        return f"inet-[{inet_ntop(AF_INET, data[4:8])}]:{port}"
    if family == AF_INET6 and len(data) >= 24:
        port = int.from_bytes(data[2:4], "big")
        return f"inet6-[{inet_ntop(AF_INET6, data[8:24])}]:{port}"
    if family == AF_UNIX:
        path = data[2:]
        if not path:
            return "unix-unnamed"
        if path[0] == 0:  # abstract: the name is every byte up to the length given
            return "@" + os.fsdecode(path[1:])
        return os.fsdecode(path.split(b"\0", 1)[0])
    return f"family({family})"
