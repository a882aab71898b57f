"""Generalisation of learned values (decide/generalise.py): what a run made up becomes a
one-component pattern, everything else stays literal; descriptor numbers and `$` never
leak into a rule. Pure logic first, then real runs."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import Runner

from systrace.decide.generalise import EXCL, MADE, MadeUp, generalised, literal
from systrace.decide.modes import exact_expr
from systrace.policy.match import compile_ere, evaluate, expander
from systrace.policy.parse import Parser
from systrace.policy.printer import expr_text

NOW = 1796114472


def made_up(**created: int) -> MadeUp:
    result = MadeUp(now=NOW)
    result.pids.update({29580, 30963, 27178})
    result.created.update(created)
    return result


# value, another value the same program makes up next time
MADE_UP = [
    ("/w/sedNg9Pwi", "/w/sedQ1z8Ab"),  # sed -i
    ("/w/f.txt.oBJVyOL", "/w/f.txt.o7hK2mQ"),  # patch
    ("/w/stTcaw9w", "/w/st0Qx3Zk"),  # ar
    ("/w/XXQepLUz", "/w/XXa8Bc9D"),  # perl -pi (mkstemp replaced 6 of its 8 X)
    ("/tmp/cc2vSrz7.s", "/tmp/ccA1b2C3.s"),  # gcc
    ("collect2 -plugin-opt=-fresolution=/tmp/cc2vSrz7.res -o a.out", "collect2 -plugin-opt=-fresolution=/tmp/ccZ9y8X7.res -o a.out"),
    ("/w/__pycache__/mod.cpython-311.pyc.139928116257424", "/w/__pycache__/mod.cpython-311.pyc.140636729845728"),  # py_compile
    ("/w/.git/objects/42/tmp_obj_TFUPtN", "/w/.git/objects/42/tmp_obj_a1B2c3"),  # git
    ("/h/.gnupg/.#lk0x00005609a4d94610.vm.27178", "/h/.gnupg/.#lk0x000055d1c2e0a3f0.vm.30963"),  # gpg lock
    ("git index-pack --keep=fetch-pack 29580 on host", "git index-pack --keep=fetch-pack 27178 on host"),
    ("ps -p 30963", "ps -p 29580"),
    ("cat /proc/29580/environ", "cat /proc/30963/environ"),  # argv: cat's own policy decides the read
    ("tar --mtime @1796114472 -cf x.tar", "tar --mtime @1796114999 -cf x.tar"),
    ("/tmp/tmp.jD9LLZX8SC/f", "/tmp/tmp.a8Hq2LmZ0x/f"),  # mktemp -d
    # content hashes: git's loose objects (its fan-out directory too), a digest in argv, a cache key
    ("/w/.git/objects/87/d047ba431894c111ed2ee9516fab0c1d2e3f4a", "/w/.git/objects/4b/825dc642cb6eb9a060e54bf8d69288fbee4904"),
    ("/w/.git/objects/87", "/w/.git/objects/a3"),
    ("git cat-file -p 87d047ba431894c111ed2ee9516fab0c1d2e3f4a", "git cat-file -p 4b825dc642cb6eb9a060e54bf8d69288fbee4904"),
    ("/w/cache/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
     "/w/cache/60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"),
]
PLAIN = ["/w/notes2024", "/w/config1", "/usr/bin/sha256sum", "/w/Makefile", "/w/Dockerfile", "/w/CMakeLists.txt",
         "/usr/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/python3.11/__pycache__/abc.cpython-311.pyc", "/w/libQt5Core.so.5",
         "/w/.git/objects", "ls -l /usr/share/doc", "sleep 2024", "/etc/ld.so.cache",
         "/proc/30963/stat",  # a pattern there would name every process
         "/w/ab/cd", "/w/objects/readme", "/w/deadbeef", "/w/abcdefabcdefabcdefabcdefabcdefab"]  # (no digest: no digit)


@pytest.mark.parametrize(("value", "other"), MADE_UP)
def test_made_up_names_become_one_component_patterns(value: str, other: str) -> None:
    pattern = generalised(value, made_up())
    assert pattern is not None and pattern.startswith("^") and pattern.endswith("$")
    regex = compile_ere(pattern)
    assert regex.search(value) and regex.search(other)
    # never a subtree, never another directory, never a longer name
    for wider in (value + "/x", value.replace("/", "/sub/", 1) if value.startswith("/") else "x" + value, value + "Z"):
        assert not regex.search(wider), wider
    # the rule prints and parses back in the original grammar
    expr = exact_expr([("filename", value)], made_up())
    assert Parser().parse_expr(expr_text(expr)) == expr


@pytest.mark.parametrize("value", PLAIN)
def test_plain_names_are_not_made_up(value: str) -> None:
    assert generalised(value, made_up()) is None
    assert expr_text(exact_expr([("filename", value)], made_up())) == f'filename eq "{value}"'


def test_a_name_the_run_created_is_generalised_even_when_it_looks_plain() -> None:
    """mkstemp's `ccabcdef.s` (all lower case, about 1 name in 200) is as made up as
    `ccQwlzjf.s`: its creation with O_CREAT|O_EXCL says so. mkdir alone does not make
    `objects` random."""
    run = MadeUp(now=NOW)
    run.note("openat", [("filename", "/tmp/ccabcdef.s"), ("oflags", "rwcx"), ("mode", "0600")])
    run.note("mkdir", [("filename", "/w/.git/objects"), ("mode", "0755")])
    run.note("mkdir", [("filename", "/tmp/tmp.abcdefghij"), ("mode", "0700")])
    run.note("openat", [("filename", "/w/reused.s"), ("oflags", "rwc")])  # no O_EXCL: not created
    run.note("renameat2", [("filename", "/w/a"), ("filename", "/w/b")])
    run.note("execve", [("filename", "/bin/true"), ("argv", "true")], pids=(4242, 7))
    run.note("unlinkat", [("filename", "/w/gone")])
    run.note("openat", [("filename", "/w/.git/objects/42/tmp_obj_arfa84"), ("oflags", "rwcx"), ("mode", "0444")])
    # (git's mkstemp, or Python's mkstemp(prefix="tmp_ob") drawing `j_arfa84`: either)
    assert generalised("/w/.git/objects/42/tmp_obj_arfa84", run) == \
        r"^/w/\.git/objects/[0-9a-f]{2}/tmp_ob(j_[A-Za-z0-9]{6}|[a-z0-9_]{8})$"  # (42: the object's fan-out)
    run.note("openat", [("filename", "/tmp/ccabcdef.cdtor.c"), ("oflags", "rwcx"), ("mode", "0600")])
    assert generalised("/tmp/ccabcdef.cdtor.c", run) == r"^/tmp/cc[A-Za-z0-9]{6}\.cdtor\.c$"
    run.note("openat", [("filename", "/w/stabc123"), ("oflags", "rwcx"), ("mode", "0600")])  # ar, no capital drawn
    pattern = generalised("/w/stabc123", run)
    assert pattern == "^/w/(st[A-Za-z0-9]{6}|[a-z0-9_]{8})$"
    assert all(compile_ere(pattern).search(name) for name in ("/w/stAbC12x", "/w/stabc123", "/w/k3j_9xab"))
    assert not compile_ere(pattern).search("/w/st/abc123")
    del run.created["tmp_obj_arfa84"], run.created["ccabcdef.cdtor.c"], run.created["stabc123"]
    assert run.created == {"ccabcdef.s": EXCL, "objects": MADE, "tmp.abcdefghij": MADE, "a": EXCL, "b": MADE, "gone": EXCL}
    assert run.pids == {4242}  # too small a number is not taken for a pid
    assert generalised("/tmp/ccabcdef.s", run) == r"^/tmp/cc[A-Za-z0-9]{6}\.s$"
    assert generalised("as -o x.o /tmp/ccabcdef.s", run) == r"^as -o x\.o /tmp/cc[A-Za-z0-9]{6}\.s$"
    assert generalised("/tmp/tmp.abcdefghij/x", run) == r"^/tmp/tmp\.[A-Za-z0-9]{10}/x$"
    assert generalised("/w/.git/objects", run) is None
    assert generalised("/tmp/ccabcdef.s", MadeUp(now=NOW)) is None  # alone it looks plain


def test_descriptor_numbers_are_never_learned() -> None:
    assert expr_text(exact_expr([("fd", "13"), ("cmd", "F_SETFD")])) == 'cmd eq "F_SETFD"'
    alone = exact_expr([("fd", "3")])
    assert expr_text(alone) == 'fd re "^-?[0-9]+$"'
    assert evaluate(alone, {"fd": ["7"]})
    assert not evaluate(alone, {"filename": ["/etc/shadow"]})  # a call naming a path is not covered


def test_learned_values_match_literally() -> None:
    argv = 'sh -c echo "$HOME" ${USER} \\$HOME'
    expr = exact_expr([("argv", argv)])
    parsed = Parser().parse_expr(expr_text(expr))
    expand = expander({"HOME": "/root", "USER": "root"})
    assert evaluate(parsed, {"argv": [argv]}, expand)
    assert not evaluate(parsed, {"argv": ['sh -c echo "/root" root \\/root']}, expand)
    assert literal("price: 5$") == "price: 5$"
    # hand-written rules keep their variables
    assert evaluate(Parser().parse_expr('filename eq "$HOME/x"'), {"filename": ["/root/x"]}, expand)
    # a made-up name next to a `$` stays literal there too
    pattern = generalised("/w/$HOME/sedNg9Pwi", made_up())
    assert re.search(compile_ere(expand(pattern)), "/w/$HOME/sedAAAAA1")


def test_git_commit_replays_with_new_objects(runner: Runner, shared_dir: Path, tmp_path: Path) -> None:
    """Each commit writes objects named by their content (`objects/XX/` + 38 hex): learned
    literally, the next commit's were refused ("insufficient permission for adding an
    object", found in a new user's trial); their digests are learned as patterns now."""
    repo = shared_dir / f"git-{runner.name}-{tmp_path.name}"
    repo.mkdir()
    os.chown(repo, runner.uid, -1)
    git = ["/usr/bin/git", "-C", str(repo), "-c", "user.email=a@b", "-c", "user.name=n"]
    assert runner.native(*git, "init", "-q").returncode == 0
    policies = runner.policy_dir(shared_dir / f"git-policies-{runner.name}")
    for message in ("one", "two"):  # learned as the corpus does: twice
        learned = runner("-d", str(policies), "-A", *git, "commit", "-q", "--allow-empty", "-m", message)
        assert learned.returncode == 0, learned.stderr[-2000:]
    for message in ("three", "four"):
        enforced = runner("-d", str(policies), "-a", *git, "commit", "-q", "--allow-empty", "-m", message)
        assert enforced.returncode == 0, enforced.stderr[-2000:]
    log = runner.native(*git, "log", "--format=%s").stdout.split()
    assert log == [b"four", b"three", b"two", b"one"]


