"""Naming a process by its relation to the caller, never by its number (pure logic on
what the tracee interface reports about processes): a learned rule on a pid must mean
the same process next run, and must not cover another one."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from .tracee import Tracee

OWN_PROCESS = "<own process>"
OWN_THREAD = "<own thread>"
OWN_GROUP = "<own process group>"
EVERY_PROCESS = "<every process: -1>"
OUTSIDE_RUN = "<outside the run>"
NO_SUCH_PROCESS = "<no such process>"
# A caller in a pid namespace of its own numbers processes its own way: its numbers never
# name systrace's processes (a rule learned there must not mean `<outside the run>` here)
IN_ITS_NAMESPACE = "<in its pid namespace>"
GROUP_IN_ITS_NAMESPACE = "<process group in its pid namespace>"
MAX_DEPTH = 64  # ancestors followed (a chain longer than this is taken as outside the run)


def pidname(pid: int, tracee: Tracee, thread: bool = False, group: bool = False) -> str:
    """`<own process>`, `<own thread>`, `<descendant: EXE>`, `<supervised: EXE>`,
    `<outside the run>`, `<no such process>`, `<in its pid namespace>` (a caller in
    another pid namespace than systrace's); with `group` (kill), 0 and negative
    numbers name process groups."""
    if group and pid == 0:
        return OWN_GROUP
    if group and pid == -1:
        return EVERY_PROCESS
    if group and pid < -1:
        if tracee.namespace_ids() is not None:
            return GROUP_IN_ITS_NAMESPACE
        if tracee.pgid_of(tracee.tgid) == -pid:
            return OWN_GROUP
        leader = relation(-pid, tracee)
        return "<process group of " + leader[1:] if leader.startswith("<") else leader
    if pid == 0:
        return OWN_PROCESS  # prlimit64, sched_*, ptrace...: 0 is the caller
    if pid < 0:
        return NO_SUCH_PROCESS
    own = tracee.namespace_ids()
    if own is not None:  # (its tgid, its tid) as its namespace numbers them
        if pid == own[0] and not thread:
            return OWN_PROCESS
        return OWN_THREAD if pid == own[1] else IN_ITS_NAMESPACE
    return relation(pid, tracee, thread)


def relation(pid: int, tracee: Tracee, thread: bool = False) -> str:
    if pid == tracee.tgid and not thread:
        return OWN_PROCESS
    if pid == tracee.tid:
        return OWN_THREAD
    tgid = tracee.tgid_of(pid)
    if tgid is None:
        return NO_SUCH_PROCESS
    if tgid == tracee.tgid:
        return OWN_THREAD if thread or pid != tgid else OWN_PROCESS
    exe = tracee.exe_of(tgid) or "?"
    current: int | None = tgid
    for _ in range(MAX_DEPTH):
        current = tracee.ppid_of(current) if current is not None else None
        if current is None or current <= 1:
            break
        if current == tracee.tgid:
            return f"<descendant: {exe}>"
    if tracee.supervised(tgid):
        return f"<supervised: {exe}>"
    return OUTSIDE_RUN
