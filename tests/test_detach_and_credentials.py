"""`permit[detach]` on an exec (issue 14 item 11) and `-c user:group` (item 12), on real
programs."""

from __future__ import annotations

import os
import pwd
import re
from pathlib import Path

import pytest
from conftest import Runner

from systrace.credentials import Credentials, CredentialsError, parse_credentials
from systrace.policy.store import file_name

CAT = os.path.realpath("/usr/bin/cat")
SH = os.path.realpath("/bin/sh")


def test_detach_is_honoured_for_a_binary_without_a_policy(root_runner: Runner, tmp_path: Path) -> None:
    policy_dir = root_runner.policy_dir(tmp_path / "policies")
    out = tmp_path / "out"  # to a file, cat copies with copy_file_range (denied to sh below)
    script = f"{CAT} /etc/hostname > {out}; echo status $?; read line < {out}; echo $line"
    native = root_runner.native("sh", "-c", script)
    assert root_runner("-d", str(policy_dir), "-A", "sh", "-c", script).stdout == native.stdout
    (policy_dir / file_name(CAT)).unlink()  # cat has no policy now
    refused = root_runner("-d", str(policy_dir), "-a", "sh", "-c", script)
    assert refused.stdout.startswith(b"status 126\n")  # the exec check: no policy for cat (EACCES)
    sh_policy = policy_dir / file_name(SH)
    text = sh_policy.read_text()
    rule = re.search(rf'native-execve: filename eq "{re.escape(CAT)}" .* then permit\n', text)
    assert rule is not None, text
    header, rest = text.replace(rule.group(), rule.group()[:-1] + "[detach]\n").split("\n", 1)
    # a call sh's policy denies outright, so the kernel could decide it, but cat needs:
    # a detached cat must not get the kernel's denial either
    sh_policy.write_text(f"{header}\n\tnative-copy_file_range: deny[eio]\n{rest}")
    detached = root_runner("-d", str(policy_dir), "-a", "sh", "-c", script)
    assert (detached.stdout, detached.returncode) == (native.stdout, 0), detached.stderr
    assert detached.stderr == b""


def test_a_failed_detach_exec_detaches_nothing(root_runner: Runner, tmp_path: Path) -> None:
    """The rule permits an exec that fails: the shell goes on under its policy, so what
    it does next is still decided by it (here: denied)."""
    policy_dir = root_runner.policy_dir(tmp_path / "policies")
    script = f"{tmp_path}/missing; cat /etc/hostname"
    root_runner("-d", str(policy_dir), "-A", "sh", "-c", f"{tmp_path}/missing; true")
    sh_policy = policy_dir / file_name(SH)
    text = sh_policy.read_text()
    header, rest = text.split("\n", 1)  # first, before the learned rule for that exec
    sh_policy.write_text(f'{header}\n\tnative-execve: filename eq "{tmp_path}/missing" then permit[detach]\n{rest}')
    result = root_runner("-d", str(policy_dir), "-a", "sh", "-c", script)
    assert b"not found" in result.stderr
    assert result.stdout == b""  # cat was not run by a detached shell
    assert result.returncode != 0


def test_run_as_another_user(root_runner: Runner, test_user: pwd.struct_passwd, tmp_path: Path) -> None:
    name, uid, gid = test_user.pw_name, test_user.pw_uid, test_user.pw_gid
    ids = ["sh", "-c", "id -u; id -g; id -G"]
    for spec, expected in ((f"{name}:{name}", (uid, gid, gid)), (name, (uid, gid, gid)), (f"{uid}:0", (uid, 0, 0))):
        result = root_runner("--permit-all", "-c", spec, *ids)
        assert result.returncode == 0, result.stderr
        assert result.stdout.decode().split() == [str(n) for n in expected], spec
    # learning works too (the supervisor, root, still takes the listener and reads memory)
    policy_dir = root_runner.policy_dir(tmp_path / "policies")
    learned = root_runner("-d", str(policy_dir), "-c", f"{name}:{name}", "-A", "id")
    native = root_runner.native("setpriv", f"--reuid={uid}", f"--regid={gid}", f"--groups={gid}", "id")
    assert (learned.stdout, learned.returncode) == (native.stdout, 0), learned.stderr
    enforced = root_runner("-d", str(policy_dir), "-c", f"{name}:{name}", "-a", "id")
    assert (enforced.stdout, enforced.returncode) == (native.stdout, 0), enforced.stderr
    # the identity is real for what systrace does on the command's behalf too: a policy
    # permitting /etc/shadow does not make it readable to that user (emulated opens)
    shadow = ["cat", "/etc/shadow"]
    as_user = root_runner.native("setpriv", f"--reuid={uid}", f"--regid={gid}", f"--groups={gid}", *shadow)
    assert as_user.returncode == 1 and b"Permission denied" in as_user.stderr
    for mode in ("-A", "-a"):  # -A learns the permit, -a applies it
        result = root_runner("-d", str(policy_dir), "-c", name, mode, *shadow)
        assert (result.stdout, result.returncode) == (b"", 1) and b"Permission denied" in result.stderr
    assert 'filename eq "/etc/shadow" then permit' in (policy_dir / file_name(CAT)).read_text()


def test_changing_credentials_needs_root(user_runner: Runner) -> None:
    result = user_runner("-c", "root", "--permit-all", "id")
    assert result.returncode == 2
    lines = result.stderr.decode().splitlines()
    assert lines[0] == "systrace: Need to be root to change credentials."  # the original's words
    assert lines[1].startswith("usage: systrace") and "[-c user:group]" in lines[1]
    assert result.stdout == b""


@pytest.mark.parametrize("spec, message", [
    ("nosuchuser", "systrace: no such user 'nosuchuser'"),
    ("root:nosuchgroup", "systrace: no such group 'nosuchgroup'"),
    ("99999999999:0", "systrace: invalid uid 99999999999"),
    ("0:99999999999", "systrace: invalid gid 99999999999"),
    (":", "systrace: no such user ''"),
])
def test_bad_user_and_group_names(root_runner: Runner, spec: str, message: str) -> None:
    result = root_runner("-c", spec, "--permit-all", "true")
    assert (result.returncode, result.stderr.decode()) == (2, message + "\n")


def test_credentials_parse_as_the_original() -> None:
    root = pwd.getpwnam("root")
    assert parse_credentials("root") == Credentials(root.pw_uid, root.pw_gid)
    assert parse_credentials("root:0") == Credentials(0, 0)
    assert parse_credentials("12:34") == Credentials(12, 34)
    with pytest.raises(CredentialsError) as raised:
        parse_credentials("1234")  # a number says nothing about the group
    assert raised.value.usage
