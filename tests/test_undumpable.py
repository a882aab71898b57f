"""A process systrace cannot read (kernel/undumpable.py): an execute-only binary run by
systrace as the unprivileged user, or a program that makes itself non-dumpable. Its
binary link and memory need ptrace access systrace as that user does not have; such a
process is killed with one line naming it, the reason and the remedy (before: a stream
of "internal error ... PermissionError" lines and a crashed program, exit 139). As root
it is supervised as any other."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import Runner

REMEDY = b"run systrace as root, or make the binary readable (chmod u+r)"


@pytest.fixture
def execute_only(shared_dir: Path) -> Path:
    """A copy of cat only root may read: its user may execute it, not read it."""
    path = shared_dir / "execute-only-cat"
    shutil.copyfile("/bin/cat", path)
    path.chmod(0o111)
    return path


def _final_lines(stderr: bytes) -> list[bytes]:
    return [line for line in stderr.splitlines() if b"is not dumpable" in line]


def test_an_execute_only_command_as_the_user_fails_with_one_clear_line(user_runner: Runner, execute_only: Path,
                                                                         shared_dir: Path) -> None:
    native = user_runner.native(str(execute_only), "/etc/hostname")
    assert native.returncode == 0 and native.stdout == Path("/etc/hostname").read_bytes(), native
    policies = user_runner.policy_dir(shared_dir / "undumpable-policies")
    result = user_runner("-A", "-d", str(policies), str(execute_only), "/etc/hostname")
    assert result.returncode == 126, result  # README "Exit status"
    assert b"Traceback" not in result.stderr and b"internal error" not in result.stderr, result.stderr
    lines = _final_lines(result.stderr)
    assert len(lines) == 1, result.stderr
    assert str(execute_only).encode() in lines[0] and REMEDY in lines[0], lines
    assert result.stdout == b""  # killed before it read anything
    # --permit-all looks at none of its calls (as the user no open is routed): it runs
    assert user_runner("--permit-all", str(execute_only), "/etc/hostname").stdout == native.stdout


def test_an_execute_only_child_is_killed_and_the_run_goes_on(user_runner: Runner, execute_only: Path,
                                                             shared_dir: Path) -> None:
    policies = user_runner.policy_dir(shared_dir / "undumpable-child-policies")
    script = f"{execute_only} /etc/hostname; echo status $?"
    result = user_runner("-A", "-d", str(policies), "sh", "-c", script)
    assert result.returncode == 0, result
    assert result.stdout == b"status 137\n", result  # killed (SIGKILL); the shell runs on
    lines = _final_lines(result.stderr)
    assert len(lines) == 1 and str(execute_only).encode() in lines[0], result.stderr
    assert b"Traceback" not in result.stderr and b"internal error" not in result.stderr


def test_a_program_that_makes_itself_non_dumpable(user_runner: Runner, cbin, shared_dir: Path) -> None:
    binary = cbin("undumpable_self")
    assert user_runner.native(binary).stdout == b"open OK\n"
    policies = user_runner.policy_dir(shared_dir / "undumpable-self-policies")
    result = user_runner("-A", "-d", str(policies), binary)
    assert result.returncode == 126, result
    lines = _final_lines(result.stderr)
    assert len(lines) == 1 and binary.encode() in lines[0] and b"PR_SET_DUMPABLE" in lines[0], result.stderr
    assert b"internal error" not in result.stderr, result.stderr


def test_as_root_an_execute_only_binary_is_supervised(root_runner: Runner, execute_only: Path, tmp_path: Path) -> None:
    """Root reads any process (CAP_SYS_PTRACE): nothing changes."""
    policies = root_runner.policy_dir(tmp_path / "policies")
    for mode in ("-A", "-a"):
        result = root_runner(mode, "-d", str(policies), str(execute_only), "/etc/hostname")
        assert result.returncode == 0 and result.stdout == Path("/etc/hostname").read_bytes(), (mode, result)
        assert not _final_lines(result.stderr), result.stderr


def test_no_reason_for_a_dumpable_process_or_as_root() -> None:
    import os

    from systrace.kernel.undumpable import unreadable_reason

    assert unreadable_reason(os.getpid()) is None  # ours: dumpable (and root, here)
