"""What a learned rule says about a value: the value itself, or a pattern where the run
made something up.

A name the run made up (a mkstemp file, a pid, an address, the time) is never the same
twice, so an exact rule for it could not match again. Such a part is replaced by a
pattern spanning exactly what varies and never a `/`, so a learned pattern covers one
path component, never a subtree; everything else stays literal. The pattern is an
anchored POSIX ERE (`re "^/tmp/cc[A-Za-z0-9]{6}\\.s$"`), valid in the original grammar.

A part is made up when the run created it (O_CREAT|O_EXCL, mkdir, a rename or link
target, a name it unlinked) and it looks generated, or when its shape alone says so:
- a mkstemp suffix: 6 letters and digits mixing classes, after a lowercase prefix
  (`sedNg9Pwi`, `f.txt.oBJVyOL`, `cc2vSrz7.s`), or 10 or more such (mktemp's default);
- a hex address (`0x00005609a4d94610`) or a long decimal one (`139928116257424`);
- a pid of the run (`--keep=fetch-pack 29580`), the current time (`@1796114472`);
  never the pid of a `/proc/PID` path, whose pattern would name every process;
- a content hash: 32 or more lowercase hex digits with a digit and a letter, and
  git's loose-object fan-out `objects/XX` (`objects/87/d047...`).
Plain names (`notes2024`, `config1`, `python3`, `Makefile`) are not made up.

Pure logic: no kernel, no files.
"""

from __future__ import annotations

import re
import time

from ..policy import ast

MAX_REMEMBERED = 65536  # names and pids per run (a long learning run must not grow without end)
TIME_WINDOW = 86400  # seconds around now in which a 10-digit number is taken for the time
MIN_PID = 100  # smaller numbers are too common to be taken for a pid

_CREATING_OPENS = ("open", "openat", "openat2", "creat")
# the filenames (by position) a call makes (MADE) or makes disappear (GONE: what a
# temporary file's life ends with, as good a sign as mkstemp's O_EXCL)
GENERALISED_ARGS = ("filename", "fdname", "argv", "sockaddr")  # fdname: the file a descriptor names
ANY_DESCRIPTOR = "^-?[0-9]+$"
_PSEUDO_TERMINAL = re.compile("^/dev/pts/[0-9]+$")

_COMPONENT = re.compile(r"[^/ =]+")  # a path component or an argv word (or its value after =)
_HEX = re.compile(r"0x[0-9a-fA-F]{8,16}(?![0-9A-Za-z])")
_DIGITS = re.compile(r"(?<![0-9A-Za-z])[0-9]+(?![0-9A-Za-z])")
_ALNUM = re.compile(r"[A-Za-z0-9]+")
_DIGEST = re.compile(r"[0-9a-f]+")
# Python's tempfile names: 8 of [a-z0-9_] after `tmp`, a `-` or a `.` (tmpk3j_9xab,
# pymp-..., sem.mp-...), or alone when created with O_EXCL (its probe of a temporary dir)
_PYTHON_TEMP = re.compile(r"(?:(?<=tmp)|(?<=[.\-]))[a-z0-9_]{8}(?![A-Za-z0-9_])")
_PYTHON_ALONE = re.compile(r"[a-z0-9_]{8}")
_MAYBE = re.compile(r"[A-Za-z0-9]{6}|[a-z0-9_]{8}")
_NATURAL = re.compile(r"[a-z]+[0-9]+|[A-Z]+[0-9]+|[A-Z][a-z]+[0-9]*|[0-9]+[a-z]+")
_ERE_SPECIAL = re.compile(r"[.\[\]()*+?{}|^\\$]")
_VARIABLE = re.compile(r"\$(?=\{\w+\}|\w)")

