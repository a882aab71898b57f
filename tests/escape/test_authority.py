"""Emulated calls act as the tracee, on what was checked (issue 13): credentials, unix
socket names, descriptors as path bases, and mount views."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SRC = HERE.parent.parent / "src"
CLEAN_ENV = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(SRC), "LANG": "C.UTF-8", "HOME": "/root"}
THREADING = ["mmap", "mprotect", "munmap", "clone", "clone3", "madvise", "rseq", "set_robust_list", "futex", "exit",
             "brk", "write"]


def compile_c(name: str, directory: Path, *flags: str) -> str:
    out = directory / name
    subprocess.run(["gcc", "-O1", "-o", str(out), str(HERE / f"{name}.c"), *flags], check=True, timeout=120)
    out.chmod(0o755)
    return str(out)


def systrace(*args: str, cwd: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "systrace", *args], capture_output=True, env=CLEAN_ENV, timeout=300,
                          cwd=cwd)


def learn_then_enforce(policies: Path, argv: list[str], log: Path, extra: list[str] = (), cwd: str | None = None,
                       enforce_argv: list[str] | None = None) -> subprocess.CompletedProcess:
    learned = systrace("-d", str(policies), "-A", *argv, cwd=cwd)
    assert learned.returncode == 0, learned.stderr
    policy = next(policies.glob("*" + Path(argv[0]).name))
    policy.write_text(policy.read_text() + "".join(f"\t{line}\n" for line in extra))
    return systrace("-d", str(policies), "-a", "-E", str(log), *(enforce_argv or argv), cwd=cwd)


# -- 13.3: the tracee's authority, never systrace's -------------------------------------
@pytest.mark.skipif(os.geteuid() != 0, reason="systrace as root, the tracee dropping to nobody")
def test_a_tracee_that_dropped_to_nobody_borrows_nothing(shared_dir: Path, tmp_path: Path) -> None:
    """As root, a tracee that became nobody cannot read a 0600 root file through a
    /proc/self/fd reopen, bind port 81 or connect into a 0700 root directory: what it
    gets natively. Kept as root, the same calls succeed (the test can fail)."""
    arena = shared_dir / f"borrowed-{os.getpid()}"
    arena.mkdir(mode=0o755)
    binary = compile_c("borrowed", arena)
    secret = arena / "secret"
    secret.write_text("SECRET\n")
    secret.chmod(0o600)
    private = arena / "private"
    private.mkdir(mode=0o700)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(private / "sock"))
    server.listen(8)
    try:
        argv = [binary, "drop", str(secret), str(private / "sock"), "81"]
        native = subprocess.run(argv, capture_output=True, timeout=60)
        assert native.stdout == b"reopen EACCES bind EACCES connect EACCES\n"
        extra = [f"native-{name}: permit" for name in ("socket", "setgroups", "setgid", "setuid", "setresuid",
                                                        "setresgid")]
        result = learn_then_enforce(tmp_path / "policies", argv, tmp_path / "log", extra)
        assert (result.returncode, result.stdout) == (0, native.stdout), (tmp_path / "log").read_text()
        kept = learn_then_enforce(tmp_path / "kept", [binary, "keep", str(secret), str(private / "sock"), "81"],
                                  tmp_path / "log2", extra)
        assert kept.stdout.startswith(b"reopen OK bind ") and kept.stdout.endswith(b" connect OK\n"), kept.stdout
    finally:
        server.close()


def test_unprivileged_systrace_emulates_as_the_same_user(user_runner, shared_dir: Path) -> None:
    """systrace not root, the tracee with the same ids: emulated calls work as natively."""
    arena = shared_dir / f"same-{os.getpid()}"
    arena.mkdir()
    # the user's own directory (a world-writable one above a policy directory is refused)
    os.chown(arena, user_runner.uid, -1)
    (arena / "f").write_text("x")
    (arena / "f").chmod(0o666)
    policies = arena / "policies"
    script = f"ln -s f {arena}/l; readlink {arena}/l; stat -c %s {arena}/f; mv {arena}/f {arena}/g; ls {arena}"
    learned = user_runner("-d", str(policies), "-A", "sh", "-c", script)
    assert learned.returncode == 0, learned.stderr
    for name in ("l", "g"):
        (arena / name).unlink()
    (arena / "f").write_text("x")
    (arena / "f").chmod(0o666)
    result = user_runner("-d", str(policies), "-a", "sh", "-c", script)
    assert (result.returncode, result.stdout) == (0, b"f\n1\ng\nl\npolicies\n"), result.stderr


def test_an_identity_systrace_cannot_take_is_refused(monkeypatch) -> None:
    """Not root, and the tracee's ids or capabilities differ: EACCES, never systrace's own."""
    from systrace.kernel.emulate_identity import EmulationError, Identity

    monkeypatch.setattr(Identity, "_own", (1000, 1000, 1000, 1000, (1000,), 0, 0))
    with pytest.raises(EmulationError, match="not root"):
        Identity(65534, 65534, 65534, 65534, (), 0, 0o22).apply()
    monkeypatch.setattr(Identity, "_own", (0, 0, 0, 0, (0,), 0xFF, 0xFF))
    with pytest.raises(EmulationError, match="capabilities systrace does not have"):
        Identity(0, 0, 0, 0, (0,), 0x1FF, 0o22).apply()
    Identity(1000, 1000, 1000, 1000, (1000,), 0, 0o22).undo()  # nothing was switched: nothing to undo


# -- 13.4: unix socket names are filenames --------------------------------------------
def test_a_symlink_at_an_allowed_socket_name_is_not_followed(shared_dir: Path, tmp_path: Path) -> None:
    arena = shared_dir / "sockets"  # no number in it: learning takes a pid of the run for made up
    arena.mkdir(mode=0o755)
    binary = compile_c("borrowed", arena)
    servers = {}
    for name in ("app.sock", "other.sock"):
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(arena / name))
        server.listen(8)
        servers[name] = server
    try:
        argv = [binary, "keep", "/nonexistent", "app.sock", "0"]  # relative: the tracee's cwd
        result = learn_then_enforce(tmp_path / "policies", argv, tmp_path / "log", ["native-socket: permit"],
                                    cwd=str(arena))
        assert result.stdout.endswith(b"connect OK\n"), (result.stdout, (tmp_path / "log").read_text())
        policy = next((tmp_path / "policies").glob("*borrowed")).read_text()
        # resolved like a filename: absolute (the arena's random-looking tmp name may be
        # learned as its shape, one component)
        assert re.search(r'sockaddr (eq "|re "\^)/[^"]*/sockets/app(\\)*\.sock', policy), policy
        (arena / "app.sock").unlink()
        (arena / "app.sock").symlink_to(arena / "other.sock")
        native = subprocess.run(argv, capture_output=True, timeout=60, cwd=arena)
        assert native.stdout.endswith(b"connect OK\n")  # natively the symlink leads to the other socket
        result = systrace("-d", str(tmp_path / "policies"), "-a", "-E", str(tmp_path / "log"), *argv, cwd=str(arena))
        assert result.stdout.endswith(b"connect EPERM\n"), result.stdout
        assert f"sockaddr: {arena}/other.sock" in (tmp_path / "log").read_text()
    finally:
        for server in servers.values():
            server.close()


# -- 13.2: descriptors as path bases ----------------------------------------------------
@pytest.mark.parametrize("attack", ["linkat", "fchmodat2", "open_tree"])
def test_an_o_path_descriptor_grants_nothing_the_policy_does_not(tmp_path: Path, attack: str) -> None:
    """An O_PATH descriptor of the secret (raced in, or from open_tree), then
    linkat(fd, "", ..., AT_EMPTY_PATH) or fchmodat2(fd, "", ..., AT_EMPTY_PATH): checked on
    the file the descriptor names, so refused."""
    binary = compile_c("opath_use", tmp_path, "-pthread")
    directory = tmp_path / "dir"
    directory.mkdir()
    (directory / "allowed").write_text("allowed\n")
    (directory / "secret").write_text("SECRET\n")
    (directory / "secret").chmod(0o600)
    native = subprocess.run([binary, attack, str(directory), "learn"], capture_output=True, timeout=60)
    assert native.returncode == 0, native.stderr
    (directory / "y").unlink(missing_ok=True)
    attack_native = subprocess.run([binary, attack, str(directory), "secret"], capture_output=True, timeout=60)
    assert attack_native.stdout == b"escaped\n", attack_native.stderr  # natively it works
    (directory / "y").unlink(missing_ok=True)
    (directory / "secret").chmod(0o600)
    policies, log = tmp_path / "policies", tmp_path / "log"
    learned = systrace("-d", str(policies), "-A", binary, attack, str(directory), "learn")
    assert learned.returncode == 0, learned.stderr
    (directory / "y").unlink(missing_ok=True)
    policy = next(policies.glob("*opath_use"))
    text = policy.read_text()
    assert f"{directory}/secret" not in text
    # the race needs a thread, and fstat to recognise the secret's descriptor
    policy.write_text(text + "".join(f"\tnative-{name}: permit\n" for name in THREADING + ["fstat"]))
    result = systrace("-d", str(policies), "-a", "-E", str(log), binary, attack, str(directory), "secret")
    assert result.stdout == b"refused\n", (result.stdout, result.stderr, log.read_text())
    assert not (directory / "y").exists() and (directory / "secret").stat().st_mode & 0o777 == 0o600


# -- 13.5: one mount view ----------------------------------------------------------------
def test_another_mount_namespace_is_refused(tmp_path: Path) -> None:
    """unshare(USER|NS), bind-mount the secret over the allowed name, chroot: natively the
    allowed name reads the secret; under systrace the open from another mount namespace
    is refused, unless the policy says permit[mountns]."""
    binary = compile_c("escape", tmp_path, "-pthread")
    directory = tmp_path / "dir"
    (directory / "sub").mkdir(parents=True)
    (directory / "allowed").write_text("allowed\n")
    (directory / "secret").write_text("SECRET\n")
    native = subprocess.run([binary, "userns-chroot", str(directory)], capture_output=True, timeout=60)
    if b"unshare:" in native.stderr or b"mount:" in native.stderr:
        pytest.skip(f"user namespaces unavailable here: {native.stderr!r}")
    assert native.stdout.startswith(b"escapes 1 ")
    policies, log = tmp_path / "policies", tmp_path / "log"
    learned = systrace("-d", str(policies), "-A", binary, "plain", str(directory))
    assert learned.returncode == 0
    policy = next(policies.glob("*escape"))
    policy.write_text(policy.read_text() + "\tnative-unshare: permit\n\tnative-mount: permit\n\tnative-chroot: permit\n"
                      "\tnative-chdir: permit\n")
    result = systrace("-d", str(policies), "-a", "-E", str(log), binary, "userns-chroot", str(directory))
    assert result.stdout == b"escapes 0 denied 1 total 1\n", (result.stdout, result.stderr)
    assert "in another mount namespace than the check" in log.read_text()
    policy.write_text(policy.read_text() + "\tnative-setns: permit[mountns]\n")
    permitted = systrace("-d", str(policies), "-a", "-E", str(log), binary, "userns-bind", str(directory))
    assert permitted.stdout == b"escapes 0 denied 0 total 1\n"  # resolved where it was checked: the real file
