"""Caches with exact invalidation (issue 16 item 4): what the supervisor keeps per thread
(credentials, binary, group) changes only through the calls the facts table lists as
`invalidates`; each always reaches the supervisor, whatever a policy says, and the next
decision uses the new state."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from conftest import run, systrace

from systrace.baseline import apply_baseline
from systrace.facts import ROWS, invalidating_calls
from systrace.kernel import abi
from systrace.kernel.filter import evaluate
from systrace.kernel.syscalls_x86_64 import SYSCALLS
from systrace.policy.compile import kernel_plan
from systrace.policy.store import file_name
from systrace.supervisor import INVALIDATES
from systrace.wiring import make_parser

NOBODY = "65534"
FILE = "/etc/hostname"


def test_every_call_that_changes_a_cache_is_listed_and_routed_whatever_the_policy() -> None:
    listed = invalidating_calls()
    assert {"execve", "execveat", "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid"} <= set(listed)
    # every call that sets an effective id (the cached credentials) is one of them
    for name, row in ROWS.items():
        if "creds" in row.classes and name.startswith("set") and name not in ("setgroups", "setfsuid", "setfsgid"):
            assert listed.get(name) == "credentials", name
    # ... and so is the rest of the identity an emulated call is made as
    assert {listed[name] for name in ("setgroups", "setfsuid", "setfsgid", "capset")} == {"credentials"}
    # a thread's namespaces (the mount view, whose capabilities count) change by its own
    assert listed["unshare"] == listed["setns"] == "namespaces"
    assert {SYSCALLS[name] for name in listed} == set(INVALIDATES)
    body = "".join(f"\tnative-{name}: permit\n" for name in listed)
    plan = kernel_plan(make_parser().parse_file(f"Policy: /bin/x, Emulation: native\n{body}").policies)
    assert plan.action_of(SYSCALLS["setuid"]) == abi.RET_ALLOW  # the policy alone would leave it to the kernel
    apply_baseline(plan)
    for name in listed:  # ... the baseline routes every one of them
        assert evaluate(plan, SYSCALLS[name], (0,) * 6) == abi.RET_USER_NOTIF, name


def _learn_with_root_only_open(cbin, tmp_path: Path, *argv: str) -> tuple[str, str]:
    """Learn `caches argv`, then make the file's open permitted only to euid 0."""
    binary = cbin("caches")
    policies = tmp_path / "policies"
    assert systrace("-d", str(policies), "-A", binary, *argv).returncode == 0
    path = policies / file_name(binary)
    text, count = re.subn(rf'(\tnative-fsread: filename eq "{re.escape(FILE)}" then permit)\n', r"\1, if user = 0\n",
                          path.read_text())
    assert count == 1, text
    path.write_text(text)
    return binary, str(policies)


@pytest.mark.parametrize("supervisors", ["1", "2"])  # 2: the replicas see the change too (replicas.py)
def test_a_credential_change_is_seen_by_the_next_decision(cbin, tmp_path: Path, supervisors: str) -> None:
    binary, policies = _learn_with_root_only_open(cbin, tmp_path, "setuid", NOBODY, FILE)
    native = run([binary, "setuid", NOBODY, FILE])
    assert native.stdout == b"open 1: ok\nopen 2: ok\n"
    enforced = systrace("-d", policies, "-a", "--supervisors", supervisors, "-e", "--stats", binary, "setuid", NOBODY,
                        FILE)
    assert enforced.stdout == b"open 1: ok\nopen 2: EACCES\n", enforced  # the open as nobody: not root's rule
    assert re.search(rb"routed by system call: .*setresuid 1", enforced.stderr), enforced.stderr[-400:]


@pytest.mark.parametrize("supervisors", ["1", "2"])
def test_a_thread_changing_its_credentials_changes_only_its_own(cbin, tmp_path: Path, supervisors: str) -> None:
    binary, policies = _learn_with_root_only_open(cbin, tmp_path, "thread-setuid", NOBODY, FILE)
    assert run([binary, "thread-setuid", NOBODY, FILE]).stdout == b"open 1: ok\nopen 2: ok\nopen 3: ok\n"
    enforced = systrace("-d", policies, "-a", "--supervisors", supervisors, binary, "thread-setuid", NOBODY, FILE)
    assert enforced.stdout == b"open 1: ok\nopen 2: EACCES\nopen 3: ok\n", enforced


