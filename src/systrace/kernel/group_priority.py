"""getpriority, setpriority, ioprio_get and ioprio_set by process group or by user, done
over the threads the kernel would reach minus systrace's own (SECURITY.md "Out of reach":
natively these read or renice every thread of the group or user, systrace and its
helpers included).

The kernel's loop is redone here thread by thread with the per-thread forms
(PRIO_PROCESS / IOPRIO_WHO_PROCESS on a thread id, which act on that thread only), with
the kernel's own rules for combining them: the best nice or I/O priority for the reads,
the last error (setpriority) or the first (ioprio_set) for the writes, ESRCH when no
thread is reached. The writes are made as the tracee (its ids and capabilities), so the
kernel's permission checks are the ones it would make."""

from __future__ import annotations

import ctypes
import errno
import os

from .abi import s32
from .libc import libc

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

SYS_getpriority, SYS_setpriority, SYS_ioprio_set, SYS_ioprio_get = 140, 141, 251, 252
PRIO_PROCESS, PRIO_PGRP, PRIO_USER = 0, 1, 2
IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, IOPRIO_WHO_USER = 1, 2, 3
IOPRIO_CLASS_SHIFT, IOPRIO_CLASS_NONE, IOPRIO_CLASS_RT, IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE = 13, 0, 1, 2, 3
SCHED_FIFO, SCHED_RR, SCHED_IDLE, SCHED_DEADLINE = 1, 2, 5, 6
NO_SUCH_GROUP = 0x7FFFFFFF  # above pid_max: a process group no process is in
BY_GROUP = {"getpriority": PRIO_PGRP, "setpriority": PRIO_PGRP, "ioprio_get": IOPRIO_WHO_PGRP,
            "ioprio_set": IOPRIO_WHO_PGRP}
BY_USER = {"getpriority": PRIO_USER, "setpriority": PRIO_USER, "ioprio_get": IOPRIO_WHO_USER,
           "ioprio_set": IOPRIO_WHO_USER}


def over_a_group(name: str, args: tuple[int, ...]) -> bool:
    """Does this call name a process group or a user (not one process)?"""
    which = s32(args[0]) if name in BY_GROUP else None
    return which is not None and which in (BY_GROUP[name], BY_USER[name])


class Thread:
    __slots__ = ("tgid", "tid", "pgrp", "nice", "policy", "uid")

    def __init__(self, tgid: int, tid: int, pgrp: int, nice: int, policy: int, uid: int):
        self.tgid, self.tid, self.pgrp, self.nice, self.policy, self.uid = tgid, tid, pgrp, nice, policy, uid


def threads() -> Iterator[Thread]:
    """Every thread of the machine systrace's PID namespace shows (gone ones skipped)."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            tids = os.listdir(f"/proc/{entry}/task")
        except OSError:
            continue
        for tid in tids:
            thread = read_thread(int(entry), int(tid))
            if thread is not None:
                yield thread


def read_thread(tgid: int, tid: int) -> Thread | None:
    try:
        with open(f"/proc/{tgid}/task/{tid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
        with open(f"/proc/{tgid}/task/{tid}/status", "rb") as status:
            uid = next(line for line in status if line.startswith(b"Uid:")).split()[1]
    except (OSError, StopIteration):
        return None
    # after the command's name: state ppid pgrp ... nice (19th field) ... policy (41st)
    return Thread(tgid, tid, int(fields[2]), int(fields[16]), int(fields[38]), int(uid))


def map_uid(uid_map: bytes, uid: int) -> int | None:
    """A uid of the caller's user namespace as systrace's sees it (None: unmapped)."""
    for line in uid_map.splitlines():
        inside, outside, count = (int(field) for field in line.split())
        if inside <= uid < inside + count:
            return outside + uid - inside
    return None


class Caller:
    """What the kernel takes from the calling thread: its real uid and process group
    (for `who` 0) and its uid map (a uid it names is of its user namespace)."""

    def __init__(self, tid: int):
        thread = read_thread(_tgid(tid), tid)
        if thread is None:
            raise OSError(errno.ESRCH, "the calling thread is gone")
        with open(f"/proc/{tid}/uid_map", "rb") as uid_map:
            self.uid_map = uid_map.read()
        self.uid, self.pgrp = thread.uid, thread.pgrp


def _tgid(tid: int) -> int:
    with open(f"/proc/{tid}/status", "rb") as status:
        return int(next(line for line in status if line.startswith(b"Tgid:")).split()[1])


def reached(name: str, args: tuple[int, ...], caller: Caller, ours: Callable[[int], bool],
            every: Callable[[], Iterator[Thread]] = threads) -> list[Thread]:
    """The threads the call reaches natively, those of systrace's processes (`ours(tgid)`) left out."""
    which, who = s32(args[0]), s32(args[1])
    if which == BY_GROUP[name]:
        pgrp = who or caller.pgrp
        return [t for t in every() if t.pgrp == pgrp and not ours(t.tgid)]
    if who == 0 and name != "ioprio_set":
        uid: int | None = caller.uid
    else:  # (ioprio_set compares with uid `who` itself, 0 too: as root, the kernel's quirk)
        uid = map_uid(caller.uid_map, who & 0xFFFFFFFF)
    return [t for t in every() if t.uid == uid and not ours(t.tgid)]


