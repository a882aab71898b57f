"""Paths and strings inside structures or read again by the kernel. bpf's BPF_OBJ_PIN
and BPF_OBJ_GET pathname (inside union bpf_attr, translated as `filename`) decided on
is carried out by systrace's helper on the path checked (kernel/emulate_mount.py):
natively a second thread flipping the path pins DIR/s or gets its map (watch_race.c's
bpfpin, bpfget); under -a with a rule permitting only DIR/a, never; bpf_cases.c gives
the same lines natively and under -a. fsopen's file system type and fsconfig's key and
value, which the kernel reads again once the call is continued and systrace does not
carry out: a rule that looks at them refuses the call (EACCES, logged); a rule that
does not permits every value anyway and is continued."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import Runner
from test_mount_emulation import first_policy
from test_watch_emulation import THREADING, counts, fresh
from test_watch_emulation import binaries as programs  # noqa: F401 (a fixture)

from systrace.kernel.syscalls_x86_64 import SYSCALLS

ROUNDS = 2000
RACED = "which the kernel would read again: refused"


def in_bpffs(directory: Path, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    """argv in a mount namespace of its own with a bpf file system on `directory`
    (systrace and its tracee in the same one)."""
    wrapper = ["unshare", "-m", "--propagation", "private", "sh", "-c", 'mount -t bpf bpf "$0" && exec "$@"',
               str(directory), *argv]
    return subprocess.run(wrapper, capture_output=True, timeout=kwargs.pop("timeout", 600), **kwargs)


@pytest.mark.parametrize("family", ["bpfpin", "bpfget"])
def test_bpf_path_swapped_during_the_check(root_runner: Runner, programs: dict[str, str], shared_dir: Path,  # noqa: F811
                                          family: str) -> None:
    race = programs["watch_race"]
    directory = fresh(shared_dir, f"bpf-race-{family}", 0)
    native = 0
    for _ in range(5):  # (a loaded machine may let the checking thread win every round)
        native = counts(in_bpffs(directory, [race, family, str(directory), "20000"]))[0]
        if native:
            break
    assert native > 0  # natively the swap pins DIR/s, or gets its map

    policies = root_runner.policy_dir(shared_dir / f"bpf-race-policies-{family}")
    learn = in_bpffs(directory, root_runner.argv("-d", str(policies), "-A", race, family, str(directory), "0"),
                     env=root_runner.env)
    assert learn.returncode == 0, learn.stderr
    policy = next(policies.glob("*watch_race"))
    policy.write_text(policy.read_text() + "".join(f"\tnative-{name}: permit\n" for name in THREADING)
                      + '\tnative-bpf: cmd eq "0" or cmd eq "15" then permit\n\tnative-unlink: permit\n'
                      + ('\tnative-bpf: cmd eq "6" then permit\n' if family == "bpfget" else "")
                      + f'\tnative-bpf: filename eq "{directory}/a" then permit\n')
    log = root_runner.writable(shared_dir / f"bpf-race-log-{family}")
    result = in_bpffs(directory, root_runner.argv("-d", str(policies), "-a", "-E", str(log), race, family,
                                                  str(directory), str(ROUNDS)), env=root_runner.env, timeout=900)
    escapes, denied, total = counts(result)
    print(f"{family} as root: natively {native}/20,000 through; under -a {escapes}/{total} ({denied} refused)")
    text = log.read_text()
    assert (escapes, total) == (0, ROUNDS) and 0 < denied < ROUNDS, text[-3000:]  # DIR/a pinned or got by the helper
    assert RACED not in text and "internal error" not in text


def test_fstype_swapped_during_the_check(runner: Runner, programs: dict[str, str], shared_dir: Path) -> None:  # noqa: F811
    """A second thread flips fsopen's type between tmpfs (permitted) and ramfs: natively
    ramfs contexts are made (and mounted), under -a with a rule permitting only tmpfs
    never (the helper opens the type checked). As root, and as the user in a user and
    mount namespace of its own."""
    race = programs["watch_race"]
    args = ["userns"] if runner.name == "user" else []
    native = 0
    for _ in range(5):  # (a loaded machine may let the checking thread win every round)
        native = counts(runner.native(race, "fstype", "/", "20000", *args))[0]
        if native:
            break
    assert native > 0
    policies = runner.policy_dir(shared_dir / f"fstype-race-policies-{runner.name}")
    policy = first_policy(runner, policies, race)
    learn = runner("-d", str(policies), "-A", "--add-base", race, "fstype", "/", "0", *args)
    assert learn.returncode == 0, learn.stderr
    kept = [line for line in policy.read_text().splitlines() if not any(f"native-{name}:" in line for name in
                                                                         ("fsopen", "fsconfig", "fsmount"))]
    policy.write_text("\n".join(kept) + "\n" + "".join(f"\tnative-{name}: permit\n" for name in THREADING)
                      + '\tnative-fsopen: fstype eq "tmpfs" then permit\n\tnative-fsconfig: permit\n'
                      '\tnative-fsmount: permit\n\tnative-fstatfs: permit\n')
    log = runner.writable(shared_dir / f"fstype-race-log-{runner.name}")
    result = runner("-d", str(policies), "-a", "-E", str(log), race, "fstype", "/", str(ROUNDS), *args, timeout=900)
    escapes, denied, total = counts(result)
    print(f"fstype as {runner.name}: natively {native}/20,000 through; under -a {escapes}/{total} ({denied} refused)")
    text = log.read_text()
    assert (escapes, total) == (0, ROUNDS) and 0 < denied < ROUNDS, text[-3000:]
    assert RACED not in text and "internal error" not in text


def fs_policy(runner: Runner, shared_dir: Path, program: str, args: list[str], rules: str,
              name: str) -> tuple[list[str], str]:
    """fs_cases run under -a with a learned policy whose fsopen/fsconfig rules are `rules`."""
    policies = runner.policy_dir(shared_dir / f"fs-policies-{runner.name}-{name}")
    policy = first_policy(runner, policies, program)  # (its permit[mountns] rule: "userns" is another view)
    learn = runner("-d", str(policies), "-A", "--add-base", program, *args)
    assert learn.returncode == 0, learn.stderr
    kept = [line for line in policy.read_text().splitlines() if "fsopen" not in line and "fsconfig" not in line]
    policy.write_text("\n".join(kept) + "\n" + rules)
    log = runner.writable(shared_dir / f"fs-log-{runner.name}-{name}")
    result = runner("-d", str(policies), "-a", "-E", str(log), program, *args)
    assert result.returncode == 0 and b"Traceback" not in result.stderr, result.stderr
    return result.stdout.decode().splitlines(), log.read_text()


def test_fs_strings_decided_on(runner: Runner, programs: dict[str, str], shared_dir: Path) -> None:  # noqa: F811
    """fsopen decided on its type and fsconfig's FSCONFIG_SET_FLAG/SET_STRING decided on
    their key or value are made by the mount-family helper with the strings checked (the
    fs context taken with pidfd_getfd, the new one installed with ADDFD), as natively, as
    root and as the user in a user and mount namespace of its own; FSCONFIG_SET_PATH
    decided on its key is refused (EACCES, logged); a plain rule continues them."""
    program = programs["fs_cases"]
    args = ["userns"] if runner.name == "user" else []
    native = runner.native(program, *args).stdout.decode().splitlines()
    assert native[:2] == ["fsopen: ok", "fsconfig string: ok"] and native[-1] == "fsconfig create: ok", native
    assert "fsconfig bad descriptor: -1 EBADF" in native and "fsconfig path: -1 EINVAL" in native
    lines, log = fs_policy(runner, shared_dir, program, args, '\tnative-fsopen: fstype eq "tmpfs" then permit\n'
                           '\tnative-fsconfig: permit\n', "type")
    assert lines == native and RACED not in log, log[-3000:]
    keys = "".join(f'\tnative-fsconfig: key eq "{key}" then permit\n' for key in ("mode", "noswap", "nokey", "source"))
    lines, log = fs_policy(runner, shared_dir, program, args, '\tnative-fsopen: permit\n'
                           '\tnative-fsconfig: cmd eq "6" then permit\n' + keys, "key")
    expected = [line if not line.startswith("fsconfig path") else "fsconfig path: -1 EACCES" for line in native]
    assert lines == expected, log[-3000:]
    assert f"decided on its key, {RACED}" in log and "internal error" not in log
    lines, log = fs_policy(runner, shared_dir, program, args, '\tnative-fsopen: permit\n\tnative-fsconfig: permit\n',
                           "plain")
    assert lines == native and "internal error" not in log  # continued: every value was permitted anyway


def every_call_but_bpf(path: Path, program: str, bpf_rules: str) -> Path:
    """A policy for `program` permitting every call but bpf, which `bpf_rules` decide."""
    lines = [f"Policy: {Path(program).resolve()}, Emulation: native"]
    lines += [f"\tnative-{name}: permit" for name in SYSCALLS if name != "bpf"]
    path.write_text("\n".join(lines) + "\n" + bpf_rules)
    path.chmod(0o644)
    return path


def test_bpf_pin_carried_out_as_natively(root_runner: Runner, programs: dict[str, str], shared_dir: Path) -> None:  # noqa: F811
    """BPF_OBJ_PIN permitted on its path is pinned by the helper on the path checked (the
    tracee's object taken with pidfd_getfd, BPF_F_PATH_FD on the checked parent), and
    BPF_OBJ_GET gets the object checked (opened O_PATH, named by the helper's
    /proc/self/fd entry), its new descriptor installed with ADDFD: every case of
    bpf_cases.c (a pin, EEXIST, ENOENT, EINVAL for a bad descriptor, another object, bad
    flags, a path_fd without its flag; relative to path_fd; a short struct; a get of the
    map, read-only, write-only, both (EINVAL), with a bpf_fd (EINVAL), missing, a
    directory) gives the same line natively and under -a."""
    program = programs["bpf_cases"]
    directory = fresh(shared_dir, "bpf-cases", 0)
    native = in_bpffs(directory, [program, str(directory)])
    assert native.returncode == 0, native.stderr
    lines = native.stdout.decode().splitlines()
    assert {"pin: 0", "pinned: yes", "pin again: -1 EEXIST", "pinned relative: yes",
            "get: a descriptor, map type 2 max_entries 4 (info), cloexec 1, mode 2"} <= set(lines)
    policy = every_call_but_bpf(shared_dir / "bpf-cases-policy", program,
                                '\tnative-bpf: cmd eq "0" or cmd eq "15" then permit\n'
                                f'\tnative-bpf: filename match "{directory}/*" then permit\n'
                                f'\tnative-bpf: filename match "/<non-existent filename>: {directory}/*" then permit\n')
    log = root_runner.writable(shared_dir / "bpf-cases-log")
    result = in_bpffs(directory, root_runner.argv("-U", "-f", str(policy), "-a", "-E", str(log), program, str(directory)),
                      env=root_runner.env)
    assert result.stdout.decode().splitlines() == lines, log.read_text()[-3000:]
    assert RACED not in log.read_text() and "internal error" not in log.read_text()
