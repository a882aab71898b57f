"""Sites: the calls of the recording run that may fail, numbered as an --inject rule
counts them (pure).

A site is (binary, system call, translated arguments, occurrence). The occurrence is
what `when=N` needs to hit exactly that call: for a call with a filename, the rule has
`path=FILENAME` and counts only the calls of that system call in the process whose
filenames match it; otherwise it counts every call of that system call in the process.
Processes are numbered by the recorder (a new number after exec, as the fault counters
reset). The same site in two processes of one binary is one site: its rule fails both."""

from __future__ import annotations

import hashlib
import json
import re

from ..faults.tables import ERRNOS, NEVER_FAIL
from ..policy.match import compile_fnmatch
from ..record import record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..policy.match import Glob

GLOB_SPECIALS = "*?[\\"
# ':' separates an --inject spec's fields, so path= cannot hold one: '?' stands for it
# (it matches any one character but '/'; the recording counts with the same pattern).


@record
class Site:
    binary: str
    syscall: str
    args: tuple[tuple[str, str], ...]
    occurrence: int
    path: str | None = None  # the reproducer's path= pattern (the filename, escaped)

    @property
    def group(self) -> tuple[str, str, tuple[tuple[str, str], ...]]:
        """Same call, same arguments: the occurrences of a loop."""
        return (self.binary, self.syscall, self.args)

    def key(self) -> str:
        return json.dumps([self.binary, self.syscall, [list(a) for a in self.args], self.occurrence])


def failable(selected: frozenset[str] | None = None) -> frozenset[str]:
    """The calls that may be failed (they have an errno table), within `selected`."""
    from ..baseline import never_notified

    names = set(ERRNOS) - set(NEVER_FAIL) - never_notified()
    return frozenset(names & selected if selected is not None else names)


def escape_glob(path: str) -> str:
    """A path= pattern that matches this path literally (and, as path= does, what is below it)."""
    return "".join("\\" + char if char in GLOB_SPECIALS else "?" if char == ":" else char for char in path)


_PROC_PID = re.compile(r"^/proc/(\d+)(?=/|$)")


def stable(value: str, pid: int | None) -> str:
    """The name of a /proc entry without the number that changes each run: /proc/self for
    the calling process, /proc/<pid> for another (as learning names them)."""
    match = _PROC_PID.match(value)
    if match is None:
        return value
    return ("/proc/self" if pid is not None and int(match.group(1)) == pid else "/proc/<pid>") + value[match.end():]


def path_pattern(value: str) -> str:
    """path= for a filename: literal, but a /proc/NUMBER matches any number."""
    match = _PROC_PID.match(value)
    if match is None:
        return escape_glob(value)
    return "/proc/[0-9]*" + escape_glob(value[match.end():])


def parse_record(text: str) -> list[dict]:
    calls = []
    for line in text.splitlines():
        if line.strip():
            calls.append(json.loads(line))
    return calls


def filenames(call: dict) -> list[str]:
    return [value for name, value in call["args"] if name == "filename"]


def sites_of(calls: list[dict]) -> list[Site]:
    """The distinct sites, in the order the recording first met them."""
    by_syscall: dict[tuple[int, str], int] = {}
    seen_paths: dict[tuple[int, str], list[list[str]]] = {}  # (process, syscall) -> filenames of earlier calls
    patterns: dict[str, Glob] = {}
    out: dict[Site, None] = {}
    for call in calls:
        proc, syscall = call["proc"], call["syscall"]
        names = filenames(call)
        history = seen_paths.setdefault((proc, syscall), [])
        history.append(names)
        # A rule without path= counts every call of its system call, with a filename or not.
        count = by_syscall[(proc, syscall)] = by_syscall.get((proc, syscall), 0) + 1
        pid = call.get("pid")
        args = tuple((str(name), stable(str(value), pid) if name == "filename" else str(value)) for name, value in call["args"])
        if names and names[0]:
            path = path_pattern(names[0])
            pattern = patterns.get(path)
            if pattern is None:
                pattern = patterns[path] = compile_fnmatch(path)
            occurrence = sum(1 for earlier in history if any(pattern.match(name) for name in earlier))
            site = Site(call["binary"], syscall, args, occurrence, path)
        else:
            site = Site(call["binary"], syscall, args, count, None)
        out.setdefault(site, None)
    return list(out)


def shard_of(site: Site, count: int) -> int:
    """0-based shard of a site: by its group, so a loop's occurrences (and their folding)
    stay together; a stable hash, the same on every machine."""
    digest = hashlib.blake2b(json.dumps([site.binary, site.syscall, [list(a) for a in site.args]]).encode(),
                             digest_size=8).digest()
    return int.from_bytes(digest, "little") % count


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' with 1 <= I <= N."""
    index, sep, count = text.partition("/")
    if not sep or not index.isdigit() or not count.isdigit() or not 1 <= int(index) <= int(count):
        raise ValueError(f"invalid shard '{text}' (expected I/N with 1 <= I <= N)")
    return int(index), int(count)
