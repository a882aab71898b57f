"""Escape attempts against a policy that permits DIR/allowed and never DIR/secret.

Each case tries to read the secret, or to run unsupervised; each must fail. Cases that
cannot be closed on this kernel are listed in SECURITY.md."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Runner

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


def test_private_mount_namespace_cannot_remap_an_allowed_path(escape_binary: str, arena: tuple[Path, Path]) -> None:
    """Even with unshare and mount permitted, an emulated open resolves the checked path in
    systrace's mount namespace: the tracee gets the real allowed file."""
    directory, policies = arena
    native = subprocess.run([escape_binary, "userns-bind", str(directory)], capture_output=True, timeout=60)
    if b"unshare:" in native.stderr or b"mount:" in native.stderr:
        pytest.skip(f"user namespaces unavailable here: {native.stderr!r}")
    assert native.stdout.startswith(b"escapes 1 ")  # natively the bind mount works
    policy = next(policies.glob("*escape"))
    policy.write_text(policy.read_text() + "\tnative-unshare: permit\n\tnative-mount: permit\n")
    escapes, _, total = attempt(escape_binary, arena, "userns-bind")
    assert (escapes, total) == (0, 1)


def test_chroot_cannot_rename_the_secret(escape_binary: str, arena: tuple[Path, Path]) -> None:
    """Inside a chroot the policy sees the tracee's own view of a path (/secret, ../..
    stopping at its root), which names nothing it permits: every attempt is denied."""
    directory, policies = arena
    policy = next(policies.glob("*escape"))
    policy.write_text(policy.read_text() + "\tnative-chroot: permit\n\tnative-chdir: permit\n")
    escapes, denied, total = attempt(escape_binary, arena, "chroot")
    assert (escapes, denied, total) == (0, 3, 3)


def attempt(escape_binary: str, arena: tuple[Path, Path], mode: str, rounds: int = 20000, supervisors: int = 1
            ) -> tuple[int, int, int]:
    directory, policies = arena
    log = directory.parent / "log"
    result = subprocess.run([sys.executable, "-m", "systrace", "-d", str(policies), "-a", "--supervisors", str(supervisors),
                             "-E", str(log), escape_binary, mode, str(directory), str(rounds)],
                            capture_output=True, env=CLEAN_ENV, timeout=600)
    assert result.returncode == 0, (result.stdout, result.stderr)
    words = result.stdout.decode().split()
    return int(words[1]), int(words[3]), int(words[5])


def test_secret_is_readable_without_systrace(escape_binary: str, arena: tuple[Path, Path]) -> None:
    """The harness works: natively the attempts do read the secret."""
    directory, _ = arena
    out = subprocess.run([escape_binary, "dotdot", str(directory)], capture_output=True, timeout=60).stdout.split()
    assert int(out[1]) == 3


@pytest.mark.parametrize("supervisors", [1, 2])  # 2: a replica decides opens too (src/systrace/replicas.py)
@pytest.mark.parametrize("mode", ["path-swap", "symlink-swap"])
def test_races_during_the_check(escape_binary: str, arena: tuple[Path, Path], mode: str, supervisors: int) -> None:
    escapes, denied, total = attempt(escape_binary, arena, mode, rounds=20000, supervisors=supervisors)
    assert total == 20000
    assert escapes == 0
    assert denied > 0  # the race did present the secret's name


@pytest.mark.parametrize("mode", ["dotdot", "dirfd", "opath-reopen", "rename", "hardlink", "openat2"])
def test_path_tricks(escape_binary: str, arena: tuple[Path, Path], mode: str) -> None:
    escapes, _, total = attempt(escape_binary, arena, mode)
    assert total >= 1 and escapes == 0
    assert (arena[0] / "secret").read_text() == "SECRET\n"  # nor was it moved or linked



def _compile(name: str, tmp_path: Path) -> str:
    out = tmp_path / name
    subprocess.run(["gcc", "-O1", "-o", str(out), str(HERE / f"{name}.c")], check=True, timeout=120)
    out.chmod(0o755)
    return str(out)


