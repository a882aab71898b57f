"""Tracee memory mapped from a FUSE file whose server never answers READ (SECURITY.md
"Never blocked by the tracee"). A system call whose path, address, message or struct
points into such a mapping makes whoever reads it fault the page in through the
server: natively the caller waits, forever. Under systrace, systrace reads it first (to
decide, to log, to emulate): its loop must not wait with it. The read is made by a
reader process and abandoned after a bound, the call is decided as on unreadable memory
(refused where a rule reads it, continued otherwise: then only the tracee itself waits,
as natively), other processes are served and SIGTERM is honoured at once."""

from __future__ import annotations

import os
import select
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import TIMEOUT, Runner
from proc_waits import children as _children
from proc_waits import seccomp as _seccomp
from proc_waits import wait_for as _wait_for

from systrace.kernel import mounts
from systrace.kernel.syscalls_x86_64 import SYSCALLS

HERE = Path(__file__).resolve().parent
VECTORS = ["open", "stat", "execve", "openat2", "connect", "sendto", "sendmsg"]


def _compile(name: str, shared_dir: Path) -> str:
    directory = shared_dir / "escape-bin"
    directory.mkdir(mode=0o755, exist_ok=True)
    out = directory / name
    if not out.exists():
        subprocess.run(["gcc", "-O1", "-o", str(out), str(HERE / f"{name}.c")], check=True, timeout=120)
        out.chmod(0o755)
    return str(out)


def _waits_on_fuse(pid: int) -> bool:
    """Asleep in the kernel on a FUSE request or on the page it locks."""
    try:
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False
    return "request_wait_answer" in wchan or "fuse" in wchan or "folio" in wchan


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


class _Server:
    """fuse_noread on a fresh mount point: each vector gets its own file, whose page no
    earlier read has left locked."""

    def __init__(self, binary: str, mount_point: Path, *options: str, own_mounts: bool = False):
        """`own_mounts`: the server mounts in a mount namespace of its own, which
        systrace's mount table does not show."""
        mount_point.mkdir()
        self.mount_point = mount_point
        prefix = ["unshare", "-m", "--propagation", "private"] if own_mounts else []
        self.process = subprocess.Popen([*prefix, binary, str(mount_point), *options], stdout=subprocess.PIPE)
        if self.process.stdout.readline() != b"mounted\n":
            self.stop()
            pytest.skip("cannot mount FUSE here")

    @property
    def file(self) -> str:
        return str(self.mount_point / "file")

    def stop(self) -> None:
        self.process.kill()  # the connection is aborted: whatever waits on it fails
        self.process.wait()
        self.process.stdout.close()
        subprocess.run(["umount", "-l", str(self.mount_point)], capture_output=True)


def _policy_with_opens_by_path(binaries: list[str], path: Path) -> Path:
    text = ""
    for binary in binaries:
        lines = [f"Policy: {binary}, Emulation: native"]
        lines += [f"\tnative-{name}: permit" for name in SYSCALLS if name != "openat"]
        lines.append('\tnative-openat: filename sub "/" then permit')
        text += "\n".join(lines) + "\n\n"
    path.write_text(text)
    return path


def test_backing_device_names_that_a_process_may_serve() -> None:
    assert mounts.served_devices(["7:0", "253:0", "0:40"])
    assert mounts.served_devices(["7:0-fuseblk"])
    assert not mounts.served_devices(["7:0", "8:16", "253:0"])
    assert not mounts.served_devices([])


def test_a_fuse_mount_anywhere_is_seen(shared_dir: Path, tmp_path: Path) -> None:
    """A FUSE mount in another mount namespace (hidden from systrace's mount table) is
    seen as one, and its going is seen too."""
    server_binary = _compile("fuse_noread", shared_dir)
    watch = mounts.ServedAnywhere()
    try:
        before = watch.present()
        server = _Server(server_binary, tmp_path / "mnt", own_mounts=True)
        try:
            assert str(tmp_path / "mnt") not in Path("/proc/self/mountinfo").read_text()
            assert watch.present()
        finally:
            server.stop()
        if not before:  # (another test's FUSE mount may exist meanwhile)
            _wait_for(lambda: not watch.present(), "the mount's backing device to go")
    finally:
        watch.close()


