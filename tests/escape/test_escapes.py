"""Escape attempts against a policy that permits DIR/allowed and never DIR/secret.

Each case tries to read the secret, or to run unsupervised; each must fail. Cases that
cannot be closed on this kernel are listed in SECURITY.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SRC = HERE.parent.parent / "src"
CLEAN_ENV = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(SRC), "LANG": "C.UTF-8", "HOME": "/root"}


@pytest.fixture(scope="module")
def escape_binary(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("escape") / "escape"
    subprocess.run(["gcc", "-O1", "-pthread", "-o", str(out), str(HERE / "escape.c")], check=True, timeout=120)
    return str(out)


@pytest.fixture
def arena(tmp_path: Path, escape_binary: str) -> tuple[Path, Path]:
    """DIR with allowed, secret, sub/ and a learned policy that reads only DIR/allowed
    (plus, for the racing modes, the rules to create threads and swap the symlink)."""
    directory = tmp_path / "dir"
    (directory / "sub").mkdir(parents=True)
    (directory / "allowed").write_text("allowed\n")
    (directory / "secret").write_text("SECRET\n")
    policies = tmp_path / "policies"
    learn = subprocess.run([sys.executable, "-m", "systrace", "-d", str(policies), "-A", escape_binary, "plain", str(directory)],
                           capture_output=True, env=CLEAN_ENV, timeout=120)
    assert learn.returncode == 0, learn.stderr
    policy = next(policies.glob("*escape"))
    extra = [
        # what the racing helpers need, none of it about the secret
        "native-mmap: permit", "native-mprotect: permit", "native-munmap: permit", "native-clone: permit",
        "native-madvise: permit", "native-rseq: permit", "native-set_robust_list: permit", "native-futex: permit",
        "native-pread64: permit", "native-exit: permit", "native-brk: permit",
        f'native-fswrite: filename match "{directory}/link" then permit',
        f'native-fswrite: filename match "{directory}/link.tmp" then permit',
        f'native-fsread: filename eq "{directory}" then permit',
    ]
    policy.write_text(policy.read_text() + "".join(f"\t{line}\n" for line in extra))
    return directory, policies


def attempt(escape_binary: str, arena: tuple[Path, Path], mode: str, rounds: int = 20000) -> tuple[int, int, int]:
    directory, policies = arena
    log = directory.parent / "log"
    result = subprocess.run([sys.executable, "-m", "systrace", "-d", str(policies), "-a", "-E", str(log), escape_binary, mode,
                             str(directory), str(rounds)], capture_output=True, env=CLEAN_ENV, timeout=600)
    assert result.returncode == 0, (result.stdout, result.stderr)
    words = result.stdout.split()
    return int(words[1]), int(words[3]), int(words[5])


def test_secret_is_readable_without_systrace(escape_binary: str, arena: tuple[Path, Path]) -> None:
    """The harness works: natively the attempts do read the secret."""
    directory, _ = arena
    out = subprocess.run([escape_binary, "dotdot", str(directory)], capture_output=True, timeout=60).stdout.split()
    assert int(out[1]) == 3


@pytest.mark.parametrize("mode", ["path-swap", "symlink-swap"])
def test_races_during_the_check(escape_binary: str, arena: tuple[Path, Path], mode: str) -> None:
    escapes, denied, total = attempt(escape_binary, arena, mode, rounds=20000)
    assert total == 20000
    assert escapes == 0
    assert denied > 0  # the race did present the secret's name


@pytest.mark.parametrize("mode", ["dotdot", "dirfd", "opath-reopen", "rename", "hardlink"])
def test_path_tricks(escape_binary: str, arena: tuple[Path, Path], mode: str) -> None:
    escapes, _, total = attempt(escape_binary, arena, mode)
    assert total >= 1 and escapes == 0
    assert (arena[0] / "secret").read_text() == "SECRET\n"  # nor was it moved or linked



def _compile(name: str, tmp_path: Path) -> str:
    out = tmp_path / name
    subprocess.run(["gcc", "-O1", "-o", str(out), str(HERE / f"{name}.c")], check=True, timeout=120)
    out.chmod(0o755)
    return str(out)


def test_unprivileged_tracee_cannot_touch_the_supervisor(user_runner, shared_dir: Path) -> None:
    """ptrace, process_vm_writev, /proc/PID/mem, pidfd_getfd on systrace: all refused
    (systrace is not dumpable), even with every call permitted."""
    binary = _compile("attack_supervisor", shared_dir)
    result = user_runner("--permit-all", binary)
    lines = dict(line.split(" ", 1) for line in result.stdout.decode().splitlines())
    assert lines == {"ptrace": "EPERM", "process_vm_writev": "EPERM", "proc_mem": "EACCES", "pidfd_getfd": "EPERM"}, lines


def test_memfd_execveat_of_an_unknown_binary(tmp_path: Path) -> None:
    """Learned with -A, the memfd's binary would need a policy of its own: under -a its
    execveat is refused."""
    binary = _compile("memfd_exec", tmp_path)
    policies = tmp_path / "policies"
    env = dict(CLEAN_ENV)
    learn = subprocess.run([sys.executable, "-m", "systrace", "-d", str(policies), "-A", binary], capture_output=True,
                           env=env, timeout=120)
    assert learn.returncode == 0, learn.stderr
    payload = policies / "memfd_payload__deleted_"  # what -A learned for the payload itself
    assert payload.exists()
    payload.unlink()
    log = tmp_path / "log"
    result = subprocess.run([sys.executable, "-m", "systrace", "-d", str(policies), "-a", "-E", str(log), binary],
                            capture_output=True, env=env, timeout=120)
    assert result.returncode == 3  # execveat failed and the program went on to exit(3)
    assert re.search(r"deny\[eacces\] user: \w+, prog: .*syscall: linux-execveat\(322\), fd: \d+, argv: payload "
                     r"\(no policy for /memfd:payload \(deleted\)\)", log.read_text())
