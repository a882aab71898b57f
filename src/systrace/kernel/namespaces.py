"""Is a thread in another mount or user namespace than systrace? Asked for every call an
emulation carries out (decide/policy.py: the mount view; emulate_identity.py: whose
capabilities count), answered once per thread.

A thread's namespaces change only by its own unshare(2) or setns(2) (a clone with
namespace flags makes a new thread; unshare and setns of a user or mount namespace are
refused while other threads share what would change). Both always reach the supervisor
(facts `invalidates="namespaces"`). So an answer is kept only for a thread the process
table tracks, whose identity it proves at each call (processes.py): it calls `track`
when it starts an entry and when such a call is permitted (the answer is read again at
the thread's next call, after the kernel ran it), `forget` when it drops the entry."""

from __future__ import annotations

import os

_OWN: dict[str, str] = {}  # kind -> systrace's "mnt:[INODE]" (readlink costs half a stat)
_KEPT: dict[int, dict[str, bool]] = {}  # tracked tid -> kind -> in another namespace than systrace


def differs(tid: int, kind: str) -> bool:
    """Is thread `tid` in another `kind` ("mnt", "user") namespace than systrace? Raises
    OSError when it cannot be read (the thread is gone)."""
    kept = _KEPT.get(tid)
    if kept is not None:
        answer = kept.get(kind)
        if answer is not None:
            return answer
    own = _OWN.get(kind)
    if own is None:
        own = _OWN[kind] = os.readlink(f"/proc/self/ns/{kind}")
    answer = os.readlink(f"/proc/{tid}/ns/{kind}") != own
    if kept is not None:
        kept[kind] = answer
    return answer


def track(tid: int) -> None:
    """Keep answers for this thread from now on (any kept before are dropped)."""
    _KEPT[tid] = {}


def forget(tid: int) -> None:
    _KEPT.pop(tid, None)
