"""Which Landlock domain each supervised process put itself in, for the calls systrace
emulates on its behalf (kernel/landlock_domain.py holds the copies).

landlock_restrict_self is always routed to systrace. When its policy permits it, systrace
takes the ruleset from the tracee and builds its copy of the new domain (the process's
current one plus that ruleset) before letting the call run. A process keeps its domain
across exec; a child gets its parent's at fork. Forks are not routed, so a process
systrace has not seen yet gets the domain of its nearest ancestor systrace knows, and
the processes that exist when a process restricts itself are pinned first: its
descendants keep its old domain, and at the first restriction of the run every process
of the run is pinned as unrestricted. A process whose ancestry is lost (its parent
exited before systrace saw it, so it was reparented to systrace) gets UNKNOWN, as does
anything systrace cannot copy exactly: its emulated calls are refused (EACCES).

Until some process restricts itself nothing here runs: `of` answers None at once."""

from __future__ import annotations

import errno
import os

from .kernel import closer, procfs
from .kernel.libc import pidfd_getfd
from .processes import PerProcess

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable

    from .kernel.landlock_domain import Domain

UNKNOWN = "unknown"  # a domain systrace cannot copy: emulated calls are refused
RESTRICT_LOG_FLAGS = 0x7  # LANDLOCK_RESTRICT_SELF_LOG_* (ABI 7): logging only, no access
LOG_SUBDOMAINS_OFF = 0x4  # the one flag valid with ruleset_fd -1
RULESET_LINK = "anon_inode:[landlock-ruleset]"
MAX_DOMAINS = 64  # copies kept at once (each is a thread)
MAX_DEPTH = 256  # ancestors walked to find a known one


