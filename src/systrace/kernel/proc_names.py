"""How /proc spells a descriptor's entry and a pid, read without regular expressions
(start-up time, issue 16: `re` brings enum, functools and collections, about 28 M
instructions of start-up, and a plain run needs no pattern of its own).

Each object reads like the compiled pattern it replaces, with the same answers:

    FD_LINK.match(b"/proc/12/task/13/fd/4").group(2) == b"4"   # ^/proc/([0-9]+)/(?:task/[0-9]+/)?fd/([0-9]+)$
    FD_DIR.match(b"/proc/12/fd")                                # ^/proc/[0-9]+/(?:task/[0-9]+/)?fd$
    PID.fullmatch("12")                                         # [1-9][0-9]*

As with the patterns, `$` also accepts one newline ending the path. Pure.
(tests/test_proc_names.py compares them with the patterns.)"""

from __future__ import annotations


class ProcMatch(tuple):  # type: ignore[type-arg]
    """The groups of a match: group(0) the whole text, group(N) the Nth (a tuple: cheap
    to make, on the path of every translated /proc name)."""

    __slots__ = ()
    group = tuple.__getitem__


_match = tuple.__new__


def _descriptor_parts(path: bytes, directory: bool) -> tuple[bytes, bytes] | None:
    """(pid, what follows `fd/`) of /proc/PID/fd/N or /proc/PID/task/TID/fd/N (with
    `directory`, of /proc/PID/fd or /proc/PID/task/TID/fd, and b"")."""
    pid, _, rest = (path[6:-1] if path[-1:] == b"\n" else path[6:]).partition(b"/")
    if rest[:5] == b"task/":
        tid, _, after = rest[5:].partition(b"/")
        if tid.isdigit() and after[:2] == b"fd":  # (bytes: ASCII digits, not empty)
            rest = after
    if not pid.isdigit():
        return None
    if directory:
        return (pid, b"") if rest == b"fd" else None
    fd = rest[3:]
    return (pid, fd) if rest[:3] == b"fd/" and fd.isdigit() else None


class _FdLink:
    def match(self, path: bytes) -> ProcMatch | None:
        if path[:6] != b"/proc/":  # most paths: one comparison
            return None
        found = _descriptor_parts(path, False)
        return None if found is None else _match(ProcMatch, (path, *found))


class _FdDir:
    def match(self, path: bytes) -> ProcMatch | None:
        if path[:6] != b"/proc/" or _descriptor_parts(path, True) is None:
            return None
        return _match(ProcMatch, (path,))


class _Pid:
    def fullmatch(self, text: str) -> ProcMatch | None:
        if not text.isdigit() or text[0] == "0" or not text.isascii():
            return None
        return _match(ProcMatch, (text,))


FD_LINK = _FdLink()
FD_DIR = _FdDir()
PID = _Pid()
