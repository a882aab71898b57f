"""An intercepted system call as the deciders see it."""

from __future__ import annotations

from .kernel.syscalls_x86_64 import SYSCALLS

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from .kernel.notify import Notification

SYSCALL_NAMES: dict[int, str] = {nr: name for name, nr in SYSCALLS.items()}


def syscall_name(nr: int) -> str:
    return SYSCALL_NAMES.get(nr, f"syscall_{nr}")


class Call:
    __slots__ = ("notif", "tgid", "ppid", "exe", "name", "uid", "gid", "extra")

    def __init__(self, notif: Notification, tgid: int, ppid: int, exe: str, uid: int = -1, gid: int = -1):
        self.notif = notif
        self.tgid = tgid
        self.ppid = ppid
        self.exe = exe
        self.name = syscall_name(notif.nr)
        self.uid = uid
        self.gid = gid
        self.extra: dict[str, object] = {}

    @property
    def tid(self) -> int:
        return self.notif.pid

    @property
    def nr(self) -> int:
        return self.notif.nr

    @property
    def args(self) -> tuple[int, ...]:
        return self.notif.args
