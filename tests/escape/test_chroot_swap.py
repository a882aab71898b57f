"""A chroot whose path a second thread swaps after systrace's check (decide/roots.py,
SECURITY.md "Path calls"). chroot cannot be carried out by systrace (it changes the
caller's own root), so a permitted one is continued and the kernel reads the path again;
every later path of the caller is then resolved and named below the root it landed in.
Found by an adversarial review: with a policy permitting chroot to DIR/jail and reading
"/f" there, a CLONE_VM child whose parent's thread flips the path to DIR/s read DIR/s/f
(under -a, 76 of 1000 rounds before the fix). Now a root no permitted chroot named kills
the process at its first path call there: nothing is resolved in it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import Runner

ROUNDS = 300
HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def swapper(shared_dir: Path) -> str:
    import subprocess

    out = shared_dir / "chroot_swap"
    subprocess.run(["gcc", "-O1", "-pthread", "-o", str(out), str(HERE / "chroot_swap.c")], check=True, timeout=120)
    out.chmod(0o755)
    return str(out)


def _counts(stdout: bytes) -> dict[str, int]:
    found = re.search(rb"leaked=(\d+) jailed=(\d+) failed=(\d+) killed=(\d+)", stdout)
    assert found, stdout
    return dict(zip(("leaked", "jailed", "failed", "killed"), map(int, found.groups()), strict=True))


def _arrange(directory: Path) -> Path:
    for name, text in (("jail", "jail\n"), ("s", "SECRET\n")):
        (directory / name).mkdir(parents=True)
        (directory / name / "f").write_text(text)
    for path in (directory, *directory.rglob("*")):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return directory


def _with_chroot_rule(policy: str, rule: str) -> str:
    """The policy with its learned chroot rules replaced by `rule`."""
    kept = [line for line in policy.splitlines() if not line.strip().startswith("native-chroot:")]
    assert len(kept) < len(policy.splitlines())  # (it had one)
    return "\n".join([*kept, f"\t{rule}", ""])


def _user_mode(runner: Runner) -> list[str]:
    return ["user"] if runner.name == "user" else []  # (the user chroots in a user namespace of its own)


def test_a_swapped_chroot_path_lands_natively_but_never_resolves_a_path_under_systrace(
        runner: Runner, swapper: str, shared_dir: Path, tmp_path: Path) -> None:
    directory = _arrange(shared_dir / f"chroot-{runner.name}-{tmp_path.name}")
    mode = _user_mode(runner)
    native = [_counts(runner.native(swapper, str(directory), "swap", "2000", *mode).stdout)["leaked"] for _ in range(3)]
    assert max(native) > 0, native  # natively the swap reads the other tree's file

    policies = runner.policy_dir(shared_dir / f"chroot-policies-{runner.name}")
    learned = runner("-d", str(policies), "-A", swapper, str(directory), "honest", "2", *mode)
    assert learned.returncode == 0 and _counts(learned.stdout) == {"leaked": 0, "jailed": 2, "failed": 0, "killed": 0}, \
        learned.stderr[-2000:]
    policy_file = next(policies.glob("*chroot_swap"))
    policy = policy_file.read_text()
    assert "native-chroot: filename" in policy and f"{directory}/s" not in policy
    # the chroot rule exactly (a learned one may generalise the scratch directory's random-looking name)
    policy_file.write_text(_with_chroot_rule(policy, f'native-chroot: filename eq "{directory}/jail" then permit'))

    honest = _counts(runner("-d", str(policies), "-a", swapper, str(directory), "honest", "50", *mode).stdout)
    assert honest == {"leaked": 0, "jailed": 50, "failed": 0, "killed": 0}  # a checked chroot works as natively
    landed = 0
    for _ in range(5):  # until a swap landed at least once (the kernel read DIR/s after the check saw DIR/jail)
        result = runner("-d", str(policies), "-a", swapper, str(directory), "swap", str(ROUNDS), *mode)
        traced = _counts(result.stdout)
        assert traced["leaked"] == 0, (traced, result.stderr[-2000:])
        assert sum(traced.values()) == ROUNDS
        landed += traced["killed"]
        if landed:
            break
    assert landed > 0
    said = result.stderr.decode()
    assert f"its root is {directory}/s, which no permitted chroot named" in said
    assert "Traceback" not in said and "internal error" not in said


def test_an_unconditional_chroot_permit_still_works_and_is_seen(root_runner: Runner, swapper: str, shared_dir: Path,
                                                               tmp_path: Path) -> None:
    """chroot is always routed (facts/rows.py: notified), so that a rule permitting every
    chroot still tells systrace the root it gave: the jail's paths then work as natively."""
    directory = _arrange(shared_dir / f"chroot-any-{tmp_path.name}")
    policies = root_runner.policy_dir(shared_dir / "chroot-any-policies")
    assert root_runner("-d", str(policies), "-A", swapper, str(directory), "honest", "1").returncode == 0
    policy_file = next(policies.glob("*chroot_swap"))
    policy_file.write_text(_with_chroot_rule(policy_file.read_text(), "native-chroot: permit"))
    result = root_runner("-d", str(policies), "-a", "--stats", swapper, str(directory), "honest", "20")
    assert _counts(result.stdout) == {"leaked": 0, "jailed": 20, "failed": 0, "killed": 0}, result.stderr[-2000:]
    assert re.search(rb"routed by system call: .*chroot 20", result.stderr), result.stderr[-1000:]


def test_a_jail_renamed_while_in_use_is_still_the_root_checked(root_runner: Runner, shared_dir: Path,
                                                              tmp_path: Path) -> None:
    """Roots are known by their directory too (decide/roots.py): a jail's name changing
    under a process in it (a parent renames it) is no swap, and the process goes on."""
    import subprocess

    binary = shared_dir / "chroot_moved"
    subprocess.run(["gcc", "-O1", "-o", str(binary), str(HERE / "chroot_moved.c")], check=True, timeout=120)
    directory = _arrange(shared_dir / f"chroot-moved-{tmp_path.name}")
    native = root_runner.native(str(binary), str(directory), "move")
    assert native.stdout == b"read jail\nstatus 0 signalled 0\n", native.stderr
    policies = root_runner.policy_dir(shared_dir / "chroot-moved-policies")
    assert root_runner("-d", str(policies), "-A", str(binary), str(directory), "move").returncode == 0
    policy_file = next(policies.glob("*chroot_moved"))
    policy_file.write_text(_with_chroot_rule(policy_file.read_text(), f'native-chroot: filename eq "{directory}/jail" then permit'))
    traced = root_runner("-d", str(policies), "-a", str(binary), str(directory), "move")
    assert traced.stdout == native.stdout, traced.stderr[-2000:]