@pytest.mark.parametrize("supervisors", ["1", "2"])
def test_after_a_threaded_exec_the_new_binary_s_policy_decides(cbin, tmp_path: Path, supervisors: str) -> None:
    """A non-leader thread execs cat while the leader keeps opening: the binary is cached
    per process image, so cat's own policy must decide its open, not the old binary's.
    After learning, only the old binary's policy permits the file cat opens."""
    binary = cbin("caches")
    policies = tmp_path / "policies"
    cat, argv = "/usr/bin/cat", [binary, "thread-exec", FILE, "/usr/bin/cat", "/etc/passwd"]
    assert systrace("-d", str(policies), "-A", *argv).returncode == 0
    native = run(argv)
    assert native.returncode == 0 and native.stdout.startswith(b"open 1: ok\nroot:")
    replay = systrace("-d", str(policies), "-a", *argv)
    assert replay.returncode == 0 and replay.stdout.startswith(b"open 1: ok\nroot:"), replay
    rule = '\tnative-fsread: filename eq "/etc/passwd" then permit\n'
    cat_policy, own_policy = policies / file_name(cat), policies / file_name(binary)
    assert rule in cat_policy.read_text()
    cat_policy.write_text(cat_policy.read_text().replace(rule, ""))
    own_policy.write_text(own_policy.read_text() + rule)
    enforced = systrace("-d", str(policies), "-a", "--supervisors", supervisors, *argv)
    assert enforced.stdout == b"open 1: ok\n", enforced
    assert enforced.returncode == 1, enforced  # cat's open of it denied, by cat's policy
    assert re.search(rb"deny\[eacces\] user: root, prog: /usr/bin/cat, .*filename: /etc/passwd,", enforced.stderr), enforced


@pytest.mark.parametrize("supervisors", ["1", "2"])
def test_a_new_mount_namespace_is_seen_by_the_next_emulated_open(cbin, tmp_path: Path, supervisors: str) -> None:
    """The mount view is kept per thread: after the thread's unshare(CLONE_NEWNS) its next
    path-decided open is refused (no permit[mountns] rule), as before it was kept."""
    if os.geteuid() != 0:
        pytest.skip("unshare(CLONE_NEWNS) needs root")
    binary = cbin("caches")
    policies = tmp_path / "policies"
    assert run([binary, "unshare", "mnt", FILE]).stdout == b"open 1: ok\nopen 2: ok\n"
    assert systrace("-d", str(policies), "-A", binary, "unshare", "mnt", FILE).returncode == 0
    enforced = systrace("-d", str(policies), "-a", "--supervisors", supervisors, binary, "unshare", "mnt", FILE)
    assert enforced.stdout == b"open 1: ok\nopen 2: EACCES\n", enforced
    assert b"in another mount namespace" in enforced.stderr, enforced.stderr[-400:]


@pytest.mark.parametrize("supervisors", ["1", "2"])
def test_a_new_user_namespace_is_seen_by_the_next_emulated_open(cbin, tmp_path: Path, supervisors: str) -> None:
    """Whether the thread's capabilities count is kept per thread: after its
    unshare(CLONE_NEWUSER) they are over the new namespace only, and a file only
    CAP_DAC_OVERRIDE opens is refused, natively and under systrace alike: by the open
    itself, made as the tracee with no capabilities (a stale answer would have systrace
    refuse it instead, for capabilities it does not hold, and log that)."""
    if os.geteuid() != 0:
        pytest.skip("needs a root tracee with CAP_DAC_OVERRIDE")
    binary = cbin("caches")
    secret = tmp_path / "secret"
    secret.write_text("x")
    secret.chmod(0)
    native = run([binary, "unshare", "user", str(secret)])
    assert native.stdout == b"open 1: ok\nopen 2: EACCES\n", native
    policies = tmp_path / "policies"
    assert systrace("-d", str(policies), "-A", binary, "unshare", "user", str(secret)).returncode == 0
    enforced = systrace("-d", str(policies), "-a", "-e", "--supervisors", supervisors, binary, "unshare", "user",
                        str(secret))
    assert enforced.stdout == native.stdout, enforced
    assert b"deny" not in enforced.stderr, enforced.stderr[-400:]


@pytest.mark.parametrize(("mode", "argument", "mode_bits"), [
    ("capset", None, 0o000),  # without CAP_DAC_OVERRIDE root opens no file mode 000
    ("setfsuid", "65534", 0o600),  # as fsuid nobody, a root-only file
])
@pytest.mark.parametrize("supervisors", ["1", "2"])
def test_the_identity_of_an_emulated_open_follows_the_thread_s_credentials(cbin, tmp_path: Path, supervisors: str,
                                                                           mode: str, argument: str | None,
                                                                           mode_bits: int) -> None:
    """The identity an emulated open is made as is kept per thread (processes.py
    credentials_status): after the thread changes its capabilities or fsuid the
    next open is made as the new identity, as natively (a stale one would open it)."""
    if os.geteuid() != 0:
        pytest.skip("needs a root tracee to drop what it holds")
    binary = cbin("caches")
    secret = tmp_path / "secret"
    secret.write_text("x")
    secret.chmod(mode_bits)
    argv = [binary, mode, *([argument] if argument else []), str(secret)]
    native = run(argv)
    assert native.stdout == b"open 1: ok\nopen 2: EACCES\n", native
    policies = tmp_path / "policies"
    assert systrace("-d", str(policies), "-A", *argv).returncode == 0
    enforced = systrace("-d", str(policies), "-a", "-e", "--supervisors", supervisors, *argv)
    assert enforced.stdout == native.stdout, enforced
