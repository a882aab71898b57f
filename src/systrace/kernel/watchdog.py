"""A watchdog over the supervisor's loop: no call the loop makes may hold it for ever.

A file system a process serves (FUSE) can hold any call that touches it: a page of tracee
memory faulted in (process_vm_readv), a path looked up, an fstat or fstatfs, a helper
reaped after it was killed while its request was taken. systrace avoids making those calls
in the loop (memory.py, MountTable.servable, worker.py), but every such check comes before
the call, and a mount made in between (by the tracee or by a process outside the run) is
not seen. So, by construction: every turn of the loop that serves something is a section
(supervisor.py: one store to a page shared with the watchdog when it starts, one when it
ends), and a forked watchdog process looks at that page every TICK. A section that stays
the same while the loop sleeps in the kernel (every thread in state S or D) for BOUND is a stall; so is
one while a signal that ends systrace is pending (it is honoured at once). The watchdog
then ends the stall, failing closed, one step at a time until the loop moves:

1. it aborts the FUSE connection that holds the loop (/sys/fs/fuse/connections/N/abort,
   mounted in a mount namespace of the watchdog's own when nobody mounted it; writable
   by root and by the connection's owner): the held call fails (EIO/ENOTCONN) and the
   loop serves on. Which connection is read from what the loop is doing
   (/proc/LOOP/task/T/syscall): a call on a descriptor names its mount (fdinfo's
   mnt_id), process_vm_readv/writev the FUSE files the other process maps, a path
   call its path (read from the loop's memory, as root) and the mount it is on. Only
   when none of that names a FUSE mount are the connections that had requests waiting
   at every look since the stall began taken instead (inferred: as root that may be a
   slow but honest server's too);
2. it kills every process of the run (every descendant of systrace but itself: the
   command's tree comes back to systrace, a child subreaper), which frees a server that
   is one of them;
3. it says why on stderr and kills systrace (and again the run's processes).

A replica of `--supervisors` (replicas.py) has a watchdog of its own over its loop, with
the same sections, bound and steps: the run is then the main process's descendants but
the supervisor processes (the replicas, the main watchdog and what they forked), a signal
that ends systrace is the main process's (pending there; received by it since the section
began, counted on a shared word: its loop reads a signal at once while a replica is held;
or said on that word once the listener hung up: the run is over), and the last step kills
that replica only (the main process denies the call it held and serves on alone).

A wait the loop makes on purpose (a question to the user: frontend/waiting.py) is made
outside a section. The watchdog holds no descriptor but stderr and the loop's pidfd,
dies with systrace, and is protected as a helper."""

from __future__ import annotations

import os

from .forking import end_helper, fork_helper, kill_helper, pidfd_of
from .libc import libc, shared_page
from .plain_signal import NAMED_SIGNALS, signal

BOUND = 1.0  # seconds the loop may sleep in the kernel inside one section
TICK = 0.02  # seconds between two looks at the page
GRACE = 0.2  # seconds a step is given to free the loop once a signal asks systrace to end
ENDING = (signal.SIGHUP, signal.SIGINT, signal.SIGQUIT, signal.SIGTERM)
CONNECTIONS = "/sys/fs/fuse/connections"
PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
NAME = b"systrace-watch"
CLONE_NEWNS = 0x00020000
MS_REC, MS_PRIVATE = 0x4000, 1 << 18


class Watched:
    """What a watchdog watches: the loop, the run whose processes it may kill (the
    descendants of `run` but the subtrees of `spared`), and a shared word that, non-zero,
    says systrace is ending (a replica's: its main process said so)."""

    def __init__(self, loop: int, run: int | None = None, spared: tuple[int, ...] = (),
                 ending: memoryview | None = None) -> None:  # ending: [hung up, signals received]
        self.loop = loop
        self.run = loop if run is None else run
        self.spared = frozenset(spared)
        self.ending = ending
        self.replica = self.run != loop
        self.loop_fd = self.run_fd = -1  # pidfds of the loop and of `run`, opened in the watchdog
        self.who = "a supervisor process sharing the listener" if self.replica else "the supervisor"

    def signals(self) -> int:
        """How many signals that end systrace the main process has received (a replica's)."""
        return self.ending[1] if self.ending is not None else 0

    def signalled(self, since: int = 0) -> bool:
        """A signal asks systrace to end: pending on the main process, received by it
        since the section began (`since`: signals() then; a replica's main loop reads its
        signals at once, while the replica is held), or the listener hung up."""
        if _ending_pending(self.run):
            return True
        return self.ending is not None and (self.ending[0] != 0 or self.ending[1] != since)


