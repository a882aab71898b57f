"""Formatting integer arguments as policies spell them (pure)."""

from __future__ import annotations

import os

from ..kernel.abi import s32 as s32  # (re-exported: the translators use formats.s32)
from ..kernel.plain_signal import SIGNAL_NAMES, signal

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
        return SIGNAL_NAMES[number]
    except KeyError:
        if signal.SIGRTMIN <= number <= signal.SIGRTMAX:
            return f"SIGRTMIN+{number - signal.SIGRTMIN}"
        return f"SIG{number}"


def fcntl_cmd(value: int) -> str:
    return FCNTL_COMMANDS.get(s32(value), str(s32(value)))


def decimal(value: int) -> str:
    return str(s32(value))


# the special key serials (keyctl(1) names): the caller's own keyrings
KEY_SPECIALS = {-1: "@t", -2: "@p", -3: "@s", -4: "@u", -5: "@us", -6: "@g", -7: "@a", -8: "@requestor"}


def key_serial(value: int) -> str:
    """A key or keyring: one of the caller's own keyrings by name, another key by serial."""
    number = s32(value)
    return KEY_SPECIALS.get(number, str(number))


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


# ioctl requests by name (the common ones; others print as hex). The kernel reads the
# request as an unsigned int.
IOCTL_REQUESTS = {
    0x5401: "TCGETS", 0x5402: "TCSETS", 0x5403: "TCSETSW", 0x5404: "TCSETSF", 0x5405: "TCGETA",
    0x5406: "TCSETA", 0x5407: "TCSETAW", 0x5408: "TCSETAF", 0x5409: "TCSBRK", 0x540A: "TCXONC",
    0x540B: "TCFLSH", 0x540C: "TIOCEXCL", 0x540D: "TIOCNXCL", 0x540E: "TIOCSCTTY", 0x540F: "TIOCGPGRP",
    0x5410: "TIOCSPGRP", 0x5411: "TIOCOUTQ", 0x5412: "TIOCSTI", 0x5413: "TIOCGWINSZ", 0x5414: "TIOCSWINSZ",
    0x5415: "TIOCMGET", 0x5416: "TIOCMBIS", 0x5417: "TIOCMBIC", 0x5418: "TIOCMSET", 0x5419: "TIOCGSOFTCAR",
    0x541A: "TIOCSSOFTCAR", 0x541B: "FIONREAD", 0x541C: "TIOCLINUX", 0x541D: "TIOCCONS", 0x541E: "TIOCGSERIAL",
    0x541F: "TIOCSSERIAL", 0x5420: "TIOCPKT", 0x5421: "FIONBIO", 0x5422: "TIOCNOTTY", 0x5423: "TIOCSETD",
    0x5424: "TIOCGETD", 0x5425: "TCSBRKP", 0x5427: "TIOCSBRK", 0x5428: "TIOCCBRK", 0x5429: "TIOCGSID",
    0x802C542A: "TCGETS2", 0x402C542B: "TCSETS2", 0x402C542C: "TCSETSW2", 0x402C542D: "TCSETSF2",
    0x80045430: "TIOCGPTN", 0x40045431: "TIOCSPTLCK", 0x80045432: "TIOCGDEV", 0x40045436: "TIOCSIG",
    0x5437: "TIOCVHANGUP", 0x80045440: "TIOCGEXCL", 0x5441: "TIOCGPTPEER", 0x5450: "FIONCLEX", 0x5451: "FIOCLEX",
    0x5452: "FIOASYNC", 0x5456: "TIOCGLCKTRMIOS", 0x5457: "TIOCSLCKTRMIOS", 0x545D: "TIOCGICOUNT",
    0x5460: "FIOQSIZE", 0x8901: "FIOSETOWN", 0x8902: "SIOCSPGRP", 0x8903: "FIOGETOWN", 0x8904: "SIOCGPGRP",
    0x8905: "SIOCATMARK", 0x8906: "SIOCGSTAMP", 0x890B: "SIOCADDRT", 0x890C: "SIOCDELRT", 0x8910: "SIOCGIFNAME",
    0x8912: "SIOCGIFCONF", 0x8913: "SIOCGIFFLAGS", 0x8914: "SIOCSIFFLAGS", 0x8915: "SIOCGIFADDR",
    0x8921: "SIOCGIFMTU", 0x8927: "SIOCGIFHWADDR", 0x8933: "SIOCGIFINDEX", 0x8946: "SIOCETHTOOL",
    0x1: "FIBMAP", 0x2: "FIGETBSZ", 0x125E: "BLKROGET", 0x1260: "BLKGETSIZE", 0x1261: "BLKFLSBUF",
    0x1268: "BLKSSZGET", 0x80081272: "BLKGETSIZE64", 0x80086601: "FS_IOC_GETFLAGS", 0x40086602: "FS_IOC_SETFLAGS",
    0xC020660B: "FS_IOC_FIEMAP", 0x40049409: "FICLONE", 0x4020940D: "FICLONERANGE", 0xC0189436: "FIDEDUPERANGE",
    0xC0045877: "FIFREEZE", 0xC0045878: "FITHAW", 0x4B33: "KDGKBTYPE", 0x4B3A: "KDSETMODE", 0x4B3B: "KDGETMODE",
    0x4B44: "KDGKBMODE", 0x5603: "VT_GETSTATE", 0x5606: "VT_ACTIVATE", 0x400454CA: "TUNSETIFF",
    0x4C00: "LOOP_SET_FD", 0x4C01: "LOOP_CLR_FD", 0x4C05: "LOOP_GET_STATUS64", 0x4C0A: "LOOP_CONFIGURE",
    0x4C82: "LOOP_CTL_GET_FREE", 0x80045200: "RNDGETENTCNT", 0x40045201: "RNDADDTOENTCNT", 0xB701: "NS_GET_USERNS",
    0xB702: "NS_GET_PARENT", 0xC018AA3F: "UFFDIO_API", 0xC020AA00: "UFFDIO_REGISTER", 0xC0502100: "SECCOMP_IOCTL_NOTIF_RECV",
    0xC0182101: "SECCOMP_IOCTL_NOTIF_SEND", 0x40082102: "SECCOMP_IOCTL_NOTIF_ID_VALID",
    0x40182103: "SECCOMP_IOCTL_NOTIF_ADDFD", 0x40082104: "SECCOMP_IOCTL_NOTIF_SET_FLAGS",
}
PTRACE_REQUESTS = {
    0: "PTRACE_TRACEME", 1: "PTRACE_PEEKTEXT", 2: "PTRACE_PEEKDATA", 3: "PTRACE_PEEKUSER", 4: "PTRACE_POKETEXT",
    5: "PTRACE_POKEDATA", 6: "PTRACE_POKEUSER", 7: "PTRACE_CONT", 8: "PTRACE_KILL", 9: "PTRACE_SINGLESTEP",
    12: "PTRACE_GETREGS", 13: "PTRACE_SETREGS", 14: "PTRACE_GETFPREGS", 15: "PTRACE_SETFPREGS", 16: "PTRACE_ATTACH",
    17: "PTRACE_DETACH", 24: "PTRACE_SYSCALL", 0x4200: "PTRACE_SETOPTIONS", 0x4201: "PTRACE_GETEVENTMSG",
    0x4202: "PTRACE_GETSIGINFO", 0x4203: "PTRACE_SETSIGINFO", 0x4204: "PTRACE_GETREGSET", 0x4205: "PTRACE_SETREGSET",
    0x4206: "PTRACE_SEIZE", 0x4207: "PTRACE_INTERRUPT", 0x4208: "PTRACE_LISTEN", 0x4209: "PTRACE_PEEKSIGINFO",
    0x420E: "PTRACE_GET_SYSCALL_INFO",
}
RLIMITS = ("RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS", "RLIMIT_NPROC",
           "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS", "RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE",
           "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME")


def ioctl_request(value: int) -> str:
    value &= 0xFFFFFFFF
    return IOCTL_REQUESTS.get(value, f"{value:#x}")


def ptrace_request(value: int) -> str:
    """The kernel reads the request as a long: all 64 bits."""
    return PTRACE_REQUESTS.get(value, f"{value:#x}")


def rlimit(value: int) -> str:
    number = value & 0xFFFFFFFF
    return RLIMITS[number] if number < len(RLIMITS) else f"RLIMIT_{number}"


def set_or_get(value: int) -> str:
    """A pointer to a new value (prlimit64, sched_setaffinity): `set`, or NULL: `get`."""
    return "get" if value == 0 else "set"


def hexadecimal(value: int) -> str:
    return f"{value & 0xFFFFFFFF:#x}"


def hexadecimal64(value: int) -> str:
    return f"{value:#x}"
