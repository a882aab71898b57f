"""A write open by file handle (found by the red team): `name_to_handle_at` of a cgroup
file, then `open_by_handle_at(O_WRONLY)`, opens no path, so the write-open routing (every
write open reaches systrace as root, whatever the policy: the cgroup guard) did not see
it. A root tracee under --permit-all, or a policy that plainly permits every call, froze
systrace's cgroup (systrace with it), killed it with `cgroup.kill`, or moved systrace out
with `cgroup.procs`. Now a write open by handle reaches systrace whatever the policy and
is refused (EACCES, logged, never learned)."""

from __future__ import annotations

import os
import select
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import TIMEOUT, Runner
from test_cgroup_any_policy import _plain_permits
from test_supervisor_integrity import _cgroup_mounts, _compile, _remove_cgroups, _wait_for

ATTACKS = {"freeze": ("cgroup.freeze", "1"), "kill": ("cgroup.kill", "1"), "move": ("cgroup.procs", "PPID")}


@pytest.fixture
def two_cgroups():
    v2, _ = _cgroup_mounts()
    if v2 is None or os.geteuid() != 0:
        pytest.skip("needs root and a cgroup2 mount")
    a, b = v2 / f"systrace-handle-{os.getpid()}", v2 / f"systrace-handle-{os.getpid()}-other"
    for path in (a, b):
        path.mkdir()
    try:
        yield v2, a, b
    finally:
        (a / "cgroup.freeze").write_text("0")
        _remove_cgroups([a, b])


def _frozen(cgroup: Path) -> bool:
    return "frozen 1" in (cgroup / "cgroup.events").read_text()


def _target(attack: str, a: Path, b: Path) -> Path:
    name, _ = ATTACKS[attack]
    return (b if attack == "move" else a) / name


def _native(binary: str, attack: str, v2: Path, a: Path, b: Path) -> bool:
    """Does the write reach a victim process standing in the cgroup where systrace would?"""
    victim = subprocess.Popen(["sleep", "1000"], stdout=subprocess.DEVNULL)
    try:
        (a / "cgroup.procs").write_text(str(victim.pid))
        value = str(victim.pid) if attack == "move" else ATTACKS[attack][1]
        out = subprocess.run([binary, str(_target(attack, a, b)), value, str(v2)], capture_output=True,
                             stdin=subprocess.DEVNULL, timeout=TIMEOUT).stdout
        assert out == b"write ok\n", out
        if attack == "freeze":
            _wait_for(lambda: _frozen(a), "the victim's cgroup to freeze")
            (a / "cgroup.freeze").write_text("0")
            return True
        if attack == "kill":
            victim.wait(timeout=TIMEOUT)
            return victim.returncode == -signal.SIGKILL
        return str(victim.pid) in (b / "cgroup.procs").read_text().split()
    finally:
        victim.kill()
        victim.wait()


def _under_systrace(argv: list[str], env: dict[str, str], a: Path, b: Path) -> tuple[bool, bytes]:
    """Run systrace inside cgroup A; (did the attack reach systrace, the tracee's output).
    The tracee waits for a line once it has written: systrace is looked at meanwhile."""
    proc = subprocess.Popen(["sh", "-c", f'echo $$ > {a}/cgroup.procs; exec "$@"', "sh", *argv],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    answered = select.poll()
    answered.register(proc.stdout, select.POLLIN)
    _wait_for(lambda: proc.poll() is not None or _frozen(a) or bool(answered.poll(0)), "the tracee's answer")

    def moved() -> bool:
        return str(proc.pid) in (b / "cgroup.procs").read_text().split()

    line = proc.stdout.readline() if answered.poll(0) else b""
    if line == b"write ok\n":  # taken: its effect shows (a freeze completes, a kill ends systrace)
        _wait_for(lambda: _frozen(a) or moved() or proc.poll() is not None, "the write's effect")
    froze, was_moved = _frozen(a), moved()
    if froze:
        (a / "cgroup.freeze").write_text("0")
    out, _ = proc.communicate(b"\n", timeout=TIMEOUT)
    return froze or was_moved or proc.returncode == -signal.SIGKILL, line + out


def test_a_write_open_by_handle_never_reaches_systrace(root_runner: Runner, shared_dir: Path, two_cgroups) -> None:
    v2, a, b = two_cgroups
    binary = _compile("handle_write", shared_dir)
    native = {attack: _native(binary, attack, v2, a, b) for attack in ATTACKS}
    policies = root_runner.policy_dir(shared_dir / "handle-policies")
    by_handle = shared_dir / "handle-rule"  # every call plainly permitted, the open by its handle
    by_handle.write_text(_plain_permits(shared_dir / "handle-plain", False, binary).read_text().replace(
        "native-open_by_handle_at: permit", 'native-open_by_handle_at: handle match "*" then permit'))
    modes = {"--permit-all": ["--permit-all"],
             "plain-permit": ["-U", "-f", str(_plain_permits(shared_dir / "handle-plain", False, binary)), "-a"],
             "handle-rule": ["-U", "-f", str(by_handle), "-a"],  # carried out by systrace (emulate-handle)
             "-A": ["-A", "-d", str(policies)], "-a": ["-a", "-d", str(policies)]}
    reached, outputs = {}, {}
    for attack in ATTACKS:
        for mode, flags in modes.items():
            argv = root_runner.argv(*flags, binary, str(_target(attack, a, b)), ATTACKS[attack][1], str(v2))
            reached[attack, mode], outputs[attack, mode] = _under_systrace(argv, root_runner.env, a, b)
    got = sorted(key for key, hit in reached.items() if hit)
    print(f"natively {sum(native.values())}/{len(native)} writes by handle reached the victim; under systrace "
          f"{len(got)}/{len(reached)} reached systrace {got}")
    assert all(native.values()), native
    assert got == [], outputs
    for (attack, mode), out in outputs.items():  # refused by systrace (EACCES), or by the policy (EPERM)
        assert out in (b"open_by_handle_at EACCES\n", b"open_by_handle_at EPERM\n", b"name_to_handle_at EPERM\n"), \
            (attack, mode, out)