class Domains:
    def __init__(self, log: Callable[[str, int], None]):
        self._of = PerProcess()  # tgid -> Domain | None | UNKNOWN
        self._domains: list[Domain] = []
        self._log = log
        self._systrace = os.getpid()
        self.active = False  # has any process of the run restricted itself?
        self._outside: Domain | None = None  # see outside_the_run

    # -- which domain a process is in ------------------------------------------------
    def of(self, tgid: int, ppid: int) -> Domain | str | None:
        """The process's copied domain, None (unrestricted) or UNKNOWN."""
        if not self.active:
            return None
        missing = _MISSING
        known = self._of.get(tgid, missing)
        if known is not missing:
            return known  # type: ignore[return-value]
        chain = [tgid]
        parent = ppid
        found: object = UNKNOWN
        for _ in range(MAX_DEPTH):
            if parent <= 0 or parent == self._systrace:
                break  # reparented to systrace (or the run's first process, which is pinned): lost
            known = self._of.get(parent, missing)
            if known is not missing:
                found = known
                break
            chain.append(parent)
            parent = _parent_of(parent)
        if found == UNKNOWN:
            self._log(f"pid {tgid}: its parent is gone and some process of the run restricted itself with "
                      "Landlock: its Landlock domain is unknown, its emulated calls are refused", tgid)
        for member in chain:
            self._of.set(member, found)
        return found  # type: ignore[return-value]

    # -- landlock_restrict_self ------------------------------------------------------
    def restrict(self, tid: int, tgid: int, ppid: int, ruleset_number: int, flags: int) -> int:
        """Before a permitted landlock_restrict_self runs: copy the new domain. 0 lets the
        call run; otherwise the errno to answer without running it (the kernel's own
        answer: the tracee's domain does not change)."""
        # imported at the first restriction (its threads and queues cost start-up time);
        # a Domain exists only after one
        from .kernel.landlock_domain import Domain

        current = self.of(tgid, ppid)
        if not self.active:
            self._activate()
        self._pin_descendants(tgid, current)  # its children so far keep the domain they have
        if flags & ~RESTRICT_LOG_FLAGS:
            return self._unknown(tgid, f"landlock_restrict_self flags {flags:#x} are unknown to systrace")
        if ruleset_number == -1 and flags & LOG_SUBDOMAINS_OFF:
            return 0  # logging only: no new layer
        if current == UNKNOWN:
            return 0
        try:
            pidfd = os.pidfd_open(tgid)
        except OSError as error:
            return self._unknown(tgid, f"cannot reach the process: {error.strerror}")
        try:
            ruleset = pidfd_getfd(pidfd, ruleset_number)
        except OSError as error:
            if error.errno == errno.EBADF:
                return errno.EBADF  # no such descriptor: what the kernel answers
            return self._unknown(tgid, f"cannot take its ruleset: {error.strerror}")
        finally:
            os.close(pidfd)
        try:
            if os.readlink(f"/proc/self/fd/{ruleset}") != RULESET_LINK:
                return errno.EBADFD  # not a ruleset: what the kernel answers
            if len(self._domains) >= MAX_DOMAINS:
                self._sweep()
            if len(self._domains) >= MAX_DOMAINS:
                return self._unknown(tgid, f"more than {MAX_DOMAINS} Landlock domains at once")
            domain = Domain(current if isinstance(current, Domain) else None, ruleset)
        finally:
            closer.close_taken(ruleset)  # (the tracee's own open file, a socket maybe: its last close may wait)
        if domain.error == errno.E2BIG:
            return errno.E2BIG  # too many layers: the tracee's (never fewer) would fail too
        if domain.error:
            return self._unknown(tgid, f"cannot copy its Landlock domain: {os.strerror(domain.error)}")
        self._domains.append(domain)
        self._of.set(tgid, domain)
        return 0

    def outside_the_run(self) -> Domain | None:
        """A thread in a Landlock domain of its own (signals scoped, nothing else), for
        what systrace emulates on `/proc/<outside the run>/...`: the command's own domain
        refuses ptrace-mode access to any process outside the run (environ, maps, mem,
        exe, fd...), so a call systrace continues there fails with EACCES, and one it
        carries out must fail the same way, whatever the policy. None when this kernel
        cannot scope signals (no such domain: the entries stay readable, as continued
        calls would find them)."""
        if self._outside is None:
            from .kernel import landlock
            from .kernel.landlock_domain import Domain

            ruleset = landlock.signal_scope_ruleset()
            if ruleset is None:
                return None
            try:
                self._outside = Domain(None, ruleset)
            finally:
                os.close(ruleset)
        return self._outside

    def close(self) -> None:
        for domain in self._domains:
            domain.close()
        self._domains.clear()
        if self._outside is not None:
            self._outside.close()
        self._of.close()

    # -- internals -------------------------------------------------------------------
    def _activate(self) -> None:
        """The first restriction of the run: every process that exists now is unrestricted
        (it may be one that systrace never saw, whose lineage it could not find later)."""
        self.active = True
        for pid in _descendants(self._systrace):
            if pid not in self._of:
                self._of.set(pid, None)

    def _pin_descendants(self, tgid: int, current: Domain | str | None) -> None:
        """The process's descendants so far keep the domain it has before this call."""
        for pid in _descendants(tgid):
            if pid not in self._of:
                self._of.set(pid, current)

    def _unknown(self, tgid: int, reason: str) -> int:
        self._log(f"pid {tgid}: {reason}: its Landlock domain cannot be copied, its emulated calls are refused",
                  tgid)
        self._of.set(tgid, UNKNOWN)
        return 0

    def _sweep(self) -> None:
        """Stop the copies no live process is in (nor any copy nested in one of them)."""
        from .kernel.landlock_domain import Domain

        used: set[int] = set()
        for value in self._of.live_values():
            while isinstance(value, Domain):
                used.add(id(value))
                value = value.parent
        for domain in [d for d in self._domains if id(d) not in used]:
            domain.close()
            self._domains.remove(domain)


_MISSING = object()


def _parent_of(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            return int(procfs.field(status.read(), b"PPid") or 0)
    except (OSError, ValueError):
        return 0


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` now, from /proc/PID/task/TID/children."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children", "rb") as children:
                    words = children.read().split()
            except OSError:
                continue
            for word in words:
                child = int(word)
                if child not in found:
                    found.append(child)
                    todo.append(child)
    return found
