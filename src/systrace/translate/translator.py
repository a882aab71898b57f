"""Translate one intercepted call: the readable arguments of the real system call, and
the alias it belongs to with the arguments passed to the alias (its filenames)."""

from __future__ import annotations

import errno
import os
import pwd

from ..kernel.memory import PATH_MAX, MemoryError_
from ..policy.match import UNREADABLE
from . import aliases, formats
from .filename import NONEXISTENT, BadBase, resolve_for_open, resolve_in_root, resolve_target, stable_name
from .pids import pidname
from .table import (
    ARG_COUNTS,
    AT_EMPTY_PATH,
    AT_SYMLINK_FOLLOW,
    AT_SYMLINK_NOFOLLOW,
    TRANSLATORS,
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

NULL_PATH = "<null>"  # a NULL string or (acct) path: never a path, which is absolute

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from .tracee import Tracee

MAX_SOCKADDR = 128
MAX_ARGV = 256
MAX_HANDLE = 128  # MAX_HANDLE_SZ
MAX_MMSG = 1024  # UIO_MAXIOV: the most messages one sendmmsg sends
MSGHDR, MMSGHDR = 56, 64  # sizeof(struct msghdr), sizeof(struct mmsghdr)


class Translated:
    __slots__ = ("args", "alias", "alias_list", "open_target", "open_link", "open_root", "sockaddr_raw", "sockfd", "open_flags",
                 "open_mode", "read_memory", "targets", "tails", "sockaddr_path", "fd_form", "proc_pins",
                 "reaches_systrace", "send_names", "native_error", "open_probe", "shared", "fd_form_read")

    def __init__(self, args: list[tuple[str, str]] | None = None, alias: str | None = None,
                 alias_list: list[tuple[str, str]] | None = None):
        self.args: list[tuple[str, str]] = [] if args is None else args  # in order; a name may repeat
        self.alias = alias
        self.alias_list: list[tuple[str, str]] = [] if alias_list is None else alias_list  # what the alias's rules see
        self.open_target: bytes | None = None  # open family: what an emulated open opens (None: cannot)
        self.open_link: bytes | None = None  # ... what the tracee's descriptor it reopens named
        self.open_root: str | None = None  # ... below this root (the tracee's, when the path was resolved)
        self.sockaddr_raw: bytes | None = None  # connect/bind: the address checked, as read
        self.sockfd = -1
        self.open_flags = 0
        self.open_mode = 0
        self.read_memory = False  # the tracee's memory was read: check the id is still valid
        # each path argument as checked, for emulation: the canonical path, the tracee's
        # descriptor it names (AT_EMPTY_PATH), or None (unreadable, unresolvable)
        self.targets: list[bytes | int | None] = []
        # for each target, what the path said beyond its canonical name (emulate_path.place):
        # b"/" a trailing slash on a name made or removed, b"dir" a trailing slash on a
        # lookup (must be a directory), b"." or b".." a name call's last component
        self.tails: list[bytes] = []
        self.sockaddr_path: bytes | None = None  # connect/bind/send: a unix path, resolved like a filename
        # sendto/sendmsg/sendmmsg: each message's destination as read at the check (empty:
        # none, or not every one could be read); an emulated send uses exactly these
        self.send_names: list[bytes] = []
        # the errno the kernel fails this call with whatever is decided (a send whose
        # destination it cannot read: EFAULT), or 0
        self.native_error = 0
        self.fd_form = False  # a path call in its descriptor form (AT_EMPTY_PATH, NULL): names no file
        # ... read from the tracee's memory ("" with AT_EMPTY_PATH, not a NULL pointer): the
        # kernel reads that string again when continued, so a permit is carried out by
        # systrace (decide/policy.effect_of, kernel/emulate_fstat.py)
        self.fd_form_read = False
        # the pids of other processes named by relation (/proc/PID) -> their start time when
        # checked (None: it changed meanwhile); an emulated call checks they still match
        self.proc_pins: dict[int, int | None] = {}
        self.reaches_systrace = False  # a /proc path of systrace or of one of its helpers
        # open family, translated with keep_probe: systrace's O_PATH descriptor of
        # open_target as resolved (-1: none); an emulated open reuses it once it has
        # checked it is still at that path (kernel/worker.py). A stat's plain path from
        # the path cache holds one too (its target's: kernel/emulate_path.PathCall.probe).
        # Closed by release().
        self.open_probe = -1
        # a copy the path cache made (translate/path_cache.py): its lists are the cache
        # entry's, the same objects at every hit (deciders may key on their identity)
        self.shared = False

    def copy(self) -> Translated:
        """Another Translated sharing this one's values (never changed once translated),
        holding no probe and pins of its own (translate/path_cache.py: one per hit)."""
        copy = Translated.__new__(Translated)
        copy.args, copy.alias, copy.alias_list, copy.open_target = self.args, self.alias, self.alias_list, self.open_target
        copy.open_link, copy.open_root, copy.sockaddr_raw, copy.sockfd = (self.open_link, self.open_root,
                                                                          self.sockaddr_raw, self.sockfd)
        copy.open_flags, copy.open_mode, copy.read_memory = self.open_flags, self.open_mode, self.read_memory
        copy.targets, copy.tails, copy.sockaddr_path, copy.send_names = (self.targets, self.tails, self.sockaddr_path,
                                                                         self.send_names)
        copy.native_error, copy.fd_form, copy.reaches_systrace = self.native_error, self.fd_form, self.reaches_systrace
        copy.fd_form_read = self.fd_form_read
        copy.proc_pins, copy.open_probe, copy.shared = {}, -1, self.shared
        return copy

    def release(self) -> None:
        """Close what the translation holds (the open's probe): once the call is answered."""
        if self.open_probe >= 0:
            os.close(self.open_probe)
            self.open_probe = -1

    def __del__(self) -> None:  # a translation dropped unanswered (a replica forwards its call)
        try:
            self.release()
        except (OSError, AttributeError):
            pass

    def __getstate__(self) -> dict[str, object]:  # (a helper's translation: no descriptor crosses)
        state = {name: getattr(self, name) for name in self.__slots__}
        state["open_probe"] = -1
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def by_name(self) -> dict[str, list[str]]:
        return _group(self.args)

    def alias_args(self) -> dict[str, list[str]]:
        return _group(self.alias_list)


def _group(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name, []).append(value)
    return out


def has_translators(syscall: str) -> bool:
    return syscall in TRANSLATORS


def arg_count(syscall: str) -> int:
    return ARG_COUNTS.get(syscall, 6)


_NAMES_A_FILE: dict[str, bool] = {}  # syscall -> does it have a path, descriptor or address argument


def _names_a_file(syscall: str) -> bool:
    answer = _NAMES_A_FILE.get(syscall)
    if answer is None:
        answer = _NAMES_A_FILE[syscall] = any(isinstance(spec, (PathArg, FdArg, SockaddrArg))
                                              for spec in TRANSLATORS.get(syscall, ()))
    return answer


def translate(syscall: str, raw: tuple[int, ...], tracee: Tracee, use_aliases: bool = True,
              keep_probe: bool = False) -> Translated:
    """`keep_probe`: an open's O_PATH descriptor of what it resolved is kept in the
    result (`open_probe`; the caller releases it)."""
    result = Translated()
    open_flags = _open_flags(syscall, raw, tracee)
    probes: list[int] | None = [] if keep_probe and open_flags is not None else None
    try:
        for spec in TRANSLATORS.get(syscall, ()):
            _translate_one(spec, syscall, raw, tracee, result, open_flags, probes)
    except BaseException:
        for fd in probes or ():
            os.close(fd)
        raise
    if probes:
        if len(probes) == 1 and result.open_target is not None and not result.open_flags & os.O_PATH:
            result.open_probe = probes[0]
        else:
            for fd in probes:
                os.close(fd)
    if open_flags is not None:
        result.open_mode = _open_mode(syscall, raw, tracee)
    if _names_a_file(syscall):
        # a path or a descriptor was named: the pids its /proc path named by relation
        result.proc_pins, result.reaches_systrace = tracee.pins, tracee.reaches_systrace
    if not use_aliases:
        return result
    if syscall in aliases.EFFECTIVE_ID:
        alias, index = aliases.EFFECTIVE_ID[syscall]
        effective = formats.s32(raw[index])
        if effective != -1:  # -1 leaves the effective id alone
            result.alias = alias
            if alias == "seteuid":
                result.alias_list = [("uid", str(effective)), ("uname", _uname(effective))]
            else:
                result.alias_list = [("gid", str(effective))]
    elif any(name == "filename" for name, _ in result.args):
        # an fd operation (AT_EMPTY_PATH, utimensat(fd, NULL)) names no file: no alias
        result.alias = aliases.alias_of(syscall, open_flags)
        result.alias_list = [(name, value) for name, value in result.args if name == "filename"]
    return result


def _open_flags(syscall: str, raw: tuple[int, ...], tracee: Tracee) -> int | None:
    if syscall == "open":
        return raw[1] & 0xFFFFFFFF
    if syscall == "openat":
        return raw[2] & 0xFFFFFFFF
    if syscall == "openat2":
        how = _open_how(raw, tracee)
        return None if how is None else how[0]
    if syscall == "creat":
        return os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    return None


def _open_mode(syscall: str, raw: tuple[int, ...], tracee: Tracee) -> int:
    if syscall == "openat2":
        how = _open_how(raw, tracee)
        return how[1] if how else 0
    return raw[{"open": 2, "openat": 3, "creat": 1}[syscall]] & 0o7777


def _open_how(raw: tuple[int, ...], tracee: Tracee) -> tuple[int, int] | None:
    """struct open_how {u64 flags; u64 mode; u64 resolve}: flags and mode."""
    if raw[3] < 16:
        return None
    try:
        data = tracee.read(raw[2], 16)
    except MemoryError_:
        return None
    return int.from_bytes(data[:8], "little"), int.from_bytes(data[8:16], "little")


RESOLVE_IN_ROOT = 0x10


def _resolve(raw: tuple[int, ...], tracee: Tracee) -> int:
    """struct open_how's resolve field (0 when it has none or cannot be read: the
    emulated open reads it again and checks the path as asked, kernel/resolve_flags.py)."""
    if raw[3] < 24:
        return 0
    try:
        return int.from_bytes(tracee.read(raw[2] + 16, 8), "little")
    except MemoryError_:
        return 0


def _translate_one(spec: ArgSpec, syscall: str, raw: tuple[int, ...], tracee: Tracee, out: Translated,
                   open_flags: int | None, probes: list[int] | None = None) -> None:
    if isinstance(spec, IntArg):
        out.args.append((spec.name, spec.format(raw[spec.index])))
    elif isinstance(spec, PathArg):
        if spec.struct is not None:
            in_struct = _bpf_obj_path(raw, tracee)
            if in_struct is None:
                return  # not a command that names a path
            raw, spec = in_struct
        if spec.only_for is not None and not _applies(spec.only_for, raw):
            return  # not a path for this command
        out.read_memory = True
        try:
            name, value, target, tail, link = _filename(spec, syscall, raw, tracee, open_flags, probes)
        except BadBase as bad:  # the kernel's own error, before any lookup, whatever is decided
            out.native_error = out.native_error or bad.errno
            name, value, target, tail, link = "filename", NONEXISTENT + os.fsdecode(bad.path), None, b"", None
        out.tails.append(tail)
        if open_flags is not None:  # (also when the path is missing in systrace's view: another view opens it)
            out.open_flags = open_flags
        if open_flags is not None and isinstance(target, bytes):
            out.open_target, out.open_link = target, link
        if name == "fd":
            out.targets.append(int(value))
        elif name == "at-fd":  # AT_EMPTY_PATH: checked on the file the descriptor names
            name, value = "filename", os.fsdecode(_descriptor_path(tracee, formats.s32(raw[spec.dirfd or 0])))
            out.targets.append(formats.s32(raw[spec.dirfd or 0]))
        else:  # the real numbers (the tracee's /proc/self, not ours) or its descriptor
            out.targets.append(target)
        if out.open_root is None and name != "fd":  # the descriptor form resolves no path: no root read
            out.open_root = os.fsdecode(tracee.root())
        out.args.append((name, value))
        if name == "fd":  # the descriptor form: what the descriptor names, for rules and learning
            out.fd_form = True
            out.fd_form_read = raw[spec.index] != 0
            out.args.append(("fdname", _fdname(int(value), tracee)))
    elif isinstance(spec, FdArg):
        fd = formats.s32(raw[spec.index])
        out.args.append(("fd", str(fd)))
        out.args.append(("fdname", _fdname(fd, tracee)))
    elif isinstance(spec, StrArg):
        if spec.only_for is not None and not _applies(spec.only_for, raw):
            return  # not a string for this command
        out.read_memory = True
        if spec.length is None:
            out.args.append((spec.name, _string(raw[spec.index], tracee)))
        else:
            out.args.append((spec.name, _sized_string(raw[spec.index], formats.s32(raw[spec.length]), tracee)))
    elif isinstance(spec, MsgNameArg):
        out.read_memory = True
        count = 1 if spec.count is None else min(raw[spec.count] & 0xFFFFFFFF, MAX_MMSG)
        out.args.append(("sockaddr", _msg_names(raw[spec.index], count, MMSGHDR if spec.count else MSGHDR, tracee, out)))
        if out.send_names:
            out.sockfd = formats.s32(raw[0])
        elif spec.count is None and out.args[-1][1] == UNREADABLE and _is_socket(formats.s32(raw[0]), tracee):
            out.native_error = errno.EFAULT  # sendmsg cannot read its msghdr or destination
    elif isinstance(spec, HandleArg):
        out.read_memory = True
        out.args.append(("handle", _handle(raw[spec.index], tracee)))
    elif isinstance(spec, OpenHowArg):
        out.read_memory = True
        how = _open_how(raw, tracee)
        out.args.append(("oflags", formats.oflags(how[0]) if how else UNREADABLE))
        out.args.append(("mode", formats.mode(how[1]) if how else UNREADABLE))
    elif isinstance(spec, SockaddrArg):
        out.read_memory = True
        value, data = _sockaddr(raw[spec.index], raw[spec.length], tracee)
        value = _checked_address(value, data, syscall != "bind", tracee, out)
        out.args.append(("sockaddr", value))
        if data is not None:
            out.sockaddr_raw, out.sockfd = data, formats.s32(raw[0])
            if syscall == "sendto":
                out.send_names = [data]
        elif syscall == "sendto" and value == UNREADABLE and _is_socket(formats.s32(raw[0]), tracee):
            out.native_error = errno.EFAULT  # the kernel cannot read the destination either
    elif isinstance(spec, ArgvArg):
        out.read_memory = True
        out.args.append(("argv", _argv(raw[spec.index], tracee)))
    elif isinstance(spec, PidArg):
        number = formats.s32(raw[spec.index])
        if spec.pidfd:
            found = tracee.pidfd_pid(number)
            out.args.append(("pidname", pidname(found, tracee) if found is not None else "<not a pidfd>"))
        else:
            out.args.append(("pidname", pidname(number, tracee, spec.thread, spec.group)))
    elif isinstance(spec, UnameArg):
        out.args.append(("uname", _uname(formats.s32(raw[spec.index]))))


def _filename(spec: PathArg, syscall: str, raw: tuple[int, ...], tracee: Tracee, open_flags: int | None,
              probes: list[int] | None = None) -> tuple[str, str, bytes | int | None, bytes, bytes | None]:
    """("filename", resolved path, what the call acts on (filename.resolve_target), tail,
    the link of a descriptor an open reopens), or ("fd", N, ...) when the call acts on an
    open fd."""
    dirfd = formats.s32(raw[spec.dirfd]) if spec.dirfd is not None else None
    flags = raw[spec.flags] & 0xFFFFFFFF if spec.flags is not None else 0
    address = raw[spec.index]
    if address == 0 and spec.nullable and dirfd is not None:
        return ("fd", str(dirfd), None, b"", None)
    if address == 0 and spec.nullable:  # acct(NULL): no file (accounting off), as a string's NULL reads
        return ("filename", NULL_PATH, None, b"", None)
    try:
        path = tracee.string(address, PATH_MAX - 1)  # the kernel's limit counts the NUL
    except MemoryError_:
        return ("filename", UNREADABLE, None, b"", None)
    if not path and flags & AT_EMPTY_PATH and dirfd is not None:
        if syscall in AT_FD_NAMED:
            return ("at-fd", str(dirfd), None, b"", None)
        return ("fd", str(dirfd), None, b"", None)
    follow = spec.follow
    if spec.flags is not None:
        follow = bool(flags & AT_SYMLINK_FOLLOW) if spec.follow_flag else not flags & AT_SYMLINK_NOFOLLOW
    if syscall in DONT_FOLLOW_BITS:  # a watch or mark on the link itself
        index, bit = DONT_FOLLOW_BITS[syscall]
        follow = follow and not raw[index] & bit
    if open_flags is not None and (open_flags & os.O_NOFOLLOW or (open_flags & os.O_CREAT and open_flags & os.O_EXCL)):
        follow = False
    if syscall == "openat2" and _resolve(raw, tracee) & RESOLVE_IN_ROOT:  # the directory is the root
        name, opened = resolve_in_root(tracee, path, dirfd, follow)
        return ("filename", name, opened, b"", None)
    if open_flags is not None:  # the open family: also what an emulated open would open
        name, opened, link = resolve_for_open(tracee, path, dirfd, follow, probes)
        return ("filename", name, opened, b"", link)
    makes_name = spec.index in NAME_ARGS.get(syscall, ())
    name, target = resolve_target(tracee, path, dirfd, follow, slash_follows=not makes_name)
    return ("filename", name, target, _tail(path, makes_name), None)


def _applies(only_for: tuple[int, int, tuple[int, ...]], raw: tuple[int, ...]) -> bool:
    """Is an argument that exists for some commands only one for this call's command?"""
    register, shift, commands = only_for
    return (raw[register] & 0xFFFFFFFF) >> shift in commands


BPF_OBJ_PIN, BPF_OBJ_GET = 6, 7
BPF_F_PATH_FD = 1 << 14
AT_FDCWD = -100


def _bpf_obj_path(raw: tuple[int, ...], tracee: Tracee) -> tuple[tuple[int, ...], PathArg] | None:
    """bpf's BPF_OBJ_PIN and BPF_OBJ_GET name a path inside union bpf_attr {u64 pathname;
    u32 bpf_fd, file_flags; s32 path_fd}, relative to path_fd with BPF_F_PATH_FD (Linux
    6.5), else to the working directory: (registers (dirfd, pathname), how to resolve it:
    a pin makes the name, following no final symlink; a get follows it), or None for the
    other commands. The kernel copies min(size, its own) bytes, the rest zero; an
    unreadable struct is an unreadable path (the kernel: EFAULT)."""
    cmd = raw[0] & 0xFFFFFFFF
    if cmd not in (BPF_OBJ_PIN, BPF_OBJ_GET):
        return None
    size = min(raw[2] & 0xFFFFFFFF, 20)
    try:
        attr = tracee.read(raw[1], size) + bytes(20 - size) if size else bytes(20)
    except MemoryError_:
        attr = bytes(20)
    flags = int.from_bytes(attr[12:16], "little")
    dirfd = formats.s32(int.from_bytes(attr[16:20], "little")) if flags & BPF_F_PATH_FD else AT_FDCWD
    return (dirfd & 0xFFFFFFFF, int.from_bytes(attr[:8], "little")), PathArg(1, dirfd=0, follow=cmd == BPF_OBJ_GET)


# (register, bit) of the flag that says a watch's path is not followed: IN_DONT_FOLLOW,
# FAN_MARK_DONT_FOLLOW
DONT_FOLLOW_BITS = {"inotify_add_watch": (2, 0x02000000), "fanotify_mark": (1, 0x04)}

# The path arguments (by register) of the calls that make or remove a name: the kernel
# looks up their parent only, so a trailing slash never follows the final symlink
NAME_ARGS = {"unlink": (0,), "unlinkat": (1,), "rmdir": (0,), "rename": (0, 1), "renameat": (1, 3),
             "renameat2": (1, 3), "mkdir": (0,), "mkdirat": (1,), "mknod": (0,), "mknodat": (1,), "symlink": (1,),
             "symlinkat": (2,), "link": (1,), "linkat": (3,)}


def _tail(path: bytes, makes_name: bool) -> bytes:
    stripped = path.rstrip(b"/")
    last = stripped.rpartition(b"/")[2]
    slash = bool(stripped) and len(stripped) < len(path)
    if makes_name:
        return last if last in (b".", b"..") else b"/" if slash else b""
    return b"dir" if slash else b""


# Calls that change a file through a descriptor with AT_EMPTY_PATH, which works on an
# O_PATH descriptor too (their fd-only forms do not): checked on the file it names. The
# stat family on a descriptor is fstat (metadata an O_PATH descriptor gives anyway);
# execveat is checked by what it runs (decide/policy.exec_target).
AT_FD_NAMED = ("linkat", "fchmodat2", "fchownat", "utimensat", "setxattrat", "removexattrat")


def _descriptor_path(tracee: Tracee, fd: int) -> bytes:
    """What a descriptor names, for the policy: its path, or <bad descriptor>."""
    try:
        return tracee.fd_path(fd)
    except OSError:
        return b"<bad descriptor>"


def _is_socket(fd: int, tracee: Tracee) -> bool:
    """Is `fd` a socket? (Else the kernel's error is EBADF or ENOTSOCK, before any other.)"""
    return _descriptor_path(tracee, fd).startswith(b"socket:[")


def _unix_path(data: bytes | None) -> bytes | None:
    """The pathname of an AF_UNIX address (None: another family, abstract or unnamed)."""
    if data is None or len(data) < 3 or int.from_bytes(data[:2], "little") != 1 or data[2] == 0:
        return None
    return data[2:].split(b"\0", 1)[0]


def _sockaddr(address: int, length: int, tracee: Tracee) -> tuple[str, bytes | None]:
    length = length & 0xFFFFFFFF
    if length > MAX_SOCKADDR:
        return "<oversized address>", None
    if address == 0 or length == 0:
        return "<no address>", None
    try:
        data = tracee.read(address, length)
    except MemoryError_:
        return UNREADABLE, None
    return formats.sockaddr(data), data


def _argv(address: int, tracee: Tracee) -> str:
    try:
        pointers = tracee.pointers(address, MAX_ARGV) if address else []
        return " ".join(os.fsdecode(tracee.string(p)) for p in pointers)
    except MemoryError_:
        return UNREADABLE


def _fdname(fd: int, tracee: Tracee) -> str:
    if fd == -100:  # AT_FDCWD
        return os.fsdecode(tracee.cwd())
    try:
        return stable_name(tracee.fd_path(fd), tracee)  # /proc/self, a pid's relation, a pipe's kind
    except OSError:
        return "<bad descriptor>"


def _string(address: int, tracee: Tracee) -> str:
    if address == 0:
        return NULL_PATH
    try:
        return os.fsdecode(tracee.string(address))
    except MemoryError_:
        return UNREADABLE


SIZED_STRING_MAX = 64  # sethostname's __NEW_UTS_LEN: the kernel refuses a longer one unread
INVALID_LENGTH = "<invalid length>"


def _sized_string(address: int, length: int, tracee: Tracee) -> str:
    """The `length` bytes the kernel copies (sethostname), as far as their first NUL
    (what gethostname gives back); unreadable when the kernel would fault. A length it
    refuses (EINVAL, after its EPERM) reads nothing: INVALID_LENGTH, which a rule may name."""
    if not 0 <= length <= SIZED_STRING_MAX:  # (an int)
        return INVALID_LENGTH
    if length == 0:
        return ""
    try:
        return os.fsdecode(tracee.read(address, length).split(b"\0", 1)[0])
    except (MemoryError_, OSError):
        return UNREADABLE


def _checked_address(value: str, data: bytes | None, follow: bool, tracee: Tracee, out: Translated) -> str:
    """What the policy sees of an address: a unix socket's name is a filename, resolved
    like one (the tracee's cwd and root; `follow`: every call but bind follows a final
    symlink), its canonical path kept for the emulated call."""
    path = _unix_path(data)
    if path is None:
        return value
    failed: list[int] = []
    value, target = resolve_target(tracee, path, None, follow=follow, failed=failed)
    if isinstance(target, bytes) and not value.startswith("/<"):
        out.sockaddr_path = target
    elif failed:  # the kernel's lookup fails too (ENOTCONN: an aborted FUSE connection), whatever is decided
        out.native_error = out.native_error or failed[0]
    if out.open_root is None:
        out.open_root = os.fsdecode(tracee.root())
    return value


def _msg_names(address: int, count: int, stride: int, tracee: Tracee, out: Translated) -> str:
    """The destination of the messages (msg_name, msg_namelen at the start of each
    header): one value for all of them, or UNREADABLE when they differ. Each message's
    address as read goes to out.send_names when every one was read."""
    names = set()
    raw: list[bytes] = []
    for i in range(count):
        try:
            header = tracee.read(address + i * stride, 12)
        except MemoryError_:
            return UNREADABLE
        name, length = int.from_bytes(header[:8], "little"), int.from_bytes(header[8:12], "little")
        if name and length < 0x80000000:
            length = min(length, MAX_SOCKADDR)  # sendmsg clamps msg_namelen (sendto refuses more)
        value, data = _sockaddr(name, length, tracee)
        out.sockaddr_path = None
        names.add(_checked_address(value, data, True, tracee, out))
        if data is not None:
            raw.append(data)
    if len(names) != 1:
        return UNREADABLE if names else "<no address>"
    if len(raw) == count:
        out.send_names = raw
    return names.pop()


def _handle(address: int, tracee: Tracee) -> str:
    """struct file_handle {u32 handle_bytes; int handle_type; u8 f_handle[]}: TYPE:HEX."""
    try:
        head = tracee.read(address, 8)
        size = int.from_bytes(head[:4], "little")
        if size > MAX_HANDLE:
            return UNREADABLE
        data = tracee.read(address, 8 + size)[8:]
    except MemoryError_:
        return UNREADABLE
    return f"{formats.s32(int.from_bytes(head[4:8], 'little'))}:{data.hex()}"


def _uname(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return "<unknown>"


__all__ = ["Translated", "translate", "has_translators", "arg_count", "AT_SYMLINK_NOFOLLOW"]
