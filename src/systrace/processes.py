"""Which process a notifying thread belongs to.

notif.pid is a thread id. Its thread group, parent and credentials are cached per thread
id together with a pidfd for that thread: a thread id is only reused after its task
died, so a cache hit is trusted only while that pidfd still names a live task (a cheap
signal-0 check). This is what lets clone/fork stay out of the notified set; notifying
them would let a signal that arrives before we receive the notification turn fork()
into EINTR, which a native fork never returns.

What is cached changes only through calls the thread itself makes, and every such call
always reaches the supervisor (the facts table's `invalidates`, README "Caches"):
- credentials (euid, egid) change by the set*id calls, which act on the calling thread
  only (glibc makes each thread call them): its entry's credentials are read again after;
- the binary (/proc/TID/exe), the group and credentials change by exec: the group's
  entries are dropped when an exec is permitted. While a multi-threaded group's exec is
  under way its other threads may still call; nothing of that group is cached until a
  call of it shows one thread left (the exec finished, or failed and the others exited);
- a thread's exit: its pidfd says so at the next lookup (a thread id is reused only after);
- its mount and user namespaces (kernel/namespaces.py) change by its own unshare or
  setns: they are read again at its next call (and its credentials with them);
- the identity an emulated call is made as (credentials_status: ids, groups,
  capabilities) changes by the set*id calls, setgroups, capset, exec and a new user
  namespace, all seen first; its umask is read fresh for anything that may create;
- the parent, when it exits: the orphan is reparented (to systrace, the run's subreaper,
  or a closer one). An entry whose parent is another process of the run keeps a pidfd of
  that parent, and its parent is read again once that pidfd says it is gone.
Root, working directory and umask are shared between threads (CLONE_FS) and change by
calls the kernel runs after the answer: they are never cached."""

from __future__ import annotations

import errno
import os
import select

from .kernel import namespaces, procfs
from .kernel.plain_signal import pidfd_send_signal

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable, Container

PIDFD_THREAD = os.O_EXCL  # pidfd_open flag (Linux 6.9): a pidfd for one thread
MAX_REPARENTS = 64  # parents tried while each dies as it is looked at
SWEEP_AT = 512  # entries; past this, dead threads' entries are swept out


class ThreadInfo:
    """One thread's process, parent, credentials and binary. Its identity means "the same
    process image" (brk and fault counters key on it): a credential change refreshes it
    in place, an exec makes a new one."""

    __slots__ = ("tgid", "ppid", "uid", "gid", "exe", "stale", "status", "parent")

    def __init__(self, tgid: int, ppid: int, uid: int, gid: int, exe: str | None = None):
        self.tgid, self.ppid, self.uid, self.gid, self.exe = tgid, ppid, uid, gid, exe
        self.stale = False  # the credentials must be read again
        self.status: bytes | None = None  # the /proc status its credentials were read from (credentials_status)
        self.parent = -1  # a pidfd of the parent (one for all its children) while it may exit and leave this one an orphan

    def __repr__(self) -> str:
        return f"ThreadInfo(tgid={self.tgid}, ppid={self.ppid}, uid={self.uid}, gid={self.gid}, exe={self.exe!r})"


