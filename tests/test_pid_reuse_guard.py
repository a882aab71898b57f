"""The bookkeeping that keeps a pid named by a continued call from a helper
(decide/protected.NamedInFlight, pure), and the fork that honours it (kernel/forking.py,
on the real kernel)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from systrace.decide import protected
from systrace.kernel import forking


class Threads:
    """Fake thread handles: a handle is alive until its thread is marked exited."""

    def __init__(self) -> None:
        self.exited: set[int] = set()
        self.open: dict[int, int] = {}  # handle -> tid
        self.next = 100

    def watch(self, tid: int) -> int | None:
        if tid < 0:
            return None  # a thread that cannot be watched
        self.next += 1
        self.open[self.next] = tid
        return self.next

    def alive(self, handle: int) -> bool:
        return self.open[handle] not in self.exited

    def release(self, handle: int) -> None:
        del self.open[handle]


# (operation, tid, pid): a call continued, a new call of a thread, a thread's exit
operations = st.lists(st.tuples(st.sampled_from(["continued", "notified", "exited"]),
                                st.integers(-3, 6), st.integers(1, 8)), max_size=60)


@given(operations)
def test_the_reserved_pids_are_those_of_calls_still_in_flight(steps) -> None:
    threads = Threads()
    named = protected.NamedInFlight(threads.watch, threads.alive, threads.release)
    model: dict[int, int] = {}  # tid -> pid its last continued call named, while in flight
    for operation, tid, pid in steps:
        if operation == "continued":
            threads.exited.discard(tid)  # (a tid calling is alive)
            named.continued(tid, pid)
            model[tid] = pid
        elif operation == "notified":
            named.notified(tid)
            model.pop(tid, None)
        else:
            threads.exited.add(tid)
            if tid >= 0:  # an unwatched thread keeps its entry until its next call
                model.pop(tid, None)
        assert named.pids() == frozenset(model.values())
        assert len(threads.open) == len([t for t in model if t >= 0])  # every handle of a finished call released
    named.close()
    assert threads.open == {} and len(named) == 0


def test_a_new_call_replaces_the_previous_one() -> None:
    threads = Threads()
    named = protected.NamedInFlight(threads.watch, threads.alive, threads.release)
    named.continued(1, 50)
    named.continued(1, 60)
    assert named.pids() == {60} and len(threads.open) == 1


def test_pid_allocation_files_are_refused() -> None:
    for path in ("/proc/sys/kernel/ns_last_pid", "/proc/sys/kernel/pid_max"):
        assert protected.pid_allocation_change_refused(path)
    assert protected.pid_allocation_change_refused("/proc/sys/kernel/threads-max") is None


@pytest.fixture
def reserved_next_pid():
    """The pid the kernel hands out next, reserved (root: ns_last_pid aims it)."""
    if os.geteuid() != 0:
        pytest.skip("writing ns_last_pid needs root")
    discarded: list[int] = []
    probe = os.fork()
    if probe == 0:
        os._exit(0)
    os.waitpid(probe, 0)
    reserved = frozenset({probe})
    forking.reserve_from(lambda: reserved, discarded.append)
    try:
        yield probe, discarded
    finally:
        forking.reserve_from(forking._nothing_reserved, lambda pid: None)


def test_a_helper_forked_with_a_reserved_pid_is_discarded(reserved_next_pid) -> None:
    pid, discarded = reserved_next_pid
    tries = 0
    while not discarded and tries < 20:  # another fork on the machine may take the pid first
        tries += 1
        Path("/proc/sys/kernel/ns_last_pid").write_text(str(pid - 1))
        child = forking.fork_helper()
        if child == 0:
            os._exit(7)
        assert child != pid
        _, status = os.waitpid(child, 0)
        assert os.WEXITSTATUS(status) == 7  # the helper that runs is the one returned
    assert discarded == [pid]
    _, status = os.waitpid(pid, 0)  # the discarded child did nothing but exit
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == forking.DISCARDED


class Everything(frozenset):
    def __contains__(self, pid: object) -> bool:
        return True

    def __bool__(self) -> bool:
        return True


def test_fork_gives_up_when_every_pid_is_reserved() -> None:
    discarded: list[int] = []
    forking.reserve_from(Everything, discarded.append)
    try:
        with pytest.raises(OSError, match="in flight"):
            forking.fork_helper()
    finally:
        forking.reserve_from(forking._nothing_reserved, lambda pid: None)
    assert discarded
    for pid in discarded:  # reaped by pid: another child of the test process (a memory
        try:               # reader forked while a FUSE mount exists) may never exit
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
