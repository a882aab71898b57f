"""`match` and `re` read patterns as the original did: glibc's fnmatch(3) with
FNM_PATHNAME | FNM_LEADING_DIR and regcomp(3) with REG_EXTENDED (found by the red team
with a differential fuzz against the machine's libc: a backslash before an ordinary
character is that character in POSIX (`\\d` is `d`, `\\n` is `n`), a bracket's
backslash is literal, `[:alpha:]` means a class only inside a bracket, a trailing
backslash or a reversed range makes fnmatch match nothing; what Python alone reads
(`(?i)`, lazy and possessive quantifiers) is refused when the policy is parsed)."""

from __future__ import annotations

import ctypes
import re

import pytest

from systrace.policy import match
from systrace.policy.errors import PolicyError
from systrace.policy.parse import Parser

_LIBC = ctypes.CDLL(None)
FNM_PATHNAME, FNM_LEADING_DIR = 1, 8
REG_EXTENDED, REG_NOSUB = 1, 8


def libc_fnmatch(pattern: str, value: str) -> bool:
    return _LIBC.fnmatch(pattern.encode(), value.encode(), FNM_PATHNAME | FNM_LEADING_DIR) == 0


def libc_ere(pattern: str, value: str) -> bool:
    regex = ctypes.create_string_buffer(256)  # regex_t is 64 bytes here
    assert _LIBC.regcomp(regex, pattern.encode(), REG_EXTENDED | REG_NOSUB) == 0, pattern
    try:
        return _LIBC.regexec(regex, value.encode(), 0, None, 0) == 0
    finally:
        _LIBC.regfree(regex)


ERE_CASES = [
    ("^/tmp/\\d+$", "/tmp/123"), ("^/tmp/\\d+$", "/tmp/ddd"),  # \d is d: before, digits
    ("^/a\\n$", "/an"), ("^/a\\n$", "/a\n"),  # \n is n: before, a newline
    ("x\\Z", "x"), ("x\\Z", "xZ"),  # \Z is Z: before, the end
    ("^/a[\\d]$", "/a\\"), ("^/a[\\d]$", "/a1"),  # a bracket's backslash is literal
    ("^/[:alpha:]$", "/p"), ("^/[:alpha:]$", "/alpha"),  # a bracket of : a l p h
    ("^/[[:digit:]x]$", "/7"), ("^/[[:digit:]x]$", "/x"), ("^/[[:digit:]x]$", "/y"),
    ("a|b$", "xb\n"), ("a|b$", "xb"), ("^(a|b)$", "b\n"), ("secret$", "/secret\n"),
    ("\\<etc\\>", "/etc/x"), ("\\<etc\\>", "/etcx"), ("\\bx", "a x"), ("\\w\\W\\s\\S", "a. b"),
    ("^/[]a]$", "/]"), ("^/[^]a]$", "/]"), ("^/[a-c-]$", "/-"), ("^/[.]$", "/."), ("^/a{,2}$", "/aa"),
    ("^/a{2}$", "/aa"), ("^/(a)\\1$", "/aa"), ("^/\\.$", "/x"), ("^/[[.-.]]$", "/-"),
]
FNMATCH_CASES = [
    ("/tmp/x\\", "/tmp/x\\"), ("*\\", "a\\"),  # a trailing backslash matches nothing
    ("/[z-a]", "/q"), ("/[b-a]*", "/a"),  # a reversed range: nothing (before: a traceback)
    ("/[\\-b]", "/a"), ("/[\\-b]", "/-"), ("/[a\\-c]", "/b"),  # an escaped - is no range
    ("/etc/[s/]hadow", "/etc/shadow"), ("a[/x]", "a/"), ("[/]etc", "/etc"), ("/d/*", "/d/a\nb/c"),
    ("/secret", "/secret/a\nb"), ("/[!a]", "/\n"), ("/[[:alpha:]]", "/q"),
]


@pytest.mark.parametrize(("pattern", "value"), ERE_CASES)
def test_an_ere_matches_as_regcomp_does(pattern: str, value: str) -> None:
    assert (match.compile_ere(pattern).search(value) is not None) == libc_ere(pattern, value)


@pytest.mark.parametrize(("pattern", "value"), FNMATCH_CASES)
def test_a_glob_matches_as_fnmatch_does(pattern: str, value: str) -> None:
    assert (match.compile_fnmatch(pattern).match(value) is not None) == libc_fnmatch(pattern, value)


@pytest.mark.parametrize("pattern", ["(?i)etc", "a*?", "a+?", "a??", "a*+", "a{2}?", "a\\", "[[:nope:]]", "[z-a]",
                                     "[abc"])
def test_what_posix_reads_otherwise_is_refused_when_parsed(pattern: str) -> None:
    with pytest.raises(re.error):
        match.compile_ere(pattern)
    escaped = pattern.replace("\\", "\\\\")
    with pytest.raises(PolicyError, match="Invalid regular expression"):
        Parser().parse_expr(f'filename re "{escaped}"')


def test_an_anchor_escape_is_no_literal_start_for_the_rule_index() -> None:
    """`\\<` is a word start, not a `<`: a rule indexed by its literal start ("/<etc")
    would never be tried on "/etc/shadow"."""
    from systrace.policy.compiled import _literal_start

    assert libc_ere("^/\\<etc", "/etc/shadow")
    for pattern in ("^/\\<etc", "^/\\`etc", "^/\\'", "^/\\>"):
        assert _literal_start("re", pattern) == "/"
