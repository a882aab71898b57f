"""Decided by name only (README "Caches"): a routed call the chain decides whatever its
arguments (a plain rule for a call on the process itself or a held descriptor) is
answered from a per-binary table, without a Call, a translation or a decider, for a
process known and current; exactly as the stages would answer it, and never for a call
that is logged, depends on its arguments or credentials, or for a process a decider
keeps state for. In process (fake listener) and on the real kernel."""

from __future__ import annotations

import errno
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import run, systrace
from test_pipeline_in_process import OPEN, SELF_EXE, CountedTranslations, Parts

from systrace.decide import PASSES, PERMIT, Chain, PermitAll
from systrace.decide.modes import Enforce, Learn, Observer
from systrace.decide.policy import ExecExpectation
from systrace.decide.uffd import UffdGuard
from systrace.kernel.syscalls_x86_64 import SYSCALLS
from systrace.policy.store import file_name
from systrace.supervisor import BY_NAME_CALLS

LSEEK, OPENAT, IOCTL = SYSCALLS["lseek"], SYSCALLS["openat"], SYSCALLS["ioctl"]


@pytest.fixture(autouse=True)
def closed_afterwards():
    yield
    while OPEN:
        OPEN.pop().close()


def enforcing(tmp_path: Path, rules: str) -> Parts:
    return Parts(lambda p: [UffdGuard(p.store), p.policy_decider(require_policy=True), Enforce()], tmp_path, rules)


def serve_each(parts: Parts, counted: CountedTranslations, count: int, nr: int = LSEEK) -> list[tuple[str, int]]:
    """Push and serve `count` calls one by one; (answer, value) of each."""
    answers = []
    for _ in range(count):
        notif = parts.listener.push(nr, args=(3, 0, 0))
        counted.current = notif.id
        (answer,) = parts.serve()
        assert answer[1] == notif.id
        answers.append((answer[0], answer[2]))
    return answers


# -- in process -----------------------------------------------------------------------
def test_a_plain_permit_is_answered_by_name_after_the_first_call(tmp_path: Path, monkeypatch) -> None:
    counted = CountedTranslations(monkeypatch)
    parts = enforcing(tmp_path, "\tnative-lseek: permit\n")
    assert serve_each(parts, counted, 5) == [("allow", 0)] * 5
    # the first call made the process known (its binary read), through the stages; the others by name
    assert sum(counted.by_call.values()) == 1
    assert parts.supervisor.served == 5 and parts.supervisor.served_by_name == 4
    assert parts.supervisor.routed == {LSEEK: 5}
    assert parts.supervisor.carried == {"continue": 5}  # --stats: carried out as (what bench/ prices)
    assert parts.supervisor.by_name == {SELF_EXE: {LSEEK: parts.supervisor.by_name[SELF_EXE][LSEEK]}}
    assert parts.sink.messages == []


def test_a_plain_deny_is_answered_by_name_with_the_errno_the_stages_give(tmp_path: Path, monkeypatch) -> None:
    counted = CountedTranslations(monkeypatch)
    parts = enforcing(tmp_path, "\tnative-lseek: deny[enoent]\n")
    assert serve_each(parts, counted, 3) == [("fail", errno.ENOENT)] * 3
    assert parts.supervisor.served_by_name == 2
    assert parts.supervisor.served == 3 and parts.supervisor.routed == {LSEEK: 3}
    assert parts.supervisor.carried == {"error": 3}  # by name or through the stages: counted alike


@pytest.mark.parametrize("rules", [
    "\tnative-lseek: permit log\n",  # logged: the record shows its arguments
    '\tnative-lseek: fd eq "3" then permit\n',  # depends on an argument
    "\tnative-lseek: true then permit, if user = 0\n",  # depends on the credentials
    "\tnative-lseek: ask\n",  # the mode's fallback decides
    "",  # no rule: enforce denies and logs
])
def test_a_decision_that_depends_on_the_call_or_is_logged_goes_through_the_stages(tmp_path: Path, monkeypatch,
                                                                                   rules: str) -> None:
    counted = CountedTranslations(monkeypatch)
    parts = enforcing(tmp_path, rules)
    answers = serve_each(parts, counted, 3)
    assert len(set(answers)) == 1  # the same answer every time
    assert parts.supervisor.served_by_name == 0
    assert sum(counted.by_call.values()) == 3  # each one translated, decided by the chain


