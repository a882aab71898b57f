"""What no policy may let the tracee do to systrace: change the cgroup files that could
freeze, kill, limit or move it, steer the pids its helpers get, or reach a helper through
a pid reused during a continued call. Pure: the caller gives the mounts, systrace's
cgroups and the means to watch a thread."""

from __future__ import annotations

import os

from ..kernel import abi
from ..kernel.filter import ArgRule, ArgTest, FilterPlan
from ..kernel.syscalls_x86_64 import SYSCALLS

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:  # (collections.abc imports collections: start-up time)
    from collections.abc import Callable

# Writing a pid here moves that process: a write's content is not seen, so systrace's
# pid cannot be told apart from the tracee's own, and every such file is refused.
MOVES = ("cgroup.procs", "cgroup.threads", "tasks")


def on_cgroup_mount(path: str, cgroup_points: list[str]) -> bool:
    return any(path.startswith(point.rstrip("/") + "/") for point in cgroup_points)


def cgroup_change_refused(path: str, holding: list[str]) -> str | None:
    """Why a change of `path`, on a cgroup mount, is refused (None: it is not)."""
    directory, _, name = path.rpartition("/")
    if name in MOVES:
        return "moves processes between cgroups (systrace's could be one), whatever the policy says"
    if directory in holding:
        return "a cgroup that holds systrace (freeze, kill, limits), whatever the policy says"
    return None


# Writing these makes the kernel hand out a chosen pid next (ns_last_pid), or makes pids
# wrap sooner (pid_max): either aims a pid reuse at a helper systrace forks.
PID_ALLOCATION = ("/proc/sys/kernel/ns_last_pid", "/proc/sys/kernel/pid_max")


def pid_allocation_change_refused(path: str) -> str | None:
    if path in PID_ALLOCATION:
        return "chooses the pids systrace's helpers get, whatever the policy says"
    return None


# Entries of a proc mount whose object the kernel picks by the *opener's* namespace when
# it looks the name up or opens it (net/sysctl_net.c, ipc/ipc_sysctl.c, ipc/mq_sysctl.c,
# kernel/ucount.c; ipc/util.c sysvipc_proc_open): opened by systrace (or a helper), they
# are those of systrace's namespace, so a tracee in a namespace of its own would read and
# write the host's (SECURITY.md).
NAMESPACED_ENTRIES = (("sys/net/", "net"), ("sys/fs/mqueue/", "ipc"), ("sys/kernel/shm", "ipc"),
                      ("sys/kernel/msg", "ipc"), ("sys/kernel/sem", "ipc"), ("sys/kernel/auto_msgmni", "ipc"),
                      ("sysvipc/", "ipc"), ("sys/user/", "user"))


def namespaced_sysctl(path: str, proc_points: list[str]) -> str | None:
    """The kind of namespace ("net", "ipc", "user") whose entry `path` (canonical) is, on
    one of the proc mounts `proc_points`; None when it is not such an entry."""
    for point in proc_points:
        prefix = point.rstrip("/") + "/"
        if path.startswith(prefix):
            rest = path[len(prefix):] + "/"
            for start, kind in NAMESPACED_ENTRIES:
                if rest.startswith(start):
                    return kind
    return None


def opener_resolved(names: list[str], proc_points: Callable[[], list[str]]) -> list[str]:
    """The kinds of namespace (namespaced_sysctl) in which the kernel resolves the entries
    `names` (canonical filenames) name, once each, in order; `proc_points` gives the proc
    mounts, asked only when a name may be one."""
    points: list[str] | None = None
    found: list[str] = []
    for name in names:
        if not name.startswith("/") or "/sys" not in name:  # (sys/..., sysvipc/...: no mount table read)
            continue
        if points is None:
            points = proc_points()
        kind = namespaced_sysctl(name, points)
        if kind is not None and kind not in found:
            found.append(kind)
    return found


class NamedInFlight:
    """The pids named by continued calls the kernel may not have looked up yet.

    A call checked only by uid or capability that names another process (setpriority,
    prlimit64, sched_*, ioprio_set, perf_event_open, pidfd_open) is refused when it
    names a helper, else continued; the kernel looks the pid up only after that answer.
    Until the calling thread makes its next notification, or exits, it may still be
    about to: a helper forked meanwhile must not get that pid (kernel/forking.py).
    Pure: `watch(tid)` gives a handle on the thread (or None), `alive(handle)` says
    whether it still runs, `release(handle)` lets it go; `published(pid, reserved)`, when
    given, hears each pid become reserved or free (the replicas of --supervisors fork
    helpers too: they read it from memory shared with them)."""

    def __init__(self, watch: Callable[[int], int | None], alive: Callable[[int], bool],
                 release: Callable[[int], None], published: Callable[[int, bool], None] | None = None):
        self._watch, self._alive, self._release = watch, alive, release
        self._published = published
        self._named: dict[int, tuple[int, int | None]] = {}  # tid -> (pid named, handle)

    def __len__(self) -> int:
        return len(self._named)

    def continued(self, tid: int, pid: int) -> None:
        """Thread `tid`'s call naming `pid` is about to be continued."""
        self.notified(tid)
        if self._published is not None and not self._names(pid):
            self._published(pid, True)
        self._named[tid] = (pid, self._watch(tid))

    def notified(self, tid: int) -> None:
        """Thread `tid` made a new call: the kernel finished its previous one."""
        entry = self._named.pop(tid, None)
        if entry is not None and entry[1] is not None:
            self._release(entry[1])
        if entry is not None and self._published is not None and not self._names(entry[0]):
            self._published(entry[0], False)

    def _names(self, pid: int) -> bool:
        return any(named == pid for named, _ in self._named.values())

    def pids(self) -> frozenset[int]:
        """The pids a helper must not get now (the entries of exited threads dropped).
        A thread that cannot be watched keeps its entry until its next call."""
        for tid in [tid for tid, (_, handle) in self._named.items() if handle is not None and not self._alive(handle)]:
            self.notified(tid)
        return frozenset(pid for pid, _ in self._named.values())

    def close(self) -> None:
        for tid in list(self._named):
            self.notified(tid)


