"""Descriptor plumbing is decided in the kernel: a routed call hit by a signal before the
supervisor receives it fails with EINTR, which these calls never return natively."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Runner


@pytest.mark.parametrize("mode", ["-A", "--permit-all"])
def test_pipe_is_never_interrupted_by_signals(runner: Runner, cbin, shared_dir: Path, mode: str) -> None:
    binary = cbin("pipe_eintr")
    native = runner.native(binary)
    assert native.stdout == b"0\n"
    policies = runner.policy_dir(shared_dir / f"pipe-{runner.name}-{mode.strip('-')}")
    args = ["-d", str(policies), "-A"] if mode == "-A" else ["--permit-all", "-E", "/dev/null"]
    traced = runner(*args, binary)
    assert traced.returncode == 0, traced.stderr
    assert traced.stdout == b"0\n"  # EINTR count: 0, as natively
