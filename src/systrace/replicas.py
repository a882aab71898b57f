"""More supervisor processes for one listener (`--supervisors N`, with -a only).

One Python process serves one notification at a time; with many tracee threads opening
files at once (bench/threads_open.c) every open waits behind the one being served, and
most of an emulated open is Python work and a wait for the tracee to install the
descriptor (ADDFD). Threads do not help: the work holds the GIL (measured slower, see
BENCHMARKS.md). So N-1 more processes (replicas), forked from systrace before the command
is launched (their pids are guarded by the filter like systrace's own), hold the
listener too: any holder of it may answer a notification.

The main process alone receives, and hands a replica work only when several calls are
pending at once: of a batch (supervisor.serve_batch receives every pending notification
first) it serves the first itself and deals the others out in turn, to each replica
(while fewer than MAX_QUEUED wait for it) and to itself. A command with one thread
making routed calls never has two pending: it is served exactly as with one process,
on one CPU, with no hand-off. (Before, every replica received from the listener: each
notification woke all of them, and a one-thread command's consecutive calls were served
by processes on different CPUs, each call paying cross-CPU wake-ups, the ADDFD's
included: tar took 61 s instead of 3.2 s on a quiet machine.)

What a replica decides on its own is what needs nothing the main process keeps:
- only the path calls of ELIGIBLE (opens, stats, access, readlink), never an exec, a brk
  or anything else that changes per-process state (the main process hands it no others);
- only for a process for which the main process holds no state (a pending exec check,
  a detach, an inherited policy; nor for its parent: a detached parent's child is
  detached), as the shared table of marks says. The main process sets a process's mark
  after deciding any of its calls and before answering it, so the first call after an
  exec it permitted always finds the mark;
- only a decision that is not logged: a logged one, a kill, a signal, is sent back to
  the main process, which serves the notification from the start;
- no call carried out by systrace once a process of the run restricted itself with
  Landlock (the copy of its domain is the main process's, domains.py);
- never one carried out on a /proc entry the kernel resolves in its opener's namespace
  (decide/protected.py): the main process has a helper join the tracee's namespaces.
A replica reads the binary (/proc/TID/exe) per call; the thread facts it caches
(processes.py) are dropped when the main process permitted an exec or a set*id of that
process since (a shared generation per process, bumped before the answer).
So policy enforcement, exec checks and logging are the single process's. Learning,
asking and fault injection are refused with --supervisors: their order is the run's.

A replica's emulation refusals and internal errors are logged by the main process (the
record is sent to it). The notification a replica is serving, and how many it has
finished, are written to a shared slot: if the replica dies, the main process fails the
call it was serving (EPERM), serves itself those still queued for it, and serves alone.
A replica dies with systrace (PR_SET_PDEATHSIG), holds its signals blocked, is not
dumpable, and ends when the main process shuts its link, after sending its --stats counts.
Its loop is watched as the main one is (kernel/watchdog.py): a call a file server holds
there is ended within the same bound, at once once systrace ends (a signal that ends it
pending on the main process, or the listener hung up: the main process says so on a
shared word).
"""

from __future__ import annotations

import errno
import json
import mmap
import os
import select
import signal
import socket
import struct
from collections import deque

from .call import Call
from .decide import DENY, PERMIT, Decision, protected
from .effects import Effects
from .facts import invalidating_calls
from .kernel import abi, forking, procfs, watchdog
from .kernel.libc import prctl
from .kernel.notify import Listener, Notification
from .kernel.signals import asynchronous_signals
from .kernel.syscalls_x86_64 import SYSCALLS
from .kernel.wakeup import WakeHere
from .translate.stage import TranslateStage

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from .kernel.worker import Deferred
    from .session import Session
    from .supervisor import Supervisor

