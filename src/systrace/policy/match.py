"""Evaluating filter expressions on translated arguments, exactly as the original did.

- eq / neq: equal ignoring ASCII case (strcasecmp)
- match: fnmatch(FNM_PATHNAME | FNM_LEADING_DIR): `*` and `?` never match '/', and a
  pattern matching a leading directory matches everything below it
- sub / nsub: substring (case-sensitive)
- inpath: the argument is a path prefix of the rule's value ("/usr" is in "/usr/bin/x")
- re: POSIX extended regular expression, unanchored
- an argument the call does not have makes its symbol false, whatever the operator
- a value systrace could not read (UNREADABLE: a 257-word argv, unmapped memory) makes
  every comparison on it unknown, and `not` of unknown is unknown (Kleene's three-valued
  logic): a rule matches only when its expression is true, so no rule on an unreadable
  value ever matches, `neq`, `nsub` and `not` included (fail closed)
"""

from __future__ import annotations

from ..lazy import lazy_pattern
from . import ast

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:  # (collections.abc imports collections: start-up time)
    import re
    from collections.abc import Callable, Mapping, Sequence

_POSIX_CLASSES = {
    "alpha": "a-zA-Z", "digit": "0-9", "alnum": "a-zA-Z0-9", "upper": "A-Z", "lower": "a-z",
    "space": " \\t\\n\\r\\f\\v", "blank": " \\t", "punct": "!-/:-@\\[-`{-~", "xdigit": "0-9A-Fa-f",
    "cntrl": "\\x00-\\x1f\\x7f", "print": " -~", "graph": "!-~",
}

if TYPE_CHECKING:
    Args = Mapping[str, Sequence[str]]  # argument name -> its values, in order


class Unreadable(str):
    """A value that could not be read. It prints as `<unreadable>`, but no operator
    holds on it: it is told apart by its type, never by its text (a tracee may pass the
    string "<unreadable>" itself)."""

    __slots__ = ()


UNREADABLE = Unreadable("<unreadable>")


# Patterns compiled once. `re` (with enum, functools and collections) is imported at the
# first one, not with this module (start-up time): a policy that uses `match`, `re` or a
# `$` has it imported when it is parsed (parse.py), before its command starts.
_FNMATCH: dict[str, re.Pattern[str]] = {}
_ERE: dict[str, re.Pattern[str]] = {}
_MAX_COMPILED = 4096  # patterns kept of each kind (then the cache starts again)


def _compiled(cache: dict[str, re.Pattern[str]], pattern: str, compile_pattern: Callable[[str], re.Pattern[str]]
              ) -> re.Pattern[str]:
    if len(cache) >= _MAX_COMPILED:
        cache.clear()
    compiled = cache[pattern] = compile_pattern(pattern)
    return compiled


def compile_fnmatch(pattern: str) -> Glob:
    """fnmatch with FNM_PATHNAME | FNM_LEADING_DIR (backslash escapes, no FNM_PERIOD).
    `*` and a pattern with no wildcard, class or escape need no regular expression."""
    compiled = _FNMATCH.get(pattern)
    if compiled is not None:
        return compiled
    if pattern == "*":
        return ANYTHING
    if needs_regex("match", pattern):
        return _compiled(_FNMATCH, pattern, _compile_fnmatch)
    return Literal(pattern)


def needs_regex(op: str, pattern: str) -> bool:
    """Whether matching `op pattern` compiles a regular expression (imports re)."""
    if op == "re":
        return _plain_ere(pattern) is None
    return op == "match" and pattern != "*" and any(char in pattern for char in "*?[\\")


_ERE_SPECIAL = frozenset(".^$*+?{}[]\\|()")


def _plain_ere(pattern: str) -> tuple[bool, str] | None:
    """(anchored, text) of an ERE that is a plain text, after a `^` or not: the base's
    `pidname re "^<descendant: "` needs no regular expression."""
    anchored = pattern.startswith("^")
    text = pattern[1:] if anchored else pattern
    return None if _ERE_SPECIAL.intersection(text) else (anchored, text)