def _syscall(number: int, *args: int) -> int:
    """The call's result, or -errno."""
    result = libc.syscall(number, *(ctypes.c_long(arg) for arg in args))
    return -ctypes.get_errno() if result < 0 else result


def effective_ioprio(raw: int, thread: Thread) -> int:
    """The I/O priority a thread runs with (the kernel's __get_task_ioprio): one never set
    follows its scheduling class and nice."""
    if raw >> IOPRIO_CLASS_SHIFT != IOPRIO_CLASS_NONE:
        return raw
    if thread.policy == SCHED_IDLE:
        klass = IOPRIO_CLASS_IDLE
    elif thread.policy in (SCHED_FIFO, SCHED_RR, SCHED_DEADLINE):
        klass = IOPRIO_CLASS_RT
    else:
        klass = IOPRIO_CLASS_BE
    return klass << IOPRIO_CLASS_SHIFT | (thread.nice + 20) // 5


def get(name: str, targets: list[Thread]) -> int:
    """getpriority / ioprio_get over `targets`: the kernel's result, or -errno."""
    best = -errno.ESRCH
    for thread in targets:
        if name == "getpriority":
            value = 20 - thread.nice  # nice_to_rlimit: the raw value, glibc turns it back
            best = max(best, value)
            continue
        raw = _syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, thread.tid)
        if raw < 0:
            continue  # gone meanwhile
        value = effective_ioprio(raw, thread)
        best = value if best < 0 else min(best, value)  # ioprio_best
    return best


def set_(name: str, args: tuple[int, ...], targets: list[Thread]) -> int:
    """setpriority / ioprio_set over `targets`, made as whoever runs it: 0 or -errno."""
    if name == "setpriority":
        result = -errno.ESRCH
        for thread in targets:
            outcome = _syscall(SYS_setpriority, PRIO_PROCESS, thread.tid, s32(args[2]))
            if outcome == -errno.ESRCH:
                continue  # gone meanwhile
            if outcome < 0:
                result = outcome  # set_one_prio: a refusal replaces the result, the loop goes on
            elif result == -errno.ESRCH:
                result = 0
        return result
    ioprio = s32(args[2])
    # the kernel checks the priority (and the capability an RT class needs) first
    checked = _syscall(SYS_ioprio_set, IOPRIO_WHO_PGRP, NO_SUCH_GROUP, ioprio)
    if checked != -errno.ESRCH:
        return checked
    result = -errno.ESRCH
    for thread in targets:
        outcome = _syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, thread.tid, ioprio)
        if outcome == -errno.ESRCH:
            continue
        result = outcome
        if outcome < 0:
            break  # the kernel stops at the first refusal
    return result