class Watchdog:
    """The loop's side: `section` is the shared word (0 outside a section, else the
    section's number), `pid` the watchdog's."""

    def __init__(self, watched: Watched) -> None:
        self.section = shared_page()  # MAP_SHARED: the watchdog sees our stores
        pid = fork_helper()
        if pid == 0:
            code = 70
            try:
                _watch_main(watched, self.section)
                code = 0
            finally:
                os._exit(code)
        self.pid = pid
        self.pidfd = pidfd_of(pid)  # the loop reaps children too: never killed by pid (forking.py)

    def close(self) -> None:
        end_helper(self.pid, self.pidfd, kill=True)
        self.pidfd = -1


_current: Watchdog | None = None


def start(loop_pid: int, run: int | None = None, spared: tuple[int, ...] = (),
          ending: memoryview | None = None) -> Watchdog | None:
    """The process's watchdog (None if it cannot be started: then the loop runs
    without one, as before, and says nothing; the checks before each call remain).
    A replica passes the main process as `run`, the supervisor processes not to kill
    as `spared`, and the word on which the main process says systrace ends."""
    global _current
    try:
        _current = Watchdog(Watched(loop_pid, run, spared, ending))
    except OSError:
        _current = None
    return _current


def stop() -> None:
    global _current
    if _current is not None:
        _current.close()
        _current = None


def pause() -> int:
    """Leave the current section for a wait made on purpose (returns it for resume)."""
    if _current is None:
        return 0
    held = _current.section[0]
    _current.section[0] = 0
    return held


def resume(held: int) -> None:
    if _current is not None and held:
        _current.section[0] = held + (1 << 40)  # a new section: the wait is not counted
    # (section numbers the loop hands out stay far below 1 << 40)


def watchdog_pids() -> list[int]:
    return [_current.pid] if _current is not None else []


# -- the watchdog process ----------------------------------------------------------------
def _watch_main(watched: Watched, section: memoryview) -> None:
    import ctypes
    import select

    loop = watched.loop
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    name = ctypes.create_string_buffer(NAME)
    libc.prctl(PR_SET_NAME, ctypes.addressof(name), 0, 0, 0)
    signal.pthread_sigmask(signal.SIG_BLOCK, NAMED_SIGNALS - {signal.SIGKILL, signal.SIGSTOP})
    if not _open_pidfds(watched):
        return  # the loop ended before the watchdog could name it: nothing to watch
    kept = sorted({watched.loop_fd, watched.run_fd})  # nothing of the loop's: stderr, and these pidfds
    for low, high in zip([2, *kept], [*kept, os.sysconf("SC_OPEN_MAX")], strict=True):
        os.closerange(low + 1, high)
    ticker = select.poll()
    ticker.register(watched.loop_fd, select.POLLIN)
    held, asleep, waiting, since = 0, 0.0, None, watched.signals()
    before = since  # counted at the last look: a section first seen now may have begun before this look's
    while not ticker.poll(int(TICK * 1000)):  # readable: the loop has ended
        now, before, signals = section[0], watched.signals(), before
        if not now or now != held:
            held, asleep, waiting, since = now, 0.0, None, signals
            continue
        if not _asleep(loop):
            continue  # running (or waiting for a CPU): not held by anyone
        asleep += TICK
        waiting = _waiting(waiting)
        signalled = watched.signalled(since)
        if asleep >= BOUND or signalled:
            if not _end_stall(watched, section, held, waiting, signalled):
                return  # the loop's process is killed: it ends when the kernel lets it, nothing more to do
            held, asleep, waiting, since = 0, 0.0, None, watched.signals()