def test_a_call_with_a_path_is_never_decided_by_name_whatever_the_policy(tmp_path: Path) -> None:
    """The checks of systrace's own /proc entries and of cgroup files read the path of
    every routed open, whatever the policy says."""
    parts = enforcing(tmp_path, "\tnative-openat: permit\n\tnative-connect: permit\n\tnative-lseek: permit\n")
    chain = parts.session.chain
    assert chain.by_name(SELF_EXE, LSEEK) is not None
    assert chain.by_name(SELF_EXE, OPENAT) is None and OPENAT not in BY_NAME_CALLS  # an alias (fsread, fswrite)
    # the loop would take connect: the policy decider refuses (its address is checked and emulated)
    assert chain.by_name(SELF_EXE, SYSCALLS["connect"]) is None and SYSCALLS["connect"] in BY_NAME_CALLS
    for name in ("execve", "execveat", "setuid", "setresuid", "brk", "prlimit64", "sched_setaffinity",
                 "landlock_restrict_self", "unlink", "rename"):
        assert SYSCALLS[name] not in BY_NAME_CALLS, name  # changes a cache, names a process, moves the break, an alias
    for name in ("kill", "tgkill", "ioctl", "fcntl", "execve"):  # reach outside, or the ioctl's request decides
        assert chain.by_name(SELF_EXE, SYSCALLS[name]) is None, name


def test_only_a_chain_whose_every_decider_can_say_decides_by_name(tmp_path: Path) -> None:
    parts = enforcing(tmp_path, "\tnative-lseek: permit\n")
    decider = parts.session.chain.deciders[1]
    assert UffdGuard().by_name(SELF_EXE, LSEEK) is PASSES and UffdGuard().by_name(SELF_EXE, IOCTL) is None
    assert Chain([decider, Enforce()]).by_name(SELF_EXE, LSEEK).verdict == PERMIT
    learn = Learn(parts.store)
    assert Chain([Observer(learn), decider, learn]).by_name(SELF_EXE, LSEEK) is None  # learning sees every call
    assert Chain([decider, Enforce()]).by_name("/no/policy", LSEEK) is None  # -a: killed and logged
    assert Chain([PermitAll(log=False)]).by_name(SELF_EXE, OPENAT).verdict == PERMIT
    assert Chain([PermitAll(log=True)]).by_name(SELF_EXE, LSEEK) is None


def test_a_process_a_decider_keeps_state_for_goes_through_the_stages(tmp_path: Path, monkeypatch) -> None:
    counted = CountedTranslations(monkeypatch)
    parts = enforcing(tmp_path, "\tnative-lseek: permit\n")
    assert serve_each(parts, counted, 2) == [("allow", 0)] * 2
    decider = parts.session.chain.deciders[1]
    decider.expected_exe.set(os.getpid(), ExecExpectation(SELF_EXE))  # an exec it checked is pending
    assert serve_each(parts, counted, 2) == [("allow", 0)] * 2
    assert parts.supervisor.served_by_name == 1 and sum(counted.by_call.values()) == 3


@pytest.mark.parametrize("what", ["exec", "credentials"])
def test_after_a_permitted_exec_or_set_id_the_next_call_goes_through_the_stages(tmp_path: Path, monkeypatch,
                                                                                  what: str) -> None:
    counted = CountedTranslations(monkeypatch)
    parts = enforcing(tmp_path, "\tnative-lseek: permit\n")
    assert serve_each(parts, counted, 2) == [("allow", 0)] * 2
    parts.processes.permitted(what, os.getpid(), os.getpid())  # as Supervisor.decide does before answering
    assert parts.processes.cached(os.getpid()) is None
    assert serve_each(parts, counted, 2) == [("allow", 0)] * 2
    assert parts.supervisor.served_by_name == 2 and sum(counted.by_call.values()) == 2


# -- on the real kernel ------------------------------------------------------------------
COUNT = "200"


def _policies(cbin, tmp_path: Path, *argv: str) -> tuple[str, Path]:
    """Learn `byname argv`; a policy for /usr/bin/true (reachable: the exec rule added)
    denying lseek (the policies differ), so the kernel plan routes lseek for every binary."""
    binary = cbin("byname")
    policies = tmp_path / "policies"
    assert systrace("-d", str(policies), "-A", binary, *argv).returncode == 0
    own = policies / file_name(binary)
    header, _, body = own.read_text().partition("\n")
    assert "\tnative-lseek: permit\n" in body  # the base: a call on a held descriptor
    own.write_text(f'{header}\n\tnative-execve: filename eq "/usr/bin/true" then permit\n{body}')
    (policies / "true").write_text('Policy: /usr/bin/true, Emulation: native\n\tnative-lseek: deny\n')
    return binary, policies


def _by_name(stderr: bytes) -> int:
    found = re.search(rb"systrace: (\d+) of them decided by name only", stderr)
    return int(found.group(1)) if found else 0


