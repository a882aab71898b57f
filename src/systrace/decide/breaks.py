"""brk does not fail with -errno: the kernel answers a brk it refuses with the current
break, unchanged, and that is what glibc checks (`__curbrk < requested` means ENOMEM).
A -errno answer (0xfff...f4) is taken for a new break above the request: malloc then
hands out memory that does not exist. So every refusal of brk, by a fault, a policy, a
question or enforce, is answered with the current break instead.

The kernel shows the current break nowhere (/proc/PID/stat has only the initial one), so
it is worked out from what is exact: the [heap] mapping ends at the break rounded up to a
page, and the break is the last brk request that succeeded. Every brk of a process passes
through here whenever one may be refused (wiring routes them all), so the last permitted
request is known; it succeeded exactly when it lies in the page the heap now ends in.

brk is the only Linux system call whose failure is not -errno (the others that return
addresses, mmap, mremap and shmat, return -errno, which libc recognises)."""

from __future__ import annotations

from ..kernel import heap
from ..record import replace
from . import DENY, RETURN, Decision

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from ..call import Call
    from ..processes import ProcessTable

PAGE = 4096
FAILS_BY_RETURNING = frozenset(("brk",))


def page_align(address: int) -> int:
    return (address + PAGE - 1) & ~(PAGE - 1)


def current_break(start: int, end: int | None, last_request: int | None) -> int:
    """The exact break from the initial break `start`, the [heap] end (None: no heap
    mapping) and the last permitted request (None: none seen)."""
    if end is None:
        return start
    if last_request is not None and last_request >= start and page_align(last_request) == end:
        return last_request
    return end  # page-aligned, as glibc's malloc always leaves it


class BreakKeeper:
    """Remembers each process's last permitted brk request and turns a refused brk into
    the kernel's own refusal."""

    def __init__(self, processes: ProcessTable):
        self.processes = processes
        self.requests: dict[int, tuple[object, int]] = {}  # tgid -> (its ThreadInfo, last request)

    def settle(self, call: Call, decision: Decision) -> Decision:
        if call.name != "brk":
            return decision
        try:
            owner = self.processes.info(call.tid)  # a new ThreadInfo: a new process (or an exec)
        except OSError:  # the caller is gone: nobody reads this answer
            return replace(decision, verdict=RETURN, value=0) if decision.verdict == DENY else decision
        if decision.verdict == DENY:
            kept = self.requests.get(call.tgid)
            last = kept[1] if kept is not None and kept[0] is owner else None
            try:
                value = current_break(heap.start_brk(call.tid), heap.heap_end(call.tid), last)
            except (OSError, ValueError, IndexError):
                value = 0  # glibc reads a break of 0 as "failed" and asks the kernel afresh
            return replace(decision, verdict=RETURN, value=value)
        if decision.verdict != RETURN:  # permitted (a RETURN of --inject retval= is what was asked)
            self.requests[call.tgid] = (owner, call.args[0])
        return decision