Span = tuple[int, int, str]  # start, end, the ERE replacing value[start:end]
NOT_CREATED, MADE, EXCL = 0, 1, 2
GONE = EXCL
_MADE_NAMES: dict[str, tuple[tuple[int, int], ...]] = {
    "mkdir": ((0, MADE),), "mkdirat": ((0, MADE),), "link": ((1, MADE),), "linkat": ((1, MADE),),
    "symlink": ((0, MADE),), "symlinkat": ((0, MADE),), "rename": ((0, GONE), (1, MADE)),
    "renameat": ((0, GONE), (1, MADE)), "renameat2": ((0, GONE), (1, MADE)), "unlink": ((0, GONE),),
    "unlinkat": ((0, GONE),), "rmdir": ((0, GONE),),
}
NOTED_CALLS = frozenset((*_CREATING_OPENS, *_MADE_NAMES))


class MadeUp:
    """What this run made up so far: the names it created and the pids it ran as."""

    def __init__(self, now: float | None = None):
        # components (basenames: argv words name them too) the run created, with how: EXCL for
        # an O_CREAT|O_EXCL open (mkstemp) and for a name it unlinked or renamed away (GONE),
        # MADE for mkdir and a rename or link target
        self.created: dict[str, int] = {}
        self.pids: set[int] = set()
        # components made by an O_CREAT|O_EXCL open (mkstemp's mark: its name is drawn)
        self.exclusive: set[str] = set()
        self.now = time.time() if now is None else now

    def note_pids(self, pids: tuple[int, ...]) -> None:
        for pid in pids:
            if pid >= MIN_PID and pid not in self.pids and len(self.pids) < MAX_REMEMBERED:
                self.pids.add(pid)

    def note(self, syscall: str, args: list[tuple[str, str]], pids: tuple[int, ...] = ()) -> list[str]:
        """Remember what this call made up; returns the components it newly marked."""
        self.note_pids(pids)
        names = [value for name, value in args if name == "filename"]
        made: list[tuple[str, int]] = []
        if syscall in _CREATING_OPENS:
            oflags = dict(args).get("oflags", "")
            if names and "c" in oflags[2:] and "x" in oflags[2:]:
                made = [(names[0], EXCL)]
                if len(self.exclusive) < MAX_REMEMBERED:
                    self.exclusive.add(last_component(names[0]))
        else:
            made = [(names[i], how) for i, how in _MADE_NAMES.get(syscall, ()) if i < len(names)]
        marked = []
        for path, how in made:
            component = last_component(path)
            if component and self.created.get(component, NOT_CREATED) < how and len(self.created) < MAX_REMEMBERED:
                self.created[component] = how
                marked.append(component)
        return marked