@pytest.mark.parametrize("who", ["root", "user"])
def test_tracee_cannot_touch_the_supervisor(request, shared_dir: Path, who: str) -> None:
    """ptrace, process_vm_writev, /proc/PID/mem, pidfd_open/pidfd_getfd, tgkill(SIGSTOP)
    and kill(SIGKILL) on systrace: all refused, even with every call permitted and even
    for a root tracee (the filter refuses calls that name systrace's pid)."""
    runner = request.getfixturevalue(f"{who}_runner")
    binary = _compile("attack_supervisor", shared_dir)
    result = runner("--permit-all", binary)
    assert result.returncode == 0
    lines = dict(line.split(" ", 1) for line in result.stdout.decode().splitlines())
    if who == "root":  # CAP_SYS_PTRACE opens it; with --permit-all opens never reach systrace (SECURITY.md)
        del lines["proc_mem"]
    # ESRCH: the filter answers a call naming systrace's pid as if no process had it
    # proc_mem (the user's): write opens do not reach a systrace that is not root: the kernel's EACCES
    expected = {"ptrace": "ESRCH", "process_vm_writev": "ESRCH", "proc_mem": "EACCES", "pidfd_getfd": "ESRCH",
                "pidfd_open": "ESRCH", "tgkill": "ESRCH", "kill": "ESRCH"}
    assert lines == {k: v for k, v in expected.items() if k in lines} and len(lines) >= 6, lines


def test_systrace_own_proc_entry_is_refused_whatever_the_policy(tmp_path: Path) -> None:
    """Opens routed to systrace that resolve into its own /proc directory are refused."""
    log = tmp_path / "log"
    result = subprocess.run([sys.executable, "-m", "systrace", "-d", str(tmp_path / "p"), "-A", "-E", str(log), "sh", "-c",
                             'cat /proc/$PPID/status >/dev/null; echo "cat: $?"; cat /proc/$$/status >/dev/null; echo "own: $?"'],
                            capture_output=True, env=CLEAN_ENV, timeout=120)
    assert result.stdout == b"cat: 1\nown: 0\n"
    assert b"No such file or directory" in result.stderr  # as for a process that is gone
    assert "(systrace's own /proc entry, whatever the policy says)" in log.read_text()


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
    assert re.search(r"deny\[eacces\] user: \w+, prog: .*syscall: linux-execveat\(322\), fd: \d+, fdname: memfd:payload, argv: payload "
                     r"\(no policy for /memfd:payload \(deleted\)\)", log.read_text())


# -- the supervisor under stress ---------------------------------------------------------
def test_threads_hammering_and_a_process_storm(tmp_path: Path) -> None:
    """64 threads x 100 opens, then 300 processes at once, every open routed and checked."""
    binary = _compile_threads("hammer", tmp_path)
    policies = tmp_path / "policies"
    learn = subprocess.run([sys.executable, "-m", "systrace", "-d", str(policies), "-A", binary, "2", "2", "2"],
                           capture_output=True, env=CLEAN_ENV, timeout=120)
    assert learn.returncode == 0, learn.stderr
    result = subprocess.run([sys.executable, "-m", "systrace", "-d", str(policies), "-a", binary, "64", "100", "300"],
                            capture_output=True, env=CLEAN_ENV, timeout=600)
    assert (result.returncode, result.stdout) == (0, b"opened 6700 failed 0\n"), result.stderr


def test_thousand_pending_notifications_behind_a_slow_question(tmp_path: Path) -> None:
    """1000 threads call open while the first question waits for a slow frontend: every
    one is served afterwards, none lost, none permitted without an answer."""
    binary = _compile_threads("hammer", tmp_path)
    frontend = tmp_path / "slow.py"
    frontend.write_text("import sys, time\nfirst = True\nfor line in sys.stdin:\n"
                        "    if first: time.sleep(2); first = False\n"
                        "    print('permit-now', flush=True); sys.stdin.readline()\n")
    result = subprocess.run([sys.executable, "-m", "systrace", "-d", str(tmp_path / "p"), "-g",
                             f"{sys.executable} {frontend}", binary, "1000", "1"],
                            capture_output=True, env=CLEAN_ENV, timeout=600)
    assert (result.returncode, result.stdout) == (0, b"opened 1000 failed 0\n"), result.stderr


