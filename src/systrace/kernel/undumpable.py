"""A process systrace cannot read, and so cannot supervise.

The kernel makes a process non-dumpable when it execs a binary its user may not read
(an execute-only `chmod 111` file: fs/exec.c would_dump) or when it asks itself
(`prctl(PR_SET_DUMPABLE, 0)`: ssh-agent, gpg-agent). Its /proc entry then belongs to
root, and reading its binary link or its memory needs CAP_SYS_PTRACE over it
(kernel/ptrace.c __ptrace_may_access): systrace as the same, unprivileged, user gets
EACCES for every call it must look at. There is no way around it that keeps the
program's own protection (making it dumpable again would let every process of that
user read it), so such a process is killed, with one line saying why (SECURITY.md)."""

from __future__ import annotations

import os


def unreadable_reason(tid: int) -> str | None:
    """Why thread `tid` cannot be read by systrace: its process is not dumpable and
    systrace is not root. None when that is not the cause (root reads any process; a
    dumpable one is owned by its user)."""
    if os.geteuid() == 0:
        return None
    try:
        owner = os.lstat(f"/proc/{tid}/exe").st_uid  # (its dump owner: root once not dumpable)
    except OSError:
        return None  # gone
    if owner == os.geteuid():
        return None
    return (f"{_name(tid)} was killed: it is not dumpable (its binary is not readable by uid {os.geteuid()}, "
            "an execute-only file, or it called prctl(PR_SET_DUMPABLE, 0)): systrace, running as that same "
            "unprivileged user, may not read its binary or its memory (ptrace access), so it cannot supervise "
            "it; run systrace as root, or make the binary readable (chmod u+r)")


def _name(tid: int) -> str:
    """pid N (argv[0]): its command line is readable by anyone, its binary link is not."""
    try:
        with open(f"/proc/{tid}/cmdline", "rb") as handle:
            first = handle.read(4096).split(b"\0", 1)[0]
    except OSError:
        first = b""
    shown = os.fsdecode(first).encode("unicode_escape").decode("ascii") if first else "?"
    return f"pid {tid} ({shown})"