ELIGIBLE = frozenset(SYSCALLS[name] for name in (
    "open", "openat", "openat2", "creat", "stat", "lstat", "newfstatat", "statx", "access", "faccessat",
    "faccessat2", "readlink", "readlinkat"))
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
MAX_PID = 1 << 22  # PID_MAX_LIMIT on 64-bit Linux
MAX_QUEUED = 4  # notifications handed to one replica and not finished yet
_SLOT = struct.Struct("=QQ")  # the notification being served (0: none), how many are finished
_GENERATION = struct.Struct("=I")
INVALIDATING = frozenset(SYSCALLS[name] for name in invalidating_calls())
LANDLOCK_RESTRICT_SELF = SYSCALLS["landlock_restrict_self"]
NOTIFICATION, RECORD, STATS = b"N", b"L", b"S"
# Tests force the interleaving they need (as mounts.UNSEEN does): every eligible call,
# even one received alone, is handed to a replica.
EVERY_CALL_TO_A_REPLICA = os.environ.get("SYSTRACE_TEST_REPLICAS_SERVE_ALL") == "1"


class Marks:
    """Per process id, shared by every supervisor process (MAP_SHARED, made before the
    fork): one byte, 1 while the main process holds state for that process; a 32-bit
    generation, bumped each time the main process permits a call that changes what the
    process table caches (an exec, a set*id: facts `invalidates`), so a replica drops its
    cached entries of that process (processes.py) before using them again; and one byte,
    1 while a call the main process continued names that pid (decide/protected.py
    NamedInFlight): a replica forks no helper with it (kernel/forking.py)."""

    def __init__(self) -> None:
        self.map = mmap.mmap(-1, MAX_PID)
        self.generations = mmap.mmap(-1, MAX_PID * _GENERATION.size)
        self.reserved = ReservedPids(mmap.mmap(-1, MAX_PID))
        # [0] non-zero: systrace ends (the listener hung up); [1]: ending signals the main process received
        self.ending = memoryview(mmap.mmap(-1, mmap.PAGESIZE)).cast("Q")
        # non-zero once a process of the run restricted itself with Landlock: the copy of
        # its domain (domains.py) is the main process's, so it carries out every effect
        self.sandboxed = memoryview(mmap.mmap(-1, mmap.PAGESIZE)).cast("Q")

    def bump(self, tgid: int) -> None:
        if 0 < tgid < MAX_PID:
            offset = tgid * _GENERATION.size
            (value,) = _GENERATION.unpack_from(self.generations, offset)
            _GENERATION.pack_into(self.generations, offset, (value + 1) & 0xFFFFFFFF)

    def generation(self, tgid: int) -> int:
        return _GENERATION.unpack_from(self.generations, tgid * _GENERATION.size)[0] if 0 < tgid < MAX_PID else -1

    def set(self, tgid: int, marked: bool) -> None:
        if 0 < tgid < MAX_PID and self.map[tgid] != marked:
            self.map[tgid] = marked

    def marked(self, tgid: int) -> bool:
        return not 0 < tgid < MAX_PID or self.map[tgid] != 0  # out of range: not ours to decide


class ReservedPids:
    """The pids reserved by the main process, as every supervisor process sees them now
    (a container for kernel/forking.py: read at each test, not copied)."""

    def __init__(self, shared: mmap.mmap):
        self.shared = shared

    def set(self, pid: int, reserved: bool) -> None:
        if 0 < pid < MAX_PID:
            self.shared[pid] = reserved

    def __contains__(self, pid: object) -> bool:
        return isinstance(pid, int) and 0 < pid < MAX_PID and self.shared[pid] != 0

    def __bool__(self) -> bool:
        return True  # (may hold some: test each pid)


