"""Parser for policy files, rule lines and filter expressions.

    Policy: /usr/bin/cat, Emulation: native
            native-fsread: filename eq "/etc/hostname" then permit
            native-mmap: permit

Grammar as in the original (no precedence between `and` and `or`, both right-associative,
`not` applies to the whole expression after it):

    rule      = simple | filter
    simple    = verdict ["[" WORD "]"] ["log"] [predicate]
    filter    = expr ("then" | "->") verdict ["[" WORD "]"] ["log"] [elevate] [predicate]
    expr      = "not" expr | primary [("and" | "or") expr]
    primary   = "(" expr ")" | "true" | NAME ["[" NUMBER "]"] OP STRING
    elevate   = "as" [user] [":" group]
    predicate = "," "if" ("user" | "group") ("=" | "!=" | "<" | ">") value
"""

from __future__ import annotations

import os

from ..record import record
from . import ast, errnos
from .errors import PolicyError, PolicyWarning, shorten
from .match import needs_regex

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:  # (collections.abc imports collections: start-up time)
    from collections.abc import Callable

NATIVE_EMULATIONS = ("linux", "linux64", "native")
# A rule's tokens, read as this pattern reads them (without re: start-up time, issue 16;
# tests/test_policy_language.py compares _scan with it):
#     [ \t]* (?: (?P<string>"(?:[^"\\\n]|\\.)*") | (?P<badstring>"(?:[^"\\\n]|\\.)*) | (?P<arrow>->)
#             | (?P<op>!=|[=<>\[\](),:]) | (?P<word>[A-Za-z0-9_$./*@+-]+) | (?P<other>.) )
# the blanks before a token are part of its match; a character no alternative takes (a
# newline) is skipped, as before.
TOKEN_PATTERN = (r"""[ \t]*(?:(?P<string>"(?:[^"\\\n]|\\.)*")|(?P<badstring>"(?:[^"\\\n]|\\.)*)|(?P<arrow>->)"""
                 r"""|(?P<op>!=|[=<>\[\](),:])|(?P<word>[A-Za-z0-9_$./*@+-]+)|(?P<other>.))""")
