"""How one argument of a system call is translated for policies (the kinds of argument
the facts table names; translate/translator.py does the reading)."""

from __future__ import annotations

from ..record import record

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:  # (collections.abc imports collections: start-up time)
    from collections.abc import Callable


@record
class PathArg:
    index: int
    dirfd: int | None = None  # index of the dirfd argument
    follow: bool = True  # follow a final symlink
    flags: int | None = None  # index of an AT_* flags argument
    follow_flag: bool = False  # flags say AT_SYMLINK_FOLLOW (linkat) instead of NOFOLLOW
    nullable: bool = False  # NULL means "the dirfd itself" (utimensat)
    # (register, shift, commands): a path only when that register shifted right by `shift`
    # is one of `commands` (quotactl's Q_QUOTAON quota file, fsconfig's FSCONFIG_SET_PATH);
    # else no argument
    only_for: tuple[int, int, tuple[int, ...]] | None = None
    # "bpf_attr": the path is inside bpf's union bpf_attr (`index` its register), for
    # BPF_OBJ_PIN and BPF_OBJ_GET only (translate/translator._bpf_obj_path)
    struct: str | None = None


@record
class IntArg:
    name: str
    index: int
    format: Callable[[int], str]
    width: int = 32  # the kernel reads an int: only the low 32 bits matter


@record
class SockaddrArg:
    index: int
    length: int


@record
class ArgvArg:
    index: int


@record
class PidArg:
    """A process or thread, named by its relation to the caller (`pidname`)."""

    index: int
    thread: bool = False  # a thread id (tkill, tgkill's second argument)
    pidfd: bool = False  # a pidfd: the process it refers to
    group: bool = False  # kill(): 0 is the caller's process group, -N process group N, -1 every process


@record
class UnameArg:
    index: int


@record
class OpenHowArg:
    index: int
    size: int


@record
class StrArg:
    """A string taken as it is, not resolved as a path (a symlink's target, a name).
    `length`: the index of its length in bytes (sethostname), else it ends at its NUL."""

    name: str
    index: int
    only_for: tuple[int, int, tuple[int, ...]] | None = None  # as PathArg's (fsconfig's string value)
    length: int | None = None


@record
class FdArg:
    """A descriptor the caller holds: `fd` (its number, never learned) and `fdname`
    (what it names: a path, `pipe:`, `socket:`, `anon_inode:[eventfd]`...)."""

    index: int


@record
class HandleArg:
    """A struct file_handle (open_by_handle_at): its type and bytes, in hex."""

    index: int


@record
class MsgNameArg:
    """The destination addresses in a struct msghdr (sendmsg) or an array of struct
    mmsghdr (sendmmsg, `count` the index of its length): `sockaddr`, `<no address>`
    for a connected socket; addresses that differ within one sendmmsg are unreadable."""

    index: int
    count: int | None = None


ArgSpec = MsgNameArg | PathArg | IntArg | SockaddrArg | ArgvArg | PidArg | UnameArg | OpenHowArg | StrArg | FdArg | HandleArg