# -- write opens reach systrace whatever the policy ----------------------------------
# The files above are refused only where systrace sees the open: so every open that may
# write goes to it, even under --permit-all or a plain `permit` of openat (the filter
# cannot read the path). openat2's flags are in memory: every openat2 goes.
# An open that can only make a new file stays in the kernel: O_CREAT|O_EXCL fails with
# EEXIST on any existing name (a symlink too, followed or not), and O_TMPFILE makes a
# file with no name. The files protected are the kernel's own (cgroup, cgroup2 and proc
# file systems), which exist already and in whose directories open creates nothing
# (EEXIST, EACCES, EOPNOTSUPP): such an open can never write one, whatever its path
# names by the time the kernel reads it. The flags are a register, which the kernel
# reads once: what the filter tests is what it runs. (tar -x opens each file that way.)
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC
_WRITING = os.O_WRONLY | os.O_RDWR | os.O_TRUNC
_NEW_FILE = os.O_CREAT | os.O_EXCL | (os.O_TMPFILE & ~os.O_DIRECTORY)  # (O_TMPFILE's own bit)
_FLAGS_ARG = {"open": 1, "openat": 2}
# open_by_handle_at opens by a handle (a root tracee's name_to_handle_at of a cgroup file
# systrace is in, then a write to it froze systrace under --permit-all): any write open by
# handle goes to systrace, which refuses it (supervisor.write_open_permit); O_CREAT|O_EXCL
# means nothing there (the handle names an existing file)
_BY_HANDLE_FLAGS_ARG = {"open_by_handle_at": 2}
_ALWAYS = ("creat", "openat2")


def _routing_tests(index: int) -> tuple[tuple[ArgTest, ...], ...]:
    """The flags of a write open that may open an existing file, as the filter's tests
    (any one set holds): O_CREAT without O_EXCL; or O_WRONLY/O_RDWR/O_TRUNC with at most
    one of O_CREAT and O_EXCL; never with O_TMPFILE."""
    def new_file_bits(value: int) -> ArgTest:
        return ArgTest(index, "masked_eq", value, mask=_NEW_FILE, width=32)

    writing = ArgTest(index, "any_set", 0, mask=_WRITING, width=32)
    return ((new_file_bits(os.O_CREAT),), (writing, new_file_bits(0)), (writing, new_file_bits(os.O_EXCL)))


def route_write_opens(plan: FilterPlan) -> None:
    """Put the routing of write opens first in the plan, for the calls it may run."""
    for name, index in _FLAGS_ARG.items():
        nr = SYSCALLS[name]
        if nr in plan.arg_rules or plan.action_of(nr) == abi.RET_ALLOW:  # (all routed, or refused: as it is)
            rules = tuple(ArgRule(tests, abi.RET_USER_NOTIF) for tests in _routing_tests(index))
            plan.arg_rules[nr] = rules + tuple(r for r in plan.arg_rules.get(nr, ()) if r not in rules)
    for name, index in _BY_HANDLE_FLAGS_ARG.items():
        nr = SYSCALLS[name]
        if nr in plan.arg_rules or plan.action_of(nr) == abi.RET_ALLOW:
            rule = ArgRule((ArgTest(index, "any_set", 0, mask=WRITE_FLAGS, width=32),), abi.RET_USER_NOTIF)
            plan.arg_rules[nr] = (rule,) + tuple(r for r in plan.arg_rules.get(nr, ()) if r != rule)
    for name in _ALWAYS:
        nr = SYSCALLS[name]
        if _may_run(plan, nr):
            plan.actions[nr] = abi.RET_USER_NOTIF
            plan.arg_rules.pop(nr, None)


def routed_write_open(name: str, args: tuple[int, ...]) -> bool:
    """Is this a call route_write_opens sends to systrace whatever the policy?"""
    index = _FLAGS_ARG.get(name)
    if index is not None:
        return may_open_existing_for_writing(args[index])
    index = _BY_HANDLE_FLAGS_ARG.get(name)
    if index is not None:
        return bool(args[index] & WRITE_FLAGS)
    return name in _ALWAYS


def may_open_existing_for_writing(flags: int) -> bool:
    """Can an open with these flags write a file that exists (the kernel reads the low word)?"""
    flags &= 0xFFFFFFFF
    new_file = flags & _NEW_FILE
    if new_file == os.O_CREAT:
        return True
    return bool(flags & _WRITING) and new_file in (0, os.O_EXCL)


def _may_run(plan: FilterPlan, nr: int) -> bool:
    """Not refused outright by the plan: the kernel might run it."""
    return nr in plan.arg_rules or plan.action_of(nr) in (abi.RET_ALLOW, abi.RET_USER_NOTIF)


# A write to these is checked against who opened the file (the user namespace maps):
# opened by systrace it would be refused, so such a write open is continued.
OPENER_CHECKED = ("uid_map", "gid_map", "setgroups", "projid_map")


def opener_checked(path: str) -> bool:
    return path.startswith("/proc/") and path.rpartition("/")[2] in OPENER_CHECKED and path.count("/") == 3
