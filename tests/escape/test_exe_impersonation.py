"""Impersonating another binary (issue 12): a process that unmapped its executable points
/proc/self/exe at /usr/bin/cat with prctl(PR_SET_MM, PR_SET_MM_MAP), so that a policy
chosen from /proc/TID/exe would be cat's. Natively it works (as the user in a user
namespace of its own, and as root); under systrace PR_SET_MM is refused in the kernel
whatever the policy, and the binary stays the one whose exec systrace checked."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import Runner
from test_supervisor_integrity import _compile

LOADER = "/lib64/ld-linux-x86-64.so.2"
pytestmark = pytest.mark.skipif(not os.path.exists(LOADER), reason="no x86_64 dynamic loader")


def test_pr_set_mm_map_cannot_make_the_binary_another(runner: Runner, shared_dir: Path) -> None:
    binary = _compile("mm_exe", shared_dir, "-Wl,-z,now")
    loader = os.path.realpath(LOADER)
    native = runner.native(LOADER, binary, "/usr/bin/cat")
    assert native.stdout == b"set_mm ok exe /usr/bin/cat\n", native  # the attack works natively
    policies = runner.policy_dir(shared_dir / f"mm-exe-{runner.name}")
    impersonated = {}
    for mode in (["--permit-all"], ["-A", "-d", str(policies)], ["-a", "-d", str(policies)]):
        result = runner(*mode, LOADER, binary, "/usr/bin/cat")
        assert b"Traceback" not in result.stderr, result.stderr
        impersonated[mode[0]] = b"exe /usr/bin/cat" in result.stdout
        assert result.stdout == f"set_mm EPERM exe {loader}\n".encode(), (mode, result)
    print(f"{runner.name}: /proc/self/exe made /usr/bin/cat natively 1/1, under systrace {sum(impersonated.values())}/3")
    assert not any(impersonated.values())