class Replicas:
    """The main process's side: the replicas' pids (for the filter's guards), their links,
    and what they send."""

    def __init__(self, count: int, session: Session):
        self.session = session
        self.marks = Marks()
        self.pids: list[int] = []
        self.pid_of: dict[int, int] = {}  # link fd -> replica pid
        self.pidfds: list[int] = []  # each replica's, in the order of self.pids
        self.links: dict[int, socket.socket] = {}  # by fd
        self.slots: dict[int, mmap.mmap] = {}  # by link fd: the notification its replica serves
        self.queued: dict[int, deque[Notification]] = {}  # by link fd: handed to it, not known finished
        self.finished: dict[int, int] = {}  # by link fd: how many of those it has finished
        self.started = False
        self.ending = False  # the listener hung up: nothing is left to serve
        self.served = 0
        self.routed: dict[int, int] = {}
        self.supervisor: Supervisor | None = None
        self._holders = [decider.holds for decider in session.chain.deciders if hasattr(decider, "holds")]
        _flush(session)
        for _ in range(count):
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET | socket.SOCK_CLOEXEC)
            slot = mmap.mmap(-1, _SLOT.size)
            main = os.getpid()
            pid = os.fork()
            if pid == 0:
                code = 70
                try:
                    ours.close()
                    for other in self.links.values():
                        other.close()
                    _replica_main(theirs, slot, self.marks, session, main)
                    code = 0
                finally:
                    os._exit(code)
            theirs.close()
            ours.setblocking(False)
            self.pids.append(pid)
            self.pid_of[ours.fileno()] = pid
            self.pidfds.append(forking.pidfd_of(pid))  # (the loop reaps children too: never ended by pid)
            self.links[ours.fileno()] = ours
            self.slots[ours.fileno()] = slot
            self.queued[ours.fileno()] = deque()
            self.finished[ours.fileno()] = 0

    def start(self, supervisor: Supervisor, child_pid: int) -> None:
        """The command runs: hand the listener to the replicas (once), each pinned to a CPU
        other than ours when we are pinned (kernel/wakeup.py)."""
        if self.started:
            return
        self.started = True
        self.supervisor = supervisor
        ours = os.sched_getaffinity(0)
        avoid = next(iter(ours)) if len(ours) == 1 else None
        spared = [*self.pids, *watchdog.watchdog_pids()]  # not the run's: a replica's watchdog kills none
        for index, (fd, link) in enumerate(list(self.links.items())):
            message = json.dumps({"child": child_pid, "index": index, "avoid": avoid, "spared": spared}).encode()
            try:
                socket.send_fds(link, [message], [supervisor.listener.fileno()])
            except OSError:
                self._gone(fd)

    def delegate(self, batch: list[Notification]) -> list[Notification]:
        """Hand out the notifications of a batch received at once; return those to serve
        here. The first is ours; the others go in turn to each replica and to us, a
        replica taking only ELIGIBLE calls, and no more than MAX_QUEUED at a time."""
        if not self.started or not self.links or (len(batch) < 2 and not EVERY_CALL_TO_A_REPLICA):
            return batch
        here = [] if EVERY_CALL_TO_A_REPLICA else [batch[0]]
        turns = [*self.links] if EVERY_CALL_TO_A_REPLICA else [*self.links, None]  # None: our turn
        turn = 0
        for notif in batch[len(here):]:
            target = turns[turn % len(turns)]
            turn += 1
            if target is not None and notif.nr in ELIGIBLE and target in self.links and self._hand(target, notif):
                continue
            here.append(notif)
        return here

    def _hand(self, fd: int, notif: Notification) -> bool:
        queued = self.queued[fd]
        (_, finished) = _SLOT.unpack_from(self.slots[fd])
        while self.finished[fd] < finished and queued:
            queued.popleft()
            self.finished[fd] += 1
        if len(queued) >= MAX_QUEUED:
            return False
        try:
            self.links[fd].send(NOTIFICATION + abi.NOTIF.pack(notif.id, notif.pid, notif.flags, notif.nr, notif.arch,
                                                              notif.ip, *notif.args))
        except BlockingIOError:
            return False
        except OSError:
            return False  # it ended: its hang-up reaches the loop's poll (_gone)
        queued.append(notif)
        return True

    def note(self, call: Call, decision: Decision) -> None:
        """After the main process decided a call, before it answers: mark the process while
        a decider holds state for it (a pending exec check, a detach...), and make the
        replicas read it again after an exec or a credential change."""
        tgid = call.tgid
        self.marks.set(tgid, any(holds(tgid) for holds in self._holders))
        if call.nr == LANDLOCK_RESTRICT_SELF and decision.verdict == PERMIT:
            self.marks.sandboxed[0] = 1  # before the answer: its next call is the main process's
        if call.nr in INVALIDATING and decision.verdict == PERMIT:
            self.marks.bump(tgid)

    def readable(self, fd: int) -> None:
        link = self.links[fd]
        while True:
            try:
                data = link.recv(65536)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                self._gone(fd)
                return
            self._receive(data)

    def _receive(self, data: bytes) -> None:
        kind, body = data[:1], data[1:]
        if kind == NOTIFICATION and self.supervisor is not None:
            id_, pid, flags, nr, arch, ip, *args = abi.NOTIF.unpack(body)
            self.supervisor.serve_one(Notification(id_, pid, flags, nr, arch, ip, tuple(args)))
        elif kind == RECORD:
            text, fields = json.loads(body)
            self.session.log.message(text, **fields)
        elif kind == STATS:
            stats = json.loads(body)
            self.served += stats["served"]
            for nr, count in stats["routed"].items():
                self.routed[int(nr)] = self.routed.get(int(nr), 0) + count

    def _gone(self, fd: int) -> None:
        """A replica ended (or died): fail closed the call it was serving, serve those
        still queued for it here, and serve alone."""
        link = self.links.pop(fd)
        slot = self.slots.pop(fd)
        queued = self.queued.pop(fd)
        finished = self.finished.pop(fd)
        if self.supervisor is not None:
            self.supervisor.poller.unregister(fd)
        serving, done = _SLOT.unpack(slot[:])
        for _ in range(done - finished):
            if queued:
                queued.popleft()
        if serving and self.supervisor is not None:
            self.session.log.message("a supervisor process ended while serving a call; denied", event="error")
            try:
                self.supervisor.listener.fail(serving, errno.EPERM)
            except OSError:
                pass
        link.close()
        slot.close()
        for notif in queued:  # handed to it, never started: ours now
            if notif.id != serving and self.supervisor is not None and not self.ending:
                self.supervisor.serve_one(notif)

    def finish(self) -> None:
        """The listener hung up: read what each replica still sends (its counts) until it ends."""
        self.ending = True
        self.say_ending()  # a call a file server holds in a replica holds nothing anyone waits for now
        if not self.started:  # the command never ran (its exec failed): nothing to wait for
            for fd in list(self.links):
                self.links.pop(fd).close()
                self.slots.pop(fd).close()
        for link in self.links.values():  # nothing more to hand out: each replica ends
            try:
                link.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        for fd, link in list(self.links.items()):
            link.setblocking(True)
            link.settimeout(10.0)  # a safety net: a replica ends as soon as its link is shut
            while fd in self.links:
                try:
                    data = link.recv(65536)
                except TimeoutError:
                    # stuck: it has nothing left to serve
                    forking.kill_helper(self.pidfds[self.pids.index(self.pid_of[fd])])
                    data = b""
                except OSError:
                    data = b""
                if not data:
                    self._gone(fd)
                    break
                if data[:1] != NOTIFICATION:  # nothing is left to answer
                    self._receive(data)
        for pid, pidfd in zip(self.pids, self.pidfds, strict=False):
            forking.end_helper(pid, pidfd, kill=False)  # (reaped by the supervisor's loop, maybe)
        self.pidfds = []

    def say_ending(self) -> None:
        """Tell the replicas' watchdogs that systrace ends: a held call is ended at once."""
        self.marks.ending[0] = 1

    def say_signals(self, received: int) -> None:
        """Tell them how many signals that end systrace the main process has received: a
        call held in a replica when one came is ended at once (its watchdog)."""
        self.marks.ending[1] = received

    def close(self) -> None:
        """The command was never started: the replicas see their link close and end."""
        self.finish()