_WORD = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_$./*@+-")
_OPS = frozenset("=<>[](),:")
_HEX = frozenset("0123456789abcdefABCDEF")


def _string_end(text: str, start: int) -> int:
    """The index after the closing quote of `"(?:[^"\\\n]|\\.)*"` at text[start], or -1."""
    close = text.find('"', start + 1)
    if close < 0:
        return -1
    if "\\" not in text[start + 1:close]:  # most strings: no escape
        return close + 1 if "\n" not in text[start + 1:close] else -1
    index, length = start + 1, len(text)
    while index < length:
        char = text[index]
        if char == '"':
            return index + 1
        if char == "\n" or char == "\\" and (index + 1 == length or text[index + 1] == "\n"):
            return -1
        index += 2 if char == "\\" else 1
    return -1


def _scan(text: str) -> tuple[list[tuple[str, str, int]], tuple[str, int] | None]:
    """TOKEN_PATTERN's matches in `text`: (kind, text, 0-based start) each, up to the first
    badstring or other, which is returned apart (its kind and start)."""
    tokens: list[tuple[str, str, int]] = []
    append = tokens.append
    index, length = 0, len(text)
    while index < length:
        start = index
        while start < length and text[start] in " \t":
            start += 1
        char = text[start] if start < length else "\n"
        if char == "\n":  # no alternative here: the pattern gives a blank back to `other`
            if start > index:
                return tokens, ("other", start - 1)
            index = start + 1  # a newline alone is skipped
            continue
        if char == '"':
            end = _string_end(text, start)
            if end < 0:
                return tokens, ("badstring", start)
            append(("string", text[start:end], start))
        elif char == "-" and text.startswith("->", start):
            append(("arrow", "->", start))
            end = start + 2
        elif char == "!" and text.startswith("!=", start):
            append(("op", "!=", start))
            end = start + 2
        elif char in _OPS:
            append(("op", char, start))
            end = start + 1
        elif char in _WORD:
            end = start + 1
            while end < length and text[end] in _WORD:
                end += 1
            append(("word", text[start:end], start))
        else:
            return tokens, ("other", start)
        index = end
    return tokens, None


def _quoted_start(text: str) -> tuple[int, int] | None:
    """What `\\s*"((?:[^"\\\n]|\\.)*)"` matches at the start of `text`: (index of the
    opening quote, index after the closing one), or None."""
    start = len(text) - len(text.lstrip())
    if text[start:start + 1] != '"':
        return None
    end = _string_end(text, start)
    return None if end < 0 else (start, end)
_ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t", "$": "$"}


@record
class Token:
    kind: str  # string, word, op, arrow, end
    text: str
    column: int  # 1-based


class BadEscape(ValueError):
    def __init__(self, message: str, offset: int):
        super().__init__(message)
        self.offset = offset  # of the backslash, in the string's body


def unescape(body: str) -> str:
    """The inside of a quoted string: \\\\ \\" \\n \\r \\t \\$ and \\xNN (a raw byte).
    Any other escape raises BadEscape: it was a typo, and would never match."""
    if "\\" not in body:  # nothing to undo (most values)
        return body
    out: list[str] = []
    raw = bytearray()

    def flush() -> None:
        if raw:
            out.append(os.fsdecode(bytes(raw)))
            raw.clear()

    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            nxt = body[index + 1 : index + 2]
            if nxt == "x":
                digits = body[index + 2 : index + 4]
                if len(digits) != 2 or not _HEX.issuperset(digits):
                    raise BadEscape(f"bad escape '\\x{shorten(digits, 2)}': \\x needs two hex digits", index)
                raw.append(int(digits, 16))
                index += 4
                continue
            if nxt not in _ESCAPES:
                shown = shorten(nxt) if nxt else "end of string"
                raise BadEscape(f"bad escape '\\{shown}' (use \\\\ \\\" \\n \\r \\t \\$ or \\xNN)", index)
            flush()
            out.append(_ESCAPES[nxt])
            index += 2
            continue
        flush()
        out.append(char)
        index += 1
    flush()
    return "".join(out)


_PLAIN_ACTIONS = {verdict: ast.Action(verdict) for verdict in ast.VERDICTS}  # (records: immutable, shared)
_WORD_OR_BLANK = _WORD | frozenset(" \t")


def _plain_words(text: str) -> list[str] | None:
    """The word tokens of `text` when it has only words and blanks, else None."""
    if not _WORD_OR_BLANK.issuperset(text):
        return None
    return text.split()  # (no other whitespace is left in it)


_new_token = tuple.__new__  # Token(kind, text, column) as its _make builds it, without the call


class _Cursor:
    def __init__(self, text: str, fail: Callable[[str, int], PolicyError]):
        self.text = text
        self.fail = fail
        tokens: list[Token] = []
        append = tokens.append
        scanned, bad = _scan(text)
        for kind, token, start in scanned:
            append(_new_token(Token, (kind, token, start + 1)))  # type: ignore[type-var]
        if bad is not None:
            kind, start = bad
            if kind == "badstring":
                raise fail("unterminated string", start + 1)
            raise fail(f"unexpected character '{shorten(text[start])}'", start + 1)
        tokens.append(Token("end", "", len(text) + 1))
        self.tokens = tokens
        self.last = len(tokens) - 1  # the end token: taking it leaves the cursor there
        self.position = 0

    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.position + offset, self.last)]

    def take(self) -> Token:
        token = self.tokens[self.position]
        if self.position < self.last:
            self.position += 1
        return token

    def at(self, text: str) -> bool:
        """The next token is the word or operator `text` (a string token's text has its
        quotes, the end token's is empty: neither is ever asked for)."""
        return self.tokens[self.position].text == text

    def expect(self, text: str, what: str | None = None) -> Token:
        if not self.at(text):
            raise self.error(f"expected {what or repr(text)}")
        return self.take()

    def error(self, message: str, token: Token | None = None) -> PolicyError:
        token = token or self.peek()
        found = "end of line" if token.kind == "end" else f"'{shorten(token.text)}'"
        return self.fail(f"{message}, found {found}", token.column)

    def warn(self, message: str, column: int) -> PolicyWarning:
        error = self.fail(message, column)
        return PolicyWarning(error.message, error.source, error.line, error.column, error.text)


class Parser:
    """Parses with positions. `syscall_known` says whether a syscall or alias name exists;
    `argument_names` gives the translated argument names of a syscall or alias (None: not
    checked; for "" every name some call has); `id_known("user"|"group", name)` whether a name in `if user = NAME` exists;
    `is_root` allows `as user:group`; `refused_argument(syscall, name)` says why a rule that
    looks at that argument lets no call through (None: it may). What is accepted but
    suspect goes to `warnings`."""

    def __init__(self, source: str = "<policy>", syscall_known: Callable[[str], bool] | None = None,
                 all_syscalls: Callable[[], list[str]] | None = None, is_root: bool | None = None,
                 argument_names: Callable[[str], frozenset[str] | None] | None = None,
                 id_known: Callable[[str, str], bool] | None = None,
                 refused_argument: Callable[[str, str], str | None] | None = None):
        self.source = source
        self.syscall_known = syscall_known
        self.all_syscalls = all_syscalls
        self.is_root = (os.geteuid() == 0) if is_root is None else is_root
        self.argument_names = argument_names
        self.id_known = id_known
        self.refused_argument = refused_argument
        self.warnings: list[PolicyWarning] = []
        self._syscall = ""  # the rule being parsed is for this syscall or alias

    # -- files -----------------------------------------------------------------
    def parse_file(self, text: str) -> ast.PolicyFile:
        result = ast.PolicyFile()
        current: ast.Policy | None = None
        headers: dict[tuple[bool, str], int] = {}  # (template, name) -> line of its header
        # "\n" only: str.splitlines() would also split inside values at U+0085, U+2028...
        for number, raw in enumerate(text.split("\n"), start=1):
            raw = raw.removesuffix("\r")
            line = raw.strip()
            if current is not None:  # `EMULATION-SYSCALL: VERDICT`, most of a learned policy (its base), at once:
                head, colon, body = line.partition(":")  # what _rule_line and parse_rule make of it
                plain = _PLAIN_ACTIONS.get(body.strip(" \t")) if colon else None
                if plain is not None:
                    emulation, dash, syscall = head.partition("-")
                    if syscall and emulation in NATIVE_EMULATIONS and (self.syscall_known is None
                                                                       or self.syscall_known(syscall)):
                        current.lines.append(ast.Rule(emulation, syscall, None, plain))
                        continue  # (anything else, errors included, is read below)
            fail = self._failer(number, raw)
            indent = len(raw) - len(raw.lstrip())
            if not line:
                continue
            if line.startswith("#"):
                comment = ast.Comment(line)
                (current.lines if current else result.preamble).append(comment)
                continue
            if line.startswith(("Policy:", "Template:")):
                current = self._header(line, indent, fail)
                current.line = number
                first = headers.setdefault((current.template, current.name), number)
                if first != number:  # the second would never be used
                    raise fail(f"duplicate header for '{shorten(current.name)}' (first on line {first})", indent + 1)
                result.policies.append(current)
                continue
            if current is None:
                raise fail("expected 'Policy: PATH, Emulation: NAME' before any rule", indent + 1)
            if line == "detached":
                current.lines.append(ast.Detached())
                continue
            current.lines.append(self._rule_line(raw, number, fail))
        return result

    def headers(self, text: str) -> list[ast.Policy]:
        """The `Policy:` and `Template:` headers of a file, read as parse_file reads them
        (each a Policy with no rules, its `line` set), without parsing a rule: the store
        maps binaries to files by them and parses a file only when one of its policies is
        used. A bad header raises as parse_file would; a header is a line that is one
        once stripped, so a "Policy:" inside a rule's value is none."""
        found: list[ast.Policy] = []
        starts = [i for keyword in ("Policy:", "Template:") for i in _occurrences(text, keyword)]
        number, counted = 1, 0  # line number of text[counted]
        for index in sorted(starts):
            begin = text.rfind("\n", 0, index) + 1
            if text[begin:index].strip():
                continue  # not at the start of its line
            number += text.count("\n", counted, begin)
            counted = begin
            end = text.find("\n", index)
            raw = text[begin:len(text) if end < 0 else end].removesuffix("\r")
            policy = self._header(raw.strip(), len(raw) - len(raw.lstrip()), self._failer(number, raw))
            policy.line = number
            found.append(policy)
        return found

    def _failer(self, number: int, raw: str) -> Callable[[str, int], PolicyError]:
        def fail(message: str, column: int) -> PolicyError:
            return PolicyError(message, self.source, number, column, raw)

        return fail

    def _header(self, line: str, indent: int, fail: Callable[[str, int], PolicyError]) -> ast.Policy:
        template = line.startswith("Template:")
        keyword = "Template:" if template else "Policy:"
        rest = line[len(keyword):]
        quoted = _quoted_start(rest)
        if quoted is not None:  # a name with special characters, written escaped
            quote, end = quoted
            name = self._unquote(rest[quote + 1:end - 1], indent + len(keyword) + quote + 1, fail)
            rest = rest[end:]
            name_end = indent + len(keyword) + end
            if not rest.startswith(", Emulation:"):
                raise fail("expected ', Emulation: NAME' after the policy name", name_end + 1)
            sep, tail = ", Emulation:", rest[len(", Emulation:"):]
        else:
            name, sep, tail = rest.partition(", Emulation:")
            name_end = indent + len(keyword) + len(name)
            if not sep:
                raise fail("expected ', Emulation: NAME' after the policy name", indent + len(line) + 1)
            name = name.strip()
        if not name:
            raise fail("empty policy name", indent + len(keyword) + 1)
        emulation, _, description = tail.partition(", Description:")
        emulation = emulation.strip()
        column = name_end + len(", Emulation:") + 2
        self._check_emulation(emulation, fail, column)
        description = description.strip()
        if _quoted_start(description) == (0, len(description)):  # (stripped: no blank before the quote)
            quote_column = indent + line.index('"', line.rindex(", Description:")) + 1
            description = self._unquote(description[1:-1], quote_column, fail)
        return ast.Policy(name=name, emulation=emulation, template=template, description=description)

    def _unquote(self, body: str, column: int, fail: Callable[[str, int], PolicyError]) -> str:
        """`column` is that of the opening quote."""
        try:
            return unescape(body)
        except BadEscape as error:
            raise fail(str(error), column + 1 + error.offset) from None

    def _check_emulation(self, emulation: str, fail: Callable[[str, int], PolicyError], column: int) -> None:
        if emulation not in NATIVE_EMULATIONS:
            raise fail(f"emulation {emulation!r} is not this host's (use linux, linux64 or native)", column)

    def _rule_line(self, raw: str, number: int, fail: Callable[[str, int], PolicyError]) -> ast.Rule:
        indent = len(raw) - len(raw.lstrip())
        head, colon, body = raw.strip().partition(":")
        if not colon:
            raise fail("expected 'EMULATION-SYSCALL: RULE'", indent + 1)
        emulation, dash, syscall = head.partition("-")
        if not dash or not syscall:
            raise fail("expected 'EMULATION-SYSCALL' before ':'", indent + 1)
        self._check_emulation(emulation, fail, indent + 1)
        self._check_syscall(syscall, fail, indent + len(emulation) + 2)
        offset = indent + len(head) + 1  # columns in the body are shifted by this
        return self.parse_rule(body, emulation, syscall, fail=lambda m, c: fail(m, c + offset))

    def _check_syscall(self, name: str, fail: Callable[[str, int], PolicyError], column: int) -> None:
        if self.syscall_known is None or self.syscall_known(name):
            return
        hint = ""
        if self.all_syscalls is not None:
            import difflib  # only for an error message (start-up time)

            close = difflib.get_close_matches(name, self.all_syscalls(), n=1)
            if close:
                hint = f"; did you mean '{close[0]}'?"
        raise fail(f"unknown system call '{name}'{hint}", column)

    # -- rules and expressions ---------------------------------------------------
    def parse_rule(self, text: str, emulation: str = "native", syscall: str = "",
                   fail: Callable[[str, int], PolicyError] | None = None) -> ast.Rule:
        plain = _PLAIN_ACTIONS.get(text.strip(" \t"))
        if plain is not None:  # `permit` alone: most lines of a learned policy (its base), parsed as the tokens would be
            return ast.Rule(emulation, syscall, None, plain)
        simple = self._simple_rule(text, emulation, syscall)
        if simple is not None:
            return simple
        cursor = _Cursor(text, fail or self._failer(1, text))
        self._syscall = syscall
        first = cursor.peek()
        if first.kind == "word" and first.text in ast.VERDICTS and cursor.peek(1).text not in ast.OPS:
            action = self._action(cursor, allow_elevate=False)
            expr = None
        else:
            expr = self._expr(cursor)
            if not (cursor.at("then") or cursor.at("->")):
                raise cursor.error("expected 'then'")
            cursor.take()
            action = self._action(cursor, allow_elevate=True)
        if cursor.peek().kind != "end":
            raise cursor.error("expected end of rule")
        return ast.Rule(emulation, syscall, expr, action)

    def _simple_rule(self, text: str, emulation: str, syscall: str) -> ast.Rule | None:
        """`NAME OP "VALUE" then VERDICT`, the shape of every rule `-A` learns for a file
        (tar's learned policy has 4,850 of them; the tokens cost 32 µs a rule): the rule
        the tokens give, without them. None for any other text, and for one the tokens
        would fault or warn about: parsed in full, with its message."""
        first = text.find('"')
        second = text.find('"', first + 1) if first >= 0 else -1
        if second < 0:
            return None
        value = text[first + 1:second]
        head, tail = _plain_words(text[:first]), _plain_words(text[second + 1:])
        if (head is None or tail is None or len(head) != 2 or len(tail) != 2 or tail[0] != "then"
                or "\\" in value or "\n" in value or text.endswith((" ", "\t"))):  # (the tokens refuse a blank last)
            return None
        name, op = head
        verdict = tail[1]
        if (op not in ast.OPS or verdict not in ast.VERDICTS or name in ("not", "true") or not name.isascii()
                or not name.isidentifier() or needs_regex(op, value) or "$" in value):
            return None
        if self.argument_names is not None and syscall:
            names = self.argument_names(syscall)
            if names is not None and name not in names:
                return None
        if self.refused_argument is not None and syscall and self.refused_argument(syscall, name):
            return None  # (warned about: a rule on a string the kernel reads again, always refused)
        self._syscall = syscall
        return ast.Rule(emulation, syscall, ast.Symbol(name, None, op, value), _PLAIN_ACTIONS[verdict])

    def parse_expr(self, text: str) -> ast.Expr:
        cursor = _Cursor(text, self._failer(1, text))
        self._syscall = ""  # not for a known call: argument names are not checked
        expr = self._expr(cursor)
        if cursor.peek().kind != "end":
            raise cursor.error("expected end of expression")
        return expr

    def _expr(self, cursor: _Cursor) -> ast.Expr:
        if cursor.at("not"):
            cursor.take()
            return ast.Not(self._expr(cursor))
        left = self._primary(cursor)
        if cursor.at("and") or cursor.at("or"):
            op = cursor.take().text
            return ast.BinOp(op, left, self._expr(cursor))
        return left

    def _primary(self, cursor: _Cursor) -> ast.Expr:
        # NAME OP "VALUE" is most of every policy: read from the tokens directly (a word
        # or a string is never the end token, so the position can step past it)
        tokens = cursor.tokens
        token = tokens[cursor.position]
        if token.text == "(":
            cursor.take()
            expr = self._expr(cursor)
            cursor.expect(")")
            return expr
        if token.text == "true":
            cursor.take()
            return ast.TrueExpr()
        if token.kind != "word" or not (token.text.isascii() and token.text.isidentifier()):  # [A-Za-z_][A-Za-z0-9_]*
            raise cursor.error("expected an argument name, 'true', 'not' or '('")
        cursor.position += 1
        index = None
        if tokens[cursor.position].text == "[":
            cursor.take()
            number = cursor.take()
            if number.kind != "word" or not number.text.isdigit():
                raise cursor.error("expected an argument index", number)
            index = int(number.text)
            if index >= 6:
                raise cursor.fail(f"Bad offset: {index}", number.column)
            cursor.expect("]")
        op = tokens[cursor.position]
        if op.kind != "word" or op.text not in ast.OPS:
            raise cursor.error(f"expected an operator ({', '.join(ast.OPS)})")
        cursor.position += 1
        value = tokens[cursor.position]
        if value.kind != "string":
            raise cursor.error("expected a quoted string")
        cursor.position += 1
        try:
            text = unescape(value.text[1:-1])
        except BadEscape as error:
            raise cursor.fail(str(error), value.column + 1 + error.offset) from None
        self._check_argument(cursor, token)
        if needs_regex(op.text, text) or "$" in text:
            # matching it, or expanding a $VARIABLE, needs re (policy/match.py): loaded now,
            # before the command starts
            import re

            if op.text == "re":
                from .match import compile_ere

                try:
                    compile_ere(text)
                except re.error as error:
                    raise cursor.fail(f"Invalid regular expression: {error}", value.column) from None
        return ast.Symbol(token.text, index, op.text, text)

    def _check_argument(self, cursor: _Cursor, token: Token) -> None:
        """A name no translator produces never matches: an error when no call has it (a
        typo), a warning when other calls have it (the rule is for the wrong call)."""
        if self.argument_names is None or not self._syscall:
            return
        names = self.argument_names(self._syscall)
        if names is None or token.text in names:
            refused = self.refused_argument(self._syscall, token.text) if self.refused_argument else None
            if refused:
                self.warnings.append(cursor.warn(refused, token.column))
            return
        has = f"it has {', '.join(sorted(names))}" if names else "it has no translated arguments"
        if token.text not in (self.argument_names("") or frozenset()):
            raise cursor.fail(f"unknown argument '{token.text}': no system call has it ({self._syscall}: {has})",
                              token.column)
        self.warnings.append(cursor.warn(f"'{self._syscall}' has no argument '{token.text}' ({has}): "
                                         "this condition never matches", token.column))

    def _action(self, cursor: _Cursor, allow_elevate: bool) -> ast.Action:
        token = cursor.peek()
        if token.kind != "word" or token.text not in ast.VERDICTS:
            raise cursor.error("expected permit, deny, ask or kill")
        verdict = cursor.take().text
        if cursor.peek().kind == "end":  # `then permit`: nothing more (most rules)
            return _PLAIN_ACTIONS[verdict]
        errno_name = flag = None
        if cursor.at("["):
            cursor.take()
            word = cursor.take()
            if word.kind != "word":
                raise cursor.error("expected an error code or flag", word)
            cursor.expect("]")
            if verdict == "deny":
                if errnos.lookup(word.text) is None:
                    raise cursor.fail(f"Unknown error code: {word.text}", word.column)
                errno_name = word.text
            elif verdict == "permit":
                if word.text.lower() not in ("inherit", "detach", "mountns"):  # mountns: SECURITY.md
                    raise cursor.fail(f"Unknown flag: {word.text}", word.column)
                flag = word.text.lower()
            else:
                raise cursor.fail(f"'{verdict}' takes no [...]", word.column)
        log = False
        if cursor.at("log"):
            cursor.take()
            log = True
        elevate = None
        if cursor.at("as"):
            as_token = cursor.take()
            if not allow_elevate:
                raise cursor.fail("'as' needs a filter rule", as_token.column)
            elevate = self._elevate(cursor, as_token)
        predicate = None
        if cursor.at(","):
            cursor.take()
            cursor.expect("if")
            kind = cursor.peek()
            if kind.text not in ("user", "group"):
                raise cursor.error("expected 'user' or 'group'")
            cursor.take()
            op = cursor.peek()
            if op.text not in ast.PREDICATE_OPS:
                raise cursor.error("expected =, !=, < or >")
            cursor.take()
            value = cursor.take()
            if value.kind != "word":
                raise cursor.error("expected a name or a number", value)
            if not value.text.isdigit() and self.id_known is not None and not self.id_known(kind.text, value.text):
                # a policy written elsewhere (BSD's wheel): nobody here is that one
                self.warnings.append(cursor.warn(
                    f"no such {kind.text} '{shorten(value.text)}' here: '= {shorten(value.text)}' never holds, "
                    f"'!=' always does", value.column))
            predicate = ast.Predicate(kind.text, op.text, value.text)
        return ast.Action(verdict, errno_name, flag, log, elevate, predicate)

    def _elevate(self, cursor: _Cursor, as_token: Token) -> ast.Elevate:
        user = group = None
        if cursor.peek().kind == "word":
            user = cursor.take().text
        if cursor.at(":"):
            cursor.take()
            token = cursor.take()
            if token.kind != "word":
                raise cursor.error("expected a group", token)
            group = token.text
        if user is None and group is None:
            raise cursor.error("expected a user or ':group'")
        if not self.is_root:
            raise cursor.fail("Privilege elevation not allowed.", as_token.column)
        return ast.Elevate(user, group)


def _occurrences(text: str, word: str) -> list[int]:
    """The start of every occurrence of `word` in `text` (str.find: no re at start-up)."""
    found, index = [], text.find(word)
    while index >= 0:
        found.append(index)
        index = text.find(word, index + len(word))
    return found
