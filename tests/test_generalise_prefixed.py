"""A temporary name whose prefix and suffix the program chose (issue 11 item 3): Python's
mkstemp(prefix="foo", suffix=".x") is `foo` + 8 of [a-z0-9_] + `.x`, glibc's mkstemps and
`mktemp -p DIR fooXXXXXX` are `foo` + 6 of [A-Za-z0-9] + suffix. Generalised by what made
it (an O_EXCL open, mkdir, later unlinked or renamed): the prefix and suffix stay literal,
exactly the drawn part varies, within one path component. A second -A adds nothing; a
name with another prefix, in another directory or deeper is not covered."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
from conftest import Runner
from hypothesis import assume, given
from hypothesis import strategies as st
from test_generalise_repeated import EXCL, SETTINGS, _one_component_only, _patterns, learn_twice

from systrace.policy.match import compile_ere

PYTHON = string.ascii_lowercase + string.digits + "_"
GLIBC = string.ascii_letters + string.digits
# what programs choose: a word, maybe a digit and a separator (`foo`, `Foo1`, `report-`, `build_`);
# a prefix that itself looks drawn (`x9Qz2k`) is generalised as one
prefixes = st.from_regex(r"\A(?:[a-z]{1,8}|[A-Z][a-z]{1,6})[0-9]?[_.-]?\Z")
# a suffix begins with a character neither generator draws (`.x`, `-log`), or is empty
suffixes = st.one_of(st.just(""), st.builds(lambda sep, ext: sep + ext, st.sampled_from(".-"),
                                            st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=4)))


def made_by_open(name: str, then: str) -> list:
    """mkstemp: an O_EXCL open, then unlinked (NamedTemporaryFile) or renamed (sed -i)."""
    last = ("unlink", [("filename", name)]) if then == "unlink" else ("rename", [("filename", name), ("filename", "/w/out")])
    return [("openat", [("filename", name), EXCL]), last]


def made_by_mkdir(name: str) -> list:
    return [("mkdir", [("filename", name)]), ("rmdir", [("filename", name)])]


def _another_prefix(name: str, prefix: str) -> str:
    head, _, last = name.rpartition("/")
    return f"{head}/{'Q' if prefix[0] != 'Q' else 'R'}{last[1:]}"


def _check(first: list[str], second: list[str], name: str, prefix: str) -> None:
    assert second == [], (first, second)
    patterns = [p for p in _patterns(first) if compile_ere(p).search(name)]
    assert patterns, first  # generalised, not an exact rule
    for pattern in patterns:
        _one_component_only(pattern, name)
        assert not compile_ere(pattern).search(_another_prefix(name, prefix)), pattern
        assert not compile_ere(pattern).search(name.replace("/w/", "/v/")), pattern


@SETTINGS
@given(prefixes, suffixes, st.text(PYTHON, min_size=8, max_size=8), st.text(PYTHON, min_size=8, max_size=8),
       st.sampled_from(["unlink", "rename"]))
def test_python_mkstemp_with_a_prefix(prefix, suffix, draw1, draw2, then) -> None:
    first, second = learn_twice(made_by_open(f"/w/{prefix}{draw1}{suffix}", then),
                                made_by_open(f"/w/{prefix}{draw2}{suffix}", then))
    _check(first, second, f"/w/{prefix}{draw1}{suffix}", prefix)


@SETTINGS
@given(prefixes, suffixes, st.text(GLIBC, min_size=6, max_size=6), st.text(GLIBC, min_size=6, max_size=6),
       st.sampled_from(["unlink", "rename"]))
def test_glibc_mkstemps_with_a_prefix(prefix, suffix, draw1, draw2, then) -> None:
    # (a whole name of 8 of [a-z0-9_] is Python's probe or a 2-letter stem's mkstemp, as
    # test_generalise.py says: a stem `a0` is not one of those)
    assume(not (len(prefix) == 2 and not suffix and not prefix.isalpha()))
    first, second = learn_twice(made_by_open(f"/w/{prefix}{draw1}{suffix}", then),
                                made_by_open(f"/w/{prefix}{draw2}{suffix}", then))
    _check(first, second, f"/w/{prefix}{draw1}{suffix}", prefix)


@SETTINGS
@given(prefixes, suffixes, st.text(PYTHON, min_size=8, max_size=8), st.text(PYTHON, min_size=8, max_size=8))
def test_python_mkdtemp_with_a_prefix(prefix, suffix, draw1, draw2) -> None:
    """A directory must show it was drawn (mkdir makes plain names too): a digit in
    Python's 8 (92 draws in 100; the others are learned as before, by their shape)."""
    assume(all(any(c in string.digits for c in draw) for draw in (draw1, draw2)))
    first, second = learn_twice(made_by_mkdir(f"/w/{prefix}{draw1}{suffix}"), made_by_mkdir(f"/w/{prefix}{draw2}{suffix}"))
    _check(first, second, f"/w/{prefix}{draw1}{suffix}", prefix)


def test_plain_names_made_by_mkdir_stay_plain() -> None:
    first, _ = learn_twice([("mkdir", [("filename", name)]) for name in ("/w/.git/branches", "/w/objects", "/w/build_output",
                                                                        "/w/my_project")], [])
    assert _patterns(first) == [], first


MKSTEMP = "import sys, os, tempfile; fd, name = tempfile.mkstemp(prefix=sys.argv[2], suffix='.x', dir=sys.argv[1]); " \
          "os.write(fd, b'x'); os.close(fd); os.unlink(name); print('made')"
MKTEMP = 'f=$(mktemp -p "$1" "$2"XXXXXX --suffix=.log) && echo x > "$f" && rm "$f" && echo made'


def _policy(policies: Path) -> str:
    return "".join(path.read_text() for path in sorted(policies.iterdir()))


@pytest.mark.parametrize("tool", ["python-mkstemp", "mktemp"])
def test_a_prefixed_temporary_name_replays_and_covers_nothing_else(runner: Runner, shared_dir: Path, tool: str) -> None:
    """Learned twice from real runs (the second adds nothing), enforced; then the same
    program with another prefix, in another directory, is denied."""
    work = shared_dir / f"prefixed-{tool}-{runner.uid}"
    for directory in (work / "tmp", work / "other"):
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o777)
    policies = runner.policy_dir(work / "policies")
    argv = ["python3", "-c", MKSTEMP] if tool == "python-mkstemp" else ["sh", "-c", MKTEMP, "sh"]
    learned = runner("-d", str(policies), "-A", *argv, str(work / "tmp"), "rep")
    assert learned.stdout == b"made\n", learned
    text = _policy(policies)
    # the prefix and suffix stay: `rep` (or `r` before Python's and glibc's readings of `ep...`), `.x`
    assert re.search(r'filename re "\^[^"]*/tmp/r(ep)?[(\[][^"]*\\\\\.(x|log)\$"', text), text
    again = runner("-d", str(policies), "-A", *argv, str(work / "tmp"), "rep")
    assert again.stdout == b"made\n" and _policy(policies) == text, (again, text)  # 0 rules added
    enforced = runner("-d", str(policies), "-a", "-e", *argv, str(work / "tmp"), "rep")
    assert enforced.stdout == b"made\n" and b"deny" not in enforced.stderr, enforced
    for place, prefix in ((work / "tmp", "abc"), (work / "other", "rep")):
        attack = runner("-d", str(policies), "-a", "-e", *argv, str(place), prefix)
        assert attack.stdout != b"made\n" and b"deny" in attack.stderr, attack