def _end_stall(watched: Watched, section: memoryview, held: int, waiting: set[str] | None,
               signalled: bool) -> bool:
    """The steps of the module's docstring, each given BOUND (GRACE after a signal). Each
    is said before it is taken: once the loop is free it may end the run, and this process
    with it. False: the loop's process had to be killed."""
    why = "a signal asks systrace to end" if signalled else f"for {BOUND:g} s"
    within = GRACE if signalled else BOUND
    who = watched.who
    held_on = _held_on(watched.loop)
    connections = _abortable(watched.run, waiting or set(), held_on)
    if connections:
        _say(f"systrace: {who} is held inside a system call ({why}): the FUSE connection that does "
             f"not answer is aborted ({', '.join(sorted(connections))})")
        if _abort(connections) and _freed(section, held, within):
            return True
    _say(f"systrace: {who} is held inside a system call a file server does not answer ({why}): "
         "every process of the run is killed")
    if _kill_run(watched) and _freed(section, held, within):
        return True
    ends = "it ends, the call it held denied" if watched.replica else "systrace ends"
    _say(f"systrace: {who} is still held inside a system call a file server does not answer: "
         f"{ends} (every process of the run killed)")
    kill_helper(watched.loop_fd)
    _kill_run(watched)
    return False


def _say(line: str) -> None:
    try:
        os.write(2, line.encode() + b"\n")
    except OSError:
        pass  # no stderr: the run's end says enough


def _freed(section: memoryview, held: int, within: float) -> bool:
    import select

    ticker = select.poll()
    for _ in range(max(1, int(within / TICK))):
        if section[0] != held:
            return True
        ticker.poll(int(TICK * 1000))
    return section[0] != held


def _asleep(pid: int) -> bool:
    """Is every thread of the loop asleep in the kernel (S or D)? One that runs or waits
    for a CPU (a thread doing work for the loop: kernel/landlock_domain.py) is progress."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/stat", "rb") as handle:
                if handle.read().rsplit(b")", 1)[1].split()[0] not in (b"S", b"D"):
                    return False
        except (OSError, IndexError):
            continue  # a thread that ended
    return True


def _ending_pending(pid: int) -> bool:
    """A signal asking systrace to end is pending (blocked: its signalfd reads it)."""
    mask = sum(1 << (number - 1) for number in ENDING)
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith((b"ShdPnd:", b"SigPnd:")) and int(line.split()[1], 16) & mask:
                    return True
    except (OSError, ValueError, IndexError):
        pass
    return False


def _waiting(before: set[str] | None) -> set[str]:
    """The FUSE connections with requests waiting now, and at every look before."""
    now = set()
    try:
        for name in os.listdir(CONNECTIONS):
            try:
                with open(f"{CONNECTIONS}/{name}/waiting", "rb") as handle:
                    if int(handle.read() or b"0"):
                        now.add(name)
            except (OSError, ValueError):
                continue
    except OSError:
        pass
    return now if before is None else now & before


def _abortable(loop: int, waiting: set[str], held_on: set[str] | None = None) -> set[str]:
    """Those of the connections that a process of the run (or systrace) sees mounted and
    whose abort file this process may write: `held_on`, the connections the loop's call
    is known to wait on, else those with requests waiting. Without a fusectl mount, root
    mounts one in a mount namespace of the watchdog's own (nothing changes for anyone
    else)."""
    if not waiting and os.geteuid() == 0 and _private_fusectl():
        waiting = _waiting(None)
    seen = _fuse_devices_seen([loop, *_descendants(loop)])
    candidates = (held_on or set()) & seen or waiting & seen
    return {name for name in candidates if os.access(f"{CONNECTIONS}/{name}/abort", os.W_OK)}


# What the loop may be held in, by system call number (x86_64): calls on a descriptor
# (arg 0), reads and writes of another process's memory, calls on a path (its argument).
_ON_A_DESCRIPTOR = frozenset((0, 1, 3, 5, 8, 16, 17, 18, 19, 20, 72, 74, 75, 77, 78, 81, 91, 93, 138, 190, 193, 196,
                              217, 285, 295, 296))
_PROCESS_MEMORY = frozenset((310, 311))  # process_vm_readv, process_vm_writev
_ON_A_PATH = {2: 0, 4: 0, 6: 0, 21: 0, 89: 0, 137: 0, 257: 1, 262: 1, 267: 1, 269: 1, 332: 1, 437: 1, 439: 1}


def _held_on(loop: int) -> set[str]:
    """The FUSE connections the loop's threads are in a call on, from what each is doing
    (empty: nothing says; the connections with waiting requests are inferred then)."""
    out: set[str] = set()
    try:
        tasks = os.listdir(f"/proc/{loop}/task")
    except OSError:
        return out
    mounts = _fuse_mounts(loop)
    if not mounts:
        return out
    for task in tasks:
        try:
            with open(f"/proc/{loop}/task/{task}/syscall", "rb") as handle:
                fields = handle.read().split()
            nr, args = int(fields[0]), [int(value, 16) for value in fields[1:7]]
        except (OSError, ValueError, IndexError):
            continue  # running, or not readable (not root and not the owner)
        if nr in _ON_A_DESCRIPTOR:
            connection = _descriptor_connection(loop, args[0] & 0xFFFFFFFF, mounts)
            if connection:
                out.add(connection)
        elif nr in _PROCESS_MEMORY:
            out |= _mapped_connections(args[0])
        elif nr in _ON_A_PATH:
            out |= _path_connections(loop, args[_ON_A_PATH[nr]], mounts)
    return out


def _fuse_mounts(pid: int) -> dict[str, tuple[bytes, str]]:
    """mnt_id -> (mount point, connection) of the FUSE mounts in `pid`'s view."""
    out = {}
    try:
        with open(f"/proc/{pid}/mountinfo", "rb") as handle:
            for line in handle:
                fields = line.split(b" ")
                kind = fields[fields.index(b"-") + 1]
                major, minor = fields[2].split(b":")
                if major == b"0" and (kind in (b"fuse", b"fuseblk") or kind.startswith(b"fuse.")):
                    out[fields[0].decode()] = (fields[4], minor.decode())
    except (OSError, ValueError, IndexError):
        pass
    return out


