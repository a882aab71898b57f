"""systrace's mount table, re-read only when it changes (the kernel flags a change of
/proc/self/mountinfo with POLLPRI), the cgroup directories that hold systrace, and
whether a file system a process serves (FUSE) exists anywhere on the machine.

The loop asks whether a path is on a FUSE mount at every component a translation looks
up; the tables are polled once per notification, not at each question (`expire`, called
by the loop when it starts on the next one: effects.Effects.new_call). A mount made while
one call is being served is seen from the next call on, as one made just after a poll
always was: what may then wait on its server is ended by kernel/watchdog.py."""

from __future__ import annotations

import os
import select

try:  # weakref.ref itself, without importing weakref (with _weakrefset and itertools: start-up time)
    from _weakref import ref as weak_ref
except ImportError:  # another Python
    from weakref import ref as weak_ref

# Test only (tests/escape/test_fuse_races.py): every check says "no FUSE here", as if the
# mount had been made just after it; what remains to stop a stall is the watchdog.
UNSEEN = os.environ.get("SYSTRACE_TEST_FUSE_UNSEEN") == "1"


class MountTable:
    """A mount table (mountinfo): systrace's own, or a view of a tracee's (its mount
    namespace, as seen from its root: the descriptor keeps both once it is open)."""

    def __init__(self, path: str = "/proc/self/mountinfo") -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLPRI | select.POLLERR)
        self._mounts: list[tuple[str, str, str]] | None = None  # (mount point, type, super options)
        self._served_for: list[tuple[str, str, str]] | None = None
        self._served: list[bytes] = []
        self._polled = False  # since the last expire(): the table is current for this call
        self.reads = 0  # how many times it was read (tests)

    def mounts(self) -> list[tuple[str, str, str]]:
        if self._mounts is None or (not self._polled and self._poll.poll(0)):
            self._mounts = _parse(_read_all(self._fd))
            self.reads += 1
        self._polled = True
        return self._mounts

    def expire(self) -> None:
        """A new call: poll the table again at its next question."""
        self._polled = False

    def servable(self) -> list[bytes]:
        """Mount points whose file system a process may serve (FUSE): a lookup there may
        wait for its daemon."""
        mounts = self.mounts()
        if UNSEEN:
            return []
        if mounts is not self._served_for:
            self._served_for = mounts
            self._served = [os.fsencode(point).rstrip(b"/") for point, kind, _ in mounts
                            if kind in ("fuse", "fuseblk") or kind.startswith("fuse.")]
        return self._served

    def close(self) -> None:
        os.close(self._fd)


class MountViews:
    """The servable mount points a tracee with a root of its own sees (chroot, in any
    mount namespace: a path systrace looks up through /proc/TID/root crosses its mounts,
    not systrace's), relative to that root: /proc/TID/mountinfo, one table per mount
    namespace and root, kept open and re-read when it signals a change. None (cannot
    tell: fail closed) when it cannot be read, or beyond MAX_VIEWS views."""

    MAX_VIEWS = 64

    def __init__(self) -> None:
        self._tables: dict[tuple[int, bytes], MountTable] = {}
        self._namespaces: dict[int, int] = {}  # tid -> its mount namespace, for this call (expire)

    def expire(self) -> None:
        """A new call: the threads' mount namespaces and their tables are read again."""
        self._namespaces.clear()
        for table in self._tables.values():
            table.expire()

    def servable(self, tid: int, root: bytes) -> list[bytes] | None:
        try:
            namespace = self._namespaces.get(tid)
            if namespace is None:  # (setns, unshare: between two calls of the thread)
                namespace = self._namespaces[tid] = os.stat(f"/proc/{tid}/ns/mnt").st_ino
            key = (namespace, root)
            table = self._tables.get(key)
            if table is None:
                if len(self._tables) >= self.MAX_VIEWS:
                    return None
                table = self._tables[key] = MountTable(f"/proc/{tid}/mountinfo")
            return table.servable()
        except OSError:
            return None

    def close(self) -> None:
        for table in self._tables.values():
            table.close()
        self._tables.clear()


BACKING_DEVICES = "/sys/devices/virtual/bdi"