def test_once_expired_one_answer_holds_per_call_and_a_forked_child_asks_again(shared_dir: Path,
                                                                              tmp_path: Path) -> None:
    """The supervisor's loop expires the answer at each call (memory.new_call): a FUSE
    mount made during a call is seen from the next call on; a helper forked from the
    loop looks at every question (no loop expires its answer)."""
    server_binary = _compile("fuse_noread", shared_dir)
    watch = mounts.ServedAnywhere()
    try:
        watch.expire()  # a call starts
        if watch.present():
            pytest.skip("a file system a process serves exists already")
        server = _Server(server_binary, tmp_path / "mnt", own_mounts=True)
        try:
            assert not watch.present()  # the same call: its answer holds
            read, write = os.pipe()
            child = os.fork()
            if child == 0:  # a helper: asks again, at once
                os.write(write, b"1" if watch.present() else b"0")
                os._exit(0)
            os.close(write)
            assert os.read(read, 1) == b"1"
            os.close(read)
            os.waitpid(child, 0)
            watch.expire()  # the next call
            assert watch.present()
        finally:
            server.stop()
    finally:
        watch.close()


def test_memory_mapped_from_fuse_stalls_only_the_tracee(shared_dir: Path, root_runner: Runner,
                                                         tmp_path: Path) -> None:
    """Each vector natively waits on the server. Under systrace (--permit-all -E: every
    argument read for the log) another process of the run is served while it waits,
    and SIGTERM to systrace reaches the command at once. (The server has taken the READ
    request: whoever waits on that page, natively the caller, cannot be killed until the
    server answers or goes; systrace keeps supervising it till then.)"""
    server_binary, mapped = _compile("fuse_noread", shared_dir), _compile("fuse_mapped", shared_dir)
    sh = os.path.realpath("/bin/sh")
    stalled_natively, stalled_systrace, refused_at_once = [], [], []
    for vector in VECTORS:
        server = _Server(server_binary, tmp_path / f"native-{vector}")
        try:
            native = subprocess.Popen([mapped, vector, server.file], stdout=subprocess.PIPE)
            _wait_for(lambda n=native: _waits_on_fuse(n.pid) or n.poll() is not None, "the native call")
            if native.poll() is None:
                stalled_natively.append(vector)
        finally:
            server.stop()
            native.wait(timeout=TIMEOUT)
            native.stdout.close()

        server = _Server(server_binary, tmp_path / f"traced-{vector}")
        script = f"{mapped} {vector} {server.file} & cat /etc/hostname >/dev/null && echo served; wait"
        proc = subprocess.Popen(root_runner.argv("--permit-all", "-E", "/dev/null", sh, "-c", script),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=root_runner.env)
        try:
            ready = select.select([proc.stdout], [], [], TIMEOUT)[0]  # a safety net for a stalled loop
            line = proc.stdout.readline() if ready else b""
            if line == f"{vector} -1 EACCES\n".encode():
                # refused at once, failing closed: openat2's flags are in the mapping, and
                # every openat2 is checked for writing (decide/protected.py), so it cannot
                # be continued unread. The loop must still serve the other process.
                refused_at_once.append(vector)
                ready = select.select([proc.stdout], [], [], TIMEOUT)[0]
                line = proc.stdout.readline() if ready else b""
                if line == b"served\n":
                    os.kill(proc.pid, signal.SIGTERM)
                    proc.communicate(timeout=TIMEOUT)
                    continue
            if line != b"served\n":
                stalled_systrace.append(vector)
                continue
            shell = next(c for c in _children(proc.pid) if _seccomp(c) == "2")
            os.kill(proc.pid, signal.SIGTERM)
            _wait_for(lambda s=shell: _gone(s), "SIGTERM to reach the shell")
            # the mapper waits on the page, unkillably, as natively: systrace supervises it
            # until the server goes, then ends with the command's status
            assert proc.poll() is None
            server.stop()
            _, err = proc.communicate(timeout=TIMEOUT)
            assert proc.returncode == 128 + signal.SIGTERM, (vector, err)
            assert b"Traceback" not in err and b"internal error" not in err, err
        finally:
            server.stop()
            proc.kill()
            proc.communicate(timeout=TIMEOUT)
    print(f"memory mapped from FUSE: natively {len(stalled_natively)}/{len(VECTORS)} calls wait on the server; "
          f"under systrace its loop stalled {len(stalled_systrace)}/{len(VECTORS)} {stalled_systrace}, "
          f"refused at once (fail closed) {refused_at_once}")
    assert stalled_natively == VECTORS
    assert stalled_systrace == []


