"""/proc/PID of another process is named by the pid's relation to the caller (issue 11
item 2): a rule learned from a run that read a process of the run (its child, its parent
shell) replays with other pids next time, and never lets the same policy read the
entries of a process outside the run, which the same user reads natively.

Also what a descriptor path opens (/dev/fd/N, /proc/self/fd/N of pipes, sockets, an
eventfd, a memfd, a deleted file): under systrace exactly what opens natively, with the
same errno otherwise."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TIMEOUT, Runner

# what a process's /proc directory gives away: environment, memory, maps, its limits...
ENTRIES = ["environ", "cmdline", "stat", "status", "maps", "mem", "auxv", "limits"]


@pytest.fixture
def scratch(shared_dir: Path, request) -> Path:
    """A directory both root and the test user may use (pytest's tmp dirs are root's)."""
    path = shared_dir / f"proc-{request.node.name}".replace("[", "-").replace("]", "")
    path.mkdir(exist_ok=True)
    path.chmod(0o755)  # not writable by others: it holds a policy directory
    return path


def _outsider(runner: Runner, script: str) -> subprocess.Popen:
    """A shell outside the run, of the runner's user (its entries are readable natively),
    once it runs as that user (setpriv has switched: it says so)."""
    process = subprocess.Popen(runner.native_argv("sh", "-c", f"echo ready; {script}"), stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, env=runner.env)
    assert process.stdout is not None and process.stdout.readline() == b"ready\n"
    if script.startswith("exec "):
        # until the exec is done: while it runs, the entries (mem, environ) can fail to read
        binary = os.path.realpath(shutil.which(script.split()[1]) or script.split()[1])
        deadline = time.monotonic() + TIMEOUT  # a safety net: the condition decides
        while _exe(process.pid) != binary:
            assert time.monotonic() < deadline, f"{script}: never ran"
            time.sleep(0.01)
    return process


def _exe(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None


def _opened(result: subprocess.CompletedProcess) -> int:
    line = result.stdout.decode().splitlines()[0]
    assert line.startswith("procread: ") and line.endswith(f" of {len(ENTRIES)}"), result
    return int(line.split()[1])


def test_a_child_s_proc_entries_never_grant_an_outsider_s(runner: Runner, cbin, scratch: Path) -> None:
    procread = cbin("procread")
    policies = runner.policy_dir(scratch / "policies")
    learned = runner("-d", str(policies), "-A", procread, "child", *ENTRIES)
    assert _opened(learned) == len(ENTRIES), learned
    text = "".join(path.read_text() for path in policies.iterdir())
    # (the binary's mkstemp-named test directory may be learned as its shape)
    assert re.search(r"/proc/<descendant: /[^>]*/procread>/environ", text), text
    assert "/proc/<outside the run>" not in text and not re.search(r"/proc/[0-9]", text), text
    again = runner("-d", str(policies), "-a", "-e", procread, "child", *ENTRIES)  # another child pid
    assert _opened(again) == len(ENTRIES) and b"deny" not in again.stderr, again
    outsider = _outsider(runner, f"exec sleep {TIMEOUT}")
    try:
        native = runner.native(procread, str(outsider.pid), *ENTRIES)
        attack = runner("-d", str(policies), "-a", "-e", procread, str(outsider.pid), *ENTRIES)
    finally:
        outsider.kill()
        outsider.wait()
    assert (_opened(native), _opened(attack)) == (len(ENTRIES), 0), (native, attack)
    assert attack.stderr.count(b"/proc/<outside the run>/") == len(ENTRIES), attack


def _failed(result: subprocess.CompletedProcess) -> str:
    lines = result.stdout.decode().splitlines()
    return lines[1] if len(lines) > 1 else ""


def test_an_outsider_s_entries_carried_out_by_systrace_fail_as_continued_ones(runner: Runner, cbin,
                                                                               scratch: Path) -> None:
    """The command's Landlock domain refuses ptrace-mode access outside the run (SECURITY.md
    "Design notes"): a continued open of an outsider's environ fails. One that systrace
    carries out (a learned rule naming `/proc/<outside the run>/...`) must fail the same
    way: before, -A and -a read 8 of 8 entries where --permit-all read 4 (as the user)."""
    procread = cbin("procread")
    policies = runner.policy_dir(scratch / "policies")
    outsider = _outsider(runner, f"exec sleep {TIMEOUT}")
    try:
        native = runner.native(procread, str(outsider.pid), *ENTRIES)
        continued = runner("--permit-all", procread, str(outsider.pid), *ENTRIES)
        learned = runner("-d", str(policies), "-A", procread, str(outsider.pid), *ENTRIES)
        enforced = runner("-d", str(policies), "-a", procread, str(outsider.pid), *ENTRIES)
    finally:
        outsider.kill()
        outsider.wait()
    assert _opened(native) == len(ENTRIES), native
    # what the kernel refuses the command: at least /proc/PID/mem, which needs ptrace attach
    assert "mem:EACCES" in _failed(continued), continued
    if runner.uid != 0:
        assert _failed(continued) == "failed: environ:EACCES maps:EACCES mem:EACCES auxv:EACCES", continued
    assert "/proc/<outside the run>/environ" in "".join(p.read_text() for p in policies.iterdir())
    assert (_opened(learned), _failed(learned)) == (_opened(continued), _failed(continued)), (learned, continued)
    assert (_opened(enforced), _failed(enforced)) == (_opened(continued), _failed(continued)), (enforced, continued)


def test_the_parent_shell_s_entries_never_grant_another_shell_s(runner: Runner, cbin, scratch: Path) -> None:
    """ps-like: a rule for "a supervised process running dash" grants only that relation,
    not every dash on the machine."""
    procread = cbin("procread")
    policies = runner.policy_dir(scratch / "policies")
    own = scratch / "own"  # where the shell, as the runner's user, writes its pid
    own.mkdir(exist_ok=True)
    os.chown(own, runner.uid, -1)
    pidfile = own / "pid"
    # the shell writes its own pid unless the file names one already (the attack's)
    script = f"test -s {pidfile} || echo $$ > {pidfile}; {procread} @{pidfile} {' '.join(ENTRIES)}; true"
    for mode in ("-A", "-a"):
        pidfile.unlink(missing_ok=True)
        harmless = runner("-d", str(policies), mode, "-e", "sh", "-c", script)
        assert _opened(harmless) == len(ENTRIES) and b"deny" not in harmless.stderr, harmless
    text = "".join(path.read_text() for path in policies.iterdir())
    assert "/proc/<supervised: /usr/bin/dash>/environ" in text, text
    outsider = _outsider(runner, "read line")  # dash too, outside the run
    try:
        pidfile.write_text(f"{outsider.pid}\n")
        pidfile.chmod(0o644)
        native = runner.native("sh", "-c", script)
        attack = runner("-d", str(policies), "-a", "-e", "sh", "-c", script)
    finally:
        outsider.kill()
        outsider.wait()
    assert (_opened(native), _opened(attack)) == (len(ENTRIES), 0), (native, attack)


FD_KINDS = r"""
import errno, os, socket, sys
os.chdir(sys.argv[1])
r, w = os.pipe()
pair = socket.socketpair()
memfd = os.memfd_create("jit")
os.write(memfd, b"m")
kept = open("regular", "w+")
gone = open("deleted", "w+")
os.unlink("deleted")
fds = {"pipe": r, "pipe-w": w, "socket": pair[0].fileno(), "eventfd": os.eventfd(0), "memfd": memfd,
       "file": kept.fileno(), "deleted": gone.fileno(), "opath": os.open("regular", os.O_PATH)}
