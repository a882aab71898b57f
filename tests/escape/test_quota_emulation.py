"""quotactl decided on its paths (the block device, Q_QUOTAON's quota file) is carried out
by a helper on what was checked (kernel/emulate_mount.py): its normal use gives the same
results and errnos natively and under a policy learned from it, enforced, as root and as
the user (quota_cases.c; this kernel has no CONFIG_QUOTA, so the commands on a device end
in ESRCH after the kernel's own checks: the permission checks, the struct reads, the
lookups). The swap race is in test_watch_emulation.py (quota, quotaon)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Runner
from test_watch_emulation import binaries, fresh, root_device  # noqa: F401 (binaries: a fixture)


@pytest.fixture(scope="module")
def quota_cases(binaries: dict[str, str]) -> str:  # noqa: F811
    return binaries["quota_cases"]


def test_quota_parity(runner: Runner, quota_cases: str, shared_dir: Path) -> None:
    device = root_device()
    directory = fresh(shared_dir, f"quota-parity-{runner.name}", runner.uid)
    (directory / "file").write_text("x\n")
    args = [device, str(directory / "file"), str(directory / "missing")]
    native = runner.native(quota_cases, *args)
    assert native.returncode == 0, native.stderr
    lines = native.stdout.decode().splitlines()
    assert {"sync all: 0", "getfmt file: -1 ENOTBLK", "getfmt missing: -1 ENOENT"} <= set(lines)
    if runner.name == "root":
        assert {"quotaon missing file: -1 ENOENT", "quotaon file: -1 EINVAL", "setquota unreadable: -1 EFAULT"} <= set(lines)

    policies = runner.policy_dir(shared_dir / f"quota-parity-policies-{runner.name}")
    learn = runner("-d", str(policies), "-A", quota_cases, *args)
    assert learn.returncode == 0, learn.stderr
    policy = next(policies.glob("*quota_cases")).read_text()
    assert f'filename eq "{device}"' in policy, policy
    log = runner.writable(shared_dir / f"quota-parity-log-{runner.name}")
    enforced = runner("-d", str(policies), "-a", "-E", str(log), quota_cases, *args)
    assert enforced.returncode == 0, enforced.stderr
    assert enforced.stdout.decode().splitlines() == lines, log.read_text()[-3000:]
    assert "internal error" not in log.read_text() and "deny" not in log.read_text()


def test_quota_rule_on_a_path_it_does_not_name(runner: Runner, quota_cases: str, shared_dir: Path) -> None:
    """Bad input: a policy that permits quotactl on another device only refuses these
    calls (EACCES, logged), with no traceback."""
    directory = fresh(shared_dir, f"quota-other-{runner.name}", runner.uid)
    (directory / "file").write_text("x\n")
    policies = runner.policy_dir(shared_dir / f"quota-other-policies-{runner.name}")
    learn = runner("-d", str(policies), "-A", quota_cases, root_device(), str(directory / "file"), "/nonexistent")
    assert learn.returncode == 0, learn.stderr
    policy_file = next(policies.glob("*quota_cases"))
    policy_file.write_text("\n".join(line for line in policy_file.read_text().splitlines() if "quotactl" not in line)
                           + '\n\tnative-quotactl: filename eq "/dev/nonexistent" then permit\n')
    log = runner.writable(shared_dir / f"quota-other-log-{runner.name}")
    enforced = runner("-d", str(policies), "-a", "-E", str(log), quota_cases, root_device(), str(directory / "file"),
                      "/nonexistent")
    assert enforced.returncode == 0, enforced.stderr
    lines = enforced.stdout.decode().splitlines()
    assert lines and all(line.endswith("EACCES") for line in lines), lines
    assert "Traceback" not in enforced.stderr.decode() and "deny" in log.read_text()
