"""Error paths do not cascade (issue 11 item 5): every new learned policy starts from a
visible, editable base of calls on the process itself and on descriptors it holds, and
signals it sends itself; a denial returns the errno the call can return."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from conftest import base_env, run, systrace

from systrace.decide.base import BASE_COMMENT, base_rules
from systrace.facts import HELD, ROWS, SELF
from systrace.policy.printer import rule_text
from systrace.policy.store import file_name

CLEAN = base_env(PATH="/usr/bin:/bin")


def test_the_base_is_defined_by_the_table() -> None:
    texts = {rule_text(rule) for rule in base_rules()}
    for name, row in ROWS.items():
        if row.route == "kernel":
            assert not any(text.startswith(f"native-{name}:") for text in texts), name  # the filter decides them
        elif row.base is None and row.reach in (SELF, HELD):
            assert f"native-{name}: permit" in texts, name
        elif row.base is None:
            assert not any(text.startswith(f"native-{name}:") for text in texts), name
    assert ('native-tgkill: pidname eq "<own process>" or pidname eq "<own thread>" or pidname re "^<descendant: " '
            'then permit') in texts
    assert "native-write: permit" in texts and "native-mprotect: permit" in texts
    assert not any(text.startswith(("native-ptrace", "native-openat", "native-prlimit64")) for text in texts)


def test_gcc_writes_its_error_message_under_a_policy_learned_from_a_success(tmp_path: Path) -> None:
    """-fsyntax-only writes nothing when the program is right; the error message of a
    wrong one is a write the learning run never made."""
    source = tmp_path / "prog.c"
    policies = str(tmp_path / "policies")
    argv = ["gcc", "-fsyntax-only", str(source)]
    source.write_text("int main(void) { return 0; }\n")
    assert systrace("-d", policies, "-A", *argv, env=CLEAN).returncode == 0
    source.write_text("int main(void) { return x; }\n")
    native = run(argv, env=CLEAN)
    enforced = systrace("-d", policies, "-a", "-e", *argv, env=CLEAN)
    assert native.returncode == enforced.returncode == 1
    assert b"error: \xe2\x80\x98x\xe2\x80\x99 undeclared" in native.stderr
    assert enforced.stderr == native.stderr  # the message, and no denial


def test_abort_signals_itself_under_a_policy_learned_without_it(cbin, tmp_path: Path) -> None:
    policies = str(tmp_path / "policies")
    assert systrace("-d", policies, "-A", cbin("reach"), "nothing").returncode == 0
    native = run([cbin("reach"), "abort"])
    enforced = systrace("-d", policies, "-a", "-e", cbin("reach"), "abort")
    assert native.returncode == -signal.SIGABRT
    assert enforced.returncode == 128 + signal.SIGABRT, enforced  # not SIGSEGV
    assert b"deny" not in enforced.stderr


def test_the_base_is_written_once_and_can_be_edited(cbin, tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    binary = cbin("reach")
    assert systrace("-d", str(policies), "-A", binary, "nothing").returncode == 0
    path = policies / file_name(binary)
    text = path.read_text()
    assert text.count(BASE_COMMENT.text) == 1 and "\tnative-write: permit\n" in text
    assert systrace("-d", str(policies), "-A", binary, "nothing").returncode == 0
    assert path.read_text() == text  # a second run adds nothing, the base included
    # edited: mprotect only without PROT_EXEC; the denial gets ENOMEM, as from the kernel
    path.write_text(text.replace("\tnative-mprotect: permit\n", '\tnative-mprotect: prot neq "PROT_READ|PROT_EXEC" then permit\n'))
    enforced = systrace("-d", str(policies), "-a", "-e", binary, "mprotect")
    assert b"mprotect: ENOMEM" in enforced.stdout, enforced
    assert b"syscall: linux-mprotect(10)" in enforced.stderr


def test_enforced_denials_use_the_errno_of_the_call(cbin, tmp_path: Path) -> None:
    policies = str(tmp_path / "policies")
    binary = cbin("reach")
    assert systrace("-d", policies, "-A", binary, "kill", "child").returncode == 0  # and reaps its child
    denied = systrace("-d", policies, "-a", binary, "fchmod", "/etc/hostname", "/etc/hostname", "A")
    assert b"fchmod setup: EACCES" in denied.stdout, denied  # a file call (its openat): EACCES
    denied = systrace("-d", policies, "-a", binary, "kill", "1")  # a process call: EPERM
    assert b"kill: EPERM" in denied.stdout, denied


def test_signals_to_its_own_descendants_are_in_the_base(cbin, tmp_path: Path) -> None:
    """A pool stops its workers on some runs only: learned from a run that signals no one,
    a kill of its own child is permitted under -a; a kill of a process outside the run
    (a sleeping process started by the test, same user) is still denied (1 native, 0)."""
    policies = str(tmp_path / "policies")
    binary = cbin("reach")
    assert systrace("-d", policies, "-A", binary, "nothing").returncode == 0
    text = (Path(policies) / file_name(binary)).read_text()
    assert [line for line in text.splitlines() if "native-kill:" in line] == [  # the base's only
        '\tnative-kill: pidname eq "<own process>" or pidname eq "<own thread>" or pidname re "^<descendant: " then permit']
    enforced = systrace("-d", policies, "-a", "-e", binary, "kill", "child")
    assert b"kill: ok" in enforced.stdout and b"deny" not in enforced.stderr, enforced
    outsider = subprocess.Popen(["sleep", "60"])
    try:
        native = run([binary, "kill", str(outsider.pid)])
        attack = systrace("-d", policies, "-a", binary, "kill", str(outsider.pid))
    finally:
        outsider.kill()
        outsider.wait()
    assert (b"kill: ok" in native.stdout, b"kill: ok" in attack.stdout) == (True, False)
    assert b"kill: EPERM" in attack.stdout


def test_an_existing_policy_without_the_base_gets_it_only_when_asked(cbin, tmp_path: Path) -> None:
    """A hand-written policy (or one learned before the base existed) is not widened by
    -A: one notice says how to add the base; -A --add-base adds it after the policy's
    own rules (which stay first, so they still decide what they name), once."""
    policies = tmp_path / "policies"
    binary = cbin("reach")
    assert systrace("-d", str(policies), "-A", binary, "nothing").returncode == 0
    path = policies / file_name(binary)
    learned = path.read_text()
    hand_written = "".join(line for line in learned.splitlines(keepends=True)
                           if not line.startswith(("\t# base:", "\tnative-write: permit", "\tnative-mprotect: permit")))
    own_rule = '\tnative-mprotect: prot eq "PROT_READ|PROT_EXEC" then deny[ENOMEM]\n'
    hand_written = hand_written.replace("Emulation: native\n", "Emulation: native\n" + own_rule, 1)
    path.write_text(hand_written)
    again = systrace("-d", str(policies), "-A", binary, "nothing")
    notes = [line for line in again.stderr.decode().splitlines() if "has no base" in line]
    assert again.returncode == 0 and len(notes) == 1, again
    assert notes[0] == (f'systrace: note: the policy for {binary} ({path}) has no base (README "The base"): under -a, '
                        "error paths this run did not take may be denied; -A --add-base adds it")
    relearned = path.read_text()  # what the run needed (write, mprotect), not the base's 197 rules
    assert BASE_COMMENT.text not in relearned and relearned.startswith(hand_written)
    assert 0 < relearned.count("\n") - hand_written.count("\n") < 10
    added = systrace("-d", str(policies), "-A", "--add-base", binary, "nothing")
    assert added.returncode == 0 and b"has no base" not in added.stderr, added
    text = path.read_text()
    assert text.startswith(relearned) and text.count(BASE_COMMENT.text) == 1 and "\tnative-write: permit\n" in text
    # the policy's own rule comes first: mprotect stays denied with its errno
    assert b"mprotect: ENOMEM" in systrace("-d", str(policies), "-a", binary, "mprotect").stdout
    assert systrace("-d", str(policies), "-A", "--add-base", binary, "nothing").returncode == 0
    assert path.read_text() == text  # once


def test_add_base_needs_learning(tmp_path: Path) -> None:
    done = systrace("-d", str(tmp_path), "-a", "--add-base", "true")
    assert done.returncode == 2 and done.stderr.startswith(b"systrace: --add-base needs -A\n"), done
    assert b"Traceback" not in done.stderr