os.write(w, b"p")
for name, fd in fds.items():
    for path in (f"/proc/self/fd/{fd}", f"/dev/fd/{fd}"):
        out = []
        for label, call in (("stat", lambda: os.stat(path).st_mode >> 12), ("lstat", lambda: os.lstat(path) and 0),
                            ("access", lambda: os.access(path, os.R_OK))):
            try:
                out.append(f"{label}={call()}")
            except OSError as error:
                out.append(f"{label}={errno.errorcode[error.errno]}")
        for label, flags in (("rd", os.O_RDONLY | os.O_NONBLOCK), ("wr", os.O_WRONLY | os.O_NONBLOCK),
                             ("path", os.O_PATH), ("nofollow", os.O_RDONLY | os.O_NOFOLLOW)):
            try:
                os.close(os.open(path, flags))
                out.append(f"{label}=ok")
            except OSError as error:
                out.append(f"{label}={errno.errorcode[error.errno]}")
        print(name, path.split("/")[1], *out)
"""


def test_descriptor_paths_open_as_natively(runner: Runner, scratch: Path) -> None:
    """stat, access and open of /proc/self/fd/N and /dev/fd/N for each kind of object:
    what works natively works under -A and under the learned policy, what fails natively
    fails with the same errno (sockets and eventfds: ENXIO; O_NOFOLLOW: ELOOP)."""
    script = scratch / "fdkinds.py"
    script.write_text(FD_KINDS)
    script.chmod(0o644)
    scratch = scratch / "own"  # where the script, as the runner's user, makes its files
    scratch.mkdir(exist_ok=True)
    os.chown(scratch, runner.uid, -1)
    python = runner.python
    native = runner.native(python, str(script), str(scratch))
    assert native.returncode == 0 and native.stdout.count(b"\n") == 16, native
    assert b"socket proc stat=12 lstat=0 access=True rd=ENXIO" in native.stdout, native.stdout
    policies = runner.policy_dir(script.parent / "policies")
    for mode in ("-A", "-A", "-a"):
        traced = runner("-d", str(policies), mode, "-e", python, str(script), str(scratch))
        assert traced.stdout == native.stdout, (mode, traced)
    assert b"deny" not in traced.stderr, traced
    text = "".join(path.read_text() for path in policies.iterdir())
    for kind in ('"pipe:"', '"socket:"', '"anon_inode:[eventfd]"', '"memfd:jit"'):
        assert kind in text, kind


def test_a_reopened_descriptor_must_still_name_what_was_checked() -> None:
    """The emulated open of /proc/self/fd/N reopens the tracee's description, and only if
    it still names what the policy saw: a dup2 of another file onto N after the check
    gets EACCES, never that file (here the tracee is this test process)."""
    from systrace.kernel.emulate import open_for
    from systrace.kernel.emulate_identity import EmulationError

    status = Path(f"/proc/{os.getpid()}/status").read_bytes()
    read_end, write_end = os.pipe()
    secret = os.open("/etc/hostname", os.O_RDONLY)
    try:
        own = f"/proc/{os.getpid()}/fd/{read_end}".encode()
        link = os.readlink(own)  # what the policy was shown: pipe:[INODE]
        fd = open_for(os.getpid(), os.getpid(), own, os.O_RDONLY | os.O_NONBLOCK, 0, status, "/", link)
        os.close(fd)
        os.dup2(secret, read_end)  # swapped after the check
        with pytest.raises(EmulationError) as refused:
            open_for(os.getpid(), os.getpid(), own, os.O_RDONLY, 0, status, "/", link)
        assert "no longer names" in str(refused.value)
        with pytest.raises(EmulationError):  # and never without knowing what it named
            open_for(os.getpid(), os.getpid(), own, os.O_RDONLY, 0, status, "/", None)
    finally:
        for fd in (read_end, write_end, secret):
            os.close(fd)


def test_a_pid_named_by_relation_is_pinned_to_its_process(tmp_path: Path) -> None:
    """The relation is computed for one process; if the number names another by the time
    the emulated open runs (it exited and the pid was reused), the open gets ENOENT, as
    if it had exited first, never the newcomer's file."""
    from systrace.kernel import procfs
    from systrace.kernel.worker import open_without_blocking

    child = subprocess.Popen(["sleep", str(TIMEOUT)])
    try:
        started = procfs.start_time(child.pid)
        assert started is not None and procfs.same_processes({child.pid: started})
        assert not procfs.same_processes({child.pid: started + 1}) and not procfs.same_processes({child.pid: None})
        status = Path(f"/proc/{os.getpid()}/status").read_bytes()
        path = f"/proc/{child.pid}/cmdline".encode()

        def open_pinned(pins: dict[int, int | None]) -> int:
            return open_without_blocking(0, os.getpid(), os.getpid(), path, os.O_RDONLY, 0, status, "/", -1, None, pins)

        os.close(open_pinned({child.pid: started}))
        for moved in ({child.pid: started + 1}, {child.pid: None}):
            with pytest.raises(FileNotFoundError):
                open_pinned(moved)
    finally:
        child.kill()
        child.wait()
    assert not procfs.same_processes({child.pid: started})  # reaped: the pin names nothing


