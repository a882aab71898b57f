"""A FUSE mount that systrace's checks do not see (made just after the check, by the tracee
or by a process outside the run) must not hold the supervisor's loop for ever
(SECURITY.md "Never blocked by the tracee", kernel/watchdog.py).

The interleaving is forced, not hoped for: SYSTRACE_TEST_FUSE_UNSEEN=1 makes every check
(mounts.ServedAnywhere, MountTable.servable) answer "no FUSE here", exactly what a check
made just before the mount answers. The loop then makes the call itself: it reads tracee
memory mapped from a file whose server never answers READ, looks a path up on a mount
whose server never answers at all, or asks a FUSE file's file system for its type
(fstatfs, never answered) before an emulated open. Natively the caller waits on the
server; under systrace the watchdog sees the loop held and ends it, failing closed: as
root by aborting that connection (the loop serves on, the held call fails), as the
unprivileged user (no abort file) by killing every process of the run, the server with
it; a SIGTERM to systrace while the loop is held is honoured at once."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import TIMEOUT, Runner
from test_fuse_memory import (
    _children,
    _compile,
    _gone,
    _policy_with_opens_by_path,
    _seccomp,
    _Server,
    _wait_for,
    _waits_on_fuse,
)

from systrace.kernel.syscalls_x86_64 import SYSCALLS

ATTEMPTS = 2  # per vector: each gets a fresh server (an aborted connection stays aborted)
ABORTED = b"the FUSE connection that does not answer is aborted"
KILLED = b"every process of the run is killed"


def _unseen(runner: Runner) -> dict[str, str]:
    return {**runner.env, "SYSTRACE_TEST_FUSE_UNSEEN": "1"}


def _vector(vector: str, shared_dir: Path, server: _Server) -> list[str]:
    """The command whose call the server holds (natively: its caller)."""
    if vector == "memory":  # a path in memory mapped from the file: read by the loop to log it
        return [_compile("fuse_mapped", shared_dir), "open", server.file]
    if vector == "lookup":  # a path on a mount whose server never answers (not even INIT)
        return ["stat", str(server.mount_point / "x")]
    return ["cat", server.file]  # "fstatfs": the emulated open asks what the file is on


SERVERS = {"memory": ("fuse_noread",), "lookup": ("fuse_stall",), "fstatfs": ("fuse_noread", "nostatfs")}


def _waits_natively(command: list[str], server: _Server) -> bool:
    """Run `command` natively: does it wait on the server? (The server is stopped after.)"""
    try:
        native = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for(lambda: _waits_on_fuse(native.pid) or native.poll() is not None, "the native call")
        return native.poll() is None
    finally:
        server.stop()
        native.wait(timeout=TIMEOUT)


def _in_call(pid: int, nr: int) -> bool:
    """Is `pid` inside system call `nr` (/proc/PID/syscall: root reads it)?"""
    try:
        return Path(f"/proc/{pid}/syscall").read_text().split()[0] == str(nr)
    except (OSError, IndexError):
        return False


@pytest.mark.parametrize("vector", ["memory", "lookup", "fstatfs"])
def test_a_fuse_mount_the_checks_missed_cannot_hold_the_loop(vector: str, shared_dir: Path, root_runner: Runner,
                                                             tmp_path: Path) -> None:
    """Natively the call waits on the server. Under systrace (-E: every argument read for
    the log; "fstatfs": -a with a filename rule, so the open is emulated) the watchdog
    aborts the connection that holds the loop: the held call fails, the process after it
    is served and the run ends with status 0 (the server never answered: it ends when
    its connection is aborted)."""
    server_binary, *server_options = SERVERS[vector]
    server_binary = _compile(server_binary, shared_dir)
    waited_natively = held = freed = 0
    for attempt in range(ATTEMPTS):
        server = _Server(server_binary, tmp_path / f"native-{attempt}", *server_options)
        waited_natively += _waits_natively(_vector(vector, shared_dir, server), server)

        server = _Server(server_binary, tmp_path / f"traced-{attempt}", *server_options)
        try:
            command = _vector(vector, shared_dir, server)
            script = f"{' '.join(command)} >/dev/null 2>&1; cat /etc/hostname >/dev/null && echo served"
            if vector == "fstatfs":
                sh, cat = os.path.realpath("/bin/sh"), os.path.realpath("/usr/bin/cat")
                policy = _policy_with_opens_by_path([sh, cat], tmp_path / f"policy-{attempt}")
                options = ["-U", "-f", str(policy), "-a"]
            else:
                options = ["--permit-all", "-E", "/dev/null"]
            proc = subprocess.run(root_runner.argv(*options, "/bin/sh", "-c", script), capture_output=True,
                                  env=_unseen(root_runner), timeout=TIMEOUT)
        finally:
            server.stop()
        held += ABORTED in proc.stderr
        freed += proc.returncode == 0 and proc.stdout == b"served\n"
        assert b"Traceback" not in proc.stderr, proc.stderr
    print(f"{vector}: natively {waited_natively}/{ATTEMPTS} calls wait on the server; under systrace the loop was "
          f"held {held}/{ATTEMPTS} times, each ended by the watchdog (connection aborted), run served on and ended "
          f"{freed}/{ATTEMPTS}, stalled {ATTEMPTS - freed}/{ATTEMPTS}")
    assert waited_natively == ATTEMPTS
    assert held == ATTEMPTS  # the checks really were missed: the loop itself was held
    assert freed == ATTEMPTS


def test_a_fuse_file_whose_server_refuses_statfs_is_still_opened(shared_dir: Path, root_runner: Runner,
                                                                 tmp_path: Path) -> None:
    """The checks missed the mount, and the emulated open asks the file's file system for
    its type: this server answers STATFS with ENOSYS. An error there can only come from a
    file server, so the open is handed to a helper as on any FUSE file, and the tracee
    opens the file as natively (before: the open failed with ENOSYS)."""
    server_binary = _compile("fuse_noread", shared_dir)
    sh = os.path.realpath("/bin/sh")
    policy = _policy_with_opens_by_path([sh], tmp_path / "policy")
    results = []
    for where in ("native", "traced"):
        server = _Server(server_binary, tmp_path / where)
        script = f"exec 3<{server.file} && echo opened"
        try:
            if where == "native":
                proc = subprocess.run(["/bin/sh", "-c", script], capture_output=True, timeout=TIMEOUT)
            else:
                proc = subprocess.run(root_runner.argv("-U", "-f", str(policy), "-a", "/bin/sh", "-c", script),
                                      capture_output=True, env=_unseen(root_runner), timeout=TIMEOUT)
        finally:
            server.stop()
        assert b"Traceback" not in proc.stderr, proc.stderr
        results.append((proc.returncode, proc.stdout))
    assert results[0] == (0, b"opened\n")
    assert results[1] == results[0], results


def test_sigterm_is_honoured_at_once_while_the_loop_is_held(shared_dir: Path, root_runner: Runner,
                                                            tmp_path: Path) -> None:
    """SIGTERM reaches systrace while its loop sits in process_vm_readv on a page the
    server never serves: the watchdog sees it pending and ends the stall without waiting
    for its bound; systrace passes SIGTERM on and ends with the command (143)."""
    server = _Server(_compile("fuse_noread", shared_dir), tmp_path / "mnt")
    mapped = _compile("fuse_mapped", shared_dir)
    try:
        returncode, err = _sigterm_while_held(
            root_runner.argv("--permit-all", "-E", "/dev/null", "/bin/sh", "-c",
                             f"{mapped} open {server.file}; sleep {TIMEOUT}"), _unseen(root_runner), replica=False)
    finally:
        server.stop()
    print(f"SIGTERM while held: exit {returncode}; {err.decode(errors='replace').strip()}")
    assert returncode == 128 + signal.SIGTERM, err
    assert ABORTED in err and b"Traceback" not in err, err


def test_a_server_in_the_run_is_ended_with_the_run_for_the_user(shared_dir: Path, user_runner: Runner) -> None:
    """The unprivileged user: the tracee mounts FUSE in a user and mount namespace of its
    own (a view systrace's checks do not share) and maps its file. Natively the call
    waits. Under systrace no connection can be aborted (no fusectl mount, not root):
    the watchdog kills every process of the run, the server with it, which frees the
    loop; systrace says why and ends with the command's status (SIGKILL: 137)."""
    _skip_when_the_user_can_abort()
    server_binary, mapped = _compile("fuse_noread", shared_dir), _compile("fuse_mapped", shared_dir)
    mount_point = "/mnt"  # the user may mount over it in a mount namespace of its own
    # (the file appears once mounted; a server killed before then ends the wait: natively,
    # under load, the test may take the shell's own look at the mount for the call's wait)
    script = (f"{server_binary} {mount_point} & server=$!; echo $server >&2; "
              f"while [ ! -e {mount_point}/file ]; do kill -0 $server || exit 1; done; "
              f"exec {mapped} open {mount_point}/file")
    argv = ["unshare", "-Urm", "--propagation", "private", "/bin/sh", "-c", script]
    native = subprocess.Popen(user_runner.native_argv(*argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=user_runner.env, cwd="/", start_new_session=True)
    server_pid = int(native.stderr.readline())
    try:
        _wait_for(lambda: _waits_on_fuse(native.pid) or native.poll() is not None, "the native call")
        waited_natively = native.poll() is None
    finally:
        os.kill(server_pid, signal.SIGKILL)  # the mapper's fault then fails, and it ends
        try:
            native.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:  # never left behind holding the mount (it slows every run)
            os.killpg(native.pid, signal.SIGKILL)
            native.communicate()
    proc = subprocess.run(user_runner.argv("--permit-all", "-E", "/dev/null", *argv), capture_output=True,
                          env=_unseen(user_runner), cwd="/", timeout=TIMEOUT)
    print(f"user, FUSE in the tracee's own namespaces: natively the call waits: {waited_natively}; under systrace "
          f"exit {proc.returncode}; {proc.stderr.decode(errors='replace').strip()}")
    assert waited_natively
    assert KILLED in proc.stderr and b"Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 128 + signal.SIGKILL, proc.stderr



def _skip_when_the_user_can_abort() -> None:
    """With fusectl mounted where the user sees it, the user owns its connection's abort
    file and the watchdog's first step (abort) frees the loop: the steps these tests are
    about are never reached (the abort is tested as root)."""
    with open("/proc/self/mounts") as mounts:
        if any(line.split()[2] == "fusectl" for line in mounts):
            pytest.skip("fusectl is mounted: the user's own connection is aborted, step 1")


def test_a_server_outside_the_run_ends_systrace_for_the_user(shared_dir: Path, user_runner: Runner) -> None:
    """The unprivileged user, the server outside the run: a process of the user's own
    serves a FUSE mount in its user + mount namespace, and systrace is started in that
    namespace (nsenter: it is root there, but fusectl cannot be mounted in a user
    namespace) on a command that maps the file. No abort is possible and killing the run
    does not free the loop: the watchdog says so, kills every process of the run, then
    systrace. The loop's read was taken by the server, so the kernel lets systrace go only
    when the server does: once that is killed, systrace is gone (SIGKILL)."""
    _skip_when_the_user_can_abort()
    server_binary, mapped = _compile("fuse_noread", shared_dir), _compile("fuse_mapped", shared_dir)

    def serve() -> subprocess.Popen:
        server = subprocess.Popen(user_runner.native_argv("unshare", "-Urm", "--propagation", "private",
                                                          server_binary, "/mnt"),
                                  stdout=subprocess.PIPE, env=user_runner.env, cwd="/")
        assert server.stdout.readline() == b"mounted\n"
        return server

    def stop(server: subprocess.Popen) -> None:
        server.kill()  # the connection goes: whatever waits on it fails
        server.communicate(timeout=TIMEOUT)

    def enter(server: subprocess.Popen) -> list[str]:
        return ["nsenter", "-t", str(server.pid), "-U", "-m", "--preserve-credentials"]

    server = serve()  # one for the native call: its page stays locked while the call waits
    try:
        native = subprocess.Popen(user_runner.native_argv(*enter(server), mapped, "open", "/mnt/file"),
                                  stdout=subprocess.DEVNULL, env=user_runner.env, cwd="/")
        _wait_for(lambda: _waits_on_fuse(native.pid) or native.poll() is not None, "the native call")
        waited_natively = native.poll() is None
    finally:
        stop(server)
        native.communicate(timeout=TIMEOUT)
    server = serve()
    try:
        argv = [*user_runner.prefix, *enter(server), user_runner.python, "-m", "systrace", "--permit-all", "-E",
                "/dev/null", mapped, "open", "/mnt/file"]  # setpriv and nsenter exec in place: proc.pid is systrace
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_unseen(user_runner),
                                cwd="/")
        lines: list[bytes] = []
        while not lines or b"systrace ends" not in lines[-1]:
            assert select.select([proc.stderr], [], [], TIMEOUT)[0], lines  # a safety net
            lines.append(proc.stderr.readline())
            assert lines[-1], lines
        run_left = [pid for pid in _children(proc.pid) if _seccomp(pid) == "2" and not _gone(pid)]
    finally:
        stop(server)
    proc.communicate(timeout=TIMEOUT)
    print(f"user, server outside the run: natively the call waits: {waited_natively}; under systrace: "
          f"{b''.join(lines).decode(errors='replace').strip()}; processes of the run left: {len(run_left)}; "
          f"systrace ended by signal {-proc.returncode}")
    assert waited_natively
    assert any(KILLED in line for line in lines), lines
    assert run_left == []
    assert proc.returncode == -signal.SIGKILL


# -- FUSE mounts only the tracee sees ------------------------------------------------------
HELD = b"the supervisor is held"


def test_a_fuse_mount_only_the_tracee_sees_is_looked_up_by_a_helper(runner: Runner, shared_dir: Path) -> None:
    """The tracee mounts FUSE (a server that never answers) in a user and mount namespace
    of its own, chroots above it and stats a path on it: systrace looks the path up
    through the tracee's root, across mounts its own table does not name. The mount
    points are taken from the tracee's view (/proc/TID/mountinfo), so a helper makes the
    lookup: natively the stat waits; under systrace another process is served, the
    watchdog never has to step in (without the tracee's view: the loop was held, and only
    the watchdog ended it), and SIGTERM reaches the command at once; the stat's caller
    waits for its answer, killably, as natively; once it is killed the run ends (143)."""
    binary = _compile("fuse_chroot", shared_dir)
    jail = shared_dir / f"jail-{runner.name}"
    (jail / "mnt").mkdir(mode=0o755, parents=True)
    jail.chmod(0o755)
    argv = ["unshare", "-Ur", binary, str(jail)]
    native = subprocess.Popen(runner.native_argv(*argv), stdout=subprocess.PIPE, env=runner.env, cwd=runner.cwd)
    try:
        assert native.stdout.readline() == b"mounted\n"
        _wait_for(lambda: _waits_on_fuse(native.pid) or native.poll() is not None, "the native stat")
        waited_natively = native.poll() is None
    finally:
        native.kill()  # a lookup waiting for INIT can be killed
        native.communicate(timeout=TIMEOUT)

    script = f"{' '.join(argv)} & read go; cat /etc/hostname >/dev/null && echo served; wait"
    proc = subprocess.Popen(runner.argv("--permit-all", "-E", "/dev/null", "/bin/sh", "-c", script),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=runner.env,
                            cwd=runner.cwd)
    try:
        assert proc.stdout.readline() == b"mounted\n"

        def waiting() -> list[int]:  # systrace's loop or one of its helpers, on the server
            return [pid for pid in [proc.pid, *_children(proc.pid)] if _waits_on_fuse(pid)]

        _wait_for(lambda: waiting() or proc.poll() is not None, "the stat's lookup")
        loop_held = proc.pid in waiting()
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        served = proc.stdout.readline() == b"served\n"
        shell = next(c for c in _children(proc.pid) if _seccomp(c) == "2")
        stat_caller = _children(shell)
        os.kill(proc.pid, signal.SIGTERM)
        _wait_for(lambda: _gone(shell), "SIGTERM to reach the shell")
        for pid in stat_caller:  # it waits for its answer (killably), as natively on the server
            os.kill(pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    print(f"{runner.name}: FUSE mount in the tracee's own mount namespace, under its chroot: natively the stat "
          f"waits: {waited_natively}; under systrace the loop held: {loop_held}, another process served: {served}, "
          f"watchdog needed: {HELD in err}, exit {proc.returncode}")
    assert waited_natively
    assert not loop_held and served
    assert HELD not in err and b"Traceback" not in err, err
    assert proc.returncode == 128 + signal.SIGTERM, err


# -- --supervisors: a replica's loop is watched as the main one is ---------------------------
REPLICA_HELD = b"a supervisor process sharing the listener is held"


def _to_replicas(runner: Runner) -> dict[str, str]:
    """The checks miss the mount, and every eligible call goes to a replica (replicas.py)."""
    return {**_unseen(runner), "SYSTRACE_TEST_REPLICAS_SERVE_ALL": "1"}


def _replica_policy(mapped: str, path: Path) -> Path:
    """sh and cat: opens decided by path (emulated). fuse_mapped: stats decided by path, so
    the replica reads the path from the mapping (its open of the FUSE file stays in the
    kernel: a replica takes only opens and path inspections)."""
    _policy_with_opens_by_path([os.path.realpath("/bin/sh"), os.path.realpath("/usr/bin/cat")], path)
    lines = [f"Policy: {mapped}, Emulation: native"]
    lines += [f"\tnative-{name}: permit" for name in SYSCALLS if name != "newfstatat"]
    lines += ['\tnative-newfstatat: filename sub "/" then permit', '\tnative-newfstatat: fdname sub "/" then permit']
    path.write_text(path.read_text() + "\n".join(lines) + "\n")
    return path


def _replica_vector(vector: str, shared_dir: Path, server: _Server) -> list[str]:
    if vector == "memory":  # a stat whose path is in memory mapped from the file
        return [_compile("fuse_mapped", shared_dir), "stat", server.file]
    return ["cat", server.file]  # "fstatfs": the emulated open asks what the file is on


@pytest.mark.parametrize("vector", ["memory", "fstatfs"])
def test_a_fuse_mount_the_checks_missed_cannot_hold_a_replica(vector: str, shared_dir: Path, root_runner: Runner,
                                                              tmp_path: Path) -> None:
    """As test_a_fuse_mount_the_checks_missed_cannot_hold_the_loop, with `--supervisors 2`
    and the call served by the replica: it reads a stat's path from memory the server
    never serves ("memory": a rule on the filename reads it) or asks the FUSE file's file system
    what it is ("fstatfs"). Natively the call waits. Under systrace the replica's own
    watchdog aborts the connection: the held call fails closed, the next process is
    served and the run ends with status 0 (without a watchdog in the replica the run
    stalled until the test's safety net)."""
    server_binary, *server_options = SERVERS[vector]
    server_binary = _compile(server_binary, shared_dir)
    sh = os.path.realpath("/bin/sh")
    policy = _replica_policy(_compile("fuse_mapped", shared_dir), tmp_path / "policy")
    waited_natively = held = freed = 0
    for attempt in range(ATTEMPTS):
        server = _Server(server_binary, tmp_path / f"native-{attempt}", *server_options)
        waited_natively += _waits_natively(_replica_vector(vector, shared_dir, server), server)

        server = _Server(server_binary, tmp_path / f"traced-{attempt}", *server_options)
        try:
            script = f"{' '.join(_replica_vector(vector, shared_dir, server))} >/dev/null 2>&1; " \
                     "cat /etc/hostname >/dev/null && echo served"
            proc = subprocess.run(root_runner.argv("-U", "-f", str(policy), "-a", "--supervisors", "2", sh, "-c",
                                                   script),
                                  capture_output=True, env=_to_replicas(root_runner), timeout=TIMEOUT)
        finally:
            server.stop()
        held += REPLICA_HELD in proc.stderr and ABORTED in proc.stderr
        freed += proc.returncode == 0 and proc.stdout == b"served\n"
        assert b"Traceback" not in proc.stderr and b"the supervisor is held" not in proc.stderr, proc.stderr
    print(f"{vector}, --supervisors 2: natively {waited_natively}/{ATTEMPTS} calls wait on the server; under "
          f"systrace a replica was held {held}/{ATTEMPTS} times, each ended by its watchdog (connection aborted), "
          f"run served on and ended {freed}/{ATTEMPTS}, stalled {ATTEMPTS - freed}/{ATTEMPTS}")
    assert waited_natively == ATTEMPTS
    assert held == ATTEMPTS  # the replica itself was held, and its watchdog ended it
    assert freed == ATTEMPTS


def test_sigterm_is_honoured_at_once_while_a_replica_is_held(shared_dir: Path, root_runner: Runner,
                                                             tmp_path: Path) -> None:
    """A replica sits in process_vm_readv on a page the server never serves; SIGTERM to
    systrace is passed on to the command at once (the main loop is free), the command
    dies, and the replica's watchdog, told that systrace ends, aborts the connection
    without waiting for its bound ("a signal asks systrace to end"): systrace ends with
    the command (143). Without it the replica stayed in the kernel and systrace waited
    for it for ever."""
    server = _Server(_compile("fuse_noread", shared_dir), tmp_path / "mnt")
    mapped = _compile("fuse_mapped", shared_dir)
    policy = _replica_policy(mapped, tmp_path / "policy")
    try:
        returncode, err = _sigterm_while_held(
            root_runner.argv("-U", "-f", str(policy), "-a", "--supervisors", "2", mapped, "stat", server.file),
            _to_replicas(root_runner))
    finally:
        server.stop()
    print(f"SIGTERM while a replica is held: exit {returncode}; {err.decode(errors='replace').strip()}")
    assert returncode == 128 + signal.SIGTERM, err
    assert REPLICA_HELD in err and ABORTED in err and b"a signal asks systrace to end" in err, err
    assert b"Traceback" not in err, err


def _sigterm_while_held(argv: list[str], env: dict[str, str], replica: bool = True) -> tuple[int, bytes]:
    """Start systrace (argv's process is systrace itself), wait until its loop sits in
    process_vm_readv (`replica`: one of its children, a replica, while the main process
    does not), then send it SIGTERM: (its exit status, its stderr)."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd="/")
    try:
        def held() -> bool:
            return any(_in_call(pid, SYSCALLS["process_vm_readv"])
                       for pid in (_children(proc.pid) if replica else [proc.pid]))

        _wait_for(lambda: held() or proc.poll() is not None, "a replica to be held" if replica else "the loop")
        assert proc.poll() is None
        assert not replica or not _in_call(proc.pid, SYSCALLS["process_vm_readv"])
        os.kill(proc.pid, signal.SIGTERM)
        _, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, err


def test_only_the_connection_that_holds_the_loop_is_aborted(shared_dir: Path, root_runner: Runner,
                                                            tmp_path: Path) -> None:
    """Two FUSE connections have a request waiting: the one the loop reads tracee memory
    from (process_vm_readv of a page mapped from its file) and another one, whose server
    a process outside the run waits on (a slow but honest server, as far as systrace can
    tell). The watchdog reads what the loop is doing (/proc/LOOP/task/T/syscall, the
    tracee's maps) and aborts only the first: the outsider still waits on the second
    after the run (before, the connections were inferred from their waiting requests,
    and both were aborted)."""
    held = _Server(_compile("fuse_noread", shared_dir), tmp_path / "held")
    other = _Server(_compile("fuse_stall", shared_dir), tmp_path / "other")
    outsider = subprocess.Popen(["stat", str(other.mount_point / "x")], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    try:
        _wait_for(lambda: _waits_on_fuse(outsider.pid) or outsider.poll() is not None, "the outsider's stat")
        assert outsider.poll() is None
        connection = str(os.minor(os.stat(held.mount_point).st_dev))
        mapped = _compile("fuse_mapped", shared_dir)
        script = f"{mapped} open {held.file} >/dev/null 2>&1; cat /etc/hostname >/dev/null && echo served"
        proc = subprocess.run(root_runner.argv("--permit-all", "-E", "/dev/null", "/bin/sh", "-c", script),
                              capture_output=True, env=_unseen(root_runner), timeout=TIMEOUT)
        outsider_waits = outsider.poll() is None and _waits_on_fuse(outsider.pid)
    finally:
        other.stop()
        held.stop()
        outsider.wait(timeout=TIMEOUT)
    aborted = next((line for line in proc.stderr.splitlines() if ABORTED in line), b"")
    print(f"two connections waiting, the loop held on {connection}: {aborted.decode(errors='replace')}; the "
          f"outsider still waits on the other: {outsider_waits}; run: {proc.stdout!r}, exit {proc.returncode}")
    assert aborted.endswith(f"aborted ({connection})".encode()), proc.stderr
    assert outsider_waits
    assert proc.returncode == 0 and proc.stdout == b"served\n" and b"Traceback" not in proc.stderr


# -- --supervisors as the unprivileged user ------------------------------------------------
USER_MOUNT_POINT = "/mnt"  # the user may mount over it in a mount namespace of its own


def _user_replica_run(shared_dir: Path, user_runner: Runner, fusectl: bool,
                      then: str = "") -> tuple[list[str], dict[str, str]]:
    """systrace as the user, `-a --supervisors 2`, every eligible call handed to the
    replica: the command mounts FUSE (a server that never answers READ) in a user and
    mount namespace of its own, and stats a path read from memory mapped from the file.
    With `fusectl`, root first mounts fusectl in a mount namespace of its own, where
    systrace then runs (so the user sees its connection's abort file, and nobody else's
    view changes)."""
    server_binary, mapped = _compile("fuse_noread", shared_dir), _compile("fuse_mapped", shared_dir)
    unshare, sh = shutil.which("unshare"), os.path.realpath("/bin/sh")
    policies = user_runner.policy_dir(shared_dir / "replica-user-policies")
    policy = _replica_policy(mapped, policies / "policy")
    policy.write_text(policy.read_text() + _policy_with_opens_by_path(
        [os.path.realpath(unshare), server_binary], policies / "more").read_text())
    # the command's calls are made in a mount namespace of its own
    policy.write_text(policy.read_text().replace(" then permit\n", " then permit[mountns]\n"))
    os.chown(policy, user_runner.uid, -1)
    script = (f"{server_binary} {USER_MOUNT_POINT} & server=$!; "
              f"while [ ! -e {USER_MOUNT_POINT}/file ]; do kill -0 $server || exit 1; done; "
              f"{mapped} stat {USER_MOUNT_POINT}/file; {then}")
    argv = user_runner.argv("-U", "-f", str(policy), "-a", "--supervisors", "2", unshare, "-Urm", "--propagation",
                            "private", sh, "-c", script)
    if fusectl:
        argv = ["unshare", "-m", "--propagation", "private", sh, "-c",
                'mount -t fusectl fusectl /sys/fs/fuse/connections && exec "$@"', "sh", *argv]
    return argv, _to_replicas(user_runner)


def _fusectl_elsewhere() -> bool:
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[2] == "fusectl" for line in mounts)


@pytest.mark.parametrize("fusectl", [False, True], ids=["no-fusectl", "fusectl"])
def test_a_replica_held_for_the_user_is_freed(fusectl: bool, shared_dir: Path, user_runner: Runner,
                                              tmp_path: Path) -> None:
    """The unprivileged user, `--supervisors 2`: the replica reads a stat's path from a
    page of a FUSE file whose server (a process of the run, in a user + mount namespace
    of its own) never answers READ. Natively such a call waits (test_a_server_in_the_run_
    is_ended_with_the_run_for_the_user). The replica's own watchdog, as the user, ends
    the stall: with fusectl mounted where systrace runs, the connection is the user's and
    is aborted (the held call fails, the run goes on and ends 0); without it no abort is
    possible and every process of the run is killed (the server with it: the replica is
    freed, the run ends 137). Either way the main process is never held."""
    if not fusectl and _fusectl_elsewhere():
        pytest.skip("fusectl is mounted: the user's own connection is aborted, step 1")
    argv, env = _user_replica_run(shared_dir, user_runner, fusectl, then="echo served")
    proc = subprocess.run(argv, capture_output=True, env=env, cwd="/", timeout=TIMEOUT)
    err = proc.stderr.decode(errors="replace").strip()
    print(f"user, --supervisors 2, fusectl {'mounted' if fusectl else 'absent'}: exit {proc.returncode}, "
          f"stdout {proc.stdout!r}; {err}")
    assert b"Traceback" not in proc.stderr and HELD not in proc.stderr, err
    assert REPLICA_HELD in proc.stderr, err
    if fusectl:
        assert ABORTED in proc.stderr and KILLED not in proc.stderr, err
        assert proc.returncode == 0 and proc.stdout.endswith(b"\nserved\n"), err
    else:
        assert ABORTED not in proc.stderr and KILLED in proc.stderr, err
        assert proc.returncode == 128 + signal.SIGKILL, err


def test_sigterm_is_honoured_at_once_while_a_replica_is_held_for_the_user(shared_dir: Path, user_runner: Runner,
                                                                          tmp_path: Path) -> None:
    """As test_sigterm_is_honoured_at_once_while_a_replica_is_held, as the unprivileged
    user, the server a process of the run (no abort possible without fusectl): SIGTERM
    to systrace while the replica sits in process_vm_readv is passed on at once, and the
    replica's watchdog, told systrace ends, kills the run without waiting for its bound
    (the server with it: the replica is freed); systrace ends with the command (143)."""
    if _fusectl_elsewhere():
        pytest.skip("fusectl is mounted: the user's own connection is aborted, step 1")
    returncode, err = _sigterm_while_held(*_user_replica_run(shared_dir, user_runner, False))
    print(f"user, SIGTERM while a replica is held: exit {returncode}; {err.decode(errors='replace').strip()}")
    assert returncode == 128 + signal.SIGTERM, err
    assert REPLICA_HELD in err and KILLED in err and b"a signal asks systrace to end" in err, err
    assert b"Traceback" not in err, err
