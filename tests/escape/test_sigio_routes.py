"""Siblings of F_SETOWN + SIGIO found by the red team: dnotify (F_NOTIFY) and a lease
break (F_SETLEASE) signal the descriptor's owner too, with any signal F_SETSIG names
(SIGKILL here), the owner being systrace's process group. Natively a victim group is
killed; under systrace Landlock's signal scope refuses the delivery to systrace (the
attacker, in the group too, is killed: the run ends with 137, reported by systrace)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest
from conftest import TIMEOUT, Runner
from test_supervisor_integrity import _compile

from systrace.kernel import landlock

pytestmark = pytest.mark.skipif(landlock.abi_version() < landlock.SCOPE_ABI,
                                reason="Landlock signal scoping (Linux 6.12) is needed for these guarantees")


@pytest.mark.parametrize("vector", ["dnotify", "lease"])
def test_owner_signals_by_dnotify_and_lease_breaks_never_reach_systrace(runner: Runner, shared_dir: Path,
                                                                         vector: str) -> None:
    binary = _compile("sigio_routes", shared_dir)
    victim = subprocess.Popen(runner.native_argv("sh", "-c", "echo ready; exec sleep 1000"), process_group=0,
                              stdout=subprocess.PIPE)
    try:
        assert victim.stdout.readline() == b"ready\n"  # it runs as the runner's user now
        attack = subprocess.run(runner.native_argv(binary, vector, str(victim.pid)), capture_output=True,
                                timeout=TIMEOUT)
        assert attack.stdout == f"{vector} ok\n".encode(), attack
        try:
            victim.wait(timeout=TIMEOUT)  # a safety net: the delivered SIGKILL ends it at once
        except subprocess.TimeoutExpired:
            pass
        natively = victim.returncode == -signal.SIGKILL
    finally:
        victim.kill()
        victim.wait()
        victim.stdout.close()
    policies = runner.policy_dir(shared_dir / f"sigio-routes-{vector}-{runner.name}")
    reached = {}
    for mode in (["--permit-all"], ["-A", "-d", str(policies)], ["-a", "-d", str(policies)]):
        result = runner(*mode, binary, vector, "0")
        assert b"Traceback" not in result.stderr, result.stderr
        # systrace itself killed: a negative status; else it reports the command's (137)
        reached[mode[0]] = result.returncode < 0
        assert result.returncode in (128 + signal.SIGKILL, 0), (mode, result)
    print(f"{runner.name} {vector}: the group killed natively {int(natively)}/1, systrace killed {sum(reached.values())}/3")
    assert natively
    assert not any(reached.values()), reached