def _descriptor_connection(pid: int, fd: int, mounts: dict[str, tuple[bytes, str]]) -> str | None:
    try:
        with open(f"/proc/{pid}/fdinfo/{fd}", "rb") as handle:  # procfs only: never the file's own server
            for line in handle:
                if line.startswith(b"mnt_id:"):
                    found = mounts.get(line.split()[1].decode())
                    return found[1] if found else None
    except (OSError, IndexError):
        pass
    return None


def _mapped_connections(pid: int) -> set[str]:
    """The FUSE connections whose files `pid` maps (their device 00:NN in its maps)."""
    out = set()
    try:
        with open(f"/proc/{pid}/maps", "rb") as handle:
            for line in handle:
                fields = line.split()
                if len(fields) >= 6 and fields[3].startswith(b"00:") and fields[5].startswith(b"/"):
                    out.add(str(int(fields[3][3:], 16)))  # (only FUSE mounts' are kept: _abortable)
    except (OSError, ValueError):
        pass
    return out


def _path_connections(loop: int, address: int, mounts: dict[str, tuple[bytes, str]]) -> set[str]:
    """The FUSE mount an absolute path in the loop's memory is below (root reads it)."""
    try:
        with open(f"/proc/{loop}/mem", "rb", buffering=0) as handle:
            handle.seek(address)
            path = handle.read(4096).split(b"\0", 1)[0]
    except (OSError, ValueError, OverflowError):
        return set()
    if not path.startswith(b"/"):
        return set()
    best, connection = -1, None
    for point, name in mounts.values():
        if (path == point or path.startswith(point.rstrip(b"/") + b"/")) and len(point) > best:
            best, connection = len(point), name
    return {connection} if connection else set()


def _abort(connections: set[str]) -> bool:
    aborted = False
    for name in connections:
        try:
            with open(f"{CONNECTIONS}/{name}/abort", "wb") as handle:
                handle.write(b"1")
            aborted = True
        except OSError:
            continue
    return aborted


def _fuse_devices_seen(pids: list[int]) -> set[str]:
    """The connection numbers (anonymous device minors) of the FUSE mounts in the mount
    namespaces of these processes."""
    seen: set[str] = set()
    out: set[str] = set()
    for pid in pids:
        try:
            namespace = os.readlink(f"/proc/{pid}/ns/mnt")
        except OSError:
            continue
        if namespace not in seen:
            seen.add(namespace)
            out.update(connection for _, connection in _fuse_mounts(pid).values())
    return out