class Prefix:
    """An ERE `^TEXT`: the values that start with TEXT."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def search(self, value: str) -> bool | None:
        return True if value.startswith(self.text) else None


class Contains:
    """An ERE `TEXT` (unanchored): the values that contain TEXT."""

    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text

    def search(self, value: str) -> bool | None:
        return True if self.text in value else None


class Literal:
    """fnmatch of a pattern with no wildcard, class or escape: the value itself or a path
    below it (FNM_LEADING_DIR), whatever its names hold (a newline too, as fnmatch(3))."""

    __slots__ = ("text", "below")

    def __init__(self, text: str):
        self.text, self.below = text, text + "/"

    def match(self, value: str) -> bool | None:
        return True if value == self.text or value.startswith(self.below) else None


class Anything:
    """fnmatch of `*`: a first component without '/' and anything below it, so every value
    (as `(?s:[^/]*(?:/.*)?)\\Z` reads it)."""

    __slots__ = ()

    def match(self, value: str) -> bool | None:
        return True


ANYTHING = Anything()

if TYPE_CHECKING:
    Glob = re.Pattern[str] | Literal | Anything  # what compile_fnmatch gives: each has match(value)


_NOTHING = "(?!)"  # a regular expression that matches nothing


def _compile_fnmatch(pattern: str) -> re.Pattern[str]:
    import re

    out = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            out.append(re.escape(pattern[index]))
        elif char == "\\":
            return re.compile(_NOTHING)  # a trailing backslash: fnmatch(3) matches nothing ("trailing \\ loses")
        elif char == "[":
            end, klass = _bracket(pattern, index)
            if klass is None:
                out.append(re.escape(char))
            else:
                out.append(klass)
                index = end
        else:
            out.append(re.escape(char))
        index += 1
    # DOTALL over the whole: a name below the pattern may hold a newline (a deny rule
    # `match "/secret"` must hold for "/secret/a\nb", as fnmatch(3) with FNM_LEADING_DIR)
    try:
        return re.compile("(?s:" + "".join(out) + "(?:/.*)?)\\Z")
    except re.error:  # a reversed range, [a-[:alpha:]]...: fnmatch(3) matches nothing
        return re.compile(_NOTHING)


def _bracket(pattern: str, start: int) -> tuple[int, str | None]:
    """A [...] class (never matching '/'); (index of ']', regex) or (start, None)."""
    import re

    index = start + 1
    negate = index < len(pattern) and pattern[index] in "!^"
    if negate:
        index += 1
    body: list[str] = []
    first = True
    while index < len(pattern):
        char = pattern[index]
        if char == "]" and not first:
            inner = "".join(body)
            return index, f"(?!/)[{'^' if negate else ''}{inner}]"
        if char == "[" and pattern.startswith("[:", index):
            close = pattern.find(":]", index + 2)
            name = pattern[index + 2 : close] if close > 0 else ""
            if name in _POSIX_CLASSES:
                body.append(_POSIX_CLASSES[name])
                index = close + 2
                first = False
                continue
        escaped = char == "\\" and index + 1 < len(pattern)
        if escaped:
            index += 1
            char = pattern[index]
        body.append("-" if char == "-" and not escaped else re.escape(char))  # (an escaped one is no range)
        first = False
        index += 1
    return start, None


def compile_ere(pattern: str) -> re.Pattern[str] | Prefix | Contains:
    """POSIX ERE to Python: bracket classes like [[:digit:]] are translated. A plain text
    needs no regular expression."""
    compiled = _ERE.get(pattern)
    if compiled is not None:
        return compiled
    plain = _plain_ere(pattern)
    if plain is not None:
        return Prefix(plain[1]) if plain[0] else Contains(plain[1])
    return _compiled(_ERE, pattern, _compile_ere)


def _compile_ere(pattern: str) -> re.Pattern[str]:
    import re

    # POSIX (regcomp without REG_NEWLINE, C locale): `.` matches a newline and `$` only the
    # end, so that a name holding a newline cannot step past a rule
    return re.compile(posix_ere_to_python(pattern), re.DOTALL | re.ASCII)


# \c outside a bracket: what glibc's regcomp makes of it, in Python (any other c is c)
_ERE_ESCAPES = {**{c: "\\" + c for c in "wWsSbB123456789"}, "<": "\\b(?=\\w)", ">": "\\b(?<=\\w)",
                "`": "\\A", "'": "\\Z"}
_QUANTIFIER_START = frozenset("*+?{")


def posix_ere_to_python(pattern: str) -> str:
    """A POSIX extended regular expression as Python reads the same: `$` is `\\Z`
    (Python's `$` also matches before a final newline), a backslash before an ordinary
    character is that character (Python's `\\d`, `\\n`, `\\Z` are not POSIX), a
    bracket expression's backslash is literal and its `[:class:]` names are translated
    (and only there). What Python reads otherwise than POSIX is refused (re.error, so
    the policy is refused when parsed): `(?`, and a quantifier after a quantifier
    (Python's lazy `*?` and possessive `*+`, POSIX's repeated repetition)."""
    import re

    out: list[str] = []
    index, size = 0, len(pattern)
    quantified = False  # the previous token was a quantifier
    while index < size:
        char = pattern[index]
        if char in _QUANTIFIER_START and quantified and (char != "{" or _interval(pattern, index)):
            raise re.error("a quantifier after a quantifier (POSIX and Python read it otherwise)", pattern, index)
        quantified = False
        if char == "\\":
            if index + 1 >= size:
                raise re.error("trailing backslash", pattern, index)
            escaped = pattern[index + 1]
            out.append(_ERE_ESCAPES.get(escaped) or re.escape(escaped))
            index += 2
            continue
        if char == "[":
            index = _ere_bracket(pattern, index, out)
            continue
        if char == "(" and pattern.startswith("(?", index):
            raise re.error("(? is not POSIX", pattern, index)
        if char in "*+?":
            quantified = True
        elif char == "{" and _interval(pattern, index):
            close = pattern.index("}", index)
            out.append(pattern[index : close + 1])
            index, quantified = close + 1, True
            continue
        elif char == "{":
            char = "\\{"  # not an interval: a plain brace, as in glibc
        out.append("\\Z" if char == "$" else char)
        index += 1
    return "".join(out)


def _interval(pattern: str, index: int) -> bool:
    """Is the `{` at `index` an interval `{m}`, `{m,}`, `{m,n}` or `{,n}`?"""
    close = pattern.find("}", index)
    body = pattern[index + 1 : close] if close > 0 else ""
    low, comma, high = body.partition(",")
    return bool(body) and (low.isdigit() or (bool(comma) and not low)) and (not high or high.isdigit()) \
        and (low.isdigit() or high.isdigit())


def _ere_bracket(pattern: str, start: int, out: list[str]) -> int:
    """A bracket expression at `start`, appended to `out` as a Python class; returns the
    index after its `]`. Its backslash is a plain character (POSIX)."""
    import re

    index, size = start + 1, len(pattern)
    negate = index < size and pattern[index] == "^"
    index += negate
    items: list[str] = []
    first = True
    while True:
        if index >= size:
            raise re.error("unterminated bracket expression", pattern, start)
        char = pattern[index]
        if char == "]" and not first:
            break
        first = False
        if char == "[" and index + 1 < size and pattern[index + 1] in ":.=":
            kind = pattern[index + 1]
            close = pattern.find(kind + "]", index + 2)
            if close < 0:
                raise re.error("unterminated [: [. or [=", pattern, index)
            name = pattern[index + 2 : close]
            index = close + 2
            if kind == ":":
                if name not in _POSIX_CLASSES:
                    raise re.error(f"unknown class [:{name}:]", pattern, index)
                items.append(_POSIX_CLASSES[name])
                continue
            if len(name) != 1:
                raise re.error("a collating element of more than one character", pattern, index)
            char = name
        else:
            index += 1
        if index + 1 < size and pattern[index] == "-" and pattern[index + 1] != "]":
            high = pattern[index + 1]
            index += 2
            if high == "[" and pattern.startswith(("[.", "[="), index - 1):
                close = pattern.find(pattern[index] + "]", index + 1)
                if close < 0 or close != index + 2:
                    raise re.error("a range ending in a collating element of more than one character", pattern, index)
                high, index = pattern[index + 1], close + 2
            if ord(high) < ord(char):
                raise re.error("a reversed range", pattern, index)
            items.append(_class_char(char) + "-" + _class_char(high))
            continue
        items.append(_class_char(char))
    out.append("[" + ("^" if negate else "") + "".join(items) + "]")
    return index + 1


def _class_char(char: str) -> str:
    return "\\" + char if char in "\\]^-[&~|" else char


def inpath(value: str, path: str) -> bool:
    if not value or len(value) > len(path):
        return False
    if value == "/":
        return path.startswith("/")
    if not path.startswith(value):
        return False
    return len(path) == len(value) or path[len(value)] == "/"


def symbol_holds(symbol: ast.Symbol, value: str) -> bool:
    """The symbol's operator applied to one present argument value (already expanded)."""
    op = symbol.op
    # eq and neq compare exactly: the original's strcasecmp made a rule on "/a/notes"
    # permit "/a/NOTES", another file on Linux (SECURITY.md)
    if op == "eq":
        return value == symbol.value
    if op == "neq":
        return value != symbol.value
    if op == "match":
        return compile_fnmatch(symbol.value).match(value) is not None
    if op == "sub":
        return symbol.value in value
    if op == "nsub":
        return symbol.value not in value
    if op == "inpath":
        return inpath(value, symbol.value)
    if op == "re":
        return compile_ere(symbol.value).search(value) is not None
    raise ValueError(f"unknown operator {op}")


def evaluate(expr: ast.Expr, args: Args, expand: Callable[[str], str] = lambda text: text) -> bool:
    """Does the expression hold for these arguments? `expand` substitutes $HOME etc. in
    the rule's values. Unknown (a comparison on an unreadable value) is not true."""
    return _evaluate(expr, args, expand) is True


def _evaluate(expr: ast.Expr, args: Args, expand: Callable[[str], str]) -> bool | None:
    """True, False, or None: unknown."""
    if isinstance(expr, ast.TrueExpr):
        return True
    if isinstance(expr, ast.Symbol):
        values = args.get(expr.name)
        index = expr.index or 0
        if values is None or index >= len(values):
            return False
        if isinstance(values[index], Unreadable):
            return None
        value = expand(expr.value)
        if value is not expr.value:
            expr = ast.Symbol(expr.name, expr.index, expr.op, value)
        return symbol_holds(expr, values[index])
    if isinstance(expr, ast.Not):
        inner = _evaluate(expr.expr, args, expand)
        return None if inner is None else not inner
    left = _evaluate(expr.left, args, expand)
    if expr.op == "and":
        if left is False:
            return False
        right = _evaluate(expr.right, args, expand)
        return False if right is False else (None if left is None or right is None else True)
    if left is True:
        return True
    right = _evaluate(expr.right, args, expand)
    return True if right is True else (None if left is None or right is None else False)


_VARIABLE = lazy_pattern(r"\\(\$(?:\{\w+\}|\w))|\$(\{(\w+)\}|(\w+))")


def expander(variables: Mapping[str, str]) -> Callable[[str], str]:
    """$HOME, $USER, $CWD (and ${NAME}) in rule values; `\\$` is a plain `$` (learned
    values are written that way: they match literally)."""
    pattern = _VARIABLE  # compiled at the first value with a `$`

    def substitute(m: re.Match[str]) -> str:
        if m.group(1):
            return m.group(1)
        return variables.get(m.group(3) or m.group(4), m.group())

    def expand(text: str) -> str:
        if "$" not in text:
            return text
        return pattern.sub(substitute, text)

    return expand