def test_a_path_rule_on_memory_mapped_from_fuse_fails_closed(shared_dir: Path, root_runner: Runner,
                                                             tmp_path: Path) -> None:
    """Under -a with a rule that reads openat's filename: the path cannot be read within
    the bound, so the call is refused (it would otherwise be emulated on a path systrace
    never saw), and the run goes on to its end while the server still never answers."""
    server_binary, mapped = _compile("fuse_noread", shared_dir), _compile("fuse_mapped", shared_dir)
    sh, cat = os.path.realpath("/bin/sh"), os.path.realpath(shutil.which("cat"))
    policy = _policy_with_opens_by_path([sh, cat, mapped], tmp_path / "policy")
    server = _Server(server_binary, tmp_path / "mnt")
    try:
        script = f"{mapped} open {server.file}; cat /etc/hostname >/dev/null && echo served"
        proc = subprocess.run(root_runner.argv("-U", "-f", str(policy), "-a", sh, "-c", script),
                              capture_output=True, env=root_runner.env, timeout=TIMEOUT)
        assert server.process.poll() is None
    finally:
        server.stop()
    assert proc.stdout == b"open -1 EACCES\nserved\n", proc
    assert proc.returncode == 0 and b"Traceback" not in proc.stderr, proc.stderr


# -- unix sockets on FUSE ------------------------------------------------------------------
def _unix_policy(binary: str, path: Path) -> Path:
    lines = [f"Policy: {binary}, Emulation: native"]
    lines += [f"\tnative-{name}: permit" for name in SYSCALLS if name not in ("connect", "sendto", "bind")]
    lines += [f'\tnative-{name}: sockaddr sub "/" then permit' for name in ("connect", "sendto", "bind")]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_unix_sockets_on_fuse_are_reached_by_a_helper(shared_dir: Path, root_runner: Runner, tmp_path: Path) -> None:
    """connect and bind of a unix socket on FUSE, checked by their sockaddr rule: the
    lookups may wait on the daemon, so a helper makes the call; the tracee gets the
    kernel's answer, as natively (before: EACCES). So does a send there: the message is
    read by the loop, the lookup and the send made by the helper (before: EACCES)."""
    server_binary, unix_to = _compile("fuse_noread", shared_dir), _compile("unix_to", shared_dir)
    policy = _unix_policy(unix_to, tmp_path / "policy")
    server = _Server(server_binary, tmp_path / "mnt")
    try:
        sock = str(server.mount_point / "sock")
        native = [subprocess.run([unix_to, verb, sock], capture_output=True, timeout=TIMEOUT).stdout
                  for verb in ("connect", "bind", "sendto")]
        traced = [subprocess.run(root_runner.argv("-U", "-f", str(policy), "-a", unix_to, verb, sock),
                                 capture_output=True, env=root_runner.env, timeout=TIMEOUT)
                  for verb in ("connect", "bind", "sendto")]
    finally:
        server.stop()
    assert native == [b"connect -1 ECONNREFUSED\n", b"bind -1 EADDRINUSE\n", b"sendto -1 ECONNREFUSED\n"]
    print(f"unix sockets on FUSE: natively {native}, under systrace {[proc.stdout for proc in traced]}")
    assert [proc.stdout for proc in traced] == native, traced
    assert all(b"Traceback" not in proc.stderr for proc in traced)



