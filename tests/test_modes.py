"""Learning (-A) and enforcing (-a) on real programs (issue: policy language and modes)."""

from __future__ import annotations

import os
import re
import shutil
import signal
from pathlib import Path

import pytest
from conftest import Runner

from systrace.policy.store import file_name

CLEAN_PATH = "/usr/bin:/bin"


def real(program: str) -> str:
    return os.path.realpath(shutil.which(program, path=CLEAN_PATH))


@pytest.fixture
def policy_dir(shared_dir: Path, request) -> Path:
    """A fresh policy directory the runner's user may write."""
    path = shared_dir / f"policies-{request.node.name}".replace("[", "-").replace("]", "")
    names = request.fixturenames
    owner = next((request.getfixturevalue(n) for n in ("runner", "user_runner", "root_runner") if n in names), None)
    if owner is None:
        shutil.rmtree(path, ignore_errors=True)
        path.mkdir(mode=0o700)
        return path
    return owner.policy_dir(path)


def with_path(runner: Runner) -> Runner:
    env = dict(runner.env, PATH=CLEAN_PATH)
    return Runner(runner.name, runner.prefix, runner.python, env, runner.cwd)


def test_learn_then_enforce_cat(runner: Runner, policy_dir: Path, shared_dir: Path) -> None:
    runner = with_path(runner)
    native = runner.native("cat", "/etc/hostname")
    learned = runner("-d", str(policy_dir), "-A", "cat", "/etc/hostname")
    assert (learned.stdout, learned.returncode) == (native.stdout, 0)
    policy_file = policy_dir / file_name(real("cat"))
    text = policy_file.read_text()
    assert text.startswith(f"Policy: {real('cat')}, Emulation: native\n")
    assert '\tnative-fsread: filename eq "/etc/hostname" then permit\n' in text
    # a second identical run adds nothing
    runner("-d", str(policy_dir), "-A", "cat", "/etc/hostname")
    assert policy_file.read_text() == text
    # enforcing: same output, no denial
    log = runner.writable(shared_dir / f"enforce-{runner.name}.log")
    enforced = runner("-d", str(policy_dir), "-a", "-E", str(log), "cat", "/etc/hostname")
    assert (enforced.stdout, enforced.stderr, enforced.returncode) == (native.stdout, b"", 0)
    assert log.read_text() == ""
    # without the rule, -a denies that call (EACCES: what a file access can return) and logs it like the original
    policy_file.write_text(text.replace('\tnative-fsread: filename eq "/etc/hostname" then permit\n', ""))
    denied = runner("-d", str(policy_dir), "-a", "-E", str(log), "cat", "/etc/hostname")
    assert denied.returncode == 1
    assert denied.stderr == b"cat: /etc/hostname: Permission denied\n"
    user = "root" if runner.name == "root" else runner.env["USER"]
    assert re.fullmatch(
        rf"systrace: deny\[eacces\] user: {user}, prog: {re.escape(real('cat'))}, pid: \d+\(1\)\[\d+\], policy: {re.escape(real('cat'))}, "
        r"filters: \d+, syscall: linux-openat\(257\), filename: /etc/hostname, oflags: ro, mode: 0",
        log.read_text().splitlines()[0],  # later lines: cat's error path looking for message catalogs
    ), log.read_text()


WORKLOADS = {
    "ls": ["ls", "-l", "/usr"],
    "sh": ["sh", "-c", "echo a b c | tr a-z A-Z | wc -c; ls /etc | head -3; cat /etc/hostname | wc -l"],
    "python3": ["python3", "-c", "import json; print(json.dumps({'k': [1, 2]}))"],
    "tar": ["sh", "-c", "tar cf - /usr/include/linux/netfilter 2>/dev/null | wc -c"],
}


@pytest.mark.parametrize("name", WORKLOADS)
def test_learned_policies_reproduce_native_runs(root_runner: Runner, policy_dir: Path, name: str, shared_dir: Path) -> None:
    _learn_then_enforce(with_path(root_runner), policy_dir, WORKLOADS[name], shared_dir, None)