def test_translation_pins_the_pids_it_names() -> None:
    from test_translate import FakeTracee

    from systrace.translate.translator import translate

    tracee = FakeTracee(Path("/"), tgid=os.getpid())
    path = tracee.put(b"/proc/1/environ\0")
    tracee.processes = {**FakeTracee.processes, 1: (1, 0, "/sbin/init", False)}
    assert translate("openat", (-100, path, 0, 0, 0, 0), tracee).proc_pins == {1: 100}

    class Moving(FakeTracee):
        """pid 1 names another process on each look."""
        def start_time(self, pid: int) -> int | None:
            self.started[pid] = self.started.get(pid, 100) + 1
            return self.started[pid]

    moving = Moving(Path("/"), tgid=os.getpid())
    moving.processes = tracee.processes
    path = moving.put(b"/proc/1/environ\0")
    assert translate("openat", (-100, path, 0, 0, 0, 0), moving).proc_pins == {1: None}


HELPER_PROBE = r"""
import errno, os, sys, threading
fifo = sys.argv[1]
threading.Thread(target=lambda: open(fifo).read(), daemon=True).start()  # systrace opens it in a helper
print("waiting", flush=True)
for line in sys.stdin:
    if line.strip() == "done":
        break
    out = []
    for entry in ("status", "environ"):
        try:
            os.close(os.open(f"/proc/{line.strip()}/{entry}", os.O_RDONLY))
            out.append(f"{entry}=ok")
        except OSError as error:
            out.append(f"{entry}={errno.errorcode[error.errno]}")
    print(*out, flush=True)
with open(fifo, "w") as writer:
    writer.write("x")
"""


