"""A policy directory of unrelated policies does not slow a run down: its files are read
and trusted at start-up, but parsed only when used (issue 16). Real files, real runs; the
parses are counted by --stats, never timed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import Runner, base_env, systrace

from systrace.policy.store import Store, file_name, looks_like_policy
from systrace.wiring import make_parser

TRUE = os.path.realpath(shutil.which("true", path="/usr/bin:/bin") or "/usr/bin/true")
CAT = os.path.realpath("/usr/bin/cat")
SH = os.path.realpath("/bin/sh")
ENV = base_env(PATH="/usr/bin:/bin")
BROKEN_RULE = "\tnative-read permit\n"  # no ':' after the call: line 2 does not parse
UNRELATED = 50


def _parsed(result: subprocess.CompletedProcess) -> tuple[int, int]:
    found = re.search(rb"systrace: (\d+) of (\d+) policy files parsed", result.stderr)
    assert found is not None, result.stderr
    return int(found[1]), int(found[2])


def _no_traceback(result: subprocess.CompletedProcess) -> str:
    err = result.stderr.decode()
    assert "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def learned(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Policies learned for true, cat and `sh -c 'cat /etc/hostname'` (sh's permits the
    exec of cat by name)."""
    directory = tmp_path_factory.mktemp("learned") / "policies"
    for command in (["true"], ["cat", "/etc/hostname"], ["sh", "-c", "cat /etc/hostname"]):
        result = systrace("-d", str(directory), "-A", *command, env=ENV)
        assert result.returncode == 0, result.stderr
    assert f'filename eq "{CAT}"' in (directory / file_name(SH)).read_text()
    return directory


def _with_unrelated(learned: Path, target: Path, broken: bool = True) -> Path:
    """`learned`'s policies and 50 unrelated ones: one large (4000 rules, `re` patterns
    among them), one that does not parse (unless not `broken`), one file of two policies."""
    shutil.copytree(learned, target)
    target.chmod(0o700)
    for n in range(UNRELATED - 3):
        (target / f"opt_unrelated_{n}").write_text(f"Policy: /opt/unrelated/{n}, Emulation: native\n"
                                                   "\tnative-read: permit\n\tnative-fsread: filename eq \"/etc/x\" then permit\n")
    rules = "".join(f'\tnative-fsread: filename re "^/srv/{n}/[a-z]+$" then permit\n'
                    f'\tnative-fswrite: filename eq "/srv/{n}/out" then deny[eperm]\n' for n in range(2000))
    (target / "opt_large").write_text("Policy: /opt/large, Emulation: native\n" + rules)
    (target / "opt_two").write_text("Policy: /opt/one, Emulation: native\n\tnative-read: permit\n"
                                    "Policy: \"/opt/two, quoted\", Emulation: native\n\tnative-write: permit\n")
    (target / "opt_broken").write_text("Policy: /opt/broken, Emulation: native\n"
                                       + (BROKEN_RULE if broken else "\tnative-read: permit\n"))
    for path in target.iterdir():
        path.chmod(0o600)
    return target


@pytest.fixture
def crowded(learned: Path, tmp_path: Path) -> Path:
    return _with_unrelated(learned, tmp_path / "crowded")


# -- the store (pure file handling) ----------------------------------------------------
def test_headers_are_read_as_the_parser_reads_them() -> None:
    text = textwrap.dedent("""\
        # a comment
        Policy: /bin/a, Emulation: native
        \tnative-fsread: filename eq "Policy: /bin/not-a-header, Emulation: native" then permit
          Policy: "/bin/b, odd\\x41", Emulation: linux, Description: two
        \tnative-read: permit
        Template: web, Emulation: native
        """)
    parser = make_parser()
    headers = [(p.name, p.template, p.line) for p in parser.headers(text)]
    parsed = [(p.name, p.template, p.line) for p in make_parser().parse_file(text).policies]
    assert headers == parsed == [("/bin/a", False, 2), ("/bin/b, oddA", False, 4), ("web", True, 6)]


@pytest.mark.parametrize("text", ["", "\n", "# c\n\n  Policy: /x, Emulation: native\n", "Template: t", "#\n x\nPolicy:",
                                  "\r\n\tPolicy:\r\n", "# only a comment", "Policy:" + "\n" * 3])
def test_looks_like_policy_reads_the_first_line_that_counts(text: str) -> None:
    first = next((line.strip() for line in text.split("\n") if line.strip() and not line.strip().startswith("#")), "")
    assert looks_like_policy(text) == first.startswith(("Policy:", "Template:"))