class _ForwardedLog:
    """A replica's log: each record goes to the main process, which writes it."""

    def __init__(self, link: socket.socket, structured: bool):
        self.link = link
        self.structured = structured

    def message(self, message: str, **fields: object) -> None:
        self.link.send(RECORD + json.dumps([message, fields], default=str).encode())

    def write(self, message: str, fields: dict[str, object] | str) -> None:
        """Log.write: the fields may be JSON members already (decide/reporting.py)."""
        self.message(message, **(json.loads("{" + fields + "}") if isinstance(fields, str) else fields))


def _replica_main(link: socket.socket, slot: mmap.mmap, marks: Marks, session: Session, main: int) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, asynchronous_signals())  # systrace's are the main process's
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    prctl(PR_SET_DUMPABLE, 0)
    if os.getppid() != main:
        return
    try:
        message, fds, _, _ = socket.recv_fds(link, 4096, 1)
    except OSError:
        return
    if not fds:
        return  # the command was never started
    start = json.loads(message)
    if start["avoid"] is not None:
        _pin(start["index"], start["avoid"])
    os.set_inheritable(fds[0], False)
    forwarded = _ForwardedLog(link, session.log.structured)
    session.log = forwarded  # type: ignore[assignment]
    session.reporter.log = forwarded  # type: ignore[assignment]
    # the helpers it forks keep off the pids the main process's continued calls name
    forking.reserve_from(lambda: marks.reserved, lambda pid: _discarded(forwarded, pid))
    listener = Listener(fds[0])
    # a call a file server holds here is ended as in the main loop (kernel/watchdog.py)
    watch = watchdog.start(os.getpid(), run=main, spared=tuple(start["spared"]), ending=marks.ending)
    section = watch.section if watch is not None else memoryview(bytearray(8)).cast("Q")
    try:
        effects = Effects(session, listener, select.poll(), WakeHere())  # the hint pays here (kernel/wakeup.py)
        Replica(effects, session, listener, link, slot, marks).run(section)
    finally:
        watchdog.stop()


