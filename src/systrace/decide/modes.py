"""The fallbacks that decide a call no rule matched: learn (-A) and enforce (-a)."""

from __future__ import annotations

import errno
import re

from ..facts import ROWS
from ..policy import ast
from ..policy.match import Unreadable
from . import DENY, KILL, PERMIT, Decision

DEFAULT_TEMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm")
_RANDOM_PART = re.compile(r"[A-Za-z0-9]{6,}")
_EXTENSION = re.compile(r"(\.[A-Za-z0-9]{1,4})$")

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from ..call import Call
    from ..policy.store import Store


class Enforce:
    """-a: an unmatched call is denied and logged (or, with --kill-on-violation, its
    process is killed). The errno is the one a program expects from that call (the facts
    table's `deny`: EACCES for file access, ENOMEM for memory calls, EPERM otherwise)."""

    def __init__(self, kill: bool = False):
        self.decision = Decision(KILL if kill else DENY, errno.EPERM, log=True, source="enforce")
        self.kill = kill
        self.by_errno: dict[int, Decision] = {errno.EPERM: self.decision}

    def decide(self, call: Call) -> Decision:
        row = ROWS.get(call.name)
        if self.kill or row is None:
            return self.decision
        decision = self.by_errno.get(row.deny)
        if decision is None:
            decision = self.by_errno[row.deny] = Decision(DENY, row.deny, log=True, source="enforce")
        return decision


class Learn:
    """-A: an unmatched call is permitted and recorded as an exact rule in the binary's
    policy: `filename eq "/x" then permit` for an aliased call, every translated argument
    for others, a plain `permit` when nothing is translated."""

    def __init__(self, store: Store, use_aliases: bool = True, temp_dirs: tuple[str, ...] = DEFAULT_TEMP_DIRS):
        self.store = store
        self.use_aliases = use_aliases
        self.temp_dirs = temp_dirs
        self.permit = Decision(PERMIT, source="learn")
        # names this run made up in a temporary directory (mkstemp, mkdtemp): random even
        # when they happen not to look it (`/tmp/ccabcdef.s`)
        self.generated: set[str] = set()
        self.based: set[int] = set()  # policies this run started from the base
        self._base: list[ast.Rule] | None = None

    def decide(self, call: Call) -> Decision:
        note_generated(call.name, list(call.extra.get("translated", ())), self.temp_dirs,  # type: ignore[arg-type]
                       self.generated)
        stored = call.extra.get("policy")
        if stored is not None and not call.extra.get("ask") and not call.extra.get("no_learn"):
            if self._start_from_base(stored, call):
                return self.permit
            rule = learned_rule(call, self.use_aliases, self.temp_dirs, self.generated)
            if rule is not None:
                self.store.add_rule(stored, rule)  # type: ignore[arg-type]
        return self.permit

    def _start_from_base(self, stored, call: Call) -> bool:
        """A policy this run creates starts with the base (decide/base.py); True when the
        base permits this call (it was decided before the base was there)."""
        if stored.path is not None or stored.policy.lines or id(stored) in self.based:
            return False
        from .base import BASE_COMMENT, base_rules, covers

        self.based.add(id(stored))
        if self._base is None:
            self._base = base_rules()
        stored.policy.lines.append(BASE_COMMENT)
        stored.added.append(BASE_COMMENT)
        for rule in self._base:
            self.store.add_rule(stored, rule)
        translation = call.extra.get("translation")
        by_name = getattr(translation, "by_name", None)
        return covers(self._base, call.name, by_name() if by_name is not None else {})


_CREATING = ("open", "openat", "openat2", "creat")
MAX_GENERATED = 65536  # names remembered per run (a long learning run must not grow without end)


def note_generated(syscall: str, args: list[tuple[str, str]], temp_dirs: tuple[str, ...], generated: set[str]) -> None:
    """A file opened with O_CREAT|O_EXCL (mkstemp) or a directory made (mkdtemp) in a
    temporary directory has a name its program made up for this run."""
    values = dict(args)
    name = values.get("filename")
    if name is None or not any(name.startswith(directory + "/") for directory in temp_dirs):
        return
    oflags = values.get("oflags", "")
    if (syscall in _CREATING and "c" in oflags[2:] and "x" in oflags[2:]) or syscall in ("mkdir", "mkdirat"):
        if len(generated) < MAX_GENERATED:
            generated.add(name)


NEVER_LEARNED = ("fd",)  # descriptor numbers vary from run to run; `fdname` says what it is