def _stalled_server(stall: str, mount_point: Path) -> subprocess.Popen:
    mount_point.mkdir()
    server = subprocess.Popen([stall, str(mount_point)], stdout=subprocess.PIPE)
    if server.stdout.readline() != b"mounted\n":
        server.kill()
        server.wait()
        pytest.skip("cannot mount FUSE here")
    return server


def _end_server(server: subprocess.Popen, mount_point: Path) -> None:
    server.kill()  # the connection is aborted: the lookup waiting on it fails
    server.wait()
    server.stdout.close()
    subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


@pytest.mark.parametrize("verb", ["sendto", "connect", "bind"])
def test_a_unix_name_on_a_stalled_fuse_mount_stalls_only_its_caller(verb: str, shared_dir: Path,
                                                                    root_runner: Runner, tmp_path: Path) -> None:
    """A sendto, connect or bind to a unix name on a FUSE mount whose server never
    answers: natively the caller waits in the lookup, and when the server dies the lookup
    fails (ENOTCONN: the connection is aborted). Under systrace the name's lookup is made
    by a helper (the translation's first, with this server; the call's own when the
    lookup is answered: the test above); another process of the run is served meanwhile,
    and once the server dies the caller gets the kernel's error, as natively (before:
    ENOENT, the translation found no name)."""
    stall, unix_to = _compile("fuse_stall", shared_dir), _compile("unix_to", shared_dir)
    native_mount = tmp_path / "native"
    server = _stalled_server(stall, native_mount)
    try:
        native = subprocess.Popen([unix_to, verb, str(native_mount / "sock")], stdout=subprocess.PIPE)
        _wait_for(lambda: _waits_on_fuse(native.pid), "the native call to wait on the server")
        assert native.poll() is None
    finally:
        _end_server(server, native_mount)
    native_out = native.communicate(timeout=TIMEOUT)[0]

    mount_point = tmp_path / "mnt"
    server = _stalled_server(stall, mount_point)
    proc = None
    try:
        sock = str(mount_point / "sock")
        sh = os.path.realpath("/bin/sh")
        policy = tmp_path / "policy"
        text = _policy_with_opens_by_path([sh], tmp_path / "sh-policy").read_text()
        policy.write_text(text + "\n" + _unix_policy(unix_to, tmp_path / "unix-policy").read_text())
        script = f"{unix_to} {verb} {sock} & read go; read x < /etc/hostname && echo served; wait"
        proc = subprocess.Popen(root_runner.argv("-U", "-f", str(policy), "-a", sh, "-c", script),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=root_runner.env)

        def helper_waits() -> bool:
            return any(_waits_on_fuse(child) for child in _children(proc.pid))

        _wait_for(helper_waits, "systrace's helper to wait on the server")
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        assert select.select([proc.stdout], [], [], TIMEOUT)[0], "the run stalled"
        assert proc.stdout.readline() == b"served\n"
        # the server dies; the mount stays until the call is answered (the lazy unmount
        # below, made earlier, raced with systrace's own lookup of the name after the
        # server died, which then found no mount: ENOENT, now and then, under load)
        server.kill()
        server.wait()
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        _end_server(server, mount_point)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"{verb} on a stalled FUSE mount, the server then killed: natively {native_out!r}; under systrace another "
          f"process served, then {out!r}")
    assert native_out == f"{verb} -1 ENOTCONN\n".encode()
    assert out == native_out, (out, err)
    assert proc.returncode == 0 and b"Traceback" not in err and b"internal error" not in err, err
