"""Syntax tree of policies. Values are kept as written ($HOME unexpanded, errno names as
spelled) so a policy prints back as it was read."""

from __future__ import annotations

from ..record import record

OPS = ("eq", "neq", "match", "sub", "nsub", "inpath", "re")
VERDICTS = ("permit", "deny", "ask", "kill")
PREDICATE_OPS = ("=", "!=", "<", ">")


@record
class Symbol:
    name: str  # a translated argument: filename, oflags, sockaddr...
    index: int | None  # [n]: the n-th argument of that name; None means the first
    op: str
    value: str


@record
class TrueExpr:
    pass


@record
class Not:
    expr: Expr


@record
class BinOp:
    op: str  # "and" or "or"
    left: Expr
    right: Expr


Expr = Symbol | TrueExpr | Not | BinOp


@record
class Predicate:
    kind: str  # "user" or "group"
    op: str  # = != < >
    value: str  # a name or a number, as written


@record
class Elevate:
    user: str | None
    group: str | None


@record
class Action:
    verdict: str  # permit, deny, ask, kill
    errno: str | None = None  # deny[errno], as written
    flag: str | None = None  # permit[inherit|detach|mountns]
    log: bool = False
    elevate: Elevate | None = None
    predicate: Predicate | None = None


@record
class Rule:
    emulation: str
    syscall: str  # a real syscall name or an alias (fsread, fswrite)
    expr: Expr | None  # None: a plain rule (`permit`, `deny[enoent]`)
    action: Action


@record
class Comment:
    text: str  # the whole line, '#' included, without the newline


@record
class Detached:
    pass


Line = Rule | Comment | Detached


class Policy:
    __slots__ = ("name", "emulation", "lines", "template", "description", "line")

    def __init__(self, name: str, emulation: str, lines: list[Line] | None = None, template: bool = False,
                 description: str = "", line: int = 0):
        self.name = name  # the binary's path, or */basename
        self.emulation = emulation
        self.lines: list[Line] = [] if lines is None else lines
        self.template = template
        self.description = description
        self.line = line  # of its header in the file it was read from (0: not read); not compared

    def _key(self) -> tuple[object, ...]:
        return (self.name, self.emulation, self.lines, self.template, self.description)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Policy) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Policy({self.name!r}, {self.emulation!r}, {self.lines!r}, template={self.template!r})"

    @property
    def rules(self) -> list[Rule]:
        return [line for line in self.lines if isinstance(line, Rule)]

    def rules_for(self, syscall: str) -> list[Rule]:
        return [line for line in self.lines if isinstance(line, Rule) and line.syscall == syscall]

    @property
    def detached(self) -> bool:
        return any(isinstance(line, Detached) for line in self.lines)


class PolicyFile:
    __slots__ = ("preamble", "policies")

    def __init__(self, preamble: list[Comment] | None = None, policies: list[Policy] | None = None):
        self.preamble: list[Comment] = [] if preamble is None else preamble  # comments before the first header
        self.policies: list[Policy] = [] if policies is None else policies

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PolicyFile) and (self.preamble, self.policies) == (other.preamble, other.policies)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"PolicyFile({self.preamble!r}, {self.policies!r})"