def test_dollar_home_argv_replays(root_runner: Runner, tmp_path: Path) -> None:
    """The exact argv `sh -c 'echo "$HOME"'` (run by a shell, whose policy checks the
    exec) is learned literally, so it replays under -a."""
    policies = tmp_path / "policies"
    argv = ["sh", "-c", """sh -c 'echo "$HOME"'; echo done"""]
    native = root_runner.native(*argv)
    learned = root_runner("-A", "-d", str(policies), *argv)
    enforced = root_runner("-a", "-d", str(policies), *argv)
    assert (learned.returncode, learned.stdout) == (enforced.returncode, enforced.stdout) == (0, native.stdout)
    assert enforced.stderr == b""
    assert 'argv eq "sh -c echo \\"\\\\$HOME\\""' in (policies / "usr_bin_dash").read_text()


ATTACK = "import sys, tempfile; tempfile.mkstemp(dir=sys.argv[1]); print('created')"


def test_a_learned_temporary_name_never_grants_a_subtree(root_runner: Runner, tmp_path: Path) -> None:
    """Learned from a harmless mkstemp in DIR, the rule covers DIR/tmpXXXXXXXX only: the
    same program creating a file one level below (DIR/sub/...) is denied under -a (the old
    `match "DIR/*"` permitted it, FNM_LEADING_DIR covering the subtree)."""
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    policies = tmp_path / "policies"
    python = "/usr/bin/python3"
    assert root_runner("-A", "-d", str(policies), python, "-c", ATTACK, str(work)).returncode == 0
    assert root_runner("-a", "-d", str(policies), python, "-c", ATTACK, str(work)).stdout == b"created\n"
    native = sum(root_runner.native(python, "-c", ATTACK, str(work / "sub")).returncode == 0 for _ in range(3))
    enforced = sum(root_runner("-a", "-d", str(policies), python, "-c", ATTACK, str(work / "sub")).returncode == 0
                   for _ in range(3))
    assert (native, enforced) == (3, 0)
    assert 're "^' in (policies / "usr_bin_python3_11").read_text()