def _helper_of(systrace_pid: int, tracee_pid: int) -> int:
    """The open helper systrace forked for the blocked FIFO open (waits for it to appear)."""
    import time

    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        children = Path(f"/proc/{systrace_pid}/task/{systrace_pid}/children").read_text().split()
        others = [int(pid) for pid in children if int(pid) != tracee_pid]
        if others:
            return others[0]
        time.sleep(0.01)  # polling for a condition; the deadline is only a safety net
    raise AssertionError("no helper appeared")


def test_systrace_and_its_helpers_proc_entries_are_refused_whatever_the_policy(tmp_path: Path) -> None:
    """Their /proc entries are named <outside the run> like any other's, yet no policy
    opens them: the emulated open runs outside the command's Landlock domain, which is
    what keeps the tracee from them otherwise. The policy is learned from a run that read
    an outsider's entries (so it permits /proc/<outside the run>/...), then enforced."""
    from conftest import base_env, systrace_argv

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    log = tmp_path / "log"
    outsider = subprocess.Popen(["sleep", str(TIMEOUT)])
    answers: dict[str, list[str]] = {}
    try:
        for mode in ("-A", "-a"):  # -A: a blocking open is not emulated, no helper yet
            process = subprocess.Popen([*systrace_argv(), "-d", str(tmp_path / "p"), mode, "-E", str(log),
                                        sys.executable, "-c", HELPER_PROBE, str(fifo)],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=base_env())
            try:
                assert process.stdout.readline() == b"waiting\n"
                targets = [("outsider", outsider.pid)]
                if mode == "-a":
                    tracee = int(Path(f"/proc/{process.pid}/task/{process.pid}/children").read_text().split()[0])
                    targets += [("helper", _helper_of(process.pid, tracee)), ("systrace", process.pid)]
                for name, pid in targets:
                    process.stdin.write(f"{pid}\n".encode())
                    process.stdin.flush()
                    answers[name] = process.stdout.readline().decode().split()
                process.stdin.write(b"done\n")
                process.stdin.close()
                assert process.wait(timeout=TIMEOUT) == 0
            finally:
                process.kill()
                process.wait()
    finally:
        outsider.kill()
        outsider.wait()
    assert answers == {"helper": ["status=ENOENT", "environ=ENOENT"], "systrace": ["status=ENOENT", "environ=ENOENT"],
                       "outsider": ["status=ok", "environ=ok"]}, answers
    assert log.read_text().count("(systrace's own /proc entry, whatever the policy says)") == 4