def _private_fusectl() -> bool:
    try:
        if os.listdir(CONNECTIONS):
            return False  # mounted already: what waits was seen
    except OSError:
        return False
    if libc.unshare(CLONE_NEWNS) != 0:
        return False
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return False
    return libc.mount(b"fusectl", CONNECTIONS.encode(), b"fusectl", 0, None) == 0


def _open_pidfds(watched: Watched) -> bool:
    """Name the loop and the run's first process by pidfds, so that no kill of the steps
    can reach another process that got one of their pids. The loop forked us: a pidfd of
    its pid opened while our parent is still the loop is the loop's (after, a process
    whose parent died is reparented at once). A replica's run is the main process, the
    loop's parent: its pidfd is the main process's when, after it is opened, the loop
    (alive: still our parent) still has it as its parent. False: the loop is gone."""
    try:
        watched.loop_fd = os.pidfd_open(watched.loop)
        if watched.run == watched.loop:
            watched.run_fd = watched.loop_fd
        else:
            watched.run_fd = os.pidfd_open(watched.run)
            if _parent(watched.loop) != watched.run:
                return False
    except OSError:
        return False
    return os.getppid() == watched.loop


def _kill_run(watched: Watched) -> bool:
    """SIGKILL every descendant of the run's first process but this process and the
    subtrees of the spared, until a look finds none not killed already (one the server
    holds in the kernel dies when it lets go). Each is killed through a pidfd, and only
    once that pidfd is known to be a process of the run: opened on a pid whose parent is
    one (itself so known), the parent read again after the open, and both still not
    reaped after that read (while a process is not reaped its pid is its own: what
    /proc said of the pid was said of it). A process that ended meanwhile and whose pid
    another process took is never signalled, nor are that process's children."""
    me = os.getpid()
    members = {watched.run: watched.run_fd}  # pid -> a pidfd known to name a process of the run
    signalled: set[int] = set()
    try:
        for _ in range(64):  # each round kills what the last round's processes forked
            # every one named first, then all killed: a child is named while its parent is
            # alive (killed first, its parent would be systrace's by the time it is looked at)
            targets = [(pid, pidfd) for pid, parent in _descendants_with_parents(watched.run, watched.spared | {me})
                       if (pidfd := _member(pid, parent, members)) >= 0 and pid not in signalled]
            fresh = False
            for pid, pidfd in targets:
                try:
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                    signalled.add(pid)
                    fresh = True
                except (ProcessLookupError, PermissionError):
                    pass  # ended; or not ours to kill (a set-user-ID program, for the user), as before
            if not fresh:
                break
    finally:
        for pid, pidfd in members.items():
            if pid != watched.run:
                os.close(pidfd)
    return bool(signalled)


def _member(pid: int, parent: int, members: dict[int, int]) -> int:
    """A pidfd of `pid` known to be a process of the run, whose parent the scan of /proc
    said was `parent`, or -1 (not a member, or it ended)."""
    known = members.get(pid)
    if known is not None:
        if _alive(known):
            return known
        os.close(members.pop(pid))  # ended and reaped: its pid may be anyone's now
    parent_fd = members.get(parent)
    if parent_fd is None:
        return -1
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:
        return -1
    if _parent(pid) == parent and _alive(parent_fd) and _alive(pidfd):
        members[pid] = pidfd
        return pidfd
    os.close(pidfd)
    return -1


def _alive(pidfd: int) -> bool:
    """Is the process of `pidfd` not reaped yet (a zombie counts: its pid is still its own)?"""
    try:
        signal.pidfd_send_signal(pidfd, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists (another user's: a setuid program of the run)
    return True


def _parent(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return int(handle.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _descendants_with_parents(root: int, spared: frozenset[int] = frozenset()) -> list[tuple[int, int]]:
    """(pid, parent) of every descendant of `root`, but the subtrees of `spared`, parents
    first."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                fields = handle.read().rsplit(b")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] in (b"Z", b"X"):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    out, todo = [], [root]
    while todo:
        parent = todo.pop(0)
        for child in children.get(parent, []):
            if child in spared:
                continue
            out.append((child, parent))
            todo.append(child)
    return out


def _descendants(root: int, spared: frozenset[int] = frozenset()) -> list[int]:
    """Every descendant of `root`, but the subtrees of `spared`."""
    return [pid for pid, _ in _descendants_with_parents(root, spared)]