def last_component(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def may_be_made_up(component: str) -> bool:
    """Could creating this name later make it count as made up (a run of letters and
    digits long enough, or Python's 8 characters)?"""
    return _MAYBE.search(component) is not None


def learned_args(args: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The arguments a rule is learned on: a descriptor number says nothing stable (the
    next run may get another one), so it is left out when other arguments say what the
    call does; alone, it becomes "any descriptor" (not a plain permit: a call naming a
    path instead has no fd argument and is not covered)."""
    rest = [(name, value) for name, value in args if name != "fd"]
    if rest or not args:
        return rest
    return [("fd", "")]


def learned_symbol(name: str, index: int | None, value: str, made_up: MadeUp) -> ast.Symbol:
    if name == "fd" and value == "":
        return ast.Symbol(name, index, "re", ANY_DESCRIPTOR)
    if name == "fdname" and _PSEUDO_TERMINAL.match(value):  # its number varies from run to run
        return ast.Symbol(name, index, "re", _PSEUDO_TERMINAL.pattern)
    if name in GENERALISED_ARGS:
        pattern = generalised(value, made_up)
        if pattern is not None:
            return ast.Symbol(name, index, "re", pattern)
    return ast.Symbol(name, index, "eq", literal(value))


def literal(value: str) -> str:
    """A value matched as it is: `$HOME` in it is not a variable (the expander reads `\\$`
    as a plain `$`)."""
    return _VARIABLE.sub(r"\\$", value) if "$" in value else value


def generalised(value: str, made_up: MadeUp) -> str | None:
    """An anchored ERE matching the value with its made-up parts varying, or None when
    nothing in it was made up."""
    spans: list[Span] = []
    components = list(_COMPONENT.finditer(value))
    for position, component in enumerate(components):
        digest = _digest_pattern(value, components, position)
        if digest is not None:  # a content hash: what the content was, not a name chosen
            spans.append((component.start(), component.end(), digest))
            continue
        created = made_up.created.get(component.group(), NOT_CREATED)
        # a path /proc/PID: a pattern would grant every process's entry (translation names
        # them by relation, so none should be left). In an argv word (`head /proc/$$/status`)
        # the pid of the run is generalised: the binary's own policy decides its reads.
        in_proc = component.start() == len("/proc/") and value.startswith("/proc/")
        spans.extend(_component_spans(component.group(), component.start(), created, made_up, in_proc,
                                      component.group() in made_up.exclusive))
    if not spans:
        return None
    out, position = ["^"], 0
    for start, end, pattern in sorted(spans):
        out.append(ere_literal(value[position:start]))
        out.append(pattern)
        position = end
    out.append(ere_literal(value[position:]))
    out.append("$")
    return "".join(out)


def _digest_pattern(value: str, components: list[re.Match[str]], position: int) -> str | None:
    """The pattern of a content hash's part, or None: a component of 32 or more lowercase
    hex digits with both a digit and a letter (an md5, sha1 or sha256 in hex: `git
    cat-file -p 87d047ba...`, a cache's key), and git's loose-object fan-out, the two hex
    digits of `objects/XX` (its object `objects/XX/` + 38 or 62 more; the directory made
    for it; its `tmp_obj_XXXXXX` there), which the next commit's content changes."""
    text = components[position].group()
    if len(text) >= 32 and _DIGEST.fullmatch(text) and not text.isdigit() and not text.isalpha():
        return f"[0-9a-f]{{{len(text)}}}"
    if len(text) == 2 and _DIGEST.fullmatch(text) and position > 0:
        parent = components[position - 1]
        if parent.group() == "objects" and value[parent.end():components[position].start()] == "/":
            return "[0-9a-f]{2}"
    return None


def ere_literal(text: str) -> str:
    """Text matched literally by a POSIX ERE (and by Python's re): `$` as `[$]`, which the
    variable expander leaves alone."""
    return _ERE_SPECIAL.sub(lambda m: "[$]" if m.group() == "$" else "\\" + m.group(), text)


def _component_spans(text: str, offset: int, created: int, made_up: MadeUp, in_proc: bool = False,
                     exclusive: bool = False) -> list[Span]:
    spans: list[Span] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e, _ in spans)

    if created:
        for match in _PYTHON_TEMP.finditer(text):
            spans.append((match.start(), match.end(), "[a-z0-9_]{8}"))
    for match in _HEX.finditer(text):
        if free(match.start(), match.end()):
            spans.append((match.start() + 2, match.end(), "[0-9a-fA-F]+"))
    for match in _DIGITS.finditer(text):
        pattern = None if in_proc else _number_pattern(match.group(), made_up)
        if pattern and free(match.start(), match.end()):
            spans.append((match.start(), match.end(), pattern))
    runs = list(_ALNUM.finditer(text))
    # mkstemp's XXXXXX is the last run of 6 or more, before a suffix (mkstemps: `cc%s.cdtor.c`)
    last = next((run for run in reversed(runs) if len(run.group()) >= 6), None)
    for match in runs:
        changes = 0 if created == EXCL and match is last else 1 if created else 2
        suffix = _random_suffix(match.group(), changes)
        if suffix and free(match.end() - suffix, match.end()):
            spans.append((match.end() - suffix, match.end(), f"[A-Za-z0-9]{{{suffix}}}"))
    if created == EXCL and _PYTHON_ALONE.fullmatch(text):
        # Python's probe name, or a mkstemp name (`stabc123`) that drew no capital: either
        spans = _python_or(text, spans)
    elif created and _loses_the_prefix(text, spans):
        spans = _prefixed(text, exclusive) or spans
    return [(start + offset, end + offset, pattern) for start, end, pattern in spans]


# A temporary name with a prefix (and suffix) the program chose: mkstemp(prefix="foo",
# suffix=".x") is `foo` + 8 of [a-z0-9_] + `.x` (Python), mkstemps("fooXXXXXX.x") and
# `mktemp -p DIR foo1XXXXXXXX` are `foo` + 6 or more of [A-Za-z0-9] + suffix (glibc)
_PYTHON_RUN = re.compile(r"[a-z0-9_]{8,}")
_GLIBC_RUN = re.compile(r"[A-Za-z0-9]{6,}")
_PLAIN_STEM = re.compile(r"[a-z]*[0-9]*|[A-Z][a-z]+[0-9]*|[A-Z]+[0-9]*")


def _loses_the_prefix(text: str, spans: list[Span]) -> bool:
    """Would the shape alone generalise a created name wrongly: nothing varies (`fooab_d1234.x`:
    no run of 6), a whole run of 10 or more that begins the name or follows a `_` (its
    fixed prefix lost: `fooabcd1234.x`), or part of Python's 8 only?"""
    if not spans:
        return _PYTHON_RUN.search(text) is not None or _GLIBC_RUN.search(text) is not None
    for start, end, _ in spans:
        if end - start >= 10 and (start == 0 or text[start - 1] == "_"):
            return True
    python = _python_window(text)
    if python is None or python[0] == 0:
        return False
    if any(start <= python[0] and python[1] <= end for start, end, _ in spans):
        # covered; but a mkstemp-shaped span before it took part of the prefix for drawn
        # (`Aaaaaa.` + Python's 8)
        return any(end <= python[0] and pattern.startswith("[A-Za-z0-9]") for _, end, pattern in spans)
    # not covered (`x_abcdefgh`; `fooabcdef_1`: glibc's reading keeps `_1`, which glibc never
    # draws; `tmp_obj_arfa84`: git's, or Python's `j_arfa84`). An empty prefix is not
    # Python's (its default is `tmp`): `ccabcdef.s` is gcc's
    return True


def _python_window(text: str) -> tuple[int, int] | None:
    """Python's 8 characters: the last 8 of the last run of [a-z0-9_] that has 8."""
    runs = list(_PYTHON_RUN.finditer(text))
    return (runs[-1].end() - 8, runs[-1].end()) if runs else None


def _glibc_window(text: str) -> tuple[int, int] | None:
    """glibc's X's: the end of the last run of 6 or more letters and digits; 6 of them
    when what precedes them in the run is a plain stem (`foo`, `Foo1`, `cc`), else the
    shortest tail leaving one (`barAbCd1234`: 8), else the whole run (mktemp's 10)."""
    runs = list(_GLIBC_RUN.finditer(text))
    if not runs:
        return None
    run = runs[-1]
    if run.start() > 0 and text[run.start() - 1] == "." and len(run.group()) >= 10:
        return run.start(), run.end()  # mktemp's default tmp.XXXXXXXXXX
    for size in range(6, len(run.group()) + 1):
        if _PLAIN_STEM.fullmatch(run.group()[: len(run.group()) - size]):
            return run.end() - size, run.end()
    return run.start(), run.end()


def _prefixed(text: str, exclusive: bool) -> list[Span]:
    """The part of a created name that its generator drew, the rest kept: glibc's when
    its last 6 have a capital (Python draws none), Python's when glibc's has no run of 6
    there; else either, as one alternation over the two windows (both end where the
    suffix begins). A name not made by an O_EXCL open (mkdir, unlink, rename: plain
    words are made and removed that way too) must show it was drawn: a digit in Python's
    window, a digit or a capital in glibc's."""
    python, glibc = _python_window(text), _glibc_window(text)
    if python is not None and not exclusive and not any(c.isdigit() for c in text[python[0]:python[1]]):
        python = None
    if glibc is not None and not exclusive and not any(c.isdigit() or c.isupper() for c in text[glibc[1] - 6:glibc[1]]):
        glibc = None
    if python is not None and glibc is not None and python[1] > glibc[1]:
        glibc = None  # its run stops at a `_` that Python drew: glibc never draws one
    if glibc is not None and (python is None or python[1] != glibc[1] or any(c.isupper() for c in text[glibc[1] - 6:glibc[1]])):
        return [(glibc[0], glibc[1], f"[A-Za-z0-9]{{{glibc[1] - glibc[0]}}}")]
    if python is None:
        return []
    if glibc is None:
        return [(python[0], python[1], "[a-z0-9_]{8}")]
    start = min(python[0], glibc[0])
    either = (f"({ere_literal(text[start:glibc[0]])}[A-Za-z0-9]{{{glibc[1] - glibc[0]}}}"
              f"|{ere_literal(text[start:python[0]])}[a-z0-9_]{{8}})")
    return [(start, python[1], either)]


def _python_or(text: str, spans: list[Span]) -> list[Span]:
    """A name of 8 of [a-z0-9_] created with O_EXCL: Python's tempfile made it (its probe
    of a temporary directory), whatever its letters; or mkstemp after a 2-letter stem that
    drew no capital (ar's `stabc123`). The rule takes what either makes next time in that
    one component, and nothing shaped otherwise: a digit run or a word inside the name is
    Python's luck, not a part to keep (`abcdef_1` must not become `[A-Za-z0-9]{6}_1`)."""
    python = "[a-z0-9_]{8}"
    mkstemp = [span for span in spans if span[:2] == (2, len(text)) and span[2] == "[A-Za-z0-9]{6}"]
    if mkstemp:
        return [(0, len(text), f"({ere_literal(text[:2])}[A-Za-z0-9]{{6}}|{python})")]
    return [(0, len(text), python)]


def _number_pattern(digits: str, made_up: MadeUp) -> str | None:
    if len(digits) >= 12:  # an address printed in decimal (id() in Python)
        return "[0-9]+"
    number = int(digits)
    if len(digits) == 10 and abs(number - made_up.now) <= TIME_WINDOW:
        return "[0-9]{10}"
    if number in made_up.pids and digits[0] != "0":
        return "[0-9]+"
    return None


def _random_suffix(run: str, changes_needed: int) -> int:
    """How many trailing characters of a run of letters and digits look generated (0:
    none). 6 after a stem of letters of one case (mkstemp's XXXXXX after `cc`, `sed`, or
    perl's unreplaced `XX`), or the
    whole run from 10 characters (mktemp's default). Generated text changes between
    lowercase, uppercase and digits often; words and numbered names do not: a name the run
    created needs fewer changes (from 10 characters, none), its mkstemp part none and may
    even look like a word with a number (git's `tmp_obj_arfa84`); a long
    run needs more, and digits, when nothing else says it was made up (`CMakeLists`,
    `libQt5Core`)."""
    length = len(run)
    if length < 6 or length > 32 or (changes_needed and _NATURAL.fullmatch(run)):
        return 0
    if length < 10:
        stem = run[: length - 6]
        if stem and not (stem.isalpha() and (stem.islower() or stem.isupper())):
            return 0
        tail = run[length - 6 :]
    else:
        tail = run
    changes = sum(_kind(a) != _kind(b) for a, b in zip(tail, tail[1:], strict=False))
    if length >= 10:
        if changes_needed == 2 and sum(c.isdigit() for c in run) < 2:
            return 0
        changes_needed = 4 if changes_needed == 2 else 0
    return len(tail) if changes >= changes_needed else 0


def _kind(char: str) -> int:
    return 0 if char.islower() else 1 if char.isupper() else 2

