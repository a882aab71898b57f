"""Syntax tree of policies. Values are kept as written ($HOME unexpanded, errno names as
spelled) so a policy prints back as it was read."""

from __future__ import annotations

from dataclasses import dataclass, field

OPS = ("eq", "neq", "match", "sub", "nsub", "inpath", "re")
VERDICTS = ("permit", "deny", "ask", "kill")
PREDICATE_OPS = ("=", "!=", "<", ">")


@dataclass(frozen=True)
class Symbol:
    name: str  # a translated argument: filename, oflags, sockaddr...
    index: int | None  # [n]: the n-th argument of that name; None means the first
    op: str
    value: str


@dataclass(frozen=True)
class TrueExpr:
    pass


@dataclass(frozen=True)
class Not:
    expr: Expr


@dataclass(frozen=True)
class BinOp:
    op: str  # "and" or "or"
    left: Expr
    right: Expr


Expr = Symbol | TrueExpr | Not | BinOp


@dataclass(frozen=True)
class Predicate:
    kind: str  # "user" or "group"
    op: str  # = != < >
    value: str  # a name or a number, as written


@dataclass(frozen=True)
class Elevate:
    user: str | None
    group: str | None


@dataclass(frozen=True)
class Action:
    verdict: str  # permit, deny, ask, kill
    errno: str | None = None  # deny[errno], as written
    flag: str | None = None  # permit[inherit|detach]
    log: bool = False
    elevate: Elevate | None = None
    predicate: Predicate | None = None


@dataclass(frozen=True)
class Rule:
    emulation: str
    syscall: str  # a real syscall name or an alias (fsread, fswrite)
    expr: Expr | None  # None: a plain rule (`permit`, `deny[enoent]`)
    action: Action


@dataclass(frozen=True)
class Comment:
    text: str  # the whole line, '#' included, without the newline


@dataclass(frozen=True)
class Detached:
    pass


Line = Rule | Comment | Detached


@dataclass
class Policy:
    name: str  # the binary's path, or */basename
    emulation: str
    lines: list[Line] = field(default_factory=list)
    template: bool = False
    description: str = ""

    @property
    def rules(self) -> list[Rule]:
        return [line for line in self.lines if isinstance(line, Rule)]

    def rules_for(self, syscall: str) -> list[Rule]:
        return [line for line in self.lines if isinstance(line, Rule) and line.syscall == syscall]

    @property
    def detached(self) -> bool:
        return any(isinstance(line, Detached) for line in self.lines)


@dataclass
class PolicyFile:
    preamble: list[Comment] = field(default_factory=list)  # comments before the first header
    policies: list[Policy] = field(default_factory=list)
