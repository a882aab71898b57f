"""Start-up (issue 16): what a plain run reads with str methods instead of `re` (which
brings enum, functools and collections) reads exactly as the regular expressions it
replaces. Pure: each is compared with the pattern on generated text."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from systrace.kernel.proc_names import FD_DIR, FD_LINK, PID
from systrace.policy import match
from systrace.policy.errors import printable
from systrace.policy.escaping import escape
from systrace.policy.parse import TOKEN_PATTERN, _quoted_start, _scan
from systrace.policy.store import _not_policy_name, file_name


def texts(*pieces: str) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(pieces), max_size=10).map("".join)


RULE_PIECES = (" ", "\t", "\n", "\r", '"', "\\", "-", ">", "->", "!", "!=", "=", "[", "]", "(", ")", ",", ":", "a",
               "Z9", "$x", "/p.*", "é", "then", "permit", "\x00")


@settings(max_examples=3000, deadline=None)
@given(texts(*RULE_PIECES))
def test_the_tokenizer_reads_as_the_token_pattern(text: str) -> None:
    expected: list[tuple[str, str, int]] = []
    stopped = None
    for found in re.finditer(TOKEN_PATTERN, text):
        kind = found.lastgroup or "other"
        if kind in ("badstring", "other"):
            stopped = (kind, found.start(kind))
            break
        expected.append((kind, found[kind], found.start(kind)))
    assert _scan(text) == (expected, stopped)


@settings(max_examples=2000, deadline=None)
@given(texts(*RULE_PIECES))
def test_a_quoted_start_reads_as_its_pattern(text: str) -> None:
    found = re.match(r'\s*"((?:[^"\\\n]|\\.)*)"', text)
    assert _quoted_start(text) == (None if found is None else (found.start(1) - 1, found.end()))


PROC_PIECES = ("/proc/", "/", "1", "23", "0", "task", "fd", "\n", "x", "", "\u0663", "/fd", "task/", "fd/")


@settings(max_examples=3000, deadline=None)
@given(texts(*PROC_PIECES), st.booleans())
def test_proc_names_read_as_their_patterns(text: str, under_proc: bool) -> None:
    text = "/proc/" + text if under_proc else text
    raw = text.encode()
    link = re.match(rb"^/proc/([0-9]+)/(?:task/[0-9]+/)?fd/([0-9]+)$", raw)
    mine = FD_LINK.match(raw)
    assert (link is None) == (mine is None)
    if link is not None and mine is not None:
        assert (mine.group(1), mine.group(2)) == (link.group(1), link.group(2))
    assert (re.match(rb"^/proc/[0-9]+/(?:task/[0-9]+/)?fd$", raw) is None) == (FD_DIR.match(raw) is None)
    for part in text.split("/"):
        assert (re.fullmatch(r"[1-9][0-9]*", part) is None) == (PID.fullmatch(part) is None)


CHARACTERS = st.characters(min_codepoint=0, max_codepoint=0xDD10)


@settings(max_examples=3000, deadline=None)
@given(st.text(CHARACTERS, max_size=8))
def test_escaping_reads_as_its_patterns(text: str) -> None:
    def as_byte(code: int) -> str:
        return f"\\x{code - 0xDC00 if code >= 0xDC80 else code:02x}"

    unsafe = re.sub(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\udc80-\udcff]", lambda m: as_byte(ord(m.group())), text)
    assert printable(text) == unsafe
    named = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r"}
    special = re.sub(r'[\\"\x00-\x1f\x7f\udc80-\udcff]', lambda m: named.get(m.group()) or as_byte(ord(m.group())), text)
    assert escape(text) == special


@settings(max_examples=3000, deadline=None)
@given(texts("~", ".", "swp", "bak", "dpkg-", "rpm", "unsaved", "-", "a", "Z", "é", "_", "#", "\n", "old", "x1",
             "\u0663", " "))
def test_policy_file_names_read_as_their_patterns(name: str) -> None:
    left = r"(~|\.(swp|swo|swx|bak|orig|rej|tmp|old|save|dpkg-[a-z]+|rpm[a-z]+|unsaved(-\w+)?))$|^#.*#$"
    assert _not_policy_name(name) == (re.search(left, name) is not None)
    assert file_name(name) == re.sub(r"[^A-Za-z0-9]", "_", name).lstrip("_")


@settings(max_examples=3000, deadline=None)
@given(texts("a", "/", "b", "*", "?", "[", "]", "\\", "é", "\n", ".", "ab/"), texts("a", "/", "b", "é", "\n", ".", "*"))
def test_plain_globs_match_as_their_expressions(pattern: str, value: str) -> None:
    plain = match.compile_fnmatch(pattern)
    expression = match._compile_fnmatch(pattern)
    assert (plain.match(value) is not None) == (expression.match(value) is not None)
    assert match.needs_regex("match", pattern) == (not isinstance(plain, (match.Literal, match.Anything)))


@settings(max_examples=3000, deadline=None)
@given(texts("^", "a", "b", "<", " ", ":", "$", ".", "\n", "[[:digit:]]", "1"), texts("a", "b", "<", " ", ":", "\n", "1"))
def test_plain_eres_search_as_their_expressions(pattern: str, value: str) -> None:
    plain = match.compile_ere(pattern)
    assert (plain.search(value) is not None) == (match._compile_ere(pattern).search(value) is not None)
    assert match.needs_regex("re", pattern) == (not isinstance(plain, (match.Prefix, match.Contains)))
