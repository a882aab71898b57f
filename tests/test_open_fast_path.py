"""The emulated open's fast path (issue 16 item 4): the O_PATH lookup translation made to
check the path is the probe the open reuses, when the tracee's identity is systrace's
and what it names is still at the checked path; otherwise the path is looked up again,
as the tracee. In process (tests/test_pipeline_in_process.py's fake listener, this
process as the tracee), so the lookups can be counted and a rename made between the
check and the open."""

from __future__ import annotations

import ctypes
import errno
import os
from pathlib import Path

import pytest
from test_pipeline_in_process import Parts, Path_, openat

from systrace.decide.modes import Enforce
from systrace.kernel import emulate, memory, procfs
from systrace.kernel.syscalls_x86_64 import SYSCALLS


@pytest.fixture
def target(tmp_path: Path) -> Path:
    path = tmp_path / "data.txt"
    path.write_text("hello\n")
    return path


class CountedLookups:
    """Every openat2 systrace makes (the translation's check and the open's probe are
    O_PATH ones), with its path."""

    def __init__(self, monkeypatch) -> None:
        self.paths: list[bytes] = []
        real = emulate.openat2

        def counting(dirfd: int, path: bytes, flags: int, mode: int, resolve: int) -> int:
            if flags & os.O_PATH:
                self.paths.append(path)
            return real(dirfd, path, flags, mode, resolve)

        for module in ("systrace.kernel.emulate", "systrace.translate.filename"):
            monkeypatch.setattr(f"{module}.openat2", counting)


def _open_fds(parts: Parts) -> set[int]:
    """This process's descriptors, once the process table holds its own for this process
    (a pidfd, the status file: identify() opens them at its first call)."""
    parts.listener.push(SYSCALLS["getppid"])
    parts.serve()
    memory._SERVED.present()  # the FUSE watch a path read keeps open (kernel/mounts.py): opened by the first one
    warm = ctypes.create_string_buffer(b"x")  # ... and the bounded reader it starts while a FUSE mount exists anywhere
    memory.read_cstring(os.getpid(), ctypes.addressof(warm))
    procfs.own_link(0)  # ... and systrace's own /proc/self/fd directory, kept open once used (kernel/procfs.py)
    return {int(name) for name in os.listdir("/proc/self/fd")}


def test_a_permitted_open_looks_its_path_up_once(tmp_path: Path, target: Path, monkeypatch) -> None:
    lookups = CountedLookups(monkeypatch)
    parts = Parts(lambda p: [p.policy_decider(), Enforce()], tmp_path,
                  f'\tnative-fsread: filename eq "{target}" then permit\n')
    path = Path_(str(target))  # (kept: the notification points into it)
    before = _open_fds(parts)
    notif = openat(parts, path)
    assert parts.serve() == [("addfd", notif.id, 3), ("succeed", notif.id, 3)], parts.sink.messages
    assert parts.listener.installed == [(target.stat().st_ino, False)]
    assert lookups.paths == [os.fsencode(target)]  # the check's lookup was the open's probe
    assert {int(name) for name in os.listdir("/proc/self/fd")} <= before  # closed once the call was answered


class RenamesDuringDecision:
    """A decider that, while the call is decided (after translation looked the path up),
    moves the file away and puts another under its name: a concurrent rename."""

    def __init__(self, target: Path) -> None:
        self.target = target
        self.reads_arguments_of = None

    def decide(self, call):  # noqa: ANN001, ANN201 - the Decider protocol
        self.target.rename(self.target.with_name("moved"))
        self.target.write_text("new file\n")
        return None


def test_a_file_renamed_after_the_check_is_not_what_is_opened(tmp_path: Path, target: Path, monkeypatch) -> None:
    """What is opened is what is at the checked path when it is opened (as before the
    fast path): the looked-up inode moved away, so the path is looked up again."""
    lookups = CountedLookups(monkeypatch)
    parts = Parts(lambda p: [RenamesDuringDecision(target), p.policy_decider(), Enforce()], tmp_path,
                  f'\tnative-fsread: filename eq "{target}" then permit\n')
    path = Path_(str(target))
    notif = openat(parts, path)
    old_inode = target.stat().st_ino
    assert parts.serve() == [("addfd", notif.id, 3), ("succeed", notif.id, 3)]
    (installed, _), = parts.listener.installed
    assert installed == target.stat().st_ino != old_inode
    assert lookups.paths == [os.fsencode(target)] * 2  # the check's, then the open's own


