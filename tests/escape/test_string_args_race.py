"""Calls decided on a string that is not a path, raced: a second thread flips the string
between the name the policy permits (a-TAG) and one it does not (d-TAG) while the call is
checked (string_race.c). Continued after the check, the kernel read the flipped string
again and acted on d-TAG (a memfd, a queue made or unlinked, a host or domain name, a
key, a symlink's target). Now memfd_create, mq_open, mq_unlink, sethostname and
setdomainname are carried out on the copy the check read (kernel/emulate_strings.py),
symlink by kernel/emulate_path.py with the target the check read (before: a rule on
the target alone continued the call, and the emulated call read the target again); add_key and request_key, which no
other process can make for the caller (its own keyrings), are refused when a rule looks
at their strings: a learned rule names their keyring only (test_string_calls_parity.py)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import Runner
from test_supervisor_integrity import _compile

ROUNDS = int(os.environ.get("SYSTRACE_STRING_RACE_ROUNDS", "1000"))
THREADING = ["mmap", "mprotect", "munmap", "clone", "clone3", "madvise", "rseq", "set_robust_list", "futex", "exit",
             "brk", "write", "wait4", "exit_group"]
STRING = {"add_key": "description", "request_key": "description", "symlink": "target"}  # the others: name
REFUSED = ("add_key", "request_key")
# (call, mode): "own" enters IPC and UTS namespaces of its own first (the user's with a
# user namespace); sethostname and setdomainname always do
CASES = [("memfd_create", ""), ("mq_open", ""), ("mq_open", "own"), ("mq_unlink", "own"), ("sethostname", ""),
         ("setdomainname", ""), ("add_key", ""), ("request_key", ""), ("symlink", "")]


def counts(result: subprocess.CompletedProcess) -> tuple[int, int, int]:
    words = result.stdout.decode().split()
    assert len(words) == 6, (result.stdout, result.stderr[-2000:])
    return int(words[1]), int(words[3]), int(words[5])


def native_escapes(runner: Runner, binary: str, call: str, tag: str, mode: str) -> int:
    """Escapes natively, tried again (up to five times) when a loaded machine let the
    checking thread win every round."""
    for _ in range(5):
        result = runner.native(binary, call, "20000", tag, mode, timeout=300)
        assert result.returncode == 0, result.stderr
        escapes = counts(result)[0]
        if escapes:
            return escapes
    return 0


def race_policy(runner: Runner, binary: str, work: Path, call: str, tag: str, mode: str) -> Path:
    """A policy learned from one call on a-TAG (its namespaces entered, the helpers' calls
    made), its rules for the call replaced by one on a-TAG's name."""
    policies = runner.policy_dir(work / f"policies-{call}-{mode}")
    learned = runner("-d", str(policies), "-A", binary, call, "0", tag, mode)
    assert learned.returncode == 0 and b"escapes 0 denied 0 total 1" in learned.stdout, learned
    policy = next(path for path in policies.iterdir() if not path.name.startswith("."))  # (not the lock)
    kept = [line for line in policy.read_text().splitlines(keepends=True) if f"native-{call}:" not in line
            and not (call == "symlink" and line.startswith("\tnative-fswrite:"))]  # (its alias: any target)
    extra = [f"\tnative-{name}: permit\n" for name in THREADING]
    if call == "mq_unlink":  # d-TAG made first, and looked for after each unlink
        extra.append(f'\tnative-mq_open: name eq "a-{tag}" or name eq "d-{tag}" then permit\n')
    if call == "symlink":  # the link removed before each try
        extra.append(f'\tnative-unlink: filename eq "/tmp/string-race-l-{tag}" then permit\n')
    if call == "request_key":  # both keys made first
        extra.append('\tnative-add_key: keyring eq "process" then permit\n')
    policy.write_text("".join(kept) + f'\tnative-{call}: {STRING.get(call, "name")} eq "a-{tag}" then permit\n'
                      + "".join(extra))
    os.chown(policy, runner.uid, -1)
    return policies


@pytest.mark.parametrize(("call", "mode"), CASES)
def test_a_string_swapped_after_the_check_is_never_acted_on(runner: Runner, shared_dir: Path, call: str,
                                                           mode: str) -> None:
    binary = _compile("string_race", shared_dir)
    tag = f"{runner.name}{os.getpid()}{mode}"
    native = native_escapes(runner, binary, call, tag, mode)
    assert native > 0  # natively the swap reaches d-TAG
    work = Path(shared_dir) / f"string-race-{runner.name}"
    work.mkdir(mode=0o755, exist_ok=True)
    policies = race_policy(runner, binary, work, call, tag, mode)
    log = runner.writable(work / f"log-{call}-{mode}")
    result = runner("-d", str(policies), "-a", "-E", str(log), binary, call, str(ROUNDS), tag, mode, timeout=900)
    assert result.returncode == 0, (result.stderr[-2000:], log.read_text()[-3000:])
    escapes, denied, total = counts(result)
    print(f"{runner.name} {call} {mode or '-'}: natively {native}/20000 escapes; "
          f"under -a {escapes}/{total}, {denied} refused")
    text = log.read_text()
    assert (escapes, total) == (0, ROUNDS), text[-3000:]
    assert "internal error" not in text
    if call in REFUSED:  # every call refused: the rule looks at a string the kernel reads again
        assert denied == ROUNDS, text[-3000:]
        assert "which the kernel would read again: refused" in text
        # bad input: the rule parses, and systrace says once, at the start, that it lets nothing through
        assert f"'{call}' decided on its 'description' is refused at every call (EACCES)".encode() in result.stderr
        assert b"Traceback" not in result.stderr
    else:  # carried out on a-TAG, refused on d-TAG: the race did present it to the check
        assert 0 < denied < ROUNDS, text[-3000:]
