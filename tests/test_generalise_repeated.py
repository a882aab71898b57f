"""Learning repeated with other random names adds nothing (decide/generalise.py): what a
run made up is generalised by what the run did with it (O_EXCL, mkdir, rename, unlink)
and by the generator's alphabet, never by the letters one run happened to draw. Driven
by generated names (hypothesis), then by real runs of Python's tempfile with the names
that used to be learned by their luck."""

from __future__ import annotations

import string
from pathlib import Path
from types import SimpleNamespace

from conftest import Runner
from hypothesis import given, settings
from hypothesis import strategies as st

from systrace.decide.modes import Learn
from systrace.policy import ast
from systrace.policy.match import compile_ere, evaluate
from systrace.policy.parse import Parser
from systrace.policy.store import Store

PYTHON = string.ascii_lowercase + string.digits + "_"  # tempfile._RandomNameSequence.characters
GLIBC = string.ascii_letters + string.digits  # __gen_tempname's letters
python_names = st.text(PYTHON, min_size=8, max_size=8)


def glibc(size: int):
    return st.text(GLIBC, min_size=size, max_size=size)


EXCL = ("oflags", "rwcx")
CREATE = ("oflags", "woct")


def tempfile_dir(probe: str, name: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """tempfile.TemporaryDirectory(): the probe of /tmp, mkdtemp, a file in it, rmtree."""
    d = f"/tmp/tmp{name}"
    return [("openat", [("filename", f"/tmp/{probe}"), EXCL]), ("unlink", [("filename", f"/tmp/{probe}")]),
            ("mkdir", [("filename", d)]), ("openat", [("filename", f"{d}/x"), CREATE]),
            ("unlinkat", [("filename", f"{d}/x")]), ("rmdir", [("filename", d)])]


def named_temporary(name: str) -> list[tuple[str, list[tuple[str, str]]]]:
    return [("openat", [("filename", f"/w/tmp{name}"), EXCL]), ("unlink", [("filename", f"/w/tmp{name}")])]


def mkstemp_renamed(stem: str, random: str, target: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """sed -i (`sedXXXXXX`), ar (`stXXXXXX`): mkstemp next to the file, renamed onto it."""
    name = f"/w/{stem}{random}"
    return [("openat", [("filename", name), EXCL]), ("rename", [("filename", name), ("filename", f"/w/{target}")])]


def gcc_temp(random: str) -> list[tuple[str, list[tuple[str, str]]]]:
    name = f"/tmp/cc{random}.s"
    return [("openat", [("filename", name), EXCL]), ("execve", [("filename", "/usr/bin/as"), ("argv", f"as -o x.o {name}")]),
            ("unlink", [("filename", name)])]


def mktemp_dir(random: str) -> list[tuple[str, list[tuple[str, str]]]]:
    d = f"/tmp/tmp.{random}"
    return [("mkdir", [("filename", d)]), ("openat", [("filename", f"{d}/f"), CREATE]),
            ("unlink", [("filename", f"{d}/f")]), ("rmdir", [("filename", d)])]


def _call(name: str, args: list[tuple[str, str]], stored):
    alias = None if name == "execve" else "fswrite"
    translation = SimpleNamespace(alias=alias, alias_list=[a for a in args if a[0] == "filename"])
    return SimpleNamespace(name=name, tgid=4242, tid=4242, ppid=4000, translated=tuple(args), translation=translation,
                           policy=stored, ask=False, no_learn=False)


def _permitted(rules, call) -> bool:
    """Would a rule of the policy permit the call (as the policy decider, before learning)?"""
    syscall = call.translation.alias or call.name
    args = call.translation.alias_list if call.translation.alias else list(call.translated)
    by_name: dict[str, list[str]] = {}
    for name, value in args:
        by_name.setdefault(name, []).append(value)
    return any(rule.syscall == syscall and rule.expr is not None and evaluate(rule.expr, by_name) for rule in rules)


def learn_twice(first, second) -> tuple[list[str], list[str]]:
    """The rules a first -A learns, and those a second one (other names) adds."""
    store = Store(Parser(), None, [])  # never written
    stored = store.create("/usr/bin/tool")
    learned = []
    for calls in (first, second):
        learn = Learn(store)
        rules = list(stored.policy.rules)
        for name, args in calls:
            call = _call(name, args, stored)
            if _permitted(rules, call):
                learn.observe(call)  # permitted by a rule: only the observer sees it
            else:
                learn.decide(call)
        learned.append([text.split(": ", 1)[1] for text in learn.learned])
    return learned[0], learned[1]


def _patterns(rules: list[str]) -> list[str]:
    """The `re` patterns of these rules' texts."""
    found: list[str] = []

    def walk(expr) -> None:
        if isinstance(expr, ast.Symbol) and expr.op == "re":
            found.append(expr.value)
        for part in (getattr(expr, "left", None), getattr(expr, "right", None), getattr(expr, "expr", None)):
            if part is not None:
                walk(part)

    for text in rules:
        walk(Parser().parse_expr(text.split(": ", 1)[1].rsplit(" then ", 1)[0]))
    return found


def _one_component_only(pattern: str, value: str) -> None:
    """Matches the value, never below it, above it in another directory, or a longer name."""
    regex = compile_ere(pattern)
    assert regex.search(value), (pattern, value)
    head, _, last = value.rpartition("/")
    for wider in (value + "/y", f"{head}/sub/{last}", f"{head}/{last}Z", f"{head}/{last[:-1]}", f"{head}/{last}/"):
        assert not regex.search(wider), (pattern, wider)


SETTINGS = settings(max_examples=300, deadline=None)


@SETTINGS
@given(python_names, python_names, python_names, python_names)
def test_tempfile_directory_is_learned_once_whatever_its_names(probe1, name1, probe2, name2) -> None:
    first, second = learn_twice(tempfile_dir(probe1, name1), tempfile_dir(probe2, name2))
    assert second == []
    assert first  # the run was learned, generalised
    values = {f"/tmp/{probe1}", f"/tmp/tmp{name1}", f"/tmp/tmp{name1}/x"}
    for pattern in _patterns(first):
        assert any(compile_ere(pattern).search(value) for value in values)
        for value in values:
            if compile_ere(pattern).search(value):
                _one_component_only(pattern, value)
    # the probe's rule names Python's alphabet (and at most mkstemp's reading of a 2-letter stem)
    probe_rules = [p for p in _patterns(first) if compile_ere(p).search(f"/tmp/{probe1}")]
    assert probe_rules and all("[a-z0-9_]{8}" in p for p in probe_rules)


@SETTINGS
@given(python_names, python_names)
def test_named_temporary_file(name1, name2) -> None:
    first, second = learn_twice(named_temporary(name1), named_temporary(name2))
    assert second == []
    assert _patterns(first) == ["^/w/tmp[a-z0-9_]{8}$"]


@SETTINGS
@given(st.sampled_from([("sed", "words"), ("st", "lib.a"), ("zi", "a.zip")]), glibc(6), glibc(6))
def test_mkstemp_next_to_the_file(stem_target, random1, random2) -> None:
    stem, target = stem_target
    first, second = learn_twice(mkstemp_renamed(stem, random1, target), mkstemp_renamed(stem, random2, target))
    assert second == []
    for pattern in _patterns(first):
        _one_component_only(pattern, f"/w/{stem}{random1}")
        assert not compile_ere(pattern).search(f"/w/{target}")  # the real file stays literal


@SETTINGS
@given(glibc(6), glibc(6))
def test_gcc_temporary_in_a_path_and_in_argv(random1, random2) -> None:
    first, second = learn_twice(gcc_temp(random1), gcc_temp(random2))
    assert second == []


@SETTINGS
@given(glibc(10), glibc(10))
def test_mktemp_directory(random1, random2) -> None:
    first, second = learn_twice(mktemp_dir(random1), mktemp_dir(random2))
    assert second == []
    for pattern in _patterns(first):
        assert "[A-Za-z0-9]{10}" in pattern


# Python's tempfile with the names it draws replaced by ours (each run its own): the first
# names are the shapes the old generalisation kept parts of (`abcdef_1` became
# `[A-Za-z0-9]{6}_1`), the second ones another draw.
FORCED = """import os, sys, tempfile
names = iter(sys.argv[1].split(","))
class Names:
    characters = "x"
    def __iter__(self): return self
    def __next__(self): return next(names)
tempfile._RandomNameSequence = Names  # the probe of /tmp, then mkdtemp
with tempfile.TemporaryDirectory() as d:
    open(os.path.join(d, 'x'), 'w').write('t')
    print(os.listdir(d))
"""


def test_tempfile_names_of_any_shape_replay(root_runner: Runner, tmp_path: Path) -> None:
    """Real runs: learned with `abcdef_1` and `ab_12345`, a second -A with other names adds
    no rule, and -a runs with a third draw as natively."""
    policies = tmp_path / "policies"
    python = "/usr/bin/python3"

    def run(mode: str, names: str):
        if not mode:
            return root_runner.native(python, "-c", FORCED, names)
        return root_runner(mode, "-d", str(policies), python, "-c", FORCED, names)

    native = run("", "k3j9xab_,q0w9e8r7")
    assert native.returncode == 0 and native.stdout == b"['x']\n"
    assert run("-A", "abcdef_1,ab_12345").stdout == native.stdout
    policy = policies / "usr_bin_python3_11"
    before = policy.read_text()
    assert run("-A", "k3j9xab_,q0w9e8r7").stdout == native.stdout
    assert policy.read_text() == before  # nothing added
    enforced = run("-a", "zz_zz_zz,mnbvcxz1")
    assert (enforced.returncode, enforced.stdout, enforced.stderr) == (0, native.stdout, b"")
    assert "^/tmp/[a-z0-9_]{8}$" in before and "^/tmp/tmp[a-z0-9_]{8}$" in before, before