def test_tracee_killed_in_the_middle_of_a_call(tmp_path: Path) -> None:
    """The frontend kills the asking process before answering: systrace answers a call
    that is gone, goes on, and reports the kill."""
    frontend = tmp_path / "killer.py"
    frontend.write_text("import os, re, signal, sys\nline = sys.stdin.readline()\n"
                        "os.kill(int(re.search(r'pid: (\\d+)', line).group(1)), signal.SIGKILL)\n"
                        "print('permit', flush=True)\nsys.stdin.readline()\n")
    log = tmp_path / "log"
    result = subprocess.run([sys.executable, "-m", "systrace", "-d", str(tmp_path / "p"), "-E", str(log), "-g",
                             f"{sys.executable} {frontend}", "cat", "/etc/hostname"],
                            capture_output=True, env=CLEAN_ENV, timeout=120)
    assert result.returncode == 128 + 9 and result.stdout == b""
    assert b"Traceback" not in result.stderr and "internal error" not in log.read_text()


def _compile_threads(name: str, tmp_path: Path) -> str:
    out = tmp_path / name
    subprocess.run(["gcc", "-O1", "-pthread", "-o", str(out), str(HERE / f"{name}.c")], check=True, timeout=120)
    return str(out)


@pytest.mark.parametrize("supervisors", ["1", "2"])  # 2: the new image's first call may reach a replica
def test_exec_path_swapped_after_the_check(tmp_path: Path, supervisors: str) -> None:
    """A thread flips the execve path after the check: the binary really executed is
    compared with the one checked at its first call, and a mismatch is killed."""
    binary = _compile_threads("exec_swap", tmp_path)
    policies = tmp_path / "policies"
    for argv in ([binary, "learn", "3"], ["/usr/bin/true"], ["/usr/bin/false"]):
        learn = subprocess.run([sys.executable, "-m", "systrace", "-d", str(policies), "-A", *argv], capture_output=True,
                               env=CLEAN_ENV, timeout=120)
        assert learn.returncode in (0, 1), learn.stderr
    policy = next(policies.glob("*exec_swap"))
    policy.write_text(policy.read_text() + "\tnative-mmap: permit\n\tnative-mprotect: permit\n\tnative-clone: permit\n"
                      "\tnative-madvise: permit\n\tnative-munmap: permit\n")
    result = subprocess.run([sys.executable, "-m", "systrace", "-d", str(policies), "-a", "--supervisors", supervisors,
                             binary, "race", "150"],
                            capture_output=True, env=CLEAN_ENV, timeout=600)
    words = result.stdout.decode().split()
    assert len(words) == 8, (result.stdout, result.stderr)
    counts = dict(zip(words[::2], map(int, words[1::2]), strict=True))
    assert counts["false"] == 0, counts  # no escape
    assert sum(counts.values()) == 150
    assert counts["refused"] + counts["killed"] > 0, counts  # the race was there