def test_learned_policy_for_gcc(root_runner: Runner, policy_dir: Path, shared_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "unit.c").write_text("int twice(int x) { return 2 * x; }\n")
    _learn_then_enforce(with_path(root_runner), policy_dir, ["gcc", "-c", "unit.c", "-o", "unit.o"], shared_dir, str(tmp_path))


@pytest.mark.parametrize("name", ["sh", "python3"])
def test_learned_policies_as_unprivileged_user(user_runner: Runner, policy_dir: Path, name: str, shared_dir: Path) -> None:
    _learn_then_enforce(with_path(user_runner), policy_dir, WORKLOADS[name], shared_dir, None)


def _learn_then_enforce(runner: Runner, policy_dir: Path, argv: list[str], shared_dir: Path, cwd: str | None) -> None:
    if cwd:
        runner = Runner(runner.name, runner.prefix, runner.python, runner.env, cwd)
    native = runner.native(*argv)
    learned = runner("-d", str(policy_dir), "-A", *argv)
    assert (learned.stdout, learned.returncode) == (native.stdout, native.returncode), learned.stderr
    log = runner.writable(shared_dir / f"workload-{runner.name}.log")
    enforced = runner("-d", str(policy_dir), "-a", "-E", str(log), *argv)
    assert log.read_text() == ""
    assert (enforced.stdout, enforced.stderr, enforced.returncode) == (native.stdout, native.stderr, native.returncode)


def _learn(runner: Runner, policy_dir: Path, *argv: str) -> Path:
    assert runner("-d", str(policy_dir), "-A", *argv).returncode == 0
    return policy_dir / file_name(real(argv[0]))


def test_kill_action(root_runner: Runner, policy_dir: Path, shared_dir: Path) -> None:
    runner = with_path(root_runner)
    policy = _learn(runner, policy_dir, "cat", "/etc/hostname")
    text = policy.read_text().replace('filename eq "/etc/hostname" then permit', 'filename eq "/etc/hostname" then kill')
    policy.write_text(text)
    log = runner.writable(shared_dir / "kill.log")
    result = runner("-d", str(policy_dir), "-a", "-E", str(log), "cat", "/etc/hostname")
    assert result.returncode == 128 + signal.SIGKILL
    assert result.stdout == b""
    assert "systrace: kill user: root, prog: " in log.read_text()
    assert "filename: /etc/hostname" in log.read_text()


def test_kill_on_violation(root_runner: Runner, policy_dir: Path, shared_dir: Path) -> None:
    runner = with_path(root_runner)
    policy = _learn(runner, policy_dir, "cat", "/etc/hostname")
    policy.write_text(policy.read_text().replace('\tnative-fsread: filename eq "/etc/hostname" then permit\n', ""))
    log = runner.writable(shared_dir / "violation.log")
    result = runner("-d", str(policy_dir), "-a", "--kill-on-violation", "-E", str(log), "cat", "/etc/hostname")
    assert result.returncode == 128 + signal.SIGKILL
    assert re.search(r"kill user: root, prog: .*syscall: linux-openat\(257\), filename: /etc/hostname", log.read_text())


def test_no_aliases(root_runner: Runner, policy_dir: Path) -> None:
    runner = with_path(root_runner)
    assert runner("-d", str(policy_dir), "-u", "-A", "cat", "/etc/hostname").returncode == 0
    text = (policy_dir / file_name(real("cat"))).read_text()
    assert "fsread" not in text
    assert '\tnative-openat: filename eq "/etc/hostname" and oflags eq "ro" and mode eq "0" then permit\n' in text
    assert runner("-d", str(policy_dir), "-u", "-a", "cat", "/etc/hostname").returncode == 0


def test_inherit_keeps_the_parents_policy(root_runner: Runner, policy_dir: Path) -> None:
    runner = with_path(root_runner)
    argv = ["sh", "-c", "cat /etc/hostname"]
    assert runner("-d", str(policy_dir), "-i", "-A", *argv).returncode == 0
    assert sorted(p.name for p in policy_dir.iterdir() if not p.name.startswith(".")) == [file_name(real("sh"))]
    text = (policy_dir / file_name(real("sh"))).read_text()
    assert 'filename eq "/etc/hostname"' in text  # cat's own call, learned into sh's policy
    result = runner("-d", str(policy_dir), "-i", "-a", *argv)
    assert result.returncode == 0 and result.stdout == runner.native(*argv).stdout


