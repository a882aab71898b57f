"""The process table (processes.py) against real processes: what it keeps across the
exec of a process's only thread, and one watch per parent however many children it has.
The notifying threads here are plain children of the test (no supervisor needed: the
table reads /proc and pidfds only)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess

from systrace.processes import ProcessTable


def test_the_exec_of_a_process_s_only_thread_keeps_its_descriptors_and_reads_the_rest_again() -> None:
    table = ProcessTable()
    child = subprocess.Popen(["sh", "-c", "read line; exec cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        before = table.info(child.pid)
        assert table.binary(child.pid, before) == os.path.realpath(shutil.which("sh") or "/bin/sh")
        pidfd = table._threads[child.pid][1]
        fcntl.fcntl(pidfd, fcntl.F_SETFD, 0)  # a mark: a pidfd opened again would be close-on-exec
        fds = sorted(os.listdir("/proc/self/fd"))
        table.permitted("exec", child.pid, child.pid)  # the shell is blocked in it, as when notified
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(b"go\nechoed\n")
        child.stdin.flush()
        assert child.stdout.readline() == b"echoed\n"  # cat runs: the exec happened
        after = table.info(child.pid)
        assert after is not before  # a new process image: a new entry (brk, fault counters)
        assert (after.tgid, after.ppid) == (child.pid, os.getpid())
        assert table.binary(child.pid, after) == os.path.realpath(shutil.which("cat") or "/bin/cat")
        assert table._threads[child.pid][1] == pidfd  # the same pidfd, nothing opened again
        assert fcntl.fcntl(pidfd, fcntl.F_GETFD) == 0
        assert sorted(os.listdir("/proc/self/fd")) == fds
        assert not after.stale and after.status is not None  # credentials read again after the exec
    finally:
        child.kill()
        child.wait()
        table.close()


def test_the_exec_of_a_process_with_other_threads_forgets_the_whole_group() -> None:
    """Not the only thread: the other threads may call until the exec kills them, so
    nothing of the group is kept (the new image is read afresh, as before)."""
    table = ProcessTable()
    python = subprocess.Popen(
        ["python3", "-c", "import sys, threading; threading.Thread(target=sys.stdin.read).start(); sys.stdin.read()"],
        stdin=subprocess.PIPE)
    try:
        threads = sorted(int(tid) for tid in os.listdir(f"/proc/{python.pid}/task"))
        while len(threads) < 2:  # the thread starts: /proc lists it (no sleep: it blocks on stdin)
            threads = sorted(int(tid) for tid in os.listdir(f"/proc/{python.pid}/task"))
        for tid in threads:
            table.info(tid)
        other = next(tid for tid in threads if tid != python.pid)
        table.permitted("exec", other, python.pid)  # a non-leader's exec
        assert python.pid not in table._threads and other not in table._threads
    finally:
        python.kill()
        python.wait()
        table.close()


def test_one_watch_per_parent_and_every_child_reads_its_parent_again_when_it_exits() -> None:
    """Two children of one shell share one pidfd of it; when the shell exits both are
    reparented, and their next lookups say so."""
    table = ProcessTable()
    # (fd 3: an asynchronous list of a non-interactive shell reads /dev/null as its stdin)
    shell = subprocess.Popen(["sh", "-c", "exec 3<&0; cat <&3 & cat <&3 & echo $!; wait"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
    try:
        assert shell.stdout is not None
        shell.stdout.readline()
        children = []
        while len(children) < 2:  # both cats are running (each blocks on the pipe)
            children = [int(pid) for pid in open(f"/proc/{shell.pid}/task/{shell.pid}/children").read().split()]
        for pid in children:
            assert table.info(pid).ppid == shell.pid
        assert len(table._parents) == 1  # one pidfd of the shell for both
        watched = next(iter(table._parents.values()))
        assert watched == (shell.pid, set(children))
        shell.kill()
        shell.wait()  # reaped: its children were reparented when it exited
        for pid in children:
            assert table.info(pid).ppid not in (shell.pid, 0)
        assert shell.pid not in table._parent_fds
    finally:
        for pid in children:
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        if shell.poll() is None:
            shell.kill()
            shell.wait()
        table.close()


def test_a_status_read_in_the_same_call_that_says_one_thread_is_not_read_again_at_exec(monkeypatch) -> None:
    """A shell's child's exec is its first call: its status, read to start its entry, says
    one thread, which still holds (that thread is blocked in the exec being served: no
    other can start). From the next call on (new_call), or when it said more than one,
    the status is read again."""
    from systrace import processes

    table = ProcessTable()
    reads: list[int] = []
    real_pread = os.pread
    monkeypatch.setattr(processes.os, "pread", lambda fd, n, at: reads.append(fd) or real_pread(fd, n, at))
    child = subprocess.Popen(["sh", "-c", "read line"], stdin=subprocess.PIPE)
    try:
        table.new_call()
        table.info(child.pid)
        assert len(reads) == 1
        table.permitted("exec", child.pid, child.pid)
        assert len(reads) == 1  # the status this call read
        table.new_call()
        table.info(child.pid)  # (stale: its credentials are read again, in this call)
        table.new_call()
        reads.clear()
        table.permitted("exec", child.pid, child.pid)  # another call: read now
        assert len(reads) == 1
    finally:
        child.kill()
        child.wait()
        table.close()
    python = subprocess.Popen(
        ["python3", "-c", "import sys, threading; threading.Thread(target=sys.stdin.read).start(); sys.stdin.read()"],
        stdin=subprocess.PIPE)
    table = ProcessTable()
    try:
        while len(os.listdir(f"/proc/{python.pid}/task")) < 2:  # (no sleep: it blocks on stdin)
            pass
        table.new_call()
        table.info(python.pid)
        reads.clear()
        table.permitted("exec", python.pid, python.pid)  # two threads: read again now
        assert len(reads) == 1 and python.pid not in table._threads
    finally:
        python.kill()
        python.wait()
        table.close()
