"""Paths and strings the kernel reads again from memory once the call is continued, which
systrace does not carry out: bpf's BPF_OBJ_PIN/BPF_OBJ_GET pathname (inside union
bpf_attr, translated as `filename`), fsopen's file system type, fsconfig's key and value.
A rule that looks at them refuses the call (EACCES, logged: a second thread could swap
them after the check); a rule that does not permits every value anyway and is
continued. watch_race.c's bpfpin: natively a second thread flipping the pinned path gets DIR/s
pinned; under -a with a rule permitting only DIR/a, never."""

from __future__ import annotations

import subprocess
from pathlib import Path

from conftest import Runner
from test_watch_emulation import THREADING, counts, fresh
from test_watch_emulation import binaries as programs  # noqa: F401 (a fixture)

ROUNDS = 2000
RACED = "which the kernel would read again: refused"


def in_bpffs(directory: Path, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """argv in a mount namespace of its own with a bpf file system on `directory`
    (systrace and its tracee in the same one)."""
    wrapper = ["unshare", "-m", "--propagation", "private", "sh", "-c", 'mount -t bpf bpf "$0" && exec "$@"',
               str(directory), *argv]
    return subprocess.run(wrapper, capture_output=True, timeout=kwargs.pop("timeout", 600), **kwargs)


def test_bpf_pin_swapped_during_the_check(root_runner: Runner, programs: dict[str, str], shared_dir: Path) -> None:  # noqa: F811
    race = programs["watch_race"]
    directory = fresh(shared_dir, "bpf-race", 0)
    native = 0
    for _ in range(5):  # (a loaded machine may let the checking thread win every round)
        native = counts(in_bpffs(directory, [race, "bpfpin", str(directory), "20000"]))[0]
        if native:
            break
    assert native > 0  # natively the swap pins DIR/s

    policies = root_runner.policy_dir(shared_dir / "bpf-race-policies")
    learn = in_bpffs(directory, root_runner.argv("-d", str(policies), "-A", race, "bpfpin", str(directory), "0"),
                     env=root_runner.env)
    assert learn.returncode == 0, learn.stderr
    policy = next(policies.glob("*watch_race"))
    policy.write_text(policy.read_text() + "".join(f"\tnative-{name}: permit\n" for name in THREADING)
                      + '\tnative-bpf: cmd eq "0" then permit\n'
                      + f'\tnative-bpf: cmd eq "6" and filename eq "{directory}/a" then permit\n')
    log = root_runner.writable(shared_dir / "bpf-race-log")
    result = in_bpffs(directory, root_runner.argv("-d", str(policies), "-a", "-E", str(log), race, "bpfpin",
                                                  str(directory), str(ROUNDS)), env=root_runner.env, timeout=900)
    escapes, denied, total = counts(result)
    print(f"bpf BPF_OBJ_PIN as root: natively {native}/20,000 through; under -a {escapes}/{total} ({denied} refused)")
    text = log.read_text()
    assert (escapes, denied, total) == (0, ROUNDS, ROUNDS), text[-3000:]
    assert f"decided on its filename, {RACED}" in text and f"filename: {directory}/a" in text
    assert "internal error" not in text


def fs_policy(runner: Runner, shared_dir: Path, program: str, rules: str, name: str) -> tuple[list[str], str]:
    """fs_cases run under -a with a learned policy whose fsopen/fsconfig rules are `rules`."""
    policies = runner.policy_dir(shared_dir / f"fs-policies-{name}")
    learn = runner("-d", str(policies), "-A", program)
    assert learn.returncode == 0, learn.stderr
    policy = next(policies.glob("*fs_cases"))
    kept = [line for line in policy.read_text().splitlines() if "fsopen" not in line and "fsconfig" not in line]
    policy.write_text("\n".join(kept) + "\n" + rules)
    log = runner.writable(shared_dir / f"fs-log-{name}")
    result = runner("-d", str(policies), "-a", "-E", str(log), program)
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr
    return result.stdout.decode().splitlines(), log.read_text()


def test_fs_strings_decided_on_are_refused(root_runner: Runner, programs: dict[str, str], shared_dir: Path) -> None:  # noqa: F811
    program = programs["fs_cases"]
    native = root_runner.native(program).stdout.decode().splitlines()
    assert native == ["fsopen: ok", "fsconfig string: ok", "fsconfig flag: ok", "fsconfig bad key: -1 EINVAL",
                      "fsconfig create: ok"]
    lines, log = fs_policy(root_runner, shared_dir, program, '\tnative-fsopen: fstype eq "tmpfs" then permit\n', "type")
    assert lines == ["fsopen: -1 EACCES"] and f"decided on its fstype, {RACED}" in log
    lines, log = fs_policy(root_runner, shared_dir, program, '\tnative-fsopen: permit\n'
                           '\tnative-fsconfig: cmd eq "6" then permit\n'
                           '\tnative-fsconfig: key eq "mode" then permit\n'
                           '\tnative-fsconfig: value eq "1" then permit\n', "key")
    assert lines == ["fsopen: ok", "fsconfig string: -1 EACCES", "fsconfig flag: -1 EPERM",  # (no rule permits it)
                     "fsconfig bad key: -1 EACCES", "fsconfig create: ok"], log[-3000:]
    assert f"decided on its key, {RACED}" in log and f"decided on its value, {RACED}" in log
    assert "key: mode, value: 0700" in log  # translated (SET_STRING's value)
    lines, log = fs_policy(root_runner, shared_dir, program, '\tnative-fsopen: permit\n\tnative-fsconfig: permit\n',
                           "plain")
    assert lines == native and "internal error" not in log  # continued: every value was permitted anyway