def test_python_tempfile_names() -> None:
    run = made_up(**{"tmpk3j_9xab": MADE, "xl_b3k9q": EXCL, "sem.mp-ab_9x2kq": MADE, "branches": MADE})
    assert generalised("/tmp/tmpk3j_9xab/x", run) == "^/tmp/tmp[a-z0-9_]{8}/x$"
    assert generalised("/tmp/xl_b3k9q", run) == "^/tmp/[a-z0-9_]{8}$"
    assert generalised("/dev/shm/sem.mp-ab_9x2kq", run) == r"^/dev/shm/sem\.mp-[a-z0-9_]{8}$"
    assert generalised("/w/.git/branches", run) is None  # mkdir of a plain name


def _call(name: str, args: list[tuple[str, str]], stored, alias: str | None = "fswrite"):
    from types import SimpleNamespace

    translation = SimpleNamespace(alias=alias, alias_list=[a for a in args if a[0] == "filename"])
    return SimpleNamespace(name=name, tgid=4242, tid=4242, ppid=4000, translated=tuple(args), translation=translation,
                           policy=stored, ask=False, no_learn=False)


def test_a_name_unlinked_later_is_learned_again_generalised(tmp_path: Path) -> None:
    """`ccabcdef.s` opened without O_EXCL looks plain and is learned literally; when the
    run unlinks it, it was made up: the rule is learned again as a pattern (the literal one
    stays: it grants that name only)."""
    from systrace.decide.modes import Learn
    from systrace.policy.store import Store

    store = Store(Parser(), tmp_path, [])
    stored = store.create("/usr/bin/tool")
    learn = Learn(store)
    learn.decide(_call("openat", [("filename", "/w/ccabcdef.s"), ("oflags", "woct"), ("mode", "0644")], stored))
    learn.decide(_call("fcntl", [("fd", "3"), ("cmd", "F_GETFL")], stored, alias=None))
    learn.decide(_call("unlink", [("filename", "/w/ccabcdef.s")], stored))
    texts = [line.split(": ", 1)[1] for line in learn.learned]
    assert texts == ['native-fswrite: filename eq "/w/ccabcdef.s" then permit',
                     'native-fcntl: cmd eq "F_GETFL" then permit',
                     'native-fswrite: filename re "^/w/cc[A-Za-z0-9]{6}\\\\.s$" then permit']


def test_a_rename_a_rule_permits_still_marks_its_source_made_up(tmp_path: Path) -> None:
    """zip writes `ziabcDEF` (no O_EXCL) and renames it onto a.zip; the rename is permitted
    by the rule learned for the open, so only the observer first in the chain sees it."""
    from systrace.decide.modes import Learn, Observer
    from systrace.policy.store import Store

    store = Store(Parser(), tmp_path, [])
    stored = store.create("/usr/bin/zip")
    learn = Learn(store)
    learn.decide(_call("openat", [("filename", "/w/ziabcDEF"), ("oflags", "woct"), ("mode", "0644")], stored))
    assert Observer(learn).decide(_call("rename", [("filename", "/w/ziabcDEF"), ("filename", "/w/a.zip")], stored)) is None
    assert learn.learned[-1].endswith('native-fswrite: filename re "^/w/zi[A-Za-z0-9]{6}$" then permit')