def test_connect_address_swapped_during_the_check(tmp_path: Path) -> None:
    """A thread flips the port while connect is checked: systrace connects the checked
    address itself (on the tracee's socket), so the forbidden port is never reached."""
    import socket

    binary = _compile_threads("connect_swap", tmp_path)
    servers = []
    for _ in range(2):
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(4096)
        servers.append(server)
    good, bad = (str(s.getsockname()[1]) for s in servers)
    policies = tmp_path / "policies"
    learn = subprocess.run([sys.executable, "-m", "systrace", "-d", str(policies), "-A", binary, "plain", good, bad],
                           capture_output=True, env=CLEAN_ENV, timeout=120)
    assert learn.returncode == 0, learn.stderr
    policy = next(policies.glob("*connect_swap"))
    assert f'sockaddr eq "inet-[127.0.0.1]:{good}"' in policy.read_text()
    policy.write_text(policy.read_text() + "\tnative-mmap: permit\n\tnative-mprotect: permit\n\tnative-clone: permit\n"
                      "\tnative-madvise: permit\n\tnative-munmap: permit\n\tnative-socket: permit\n\tnative-futex: permit\n"
                      "\tnative-set_robust_list: permit\n\tnative-rseq: permit\n")
    try:
        result = subprocess.run([sys.executable, "-m", "systrace", "-d", str(policies), "-a", "-E", str(tmp_path / "log"),
                                 binary, "race", good, bad, "2000"], capture_output=True, env=CLEAN_ENV, timeout=600)
    finally:
        for server in servers:
            server.close()
    words = result.stdout.decode().split()
    assert len(words) == 6, (result.stdout, result.stderr)
    counts = dict(zip(words[::2], map(int, words[1::2]), strict=True))
    assert counts["bad"] == 0, counts
    assert counts["good"] > 0 and counts["failed"] > 0, (tmp_path / "log").read_text()[-2000:]  # the race was there


def test_fork_bomb_under_a_process_limit(user_runner, shared_dir: Path) -> None:
    """2^14 processes wanted, 400 allowed by RLIMIT_NPROC: forks fail by the thousand,
    systrace serves the storm, and everything ends."""
    binary = _compile_threads("forkbomb", shared_dir)
    limited = Runner(user_runner.name, ["prlimit", "--nproc=400:400", "--", *user_runner.prefix], user_runner.python,
                     user_runner.env, user_runner.cwd)
    result = limited("--permit-all", "-E", "/dev/null", binary, "14", timeout=600)
    assert (result.returncode, result.stdout) == (0, b"forkbomb done\n"), result.stderr[-500:]


def _learn_and_enforce(tmp_path: Path, learn_argv: list[str], run_argv: list[str], extra: str = "") -> subprocess.CompletedProcess:
    policies = tmp_path / "policies"
    subprocess.run([sys.executable, "-m", "systrace", "-d", str(policies), "-A", *learn_argv], capture_output=True,
                   env=CLEAN_ENV, timeout=120)
    if extra:
        policy = next(policies.glob(f"*{Path(learn_argv[0]).name}"))
        policy.write_text(policy.read_text() + extra)
    return subprocess.run([sys.executable, "-m", "systrace", "-d", str(policies), "-a", "-E", str(tmp_path / "log"),
                           *run_argv], capture_output=True, env=CLEAN_ENV, timeout=120)


@pytest.mark.parametrize(("program", "status", "stdout"), [
    ("int80", 128 + 31, b""),  # killed by the filter (SIGSYS)
    ("x32", 0, b"x32 getpid: Function not implemented\n"),
    ("uring", 1, b"io_uring_setup: Function not implemented\n"),
])
def test_foreign_abis_and_io_uring_under_enforce(cbin, tmp_path: Path, program: str, status: int, stdout: bytes) -> None:
    """Even a policy learned while they ran cannot let them through: the filter decides."""
    binary = cbin(program)
    result = _learn_and_enforce(tmp_path, [binary], [binary])
    assert (result.returncode, result.stdout) == (status, stdout), result.stderr


def test_vfork_then_exec_of_a_binary_without_policy(tmp_path: Path) -> None:
    binary = _compile("vfork_exec", tmp_path)
    # the parent's policy lets it exec anything: what stops /usr/bin/id is that no policy names it
    result = _learn_and_enforce(tmp_path, [binary, "/usr/bin/true"], [binary, "/usr/bin/id"], "\tnative-execve: permit\n")
    assert result.stdout == b"child exit 127\n"
    assert "(no policy for /usr/bin/id)" in (tmp_path / "log").read_text()
    again = subprocess.run([sys.executable, "-m", "systrace", "-d", str(tmp_path / "policies"), "-a", binary, "/usr/bin/true"],
                           capture_output=True, env=CLEAN_ENV, timeout=120)
    assert again.stdout == b"child exit 0\n"  # the learned exec still works