def test_only_what_is_found_is_parsed(crowded: Path, tmp_path: Path) -> None:
    store = Store(make_parser(), crowded, [], system_dir=tmp_path / "none")
    store.load()
    assert store.parsed_files == 0 and store.read_files == UNRELATED + 3
    assert store.find("/opt/two, quoted") is not None and store.find("/opt/one") is not None
    assert store.parsed_files == 1  # one file, both of its policies
    assert store.find("/opt/nothing") is None and store.parsed_files == 1
    broken = store.find("/opt/broken")
    assert broken is not None and broken.broken is not None and str(broken.broken).startswith(f"{crowded}/opt_broken:2:")
    assert any("opt_broken:2:" in line and "denied" in line for line in store.late)
    with pytest.raises(Exception, match="opt_broken:2:"):
        store.all()  # (start-up: every policy, as -A needs them)


def test_two_files_for_one_binary_still_warn_unparsed(crowded: Path, tmp_path: Path) -> None:
    (crowded / "zz_large_again").write_text("Policy: /opt/large, Emulation: native\n\tnative-read: permit\n")
    store = Store(make_parser(), crowded, [], system_dir=tmp_path / "none")
    store.load()
    assert store.parsed_files == 0
    assert store.warnings == [f"{crowded}/zz_large_again:1:1: warning: the policy for '/opt/large' is not used: "
                              f"{crowded}/opt_large:1 has one for the same binary and comes first"]


def test_policies_named_by_basename_in_two_files_still_warn(tmp_path: Path) -> None:
    first, second = tmp_path / "a.policy", tmp_path / "b.policy"
    for path in (first, second):
        path.write_text("Policy: */sh, Emulation: native\n\tnative-read: permit\n")
    store = Store(make_parser(), None, [first, second], use_user=False, system_dir=tmp_path / "none")
    store.load()
    assert store.warnings == [f"{second}:1:1: warning: the policy for '*/sh' is not used: {first}:1 has one for "
                              "the same binary and comes first"]
    found = store.find("/bin/sh")
    assert found is not None and found.path == str(first)


# -- real runs -------------------------------------------------------------------------
def test_unrelated_policies_are_not_parsed(crowded: Path) -> None:
    result = systrace("-d", str(crowded), "--stats", "-a", "true", env=ENV)
    assert result.returncode == 0, _no_traceback(result)
    assert _parsed(result) == (1, UNRELATED + 3)  # true's own; the broken one is never read as a policy
    assert "opt_broken" not in result.stderr.decode()


def test_a_policy_reached_by_a_permitted_exec_is_parsed_and_enforced(crowded: Path) -> None:
    hostname = Path("/etc/hostname").read_bytes()
    result = systrace("-d", str(crowded), "--stats", "-a", "sh", "-c", "cat /etc/hostname", env=ENV)
    assert result.returncode == 0 and result.stdout == hostname, _no_traceback(result)
    assert _parsed(result)[0] == 2  # sh's and cat's
    cat = crowded / file_name(CAT)
    cat.write_text(cat.read_text().replace('\tnative-fsread: filename eq "/etc/hostname" then permit\n', ""))
    result = systrace("-d", str(crowded), "-e", "-a", "sh", "-c", "cat /etc/hostname", env=ENV)
    assert result.returncode != 0 and result.stdout == b"", _no_traceback(result)
    assert f"prog: {CAT}".encode() in result.stderr and b"filename: /etc/hostname" in result.stderr


def test_a_broken_reachable_policy_is_still_refused(crowded: Path) -> None:
    (crowded / file_name(CAT)).write_text(f"Policy: {CAT}, Emulation: native\n{BROKEN_RULE}")
    result = systrace("-d", str(crowded), "-a", "sh", "-c", "cat /etc/hostname", env=ENV)
    err = _no_traceback(result)
    assert result.returncode == 2 and result.stdout == b""
    assert err.startswith(f"systrace: {crowded}/{file_name(CAT)}:2:2: expected") and err.splitlines()[1].strip() == "native-read permit"
    (crowded / file_name(TRUE)).write_text(f"Policy: {TRUE}, Emulation: native\n{BROKEN_RULE}")  # its own
    result = systrace("-d", str(crowded), "-a", "true", env=ENV)
    assert result.returncode == 2 and f"{file_name(TRUE)}:2:" in _no_traceback(result)


def test_a_pattern_exec_rule_parses_every_policy(learned: Path, tmp_path: Path) -> None:
    directory = _with_unrelated(learned, tmp_path / "open", broken=False)
    own = directory / file_name(TRUE)
    own.write_text(own.read_text() + "\tnative-execve: permit\n")  # any binary: every policy is reachable
    result = systrace("-d", str(directory), "--stats", "-a", "true", env=ENV)
    assert result.returncode == 0, _no_traceback(result)
    assert _parsed(result) == (UNRELATED + 3, UNRELATED + 3)
    (directory / "opt_broken").write_text(f"Policy: /opt/broken, Emulation: native\n{BROKEN_RULE}")
    result = systrace("-d", str(directory), "-a", "true", env=ENV)
    assert result.returncode == 2 and "opt_broken:2:" in _no_traceback(result)