def _discarded(log: _ForwardedLog, pid: int) -> None:
    """A child forked with a reserved pid has exited (kernel/forking.py): reap it, say so."""
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    log.message(f"a helper was forked with pid {pid}, which a call of the command in flight names: discarded, "
                "another forked", event="protect", pid=pid)


def _pin(index: int, avoid: int) -> None:
    """Keep to one CPU of those systrace had other than the main process's, the index-th:
    each replica on its own CPU (its ADDFD wakes the tracee there: kernel/wakeup.py)."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
        others = [cpu for cpu in allowed if cpu != avoid] or allowed
        os.sched_setaffinity(0, (others[index % len(others)],))
    except OSError:
        pass


class Replica:
    def __init__(self, effects: Effects, session: Session, listener: Listener, link: socket.socket, slot: mmap.mmap,
                 marks: Marks):
        self.effects = effects
        self.session = session
        self.listener = listener
        self.link = link
        self.slot = slot
        self.marks = marks
        self.served = 0
        self.routed: dict[int, int] = {}
        self.translate = TranslateStage.for_deciders(session.chain.deciders, session.use_aliases)
        self.seen: dict[int, int] = {}  # tgid -> the generation its cached entries are of
        # an open that could wait (a FIFO, FUSE) goes to the main process: its helper is
        # watched there, and nothing is left behind here if this process ends
        effects.defer_open = self._defer  # type: ignore[method-assign]

    def run(self, section: memoryview) -> None:
        """Serve what the main process hands us, in order, until it shuts the link. Each
        call served is a section of the watchdog's (0 while waiting for the next)."""
        link = self.link
        finished = 0
        while True:
            try:
                data = link.recv(65536)
            except OSError:
                break
            if not data:
                break
            if data[:1] != NOTIFICATION:
                continue
            id_, pid, flags, nr, arch, ip, *args = abi.NOTIF.unpack(data[1:])
            self.slot[:] = _SLOT.pack(id_, finished)
            section[0] = finished + 1
            try:
                self.serve(Notification(id_, pid, flags, nr, arch, ip, tuple(args)))
            finally:
                section[0] = 0
                finished += 1
                self.slot[:] = _SLOT.pack(0, finished)
        link.send(STATS + json.dumps({"served": self.served, "routed": self.routed}).encode())

    def serve(self, notif: Notification) -> None:
        self.effects.new_call()  # the mount tables: polled once for this call
        try:
            decided = self.decide(notif)
        except Exception:  # noqa: BLE001 - the main process decides it, and logs what went wrong
            decided = None
        if decided is None:
            self.forward(notif)
            return
        call, decision = decided
        self.served += 1
        self.routed[notif.nr] = self.routed.get(notif.nr, 0) + 1
        try:
            self.effects.carry_out(notif, call, decision)
        except Exception as error:  # noqa: BLE001 - fail closed, keep serving
            self.effects.refuse_after_error(notif, f"answering {call.name}", error)

    def decide(self, notif: Notification) -> tuple[Call, Decision] | None:
        """The call and its decision, or None: the main process serves it."""
        if notif.nr not in ELIGIBLE:
            return None
        processes = self.session.processes
        info = processes.info(notif.pid)
        generation = self.marks.generation(info.tgid)
        if self.seen.get(info.tgid, 0) != generation:  # an exec or set*id since: read it again
            processes.forget_group(info.tgid)
            self.seen[info.tgid] = generation
            info = processes.info(notif.pid)
        if self.marks.marked(info.tgid) or self.marks.marked(info.ppid):
            return None
        call = Call(notif, info.tgid, info.ppid, procfs.exe(notif.pid), info.uid, info.gid)
        self.translate.before_deciding(call)
        if call.translation is not None and call.translation.open_root not in (None, "/"):  # (as systrace's root names it)
            return None  # chrooted: only the main process knows the roots its checked chroots named (decide/roots.py)
        decision = self.session.chain.decide(call)  # the chain only: logging is the main process's
        if decision.log or decision.signal or decision.verdict not in (PERMIT, DENY):
            return None
        if decision.verdict == PERMIT and protected.routed_write_open(call.name, call.args):
            return None  # the files no policy may change (cgroups, pid allocation): the main process checks
        translation = call.translation
        if decision.effect and self.marks.sandboxed[0]:
            return None  # a process may be in a Landlock domain of its own: only the main process has its copy
        if decision.effect and translation is not None and protected.opener_resolved(
                [value for name, value in translation.args if name == "filename"], self.effects.proc_points):
            return None  # a /proc entry of its opener's namespace: the main process has a helper join the tracee's
        if translation is not None and translation.read_memory and not self.listener.id_valid(notif.id):
            return call, _STALE  # the call went away while we read its memory
        return call, decision

    def forward(self, notif: Notification) -> None:
        self.link.send(NOTIFICATION + abi.NOTIF.pack(notif.id, notif.pid, notif.flags, notif.nr, notif.arch, notif.ip,
                                                     *notif.args))

    def _defer(self, deferred: Deferred, call: Call) -> None:
        deferred.cancel()
        self.forward(call.notif)


_STALE = Decision(DENY, errno.EPERM, source="stale")


def _flush(session: Session) -> None:
    """Nothing buffered before the fork may be written twice."""
    for sink in getattr(session.log, "sinks", ()):
        try:
            sink.flush()
        except Exception:  # noqa: BLE001 - a sink that fails reports it on its next write
            pass
