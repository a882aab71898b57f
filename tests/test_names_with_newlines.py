"""A file name may hold a newline: no rule may be stepped past because of one.

`match` is fnmatch(3) with FNM_LEADING_DIR, whose `*` and leading-directory part match any
character; `re` is a POSIX ERE (regcomp without REG_NEWLINE), whose `.` matches a newline
and whose `$` matches only at the end. Python's `.` and `$` read them otherwise, so a deny
rule `match "/dir/secret"` missed "/dir/secret/a\\nb" and `re "^/dir/.*/key$"` missed
"/dir/a\\nb/key": the next, broader permit let the file be read."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run, systrace

from systrace.policy import match

SECRET = b"the secret\n"


@pytest.mark.parametrize(("pattern", "value", "holds"), [
    ("/dir/secret", "/dir/secret/a\nb", True),
    ("/dir/se*t", "/dir/secret/a\nb", True),
    ("/dir/*", "/dir/a\nb", True),
    ("/dir/*", "/dir/a/b\nc", True),
    ("*", "a\n/b", True),
    ("/dir/secret", "/dir/secretx\n", False),
    ("/dir/?", "/dir/\n", True),
])
def test_a_glob_reads_a_newline_as_any_other_character(pattern: str, value: str, holds: bool) -> None:
    assert (match.compile_fnmatch(pattern).match(value) is not None) == holds
    assert (match._compile_fnmatch(pattern).match(value) is not None) == holds


@pytest.mark.parametrize(("pattern", "value", "holds"), [
    ("^/dir/.*/key$", "/dir/a\nb/key", True),
    ("^/dir/key$", "/dir/key\n", False),  # Python's `$` matched before the final newline
    ("^/dir/[$]key$", "/dir/$key", True),  # a `$` in a bracket is a character
    ("^/dir/\\$key$", "/dir/$key", True),
    ("^/dir/[]$]$", "/dir/]", True),
    ("a.b", "a\nb", True),
])
def test_an_ere_reads_as_posix_does(pattern: str, value: str, holds: bool) -> None:
    assert (match.compile_ere(pattern).search(value) is not None) == holds


@pytest.mark.parametrize("deny", ['filename match "{dir}/secret"', 'filename re "^{dir}/.*/key$"'])
def test_a_deny_rule_holds_for_a_name_with_a_newline(tmp_path: Path, deny: str) -> None:
    top = tmp_path / "dir"
    (top / "secret").mkdir(parents=True)
    (top / "a\nb").mkdir()
    victims = [top / "secret" / "a\nb", top / "a\nb" / "key"]
    for victim in victims:
        victim.write_bytes(SECRET)
    harmless = top / "harmless"
    harmless.write_bytes(b"harmless\n")
    policies = tmp_path / "policies"
    policies.mkdir()
    assert systrace("-d", str(policies), "-A", "/usr/bin/cat", str(harmless)).returncode == 0
    [policy] = [path for path in policies.iterdir() if path.read_text().startswith("Policy: /usr/bin/cat,")]
    lines = policy.read_text().splitlines()
    rules = [f"\tnative-fsread: {deny.format(dir=top)} then deny[eacces]",
             f'\tnative-fsread: filename re "^{top}/" then permit']
    policy.write_text("\n".join(lines[:1] + rules + lines[1:]) + "\n")
    target = victims[0] if "match" in deny else victims[1]
    native = run(["/usr/bin/cat", str(target)])
    assert native.stdout == SECRET  # natively the file reads: 1/1
    through = 0
    for mode in ("-a",):
        result = systrace("-d", str(policies), mode, "/usr/bin/cat", str(target))
        through += SECRET in result.stdout
        assert result.returncode != 0
        assert b"deny[eacces]" in result.stderr or b"Permission denied" in result.stderr
    assert through == 0
    # the rule after it still permits what it names
    assert systrace("-d", str(policies), "-a", "/usr/bin/cat", str(harmless)).stdout == b"harmless\n"