def test_a_denied_open_keeps_no_descriptor(tmp_path: Path, target: Path) -> None:
    parts = Parts(lambda p: [p.policy_decider(), Enforce()], tmp_path, "\tnative-getpid: permit\n")
    path = Path_(str(target))
    before = _open_fds(parts)
    notifs = [openat(parts, path) for _ in range(20)]
    assert parts.serve() == [("fail", notif.id, errno.EACCES) for notif in notifs]
    assert {int(name) for name in os.listdir("/proc/self/fd")} <= before


def test_a_translation_sent_from_a_helper_carries_no_descriptor(target: Path) -> None:
    """A helper's translation (a path on FUSE) is pickled to the supervisor: a number of
    the helper's descriptor table would name another file there."""
    import pickle

    from systrace.translate.tracee import LiveTracee
    from systrace.translate.translator import translate

    path = Path_(str(target))
    translation = translate("openat", (2**64 - 100, path.address, os.O_RDONLY, 0, 0, 0),
                            LiveTracee(os.getpid(), os.getpid()), keep_probe=True)
    assert translation.open_probe >= 0
    try:
        copy = pickle.loads(pickle.dumps(translation))
        assert copy.open_probe == -1 and copy.open_target == translation.open_target == os.fsencode(target)
    finally:
        translation.release()
    assert translation.open_probe == -1


def test_a_translation_dropped_without_an_answer_closes_its_lookup(target: Path) -> None:
    """A replica (--supervisors) that forwards a call to the main process drops its
    translation: the lookup it holds is closed with it."""
    from systrace.translate.tracee import LiveTracee
    from systrace.translate.translator import translate

    path = Path_(str(target))
    translation = translate("openat", (2**64 - 100, path.address, os.O_RDONLY, 0, 0, 0),
                            LiveTracee(os.getpid(), os.getpid()), keep_probe=True)
    probe = translation.open_probe
    assert os.readlink(f"/proc/self/fd/{probe}") == str(target)
    del translation
    assert not os.path.exists(f"/proc/self/fd/{probe}")


def test_an_emulated_open_leaves_the_native_file_status_flags(cbin, tmp_path: Path) -> None:
    """The reopen through the probe adds O_NONBLOCK (an open that breaks a lease must not
    wait) and clears it with one F_SETFL of the flags asked: every flag set, first open
    and repeated (path cache) alike, is what F_GETFL shows natively (O_APPEND, O_NOATIME,
    O_ASYNC, O_DSYNC kept, O_NONBLOCK only when asked; a FIFO opened O_RDWR too), and
    every one of those opens was emulated."""
    from conftest import run, systrace

    binary = cbin("openflags")
    data, fifo = tmp_path / "data", tmp_path / "fifo"
    data.write_text("x\n")
    os.mkfifo(fifo)
    native = run([binary, str(data), str(fifo)])
    assert native.returncode == 0 and native.stdout.count(b"\n") == 16, native
    policies = tmp_path / "policies"
    assert systrace("-d", str(policies), "-A", binary, str(data), str(fifo)).stdout == native.stdout
    enforced = systrace("-d", str(policies), "-a", "--stats", binary, str(data), str(fifo))
    assert enforced.returncode == 0 and enforced.stdout == native.stdout, enforced
    carried = enforced.stderr.split(b"carried out as: ")[1].split(b"\n")[0]
    emulated = int(carried.split(b"emulate-open ")[1].split(b",")[0])
    assert emulated >= 16, carried  # the program's 16 opens (and the loader's)
    hits = int(enforced.stderr.split(b"path cache: ")[1].split(b" ")[0])
    assert hits >= 8, enforced.stderr[-400:]  # each set's second open


def test_a_forked_child_reads_its_own_descriptors_not_its_parents(tmp_path: Path) -> None:
    """systrace's /proc/self/fd directory is opened once (kernel/procfs.py own_link,
    reopen_own); a forked helper reopens the probe it inherited by number while the
    parent may have closed and reused that number: the child must look in its own table."""
    first, second = tmp_path / "first", tmp_path / "second"
    first.write_text("1\n")
    second.write_text("2\n")
    fd = os.open(first, os.O_RDONLY | os.O_CLOEXEC)
    other = os.open(second, os.O_RDONLY | os.O_CLOEXEC)
    try:
        assert procfs.own_link(fd) == os.fsencode(first)  # the directory is open now
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # the parent's table keeps `first` at fd; the child's gets `second` there
            code = 1
            try:
                os.dup2(other, fd)
                reopened = procfs.reopen_own(fd, os.O_RDONLY | os.O_CLOEXEC)
                os.write(write, procfs.own_link(fd) + b"\n" + os.read(reopened, 10))
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        answer = os.read(read, 4096)
        os.close(read)
        assert os.waitpid(child, 0)[1] == 0
        assert answer == os.fsencode(second) + b"\n2\n"
        assert procfs.own_link(fd) == os.fsencode(first)
    finally:
        os.close(fd)
        os.close(other)