def test_learning_a_new_binary_next_to_unrelated_files(learned: Path, tmp_path: Path) -> None:
    directory = _with_unrelated(learned, tmp_path / "learning", broken=False)
    (directory / file_name(TRUE)).unlink()
    before = {path.name: path.read_bytes() for path in directory.iterdir()}
    result = systrace("-d", str(directory), "--stats", "-A", "true", env=ENV)
    assert result.returncode == 0, _no_traceback(result)
    assert (directory / file_name(TRUE)).read_text().startswith(f"Policy: {TRUE}, Emulation: native\n")
    assert {name: (directory / name).read_bytes() for name in before} == before  # untouched
    # -A may learn an exec of anything: its kernel plan agrees with every policy, all parsed
    assert _parsed(result) == (UNRELATED + 2, UNRELATED + 2)
    (directory / "opt_broken").write_text(f"Policy: /opt/broken, Emulation: native\n{BROKEN_RULE}")
    result = systrace("-d", str(directory), "-A", "true", env=ENV)
    assert result.returncode == 2 and "opt_broken:2:" in _no_traceback(result)
    assert (directory / "opt_broken").read_text().endswith(BROKEN_RULE)


def test_a_policy_broken_when_first_used_mid_run_is_denied(crowded: Path, tmp_path: Path) -> None:
    """Asking (-g): sh's exec of cat is asked and permitted; cat's policy, never parsed
    before, does not parse: the exec is refused (fail closed), the file left as it is,
    and the end of the run says why."""
    sh = crowded / file_name(SH)
    sh.write_text("".join(line for line in sh.read_text().splitlines(True) if "native-execve" not in line))
    cat = crowded / file_name(CAT)
    broken = f"Policy: {CAT}, Emulation: native\n{BROKEN_RULE}"
    cat.write_text(broken)
    frontend = tmp_path / "frontend.py"
    frontend.write_text("import sys\nfor line in sys.stdin:\n"
                        "    if ', syscall: ' in line:\n        print('permit', flush=True)\n")
    result = systrace("-d", str(crowded), "-g", f"{sys.executable} {frontend}", "-e",
                      "sh", "-c", "cat /etc/hostname; echo status=$?", env=ENV)
    err = _no_traceback(result)
    assert result.returncode == 0 and result.stdout.endswith(b"status=126\n"), err  # sh: cannot run it
    assert f"the policy of {CAT} does not parse: {cat}:2:" in err
    assert f"systrace: {cat}:2:" in err and "parsed when first used, mid-run: the calls of its binary are denied" in err
    assert cat.read_text() == broken  # never overwritten


def test_a_bad_header_among_unrelated_files_is_refused(crowded: Path) -> None:
    """A header that cannot be read cannot say which binary the file is for: refused at
    start-up, whether the file is used or not (fail closed)."""
    (crowded / "opt_bad_header").write_text("Policy: /opt/bad\n\tnative-read: permit\n")
    result = systrace("-d", str(crowded), "-a", "true", env=ENV)
    err = _no_traceback(result)
    assert result.returncode == 2 and result.stdout == b""
    assert err.startswith(f"systrace: {crowded}/opt_bad_header:1:17: expected ', Emulation: NAME'"), err


def test_unparsed_files_are_still_trusted_or_refused(runner: Runner, shared_dir: Path) -> None:
    """As root and as the test user: unrelated files are not parsed, but each is checked
    as it is read: one owned by someone else stops the run before anything is parsed."""
    directory = runner.policy_dir(shared_dir / f"lazy-{runner.name}")
    result = runner("-d", str(directory), "-A", "true")
    assert result.returncode == 0, result.stderr
    for n in range(UNRELATED - 1):
        path = directory / f"opt_unrelated_{n}"
        path.write_text(f"Policy: /opt/unrelated/{n}, Emulation: native\n\tnative-read: permit\n")
        path.chmod(0o600)
        os.chown(path, runner.uid, -1)
    broken = directory / "opt_broken"
    broken.write_text(f"Policy: /opt/broken, Emulation: native\n{BROKEN_RULE}")
    os.chown(broken, runner.uid, -1)
    result = runner("-d", str(directory), "--stats", "-a", "true")
    assert result.returncode == 0, _no_traceback(result)
    assert _parsed(result) == (1, UNRELATED + 1)
    os.chown(broken, 65534, -1)  # nobody's: untrusted, whether used or not
    result = runner("-d", str(directory), "-a", "true")
    err = _no_traceback(result)
    assert result.returncode == 2 and err.startswith(f"systrace: {broken}: untrusted policy file: owned by "), err
