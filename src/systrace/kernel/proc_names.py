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


class ProcMatch:
    """The groups of a match: group(0) the whole text, group(N) the Nth."""

    __slots__ = ("_groups",)

    def __init__(self, *groups: bytes | str):
        self._groups = groups

    def group(self, index: int = 0) -> bytes | str:
        return self._groups[index]


def _number(text: bytes) -> bool:
    return text.isdigit()  # bytes: ASCII digits only, and not empty


def _descriptor_parts(path: bytes, last: bytes | None) -> tuple[bytes, bytes] | None:
    """(pid, what follows `fd/`) of /proc/PID/fd[/N] or /proc/PID/task/TID/fd[/N]."""
    if not path.startswith(b"/proc/"):
        return None
    body = path[6:-1] if path.endswith(b"\n") else path[6:]
    parts = body.split(b"/")
    if len(parts) >= 4 and parts[1] == b"task" and _number(parts[2]):
        del parts[1:3]
    if parts[1:2] != [b"fd"] or not _number(parts[0]):
        return None
    if last is None:  # the directory itself
        return (parts[0], b"") if len(parts) == 2 else None
    return (parts[0], parts[2]) if len(parts) == 3 and _number(parts[2]) else None


class _FdLink:
    def match(self, path: bytes) -> ProcMatch | None:
        found = _descriptor_parts(path, b"")
        return None if found is None else ProcMatch(path, *found)


class _FdDir:
    def match(self, path: bytes) -> ProcMatch | None:
        return None if _descriptor_parts(path, None) is None else ProcMatch(path)


class _Pid:
    def fullmatch(self, text: str) -> ProcMatch | None:
        if text[:1] in ("", "0") or not (text.isascii() and text.isdigit()):
            return None
        return ProcMatch(text)


FD_LINK = _FdLink()
FD_DIR = _FdDir()
PID = _Pid()