def test_binary_without_policy_may_not_run_under_enforce(root_runner: Runner, policy_dir: Path, shared_dir: Path) -> None:
    runner = with_path(root_runner)
    policy = _learn(runner, policy_dir, "sh", "-c", "echo hi")
    policy.write_text(policy.read_text() + "\tnative-fsread: permit\n\tnative-execve: permit\n")
    log = runner.writable(shared_dir / "nopolicy.log")
    result = runner("-d", str(policy_dir), "-a", "-E", str(log), "sh", "-c", "echo hi; cat /etc/hostname; echo rc=$?")
    assert result.stdout.startswith(b"hi\nrc=")  # cat never ran
    assert b"cat: Permission denied" in result.stderr
    assert f"(no policy for {real('cat')})" in log.read_text()


def test_basename_policy_from_a_file(root_runner: Runner, policy_dir: Path, tmp_path: Path) -> None:
    runner = with_path(root_runner)
    policy = _learn(runner, policy_dir, "cat", "/etc/hostname")
    extra = tmp_path / "cat.policy"
    extra.write_text(policy.read_text().replace(f"Policy: {real('cat')},", "Policy: */cat,"))
    extra.chmod(0o644)
    shutil.rmtree(policy_dir)
    result = runner("-U", "-f", str(extra), "-a", "cat", "/etc/hostname")
    assert result.returncode == 0 and result.stdout == runner.native("cat", "/etc/hostname").stdout


# -- bad input ----------------------------------------------------------------------
def _assert_clean_error(result, pattern: str) -> None:
    assert result.returncode == 2
    assert b"Traceback" not in result.stderr
    assert re.search(pattern, result.stderr.decode()), result.stderr.decode()


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        ("\tnative-read permit\n", r"bin_cat:2:2: expected 'EMULATION-SYSCALL: RULE'"),
        ('\tnative-opnat: filename eq "x" then permit\n', r"bin_cat:2:9: unknown system call 'opnat'; did you mean 'openat'\?"),
        ("\tsunos-read: permit\n", r"bin_cat:2:2: emulation 'sunos' is not this host's"),
        ('\tnative-fsread: filename eq "x" then deny[enope]\n', r"bin_cat:2:43: Unknown error code: enope"),
    ],
)
def test_malformed_policy_is_a_clear_error_and_stays_untouched(root_runner: Runner, policy_dir: Path, body: str, pattern: str) -> None:
    path = policy_dir / "bin_cat"
    text = "Policy: /bin/cat, Emulation: native\n" + body
    path.write_text(text)
    for mode in ("-A", "-a"):
        result = root_runner("-d", str(policy_dir), mode, "true")
        _assert_clean_error(result, pattern)
        assert "    ^" in result.stderr.decode()
        assert path.read_text() == text


def test_unreadable_policy_directory(user_runner: Runner, policy_dir: Path) -> None:
    locked = policy_dir / "locked"
    locked.mkdir(mode=0o700)  # owned by root: the test user cannot read it
    result = user_runner("-d", str(locked), "-a", "true")
    _assert_clean_error(result, rf"systrace: {re.escape(str(locked))}: cannot read policy directory: Permission denied")


def test_missing_policy_file(root_runner: Runner) -> None:
    _assert_clean_error(root_runner("-f", "/nonexistent.policy", "-a", "true"),
                        r"systrace: /nonexistent.policy: cannot read policy file: No such file or directory")


@pytest.mark.parametrize(
    ("args", "message"),
    [(["-a", "-A"], "-a and -A cannot be used together"), (["--kill-on-violation"], "--kill-on-violation needs -a"),
     (["--permit-all", "-a"], "--permit-all cannot be combined")],
)
def test_conflicting_modes(root_runner: Runner, args: list[str], message: str) -> None:
    result = root_runner(*args, "true")
    _assert_clean_error(result, re.escape(message))
    assert b"usage:" in result.stderr