class ServedAnywhere:
    """Is there, anywhere on the machine, a file system whose pages a process serves?

    Every FUSE super block, in any mount namespace, mounted or lazily unmounted but still
    mapped, has a backing device named after its anonymous device (0:N; a fuseblk one
    MAJ:MIN-fuseblk) in sysfs, which no namespace hides. sysfs counts a directory's
    subdirectories in its link count: one fstat per question, the names read again only
    when that count changes. Cannot tell: yes (fail closed). A mount made just after the
    answer, or one device swapped for another between two looks (the count unchanged),
    is not seen: kernel/watchdog.py ends the stall that may follow.

    Once the supervisor's loop calls `expire` (at each notification and each turn), one
    answer holds until the next expire: one fstat per call instead of one per memory
    access (a call asks 2 to 3 times), as the mount tables are polled once per call. A
    mount made during the call is then seen from the next call on, as one made just
    after a look always was. A forked child (a helper) asks at every question again."""

    def __init__(self) -> None:
        self._fd = -1
        self._links = -1
        self._present = True
        self._per_call = False  # expire() was called: an answer holds until the next one
        self._answered = False  # since the last expire()
        alive = weak_ref(self)
        os.register_at_fork(after_in_child=lambda: _asking_per_question(alive()))

    def expire(self) -> None:
        """A new call: look again at the next question; that answer holds for the call."""
        self._per_call = True
        self._answered = False

    def per_question(self) -> None:
        """Look at every question (a forked child: no loop expires its answer)."""
        self._per_call = self._answered = False

    def present(self) -> bool:
        if UNSEEN:
            return False
        if self._answered:
            return self._present
        self._answered = self._per_call
        try:
            if self._fd < 0:
                self._fd = os.open(BACKING_DEVICES, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            links = os.fstat(self._fd).st_nlink
            if links != self._links:
                self._present = served_devices(os.listdir(BACKING_DEVICES))
                self._links = links
        except OSError:
            self._links, self._present = -1, True
        return self._present

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _asking_per_question(served: ServedAnywhere | None) -> None:
    """In a forked child (a helper), which no loop expires."""
    if served is not None:
        served.per_question()


def served_devices(names: list[str]) -> bool:
    """Do these backing device names include one that may be served by a process (an
    anonymous device: FUSE, and network file systems, which may wait as long)?"""
    return any(name.startswith("0:") or name.endswith("-fuseblk") for name in names)


def below(path: bytes, points: list[bytes]) -> bool:
    """Is `path` one of `points` or below one?"""
    return any(path == point or path.startswith(point + b"/") or not point for point in points)


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as \\ooo."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _parse(data: bytes) -> list[tuple[str, str, str]]:
    mounts = []
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        fields = line.split(" ")
        if "-" not in fields:
            continue
        dash = fields.index("-")
        options = fields[dash + 3] if len(fields) > dash + 3 else ""
        mounts.append((_unescape(fields[4]), fields[dash + 1], options))
    return mounts


def cgroups_holding_me(mounts: list[tuple[str, str, str]], membership: str) -> list[str]:
    """Every directory, on every cgroup mount, whose cgroup holds this process: its own
    and each ancestor up to the mount's root (pure: `membership` is /proc/self/cgroup)."""
    paths: dict[str, str] = {}  # "" for cgroup2, else each v1 controller list
    for line in membership.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            paths[parts[1]] = parts[2]
    out = []
    for point, kind, options in mounts:
        if kind not in ("cgroup", "cgroup2"):
            continue
        mine = paths.get("") if kind == "cgroup2" else _v1_path(paths, options)
        if mine is None:
            continue
        out.append(point)
        current = point.rstrip("/")
        for part in [p for p in mine.split("/") if p]:
            current += "/" + part
            out.append(current)
    return out


def _v1_path(paths: dict[str, str], options: str) -> str | None:
    """A v1 hierarchy is named by its controllers (or name=) in its super options."""
    mounted = set(options.split(","))
    for controllers, path in paths.items():
        if controllers and set(controllers.split(",")) <= mounted:
            return path
    return None


# The files through which a process changes what a cgroup does to its members (freeze,
# kill, limits, who is in it; v1: tasks, freezer.state). Moving systrace out needs write
# access to the cgroup.procs of a common ancestor, which holds systrace too.
CHANGING = ("cgroup.procs", "cgroup.threads", "cgroup.freeze", "cgroup.kill", "cgroup.subtree_control",
            "cgroup.max.descendants", "cgroup.max.depth", "pids.max", "memory.max", "memory.high", "cpu.max",
            "tasks", "freezer.state")


def cgroups_changeable_by_us() -> bool:
    """Could a process with systrace's credentials change a cgroup that holds systrace
    (root; else a directory or one of CHANGING writable by us, as in a delegated
    subtree)? Without root, the tracee cannot gain more (no_new_privs)."""
    if os.geteuid() == 0:
        return True
    table = MountTable()
    try:
        mounts = table.mounts()
    finally:
        table.close()
    try:
        with open("/proc/self/cgroup", encoding="utf-8", errors="replace") as handle:
            holding = cgroups_holding_me(mounts, handle.read())
    except OSError:
        return True  # cannot tell: route them
    for directory in holding:
        if os.access(directory, os.W_OK) or any(os.access(f"{directory}/{name}", os.W_OK) for name in CHANGING):
            return True
    return False
