"""The calls carried out on a checked string (kernel/emulate_strings.py) give the
kernel's results and errnos (string_cases.c: memfd flags, seals, owner and link text;
mq_open's EEXIST, ENOENT, EACCES, EINVAL, ENAMETOOLONG, mode under the umask, attributes,
close-on-exec; mq_unlink's ENOENT; sethostname's EINVAL; delete_module's ENOSYS here),
natively, learning (-A) and enforcing what was learned (-a), as root and as the user,
in systrace's namespaces and in IPC and UTS namespaces of the program's own. The key
calls, refused when a rule looks at their strings, are learned on their keyring only:
the learned policy replays."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import Runner
from test_supervisor_integrity import _compile

# memfd_create's base rule (a plain permit) comes first: this one, before it, makes the
# memfds of this run carried out, as a learned rule on the name would be
MEMFD_RULE = '\tnative-memfd_create: name match "c-*" then permit\n'


@pytest.mark.parametrize("mode", ["", "own"])
def test_string_calls_carried_out_as_natively(runner: Runner, shared_dir: Path, mode: str) -> None:
    cases = _compile("string_cases", shared_dir)
    tag = f"{runner.name}{os.getpid()}{mode}"
    native = runner.native(cases, tag, mode)
    assert native.returncode == 0, native.stderr
    work = shared_dir / f"string-parity-{runner.name}-{mode or 'ns'}"
    work.mkdir(mode=0o755, exist_ok=True)
    policies = runner.policy_dir(work / "policies")
    policy = policies / cases.strip("/").replace("/", "_")
    policy.write_text(f"Policy: {cases}, Emulation: native\n" + MEMFD_RULE)
    os.chown(policy, runner.uid, -1)
    learned = runner("-d", str(policies), "-A", "--add-base", cases, tag, mode)
    assert learned.returncode == 0, learned.stderr[-3000:]
    assert learned.stdout == native.stdout, (native.stdout.decode(), learned.stdout.decode())
    text = policy.read_text()
    for call in ("mq_open", "mq_unlink"):  # learned on the name: carried out at replay
        rules = [line for line in text.splitlines() if f"native-{call}:" in line]
        assert rules and all("name " in line for line in rules), text[-3000:]
    for call in ("add_key", "request_key"):  # learned on the keyring only: continued at replay
        rules = [line for line in text.splitlines() if f"native-{call}:" in line]
        assert rules and all("description" not in line and "type" not in line for line in rules), rules
    if mode:
        assert [line for line in text.splitlines() if "native-sethostname:" in line and "name " in line], text[-3000:]
    log = runner.writable(work / "log")
    enforced = runner("-d", str(policies), "-a", "-E", str(log), cases, tag, mode)
    assert enforced.returncode == 0, (enforced.stderr[-2000:], log.read_text()[-3000:])
    assert enforced.stdout == native.stdout, (native.stdout.decode(), enforced.stdout.decode(), log.read_text()[-3000:])
    logged = log.read_text()
    assert "internal error" not in logged and "refused" not in logged, logged[-3000:]


def test_a_memfd_in_another_pid_namespace_is_carried_out_only_with_noexec_seal(root_runner: Runner, shared_dir: Path,
                                                                            tmp_path: Path) -> None:
    """vm.memfd_noexec is per PID namespace and systrace's would apply: a memfd decided on
    its name for a caller in another PID namespace is carried out only with
    MFD_NOEXEC_SEAL (the same file under every setting), else refused (EACCES, logged)."""
    cases = _compile("string_cases", shared_dir)
    native = root_runner.native(cases, "pidns", "pidns")
    made = native.stdout.decode().splitlines()
    assert [line.split(" ok")[0] for line in made if line.startswith("memfd")] == [
        "memfd in a pid namespace:", "memfd noexec in a pid namespace:"], made
    policies = root_runner.policy_dir(tmp_path / "policies")
    policy = policies / cases.strip("/").replace("/", "_")
    policy.write_text(f"Policy: {cases}, Emulation: native\n" + MEMFD_RULE)
    learned = root_runner("-d", str(policies), "-A", "--add-base", cases, "pidns", "pidns")
    assert learned.returncode == 0, learned.stderr[-2000:]
    log = root_runner.writable(tmp_path / "log")
    enforced = root_runner("-d", str(policies), "-a", "-E", str(log), cases, "pidns", "pidns")
    lines = enforced.stdout.decode().splitlines()
    assert lines[0] == "memfd in a pid namespace: EACCES", (lines, log.read_text()[-2000:])
    assert lines[1:] == made[2:], lines  # (the first memfd's write line natively)
    assert "another PID namespace" in log.read_text()
