"""Vectors found by going through the kernel's system call table by class (issue 12 item 7,
issue 11 item 4; tests/escape/audit.c has one mode per vector). The threat: an untrusted
program under `-a` with a policy `-A` learned from a harmless run of the same program.
Each test shows the attack working natively, then counts the attacks that got through
under systrace (0): a stall of the supervisor, a learned rule reaching a file or key the
learning run never touched, a call permitted that systrace could not read."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import Runner

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def audit(shared_dir: Path) -> str:
    """tests/escape/audit.c, built once, where the unprivileged user can run it."""
    directory = shared_dir / "escape-bin"
    directory.mkdir(mode=0o755, exist_ok=True)
    out = directory / "audit"
    if not out.exists():
        subprocess.run(["gcc", "-O1", "-pthread", "-o", str(out), str(HERE / "audit.c")], check=True, timeout=120)
        out.chmod(0o755)
    return str(out)


def _arena(runner: Runner, base: Path) -> dict[str, str]:
    """Files of the runner's user (leases and file flags need the owner): a, b, f and a
    script s.sh."""
    directory = base / f"arena-{runner.name}"
    directory.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, text in (("a", "a\n"), ("b", "b\n"), ("f", "f\n"), ("s.sh", "#!/bin/sh\necho script\n")):
        path = directory / name
        path.write_text(text)
        path.chmod(0o755 if name.endswith(".sh") else 0o644)
        os.chown(path, runner.uid, -1)
        files[name] = str(path)
    os.chown(directory, runner.uid, -1)
    directory.chmod(0o755)
    return files


def _line(result: subprocess.CompletedProcess, mode: str) -> str:
    """What the program said about MODE ("" if it said nothing)."""
    lines = [line for line in result.stdout.decode().splitlines() if line.startswith(f"{mode}: ")]
    return lines[-1][len(mode) + 2:] if lines else ""


def _learn(runner: Runner, policies: Path, argv: list[str], mode: str, expected: str) -> None:
    """-A on the harmless variant, then -a replays it with no denial."""
    learned = runner("-d", str(policies), "-A", *argv)
    assert _line(learned, mode) == expected, learned
    replay = runner("-d", str(policies), "-a", "-e", *argv)
    assert _line(replay, mode) == expected and b"deny" not in replay.stderr, replay


# -- the supervisor stalled by what the tracee holds ----------------------------------------------
def test_a_lease_does_not_stall_systrace(runner: Runner, audit: str, shared_dir: Path) -> None:
    """fcntl(F_SETLEASE) is on the base (a call on a held descriptor), but a lease makes
    every conflicting open wait up to lease-break-time (45 s): systrace's emulated open for
    another process of the run waited that long in its one thread, every process with it
    (measured: 45.4 s for the attack, and SIGTERM ignored meanwhile). Natively only the
    opener waits, and the holder is served meanwhile."""
    files = _arena(runner, shared_dir / "audit-lease")
    policies = runner.policy_dir(shared_dir / f"audit-lease-{runner.name}")
    attack = [audit, "lease", files["f"], "1"]
    native = _line(runner.native(*attack), "lease")
    _learn(runner, policies, [audit, "lease", files["f"], "0"], "lease", "served")
    traced = runner("-d", str(policies), "-a", "-e", *attack)
    through = int(_line(traced, "lease") != "served")
    print(f"{runner.name}: lease: the holder served while the opener waited natively: {native == 'served'}; "
          f"stalls under -a: {through}/1")
    assert native == "served"
    assert through == 0, traced


def test_exec_of_a_leased_script_does_not_stall_systrace(runner: Runner, audit: str, shared_dir: Path) -> None:
    """The exec check reads a script's #! line to find the binary (and policy) it runs: it
    opened the file plainly, and a write lease the tracee holds made that open wait 45 s
    (the exec is refused after: no policy for the script)."""
    files = _arena(runner, shared_dir / "audit-wlease")
    policies = runner.policy_dir(shared_dir / f"audit-wlease-{runner.name}")
    attack = [audit, "wlease-exec", files["s.sh"], "1"]
    native = _line(runner.native(*attack), "wlease-exec")
    # (no replay check: the script is open for writing, so the exec fails natively with
    # ETXTBSY and its interpreter is never learned; under -a it is refused for want of one)
    learned = runner("-d", str(policies), "-A", audit, "wlease-exec", files["s.sh"], "0")
    assert _line(learned, "wlease-exec") == "served", learned
    traced = runner("-d", str(policies), "-a", "-e", *attack)
    through = int(_line(traced, "wlease-exec") != "served")
    print(f"{runner.name}: leased exec target: stalls under -a: {through}/1")
    assert native == "served"
    assert through == 0, traced


def test_exec_of_a_fifo_does_not_stall_systrace(runner: Runner, audit: str, shared_dir: Path) -> None:
    """A permitted exec of a FIFO: natively EACCES at once. The exec check opened it to read
    a #! line and waited for a writer forever (only SIGKILL ended systrace). Here the
    learned script is replaced by a FIFO with no writer between learning and the run."""
    files = _arena(runner, shared_dir / "audit-fifo")
    policies = runner.policy_dir(shared_dir / f"audit-fifo-{runner.name}")
    argv = [audit, "exec", files["s.sh"]]
    learned = runner("-d", str(policies), "-A", *argv)
    assert learned.stdout == b"script\n", learned
    os.unlink(files["s.sh"])
    os.mkfifo(files["s.sh"], 0o755)
    os.chown(files["s.sh"], runner.uid, -1)
    native = _line(runner.native(*argv), "exec")
    try:
        traced = runner("-d", str(policies), "-a", "-e", *argv, timeout=60)  # safety net: the stall never ends
        through = int(_line(traced, "exec") != "EACCES")
    except subprocess.TimeoutExpired:
        through = 1
    print(f"{runner.name}: exec of a FIFO: natively {native}; stalls under -a: {through}/1")
    assert native == "EACCES"
    assert through == 0


def test_fanotify_permission_events_are_refused_unless_named(root_runner: Runner, audit: str,
                                                             shared_dir: Path) -> None:
    """A FAN_OPEN_PERM mark makes every open of the file wait for the tracee's answer,
    systrace's emulated opens included: a tracee that answers only after its own next call
    deadlocked systrace (measured: still waiting when `timeout 20` killed it). Refused
    (EPERM) unless the policy has a rule for fanotify_init, like userfaultfd, so -A no
    longer learns it (FAN_CLASS_NOTIF, whose events never wait, is decided as before)."""
    runner = root_runner
    files = _arena(runner, shared_dir / "audit-fanotify")
    policies = runner.policy_dir(shared_dir / "audit-fanotify-root")
    attack = [audit, "fanotify", files["f"], "1"]
    native = _line(runner.native(*attack), "fanotify")
    learned = runner("-d", str(policies), "-A", audit, "fanotify", files["f"], "2")
    assert _line(learned, "fanotify setup") == "EPERM", learned
    assert not any("fanotify_init" in path.read_text() for path in policies.iterdir() if path.is_file())
    traced = runner("-d", str(policies), "-a", "-e", *attack, timeout=60)
    through = int(_line(traced, "fanotify") != "")
    print(f"root: fanotify permission events: natively {native}; got through under -a: {through}/1")
    assert native == "served"
    assert through == 0 and b"fanotify permission events" in traced.stderr, traced


def test_ptrace_traceme_does_not_make_systrace_a_tracer_that_never_answers(runner: Runner, audit: str) -> None:
    """ptrace(PTRACE_TRACEME) makes the caller's parent its tracer: systrace for the
    command's first process, and for any orphan it adopts as the subreaper. The tracee
    then stopped at its next signal until its tracer resumed it, which systrace never did:
    the run never ended, and a SIGTERM passed on never reached it (before the fix both
    were still there when SIGKILL ended systrace 15 s later). Landlock allows it (the
    tracer is outside the domain). Now systrace detaches at the first such stop."""
    native = _line(runner.native(audit, "traceme", "child"), "traceme")
    through = 0
    for how in ("self", "orphan"):
        try:
            traced = runner("--permit-all", audit, "traceme", how, timeout=60)  # safety net: the stall never ends
            through += int(traced.returncode != 0 or _line(traced, "traceme") != "went on")
        except subprocess.TimeoutExpired:
            through += 1
    print(f"{runner.name}: PTRACE_TRACEME towards systrace: natively {native}; stalls under systrace {through}/2")
    assert native == "we are its tracer"
    assert through == 0


# -- learned rules that reached more than the learning run used ------------------------------------
def test_ioctl_is_learned_with_the_file_it_changes(runner: Runner, audit: str, shared_dir: Path) -> None:
    """FS_IOC_SETFLAGS changes a file through a read-only descriptor (chattr). It was
    learned by request only, so a rule learned on file A changed file B, which the policy
    only lets it read. Now learned with `fdname` too."""
    files = _arena(runner, shared_dir / "audit-ioctl")
    policies = runner.policy_dir(shared_dir / f"audit-ioctl-{runner.name}")
    attack = [audit, "setflags", files["a"], files["b"], "B"]
    native = _line(runner.native(*attack), "setflags")
    _learn(runner, policies, [audit, "setflags", files["a"], files["b"], "A"], "setflags", "ok")
    traced = runner("-d", str(policies), "-a", "-e", *attack)
    through = int(_line(traced, "setflags") == "ok")
    print(f"{runner.name}: ioctl on another file: natively {native}; got through under -a: {through}/1")
    assert native == "ok"
    assert through == 0 and b"FS_IOC_" in traced.stderr, traced


def test_keyctl_is_learned_with_the_key(runner: Runner, audit: str, shared_dir: Path) -> None:
    """keyctl was learned by operation only: a rule from reading one key of the user's
    keyring read every other (a stored secret). Now learned with the key (the caller's
    own keyrings by name, @u, @s...; another key by serial) and add_key/request_key with
    the keyring."""
    tag = f"systrace-audit-{os.getpid()}"
    mine, secret = f"{tag}-mine", f"{tag}-secret"
    for description in (mine, secret):
        assert _line(runner.native(audit, "key-add", description, "value"), "key-add") == "ok"
    try:
        policies = runner.policy_dir(shared_dir / f"audit-keyctl-{runner.name}")
        native = _line(runner.native(audit, "key-read", secret), "key-read")
        _learn(runner, policies, [audit, "key-read", mine], "key-read", "ok")
        traced = runner("-d", str(policies), "-a", "-e", audit, "key-read", secret)
        through = int(_line(traced, "key-read") == "ok")
    finally:
        for description in (mine, secret):
            runner.native(audit, "key-drop", description)
    print(f"{runner.name}: keyctl of another key: natively {native}; got through under -a: {through}/1")
    assert native == "ok"
    assert through == 0 and b"keyctl" in traced.stderr, traced


def test_socket_is_learned_with_its_protocol(runner: Runner, audit: str, shared_dir: Path) -> None:
    """socket() was learned by domain and type only: a netlink socket learned for
    NETLINK_ROUTE (getaddrinfo's AI_ADDRCONFIG asks it for the links) let the program
    open a NETLINK_SOCK_DIAG one and list every unix socket of the machine (no privilege
    needed), with the same learned sendto and recv. Now learned with the protocol."""
    policies = runner.policy_dir(shared_dir / f"audit-netlink-{runner.name}")
    native = _line(runner.native(audit, "netlink", "diag"), "netlink")
    _learn(runner, policies, [audit, "netlink", "route"], "netlink", "ok")
    traced = runner("-d", str(policies), "-a", "-e", audit, "netlink", "diag")
    through = int(_line(traced, "netlink") == "ok")
    print(f"{runner.name}: NETLINK_SOCK_DIAG with a NETLINK_ROUTE rule: natively {native}; "
          f"got through under -a: {through}/1")
    assert native == "ok"
    assert through == 0 and b"protocol: 4" in traced.stderr, traced


# -- already blocked: shown natively, counted under systrace ---------------------------------------
def test_a_path_systrace_cannot_read_is_never_permitted(runner: Runner, audit: str, shared_dir: Path) -> None:
    """A path in memfd_secret memory: no other process (systrace included) can read it, so
    the rule learned on that very file cannot be evaluated: denied (fail closed)."""
    files = _arena(runner, shared_dir / "audit-secret")
    native = _line(runner.native(audit, "secret", files["f"]), "secret")
    if native != "ok":
        pytest.skip(f"memfd_secret is not available here: {native}")
    policies = runner.policy_dir(shared_dir / f"audit-secret-{runner.name}")
    _learn(runner, policies, [audit, "plain", files["f"]], "plain", "ok")
    traced = runner("-d", str(policies), "-a", "-e", audit, "secret", files["f"])
    through = int(_line(traced, "secret") == "ok")
    print(f"{runner.name}: unreadable path: got through under -a: {through}/1")
    assert through == 0 and b"<unreadable>" in traced.stderr, traced


def test_an_exit_signal_never_reaches_systrace(runner: Runner, audit: str) -> None:
    """clone()'s exit signal is sent to the parent when the child ends: SIGKILL kills its
    parent natively. The kernel gives a CLONE_PARENT child its caller's own exit signal and
    resets an orphan's to SIGCHLD when systrace (the subreaper) adopts it."""
    native = runner.native(audit, "exitsig", "child")
    assert native.returncode == -9, native  # natively the parent is killed
    through = 0
    for how in ("parent", "orphan"):
        traced = runner("--permit-all", audit, "exitsig", how)
        through += int(traced.returncode != 0 or _line(traced, "exitsig") != "survived")
    print(f"{runner.name}: exit signals aimed at systrace: got through {through}/2")
    assert through == 0