class ProcessTable:
    def __init__(self) -> None:
        self._threads: dict[int, tuple[ThreadInfo, int]] = {}
        # /proc/TID/status fds: bound to their task (after its death reads fail, never
        # another task's), so pread gives fresh credentials cheaply
        self._status_fds: dict[int, int] = {}
        self._sweep_at = SWEEP_AT
        self._thread_pidfds = True
        # each cached thread holds two descriptors (its pidfd, its status file): past this
        # many, threads are read uncached, so that a flood of threads (20,000 killed
        # systrace with EMFILE) leaves descriptors for everything else
        self._max_cached = max(64, os.sysconf("SC_OPEN_MAX") // 4)
        self._uncached = 0
        self._exec_under_way: set[int] = set()  # groups whose exec was permitted while multi-threaded
        self._me = os.getpid()  # systrace: a parent that outlives every process of the run
        # pidfds of the parents of cached threads, one per parent however many children it
        # has (a shell starting hundreds): readable once that parent exited
        self._parents: dict[int, tuple[int, set[int]]] = {}  # parent pidfd -> (its pid, the tids it parents)
        self._parent_fds: dict[int, int] = {}  # parent pid -> its pidfd
        self._parents_poll = select.poll()
        # the last /proc status read during the current call (new_call() ends it): a thread
        # that called and is blocked in its call cannot start another thread meanwhile
        self._read_in_call: tuple[int, bytes] | None = None

    def new_call(self) -> None:
        """The loop starts on another notification (effects.Effects.new_call)."""
        self._read_in_call = None

    def info(self, tid: int) -> ThreadInfo:
        entry = self._threads.get(tid)
        if entry is not None:
            if alive(entry[1]):
                info = entry[0]
                if info.stale:
                    self._refresh_credentials(tid, info)
                if self._parents and self._parents_poll.poll(0):
                    self._parents_exited()
                return info
            self._drop(tid)
        pidfd = self._open_pidfd(tid)
        try:
            data = self.status_bytes(tid, keep=pidfd >= 0)
            status = procfs.parse_status(data)
        except BaseException:
            if pidfd >= 0:
                os.close(pidfd)
            status_fd = self._status_fds.pop(tid, None)
            if status_fd is not None:
                os.close(status_fd)
            raise
        info = ThreadInfo(status.tgid, status.ppid, status.euid, status.egid)
        if status.tgid in self._exec_under_way:
            if procfs.field(data, b"Threads") != b"1":
                self._forget_thread(tid, pidfd)  # nothing of this group is cached yet
                return info
            self._exec_under_way.discard(status.tgid)
        if pidfd >= 0:
            info.status = data
            try:
                self._watch_parent(tid, info)
            except BaseException:
                self._forget_thread(tid, pidfd)
                raise
            self._threads[tid] = (info, pidfd)
            namespaces.track(tid)  # its namespaces, kept while this entry proves the thread
            if len(self._threads) >= self._sweep_at:
                self._sweep()
        return info

    def cached(self, tid: int) -> ThreadInfo | None:
        """The thread's entry when everything of it is known and current (its task alive,
        its binary read, its credentials not due to be read again), else None: then
        info() finds out. No system call but the liveness check."""
        entry = self._threads.get(tid)
        if entry is None:
            return None
        info = entry[0]
        if info.stale or info.exe is None:
            return None
        try:  # alive(), inline: this runs for every call answered by name
            pidfd_send_signal(entry[1], 0)
        except ProcessLookupError:
            return None
        except OSError:
            pass  # EPERM: alive
        if self._parents and self._parents_poll.poll(0):
            self._parents_exited()  # (its parent read again, in place)
        return info

    def thread_pidfd(self, tid: int) -> int:
        """The cached thread's own pidfd (PIDFD_THREAD: its descriptor table, even one it
        does not share), or -1 (not cached, or a kernel before 6.9)."""
        entry = self._threads.get(tid)
        return entry[1] if entry is not None and self._thread_pidfds else -1

    def binary(self, tid: int, info: ThreadInfo) -> str:
        """The thread's binary (/proc/TID/exe), read once per process image: `info` is
        the thread's current entry, dropped at exec."""
        exe = info.exe
        if exe is None:
            exe = procfs.exe(tid)
            if tid in self._threads:  # cached only with its entry
                info.exe = exe
        return exe

    def permitted(self, what: str, tid: int, tgid: int) -> None:
        """A call that changes `what` ("exec", "credentials": facts `invalidates`) was
        permitted: the calling thread is blocked in it until the kernel runs it after our
        answer, so reading its state again at its next call is exact."""
        if what == "exec":
            threads = self._threads_now(tid)
            entry = self._threads.get(tid)
            if threads == b"1" and tid == tgid and entry is not None:
                self._new_image(tid, entry)
                return
            self.forget_group(tgid)
            if threads != b"1":  # the others may call until the exec has killed them
                self._exec_under_way.add(tgid)
        elif what == "credentials":
            entry = self._threads.get(tid)
            if entry is not None:
                entry[0].stale = True
        elif what == "namespaces" and tid in self._threads:  # unshare, setns: read them again
            namespaces.track(tid)
            self._threads[tid][0].stale = True  # (a new user namespace: new capabilities)

    def _threads_now(self, tid: int) -> bytes:
        """How many threads the group of `tid` has now (b"": cannot tell). A status read
        during this call that says 1 still holds: its only thread is `tid`, blocked in
        the call being served, so none can be started (the shell's child read for its
        exec, its first call, is not read again)."""
        fresh = self._read_in_call
        if fresh is not None and fresh[0] == tid and procfs.field(fresh[1], b"Threads") == b"1":
            return b"1"
        try:
            return procfs.field(self.status_bytes(tid), b"Threads")
        except OSError:
            return b""

    def _new_image(self, tid: int, entry: tuple[ThreadInfo, int]) -> None:
        """The exec of a process's only thread, its leader: no thread is left to start
        another, so whether the exec succeeds or fails the same task makes the next call,
        with the same tid, parent and namespaces (an exec changes none of them). Its
        pidfd, status fd and parent's watch are kept (nothing opened again for each
        process a shell starts); what an exec may change, the binary and the credentials
        (set-user-ID, file capabilities), is read again at its next call, into a new
        entry (a new process image: brk and fault counters key on it)."""
        old, pidfd = entry
        info = ThreadInfo(old.tgid, old.ppid, old.uid, old.gid)
        info.stale = True
        info.parent = old.parent
        self._threads[tid] = (info, pidfd)

    def _watch_parent(self, tid: int, info: ThreadInfo) -> None:
        """Keep a pidfd of the parent, unless it is systrace or init (never reparented
        from) or outside our PID namespace (0). The child's parent is read again once
        the pidfd is open: had the parent died and its pid been reused before, the child
        would name another parent by now. A parent already watched for another child is
        not opened again: its pidfd, opened before the child's status was read and still
        not readable now (the parent has not exited, so its pid names it still), proves
        that the pid the status gave named that same process then."""
        for _ in range(MAX_REPARENTS):
            if info.ppid <= 1 or info.ppid == self._me:
                return
            held = self._parent_fds.get(info.ppid)
            if held is not None and not _readable(held):
                self._attach_parent(tid, info, held)
                return
            try:
                parent = os.pidfd_open(info.ppid)
            except OSError:
                parent = -1
            ppid = procfs.parse_status(self.status_bytes(tid, keep=True)).ppid
            if ppid == info.ppid:
                if parent >= 0:  # (no descriptor left: not watched)
                    if held is not None:  # that parent exited: its watchers are read again at the next call
                        self._parent_fds.pop(info.ppid, None)
                    self._parents[parent] = (ppid, set())
                    self._parent_fds[ppid] = parent
                    self._parents_poll.register(parent, select.POLLIN)
                    self._attach_parent(tid, info, parent)
                return
            if parent >= 0:
                os.close(parent)
            info.ppid = ppid

    def _attach_parent(self, tid: int, info: ThreadInfo, parent: int) -> None:
        info.parent = parent
        self._parents[parent][1].add(tid)

    def _unwatch_parent(self, tid: int, info: ThreadInfo) -> None:
        parent = info.parent
        if parent < 0:
            return
        info.parent = -1
        watched = self._parents.get(parent)
        if watched is None:
            return
        watched[1].discard(tid)
        if not watched[1]:
            self._close_parent(parent)

    def _close_parent(self, parent: int) -> None:
        ppid, _ = self._parents.pop(parent)
        if self._parent_fds.get(ppid) == parent:
            del self._parent_fds[ppid]
        self._parents_poll.unregister(parent)
        os.close(parent)

    def _parents_exited(self) -> None:
        """Some cached thread's parent exited (a zombie too: its children were reparented
        when it exited): read those threads' parents again."""
        for parent, _ in self._parents_poll.poll(0):
            if parent not in self._parents:
                continue  # (closed while handling another in this loop)
            _, tids = self._parents[parent]
            self._close_parent(parent)
            for tid in tids:
                entry = self._threads.get(tid)
                if entry is None or entry[0].parent != parent:
                    continue
                info = entry[0]
                info.parent = -1
                try:
                    info.ppid = procfs.parse_status(self.status_bytes(tid)).ppid
                    self._watch_parent(tid, info)
                except OSError:
                    self._drop(tid)  # the thread is gone too: looked up afresh if it calls

    def _refresh_credentials(self, tid: int, info: ThreadInfo) -> None:
        data = self.status_bytes(tid)
        status = procfs.parse_status(data)
        info.uid, info.gid, info.stale, info.status = status.euid, status.egid, False, data

    def credentials_status(self, tid: int, creating: bool) -> bytes:
        """The thread's /proc status to take its identity from (kernel/emulate_identity.py):
        the one its credentials were last read from while they cannot have changed since
        (every call that changes them is seen first: facts `invalidates`), else read now.
        `creating`: the operation may create a file, so the umask counts, which threads
        share (CLONE_FS) and change by calls the kernel runs: read now."""
        entry = self._threads.get(tid)
        if entry is not None and not creating:
            info = entry[0]
            if not info.stale and info.status is not None:
                return info.status
        return self.status_bytes(tid)

    def _forget_thread(self, tid: int, pidfd: int) -> None:
        if pidfd >= 0:
            os.close(pidfd)
        status_fd = self._status_fds.pop(tid, None)
        if status_fd is not None:
            os.close(status_fd)

    def status_bytes(self, tid: int, keep: bool | None = None) -> bytes:
        """The thread's /proc status now (credentials, umask). Its fd is kept for the next
        time when `keep`, by default when the thread is tracked (its pidfd proves identity)."""
        fd = self._status_fds.get(tid)
        if fd is not None:
            try:
                data = os.pread(fd, 4096, 0)
                if data:
                    self._read_in_call = (tid, data)
                    return data
            except OSError:
                pass
            os.close(self._status_fds.pop(tid))
        fd = os.open(f"/proc/{tid}/status", os.O_RDONLY | os.O_CLOEXEC)
        if keep if keep is not None else tid in self._threads:
            self._status_fds[tid] = fd
            data = os.pread(fd, 4096, 0)
        else:
            try:
                data = os.pread(fd, 4096, 0)
            finally:
                os.close(fd)
        self._read_in_call = (tid, data)
        return data

    def forget_group(self, tgid: int) -> None:
        for tid in [tid for tid, (info, _) in self._threads.items() if info.tgid == tgid or tid == tgid]:
            self._drop(tid)

    def close(self) -> None:
        for tid in list(self._threads):
            self._drop(tid)

    def __len__(self) -> int:
        return len(self._threads)

    def _open_pidfd(self, tid: int) -> int:
        if not self._thread_pidfds:
            return -1
        if len(self._threads) >= self._max_cached:
            self._uncached += 1
            if self._uncached % SWEEP_AT == 0:  # (now and then: a sweep walks every entry)
                self._sweep()
            if len(self._threads) >= self._max_cached:
                return -1  # (not cached: read from /proc at each call, as before Linux 6.9)
        try:
            return os.pidfd_open(tid, PIDFD_THREAD)
        except OSError as error:
            if error.errno == errno.EINVAL:  # kernel before 6.9: no caching at all
                self._thread_pidfds = False
            return -1

    def _drop(self, tid: int) -> None:
        entry = self._threads.pop(tid, None)
        if entry is not None:
            os.close(entry[1])
            namespaces.forget(tid)
            self._unwatch_parent(tid, entry[0])
        status_fd = self._status_fds.pop(tid, None)
        if status_fd is not None:
            os.close(status_fd)

    def _sweep(self) -> None:
        for tid in [tid for tid, (_, pidfd) in self._threads.items() if not alive(pidfd)]:
            self._drop(tid)
        self._sweep_at = max(SWEEP_AT, 2 * len(self._threads))


class PerProcess:
    """Values kept for a process (by tgid) only while that process lives. Each entry holds
    a pidfd opened when it was set (the process was making a call, so it was alive); an
    entry whose process is gone is dropped when looked up, so a recycled tgid never
    finds another process's value (`detached`, an exec expectation...)."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[object, int]] = {}
        self._sweep_at = SWEEP_AT
        # may_hold(tgid): is there an entry, perhaps a dead process's? No liveness check: a
        # cheap, conservative test (the dict's own method: no Python frame per call)
        self.may_hold: Callable[[int], bool] = self._entries.__contains__
        self.held: Container[int] = self._entries  # ... the same as `tgid in held`, without a call

    def set(self, tgid: int, value: object) -> None:
        entry = self._entries.get(tgid)
        if entry is not None and alive(entry[1]):
            self._entries[tgid] = (value, entry[1])
            return
        self.discard(tgid)
        try:
            pidfd = os.pidfd_open(tgid)
        except OSError:
            return  # already gone: nothing to remember
        self._entries[tgid] = (value, pidfd)
        if len(self._entries) >= self._sweep_at:
            for dead in [t for t, (_, fd) in self._entries.items() if not alive(fd)]:
                self.discard(dead)
            self._sweep_at = max(SWEEP_AT, 2 * len(self._entries))

    def add(self, tgid: int) -> None:
        """Set-like use: mark the process."""
        self.set(tgid, True)

    def get(self, tgid: int, default: object = None) -> object:
        entry = self._entries.get(tgid)
        if entry is None:
            return default
        if alive(entry[1]):
            return entry[0]
        self.discard(tgid)
        return default

    def pop(self, tgid: int, default: object = None) -> object:
        value = self.get(tgid, default)
        self.discard(tgid)
        return value

    def discard(self, tgid: int) -> None:
        entry = self._entries.pop(tgid, None)
        if entry is not None:
            os.close(entry[1])

    def __contains__(self, tgid: int) -> bool:
        return self.get(tgid, _MISSING) is not _MISSING


    def __len__(self) -> int:
        return len(self._entries)

    def live_values(self) -> list[object]:
        """The values of the processes still alive (the others are dropped)."""
        return [value for tgid in list(self._entries) if (value := self.get(tgid, _MISSING)) is not _MISSING]

    def close(self) -> None:
        for tgid in list(self._entries):
            self.discard(tgid)


_MISSING = object()


def _readable(pidfd: int) -> bool:
    """Has the process of this pidfd exited (a zombie too)? (poll, not select: any fd number)"""
    probe = select.poll()
    probe.register(pidfd, select.POLLIN)
    return bool(probe.poll(0))


def alive(pidfd: int) -> bool:
    """Signal 0 through the pidfd: ESRCH once its task is gone (EPERM means alive).
    signal.pidfd_send_signal, not ctypes: half the cost, on every routed call."""
    try:
        pidfd_send_signal(pidfd, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True