def learned_args(syscall: str, args: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The translated arguments a learned rule names, as the facts table says (`learn`):
    by default every one but descriptor numbers, so a call that reaches outside the
    process is learned with what it reached (the file, the process, the request...)."""
    row = ROWS.get(syscall)
    wanted = row.learn if row is not None else None
    return [(name, value) for name, value in args
            if (name in wanted if wanted is not None else name not in NEVER_LEARNED)]


def learned_rule(call: Call, use_aliases: bool, temp_dirs: tuple[str, ...] = (),
                 generated: set[str] | frozenset[str] = frozenset()) -> ast.Rule | None:
    """The rule -A adds for a call, or None when a value it would name could not be read
    (a rule on it would never match: UNREADABLE fails every comparison)."""
    translation = call.extra.get("translation")
    args: list[tuple[str, str]] = list(call.extra.get("translated", ()))  # type: ignore[arg-type]
    syscall = call.name
    alias = getattr(translation, "alias", None) if use_aliases else None
    if alias:
        syscall = alias
        args = list(getattr(translation, "alias_list", []))
    else:
        args = learned_args(syscall, args)
    if any(isinstance(value, Unreadable) for _, value in args):
        return None
    return ast.Rule("native", syscall, exact_expr(args, temp_dirs, generated), ast.Action("permit"))


def exact_expr(args: list[tuple[str, str]], temp_dirs: tuple[str, ...] = (),
               generated: set[str] | frozenset[str] = frozenset()) -> ast.Expr | None:
    """`a eq "x" and b eq "y"`; a repeated name gets its index ([1], [2]...). A file
    with a random name in a temporary directory gets `match` with the name generalised."""
    symbols: list[ast.Expr] = []
    seen: dict[str, int] = {}
    for name, value in args:
        index = seen.get(name, 0)
        seen[name] = index + 1
        pattern = None
        if name == "filename":
            pattern = temporary_pattern(value, temp_dirs, generated)
        elif name == "argv":
            pattern = temporary_argv_pattern(value, temp_dirs, generated)
        if pattern is not None:
            symbols.append(ast.Symbol(name, index or None, "match", pattern))
        else:
            symbols.append(ast.Symbol(name, index or None, "eq", value))
    if not symbols:
        return None
    expr = symbols[-1]
    for symbol in reversed(symbols[:-1]):
        expr = ast.BinOp("and", symbol, expr)
    return expr


def temporary_pattern(path: str, temp_dirs: tuple[str, ...],
                      generated: set[str] | frozenset[str] = frozenset()) -> str | None:
    """`/tmp/ccQwlzjf.s` -> `/tmp/*.s`: a name made up by mkstemp and friends is never the
    same twice, so an exact rule for it could not match again. Only the components below
    a temporary directory that look random (6+ letters and digits mixing case or
    digits), or that this run made up (`generated`, even `ccabcdef`), are replaced; the
    extension is kept."""
    for directory in temp_dirs:
        if not path.startswith(directory + "/"):
            continue
        parts = path[len(directory) + 1 :].split("/")
        changed = False
        for i, part in enumerate(parts):
            made_up = directory + "/" + "/".join(parts[: i + 1]) in generated and _RANDOM_PART.search(part)
            if made_up or any(_looks_random(chunk) for chunk in _RANDOM_PART.findall(part)):
                extension = _EXTENSION.search(part)
                parts[i] = "*" + (extension.group(1) if extension and extension.start() > 0 else "")
                changed = True
        if changed:
            return directory + "/" + "/".join(_escape_glob(p) if p[:1] != "*" else p for p in parts)
    return None


def temporary_argv_pattern(argv: str, temp_dirs: tuple[str, ...],
                           generated: set[str] | frozenset[str] = frozenset()) -> str | None:
    """`cc1 ... -o /tmp/ccGbS918.s` -> `cc1 ... -o /tmp/*.s`, everything else escaped."""
    words = argv.split(" ")
    patterns = [temporary_pattern(word, temp_dirs, generated) for word in words]
    if not any(patterns):
        return None
    return " ".join(p if p is not None else _escape_glob(w) for w, p in zip(words, patterns, strict=True))


def _looks_random(chunk: str) -> bool:
    classes = sum((any(c.islower() for c in chunk), any(c.isupper() for c in chunk), any(c.isdigit() for c in chunk)))
    return classes >= 2


def _escape_glob(part: str) -> str:
    return re.sub(r"([*?\[\\])", r"\\\1", part)
