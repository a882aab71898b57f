"""The group forms of getpriority/setpriority/ioprio_set from a PID namespace of the
caller's own (found by the red team): `who` 0 names the caller's process group, which the
kernel walks whole, members outside the namespace included; systrace shares the
command's group. Systrace continued every such call from another PID namespace (it
cannot name systrace by number), so a root tracee after unshare(CLONE_NEWPID), or the
user after unshare(CLONE_NEWUSER | CLONE_NEWPID), reniced systrace to 19, put it in the
idle I/O class and read its nice. Now these are done by systrace over the group minus its
own processes, as from its own namespace (kernel/group_priority.py own_group)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from conftest import Runner
from test_group_priority import _go
from test_supervisor_integrity import _compile


def _attack(argv: list[str], runner: Runner, native: bool) -> tuple[dict[str, str], int, bool]:
    """(the calls' results, the victim's pid, whether its nice or I/O priority changed)."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=runner.env, cwd=runner.cwd, start_new_session=True)
    try:
        victim = int(proc.stdout.readline()) if native else proc.pid  # natively a victim; else systrace
        ready = proc.stdout.readline()
        assert ready == b"ready\n", (ready, proc.stderr.read() if proc.poll() is not None else b"")
        answer, changed = _go(proc, victim)
        results = dict(word.split("=") for word in answer.split())
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    return results, victim, changed


@pytest.mark.parametrize("who", ["root", "user"])
def test_the_own_group_from_another_pid_namespace_leaves_systrace_out(request, shared_dir: Path, who: str) -> None:
    runner: Runner = request.getfixturevalue(f"{who}_runner")
    binary = _compile("pidns_group", shared_dir)
    results, _, changed = _attack(runner.native_argv(binary, who, "native"), runner, True)
    assert results["pid"] == "1" and results["set"] == results["io"] == "0", results
    # a better nice than the caller's 10 (raw 20 - nice) is the victim's
    native = {"read": int(results["get"]) > 10, "changed": changed}
    policies = runner.policy_dir(shared_dir / f"pidns-group-{who}")
    under = {}
    for mode in (["--permit-all"], ["-A", "-d", str(policies)], ["-a", "-d", str(policies)]):
        results, _, changed = _attack(runner.argv(*mode, binary, who), runner, False)
        assert results["pid"] == "1" and results["set"] == results["io"] == "0", (mode, results)  # the run's own
        under[mode[0]] = {"read": int(results["get"]) > 10, "changed": changed}
    reached = sum(hit for outcome in under.values() for hit in outcome.values())
    print(f"{who}: natively the victim read and changed {sum(native.values())}/2; systrace read or changed under "
          f"--permit-all, -A, -a: {reached}/6 {under}")
    assert all(native.values()), native
    assert reached == 0, under
