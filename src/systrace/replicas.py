"""Several supervisor processes on one listener (`--supervisors N`, with -a only).

One Python process serves one notification at a time; with many tracee threads opening
files at once (bench/threads_open.c) every open waits behind the one being served, and
most of an emulated open is Python work and a wait for the tracee to install the
descriptor (ADDFD). Threads do not help: the work holds the GIL (measured slower, see
BENCHMARKS.md). So N more processes, forked from systrace before the command is
launched (their pids are guarded by the filter like systrace's own), receive from the
same listener: the kernel hands each notification to exactly one receiver, and any
holder of the listener may answer it.

With --supervisors N, N replicas receive and the main process receives nothing once the
command runs (start() says why): it serves what they hand it, signals and children.

What a replica decides on its own is what needs nothing the main process keeps:
- only the path calls of ELIGIBLE (opens, stats, access, readlink), never an exec, a brk
  or anything else that changes per-process state;
- only for a process for which the main process holds no state (a pending exec check,
  a detach, an inherited policy; nor for its parent: a detached parent's child is
  detached), as the shared table of marks says. The main process sets a process's mark
  after deciding any of its calls and before answering it, so the first call after an
  exec it permitted always finds the mark;
- only a decision that is not logged: a logged one, a kill, a signal, is sent to the
  main process, which serves the notification from the start, as if it had received it.
A replica reads the binary (/proc/TID/exe) per call; the thread facts it caches
(processes.py) are dropped when the main process permitted an exec or a set*id of that
process since (a shared generation per process, bumped before the answer).
So policy enforcement, exec checks and logging are the single process's. Learning,
asking and fault injection are refused with --supervisors: their order is the run's.

A replica's emulation refusals and internal errors are logged by the main process (the
record is sent to it). The notification a replica is serving is written to a shared
slot: if the replica dies, the main process fails that call (EPERM) and serves alone. A
replica dies with systrace (PR_SET_PDEATHSIG), holds its signals blocked, is not
dumpable, and ends when the listener hangs up, after sending its --stats counts.
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

from .call import Call
from .decide import DENY, PERMIT, Decision, protected
from .effects import Effects
from .facts import invalidating_calls
from .kernel import abi, forking, procfs
from .kernel.libc import prctl
from .kernel.notify import Listener, Notification
from .kernel.signals import asynchronous_signals
from .kernel.syscalls_x86_64 import SYSCALLS
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
_SLOT = struct.Struct("=Q")
_GENERATION = struct.Struct("=I")
INVALIDATING = frozenset(SYSCALLS[name] for name in invalidating_calls())
NOTIFICATION, RECORD, STATS = b"N", b"L", b"S"


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
        self.links: dict[int, socket.socket] = {}  # by fd
        self.slots: dict[int, mmap.mmap] = {}  # by link fd: the notification its replica serves
        self.started = False
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
            self.links[ours.fileno()] = ours
            self.slots[ours.fileno()] = slot

    def start(self, supervisor: Supervisor, child_pid: int) -> None:
        """The command runs: hand the listener to the replicas (once). From now on only
        they receive: a RECV cannot be made non-blocking, so a main process that also
        received could block in it after a replica took the notification poll() showed,
        while a notification the replica forwarded waits for it."""
        if self.started:
            return
        self.started = True
        self.supervisor = supervisor
        pinned = len(os.sched_getaffinity(0)) == 1  # kernel/wakeup.py pinned us: spread the replicas
        for index, (fd, link) in enumerate(list(self.links.items())):
            message = json.dumps({"child": child_pid, "cpu": index if pinned else None}).encode()
            try:
                socket.send_fds(link, [message], [supervisor.listener.fileno()])
            except OSError:
                self._gone(fd)
        if self.links:
            supervisor.poller.modify(supervisor.listener.fileno(), 0)  # its hang-up only: the end of the run

    def note(self, call: Call, decision: Decision) -> None:
        """After the main process decided a call, before it answers: mark the process while
        a decider holds state for it (a pending exec check, a detach...), and make the
        replicas read it again after an exec or a credential change."""
        tgid = call.tgid
        self.marks.set(tgid, any(holds(tgid) for holds in self._holders))
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
        """A replica ended (or died): fail closed the call it was serving, serve alone."""
        link = self.links.pop(fd)
        slot = self.slots.pop(fd)
        if self.supervisor is not None:
            self.supervisor.poller.unregister(fd)
        (serving,) = _SLOT.unpack(slot[:])
        if serving and self.supervisor is not None:
            self.session.log.message("a supervisor process ended while serving a call; denied", event="error")
            try:
                self.supervisor.listener.fail(serving, errno.EPERM)
            except OSError:
                pass
        link.close()
        slot.close()
        if not self.links and self.started and self.supervisor is not None:  # the last one: receive ourselves again
            self.supervisor.poller.modify(self.supervisor.listener.fileno(), select.POLLIN)

    def finish(self) -> None:
        """The listener hung up: read what each replica still sends (its counts) until it ends."""
        if not self.started:  # the command never ran (its exec failed): nothing to wait for
            for fd in list(self.links):
                self.links.pop(fd).close()
                self.slots.pop(fd).close()
        for fd, link in list(self.links.items()):
            link.setblocking(True)
            link.settimeout(10.0)  # a safety net: a replica ends as soon as the listener hangs up
            while fd in self.links:
                try:
                    data = link.recv(65536)
                except TimeoutError:
                    os.kill(self.pid_of[fd], signal.SIGKILL)  # stuck: it has nothing left to serve
                    data = b""
                except OSError:
                    data = b""
                if not data:
                    self._gone(fd)
                    break
                if data[:1] != NOTIFICATION:  # nothing is left to answer
                    self._receive(data)
        for pid in self.pids:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass  # reaped by the supervisor's loop

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
    if start["cpu"] is not None:
        _pin(start["cpu"])
    os.set_inheritable(fds[0], False)
    forwarded = _ForwardedLog(link, session.log.structured)
    session.log = forwarded  # type: ignore[assignment]
    session.reporter.log = forwarded  # type: ignore[assignment]
    # the helpers it forks keep off the pids the main process's continued calls name
    forking.reserve_from(lambda: marks.reserved, lambda pid: _discarded(forwarded, pid))
    listener = Listener(fds[0])
    Replica(Effects(session, listener, select.poll()), session, listener, link, slot, marks).run()


def _discarded(log: _ForwardedLog, pid: int) -> None:
    """A child forked with a reserved pid has exited (kernel/forking.py): reap it, say so."""
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    log.message(f"a helper was forked with pid {pid}, which a call of the command in flight names: discarded, "
                "another forked", event="protect", pid=pid)


def _pin(index: int) -> None:
    """Keep to one CPU of those systrace had, the index-th: each replica on its own CPU
    (SYNC_WAKE_UP gathers the tracees it serves there)."""
    try:
        allowed = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, (allowed[index % len(allowed)],))
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

    def run(self) -> None:
        listener = self.listener
        poller = select.poll()
        poller.register(listener.fileno(), select.POLLIN)
        while True:
            events = [events for _, events in poller.poll()]
            if any(e & select.POLLIN for e in events):
                notif = listener.recv()
                if notif is not None:
                    self.slot[:] = _SLOT.pack(notif.id)
                    try:
                        self.serve(notif)
                    finally:
                        self.slot[:] = _SLOT.pack(0)
            elif any(e & (select.POLLHUP | select.POLLERR) for e in events):
                break
        self.link.send(STATS + json.dumps({"served": self.served, "routed": self.routed}).encode())

    def serve(self, notif: Notification) -> None:
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
        decision = self.session.chain.decide(call)  # the chain only: logging is the main process's
        if decision.log or decision.signal or decision.verdict not in (PERMIT, DENY):
            return None
        if decision.verdict == PERMIT and protected.routed_write_open(call.name, call.args):
            return None  # the files no policy may change (cgroups, pid allocation): the main process checks
        translation = call.translation
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