def test_a_routed_call_is_decided_by_name_as_the_policy_says(cbin, tmp_path: Path) -> None:
    binary, policies = _policies(cbin, tmp_path, "seek", COUNT)
    assert run([binary, "seek", COUNT]).stdout == f"seek 1: ok {COUNT}\n".encode()
    enforced = systrace("-d", str(policies), "-a", "--stats", binary, "seek", COUNT)
    assert enforced.stdout == f"seek 1: ok {COUNT}\n".encode(), enforced
    assert re.search(rb"routed by system call: lseek " + COUNT.encode(), enforced.stderr), enforced.stderr
    assert _by_name(enforced.stderr) >= int(COUNT) - 1
    own = policies / file_name(binary)
    own.write_text(own.read_text().replace("\tnative-lseek: permit\n", "\tnative-lseek: deny[enoent]\n"))
    denied = systrace("-d", str(policies), "-a", "--stats", binary, "seek", COUNT)
    assert denied.stdout == f"seek 1: ENOENT {COUNT}\n".encode(), denied
    assert _by_name(denied.stderr) >= int(COUNT) - 1


def test_after_an_exec_the_new_binary_s_rule_decides(cbin, tmp_path: Path) -> None:
    """The table is per binary, and a process's binary is read again after its exec: the
    copy's own policy denies what the first binary's permitted by name."""
    binary = cbin("byname")
    copy = tmp_path / "byname-copy"
    shutil.copy(binary, copy)
    argv = [binary, "exec", str(copy), COUNT]
    _, policies = _policies(cbin, tmp_path, *argv[1:])
    other = policies / file_name(str(copy))
    assert "\tnative-lseek: permit\n" in other.read_text()
    other.write_text(other.read_text().replace("\tnative-lseek: permit\n", "\tnative-lseek: deny[enoent]\n"))
    assert run(argv).stdout == f"seek 1: ok {COUNT}\nseek 1: ok {COUNT}\n".encode()
    enforced = systrace("-d", str(policies), "-a", "--stats", *argv)
    assert enforced.stdout == f"seek 1: ok {COUNT}\nseek 1: ENOENT {COUNT}\n".encode(), enforced
    assert _by_name(enforced.stderr) >= 2 * (int(COUNT) - 1)


def test_a_credential_change_is_seen_by_a_rule_on_the_credentials(cbin, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("setresuid to another user needs root")
    binary, policies = _policies(cbin, tmp_path, "setuid", "65534", COUNT)
    own = policies / file_name(binary)
    own.write_text(own.read_text().replace("\tnative-lseek: permit\n", "\tnative-lseek: true then permit, if user = 0\n"))
    assert run([binary, "setuid", "65534", COUNT]).stdout == f"seek 1: ok {COUNT}\nseek 2: ok {COUNT}\n".encode()
    enforced = systrace("-d", str(policies), "-a", "--stats", binary, "setuid", "65534", COUNT)
    assert enforced.stdout == f"seek 1: ok {COUNT}\nseek 2: EPERM {COUNT}\n".encode(), enforced
    assert _by_name(enforced.stderr) < int(COUNT)  # a rule on the credentials is never decided by name


@pytest.mark.parametrize("mode", [["-A"], ["-a", "-r", "1", "--seed", "1"]])
def test_learning_and_fault_injection_decide_every_call_through_the_stages(cbin, tmp_path: Path, mode) -> None:
    binary, policies = _policies(cbin, tmp_path, "seek", COUNT)
    result = systrace("-d", str(policies), *mode, "--stats", binary, "seek", COUNT)
    assert re.search(rb"routed by system call: lseek " + COUNT.encode(), result.stderr), result.stderr
    assert _by_name(result.stderr) == 0, result.stderr


def test_each_decision_is_counted_by_how_it_is_carried_out() -> None:
    """--stats' "carried out as": bench/bench.py prices each kind at its own C floor."""
    from systrace.decide import DENY, EMULATE_OPEN, EMULATE_PATH, KILL, RETURN, Decision
    from systrace.supervisor import carried_as

    assert carried_as(None) == "continue"  # the launcher's own calls, let through
    assert carried_as(Decision(PERMIT)) == "continue"
    assert carried_as(Decision(DENY, errno.EACCES)) == "error"
    assert carried_as(Decision(RETURN, value=3)) == "return"
    assert carried_as(Decision(KILL)) == "kill"
    assert carried_as(Decision(PERMIT, effect=EMULATE_OPEN)) == "emulate-open"
    assert carried_as(Decision(PERMIT, effect=EMULATE_PATH)) == "emulate-path"
