"""The tracee cannot reach, outlive or take over systrace (SECURITY.md "Out of reach",
"Death is fail closed"). Each attack is shown working natively, on an ordinary victim
process, and then counted under systrace, where it must get through 0 times."""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TIMEOUT, Runner, run
from proc_waits import children as _children
from proc_waits import seccomp as _seccomp
from proc_waits import wait_for as _wait_for

from systrace.kernel import landlock
from systrace.kernel.syscalls_x86_64 import SYSCALLS

HERE = Path(__file__).resolve().parent

# Vectors that work by delivering a signal: natively the victim dies; through systrace
# they would kill it (SIGKILL, or SIGIO whose default action terminates).
SIGNAL_VECTORS = ["kill", "tkill", "tgkill", "sigqueue", "tgsigqueue", "killpg", "kill0", "pidfd_signal",
                  "procfd_signal", "setown", "setown_pgrp", "setown_ex", "fiosetown", "siocspgrp"]
# Vectors whose accepted call is the attack (ptrace access, rlimits, scheduling, I/O priority).
CALL_VECTORS = ["ptrace_attach", "ptrace_seize", "vm_readv", "vm_writev", "proc_mem", "pidfd_getfd", "prlimit_cpu",
                "setpriority", "setpriority_pgrp", "affinity", "setscheduler", "setparam", "setattr", "ioprio",
                "ioprio_pgrp", "kcmp", "perf", "migrate_pages", "move_pages", "robust_list", "pidfd_open"]
# Natively only with CAP_SYS_NICE (process_madvise of another process).
ROOT_CALL_VECTORS = ["madvise"]
# By group or user systrace does them over the run's threads minus its own: they succeed
# under systrace, so their effect on systrace is what tests/escape/test_group_priority.py
# measures (systrace's nice and I/O priority before and after), not their result here.
DONE_WITHOUT_SYSTRACE = ("setpriority_pgrp", "ioprio_pgrp")
GROUP_VECTORS = ("kill0", "setpriority_pgrp", "ioprio_pgrp", "killpg", "setown_pgrp")

pytestmark = pytest.mark.skipif(landlock.abi_version() < landlock.SCOPE_ABI,
                                reason="Landlock signal scoping (Linux 6.12) is needed for these guarantees")


def _compile(name: str, shared_dir: Path, *flags: str) -> str:
    """tests/escape/NAME.c, built once into a directory of its own: tests/c has programs of
    the same names, which the cbin fixture builds into shared_dir itself. `flags`: more
    for gcc (the same for every build of NAME)."""
    directory = shared_dir / "escape-bin"
    directory.mkdir(mode=0o755, exist_ok=True)
    directory.chmod(0o755)
    out = directory / name
    if not out.exists():
        subprocess.run(["gcc", "-O1", "-pthread", *flags, "-o", str(out), str(HERE / f"{name}.c")], check=True,
                       timeout=120)
        out.chmod(0o755)
    return str(out)


def _native_through(runner: Runner, reach: str, vector: str) -> bool:
    """Run the attack on a fresh `sleep` (its own process group; for kill0 the attacker
    joins it): did it get through?"""
    victim = subprocess.Popen(runner.native_argv("sh", "-c", "echo ready; exec sleep 1000"), process_group=0,
                              stdout=subprocess.PIPE)
    try:
        assert victim.stdout.readline() == b"ready\n"  # it runs as the runner's user now
        attacker = subprocess.run(runner.native_argv(reach, vector, str(victim.pid), str(victim.pid)),
                                  capture_output=True, timeout=TIMEOUT, process_group=victim.pid)
        if vector in SIGNAL_VECTORS:
            try:
                victim.wait(timeout=10)  # safety net: a delivered SIGKILL/SIGIO ends it at once
            except subprocess.TimeoutExpired:
                return False
            return victim.returncode in (-signal.SIGKILL, -signal.SIGIO)
        return attacker.stdout == f"{vector} ok\n".encode()
    finally:
        victim.kill()
        victim.wait()
        victim.stdout.close()


def _traced_through(runner: Runner, reach: str, vector: str) -> bool:
    """The same attack from under systrace, aimed at systrace (the attacker's parent and
    process group): did it reach it?"""
    result = runner("--permit-all", reach, vector, "0", "0")
    if result.returncode < 0:  # systrace itself was killed
        return True
    assert b"Traceback" not in result.stderr
    if vector in ("kill0", "killpg"):  # the attacker killed its own group (systrace's), and only itself
        return result.returncode != 128 + signal.SIGKILL
    assert result.returncode == 0, (vector, result.stdout, result.stderr)
    return result.stdout == f"{vector} ok\n".encode() and vector not in SIGNAL_VECTORS


@pytest.mark.parametrize("who", ["root", "user"])
def test_nothing_names_systrace(request, shared_dir: Path, who: str) -> None:
    runner = request.getfixturevalue(f"{who}_runner")
    reach = _compile("reach", shared_dir)
    vectors = SIGNAL_VECTORS + CALL_VECTORS + (ROOT_CALL_VECTORS if who == "root" else [])
    native = {v: _native_through(runner, reach, v) for v in vectors}
    traced = {v: _traced_through(runner, reach, v) for v in vectors if v not in DONE_WITHOUT_SYSTRACE}
    print(f"{who}: natively {sum(native.values())}/{len(native)} got through, "
          f"under systrace {sum(traced.values())}/{len(traced)}")
    assert [v for v, through in native.items() if not through] == []  # the attacks do work natively
    assert [v for v, through in traced.items() if through] == []


def test_broadcast_kill_does_not_reach_systrace(shared_dir: Path) -> None:
    """kill(-1, SIGKILL) reaches every process the caller may signal. Shown inside a PID
    namespace (root), where that is only the namespace's processes: natively it kills a
    sibling; under systrace, systrace survives it."""
    reach = _compile("reach", shared_dir)
    script = (f"sleep 1000 & {reach} kill_all 0 0; wait $!; echo sibling $?; "
              f"{sys.executable} -m systrace --permit-all {reach} kill_all 0 0; echo systrace $?")
    result = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", script], capture_output=True,
                            timeout=TIMEOUT, env={**os.environ, "PYTHONPATH": str(HERE.parent.parent / "src")})
    if result.returncode != 0 and b"unshare" in result.stderr:
        pytest.skip(f"no PID namespace here: {result.stderr!r}")
    lines = result.stdout.decode().splitlines()
    # natively the sibling is killed; under systrace the kernel skips systrace
    assert lines[:2] == ["kill_all ok", f"sibling {128 + 9}"], (lines, result.stderr)
    assert lines[2] in ("kill_all ok", "kill_all EPERM") and lines[3] == "systrace 0", (lines, result.stderr)


# -- helpers --------------------------------------------------------------------
def _permit_everything_but_connect(binary: str, path: Path, port: int, opens_by_path: bool = False) -> Path:
    """A policy that permits every call plainly and connect only to 127.0.0.1:PORT, so
    that connect is emulated (a blocking one in a helper process); with `opens_by_path`
    opens are permitted by their path (emulated: one that may wait is a helper's too)."""
    routed = ("connect", "openat") if opens_by_path else ("connect",)
    lines = [f"Policy: {binary}, Emulation: native"]
    lines += [f"\tnative-{name}: permit" for name in SYSCALLS if name not in routed]
    lines.append(f'\tnative-connect: sockaddr eq "inet-[127.0.0.1]:{port}" then permit')
    if opens_by_path:
        lines.append('\tnative-openat: filename sub "/" then permit')
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o644)
    return path


def _full_listener() -> list[socket.socket]:
    """A listening socket whose queue is full, and the clients that fill it: one more
    connect blocks (its SYNs are dropped)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    fillers = []
    for _ in range(4):
        client = socket.socket()
        client.setblocking(False)
        try:
            client.connect(server.getsockname())
        except BlockingIOError:
            pass
        fillers.append(client)
    return [server, *fillers]


@pytest.mark.parametrize("helper", ["connect", "open", "replica"])
@pytest.mark.parametrize("who", ["root", "user"])
def test_helpers_are_out_of_reach(request, shared_dir: Path, who: str, helper: str) -> None:
    """While a blocking connect (or the open of a FIFO with no writer) runs in systrace's
    helper (or, under --supervisors 2, with the replicas deciding), the tracee finds the
    helper and attacks it by every vector that works on an ordinary process (test_nothing_names_systrace shows them natively): none gets
    through. Signals and ptrace-mode access stop at the Landlock domain; the calls
    checked only by uid or capability (scheduling, priorities, rlimits, perf counting,
    pidfd_open) are routed to systrace, which refuses those naming a live helper."""
    runner = request.getfixturevalue(f"{who}_runner")
    reach = _compile("reach", shared_dir)
    sockets = _full_listener()
    port = sockets[0].getsockname()[1]
    policy = _permit_everything_but_connect(reach, shared_dir / f"reach-policy-{who}", port, opens_by_path=True)
    fifo = shared_dir / f"reach-fifo-{who}"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo, 0o666)
    fifo.chmod(0o666)
    where = {"connect": ["127.0.0.1", str(port)], "open": [str(fifo)], "replica": []}[helper]
    mode = {"connect": "helper", "open": "fifohelper", "replica": "replica"}[helper]
    supervisors = ["--supervisors", "2"] if helper == "replica" else []
    through = {}
    try:
        for vector in SIGNAL_VECTORS + CALL_VECTORS + (ROOT_CALL_VECTORS if who == "root" else []):
            if vector in GROUP_VECTORS:
                continue  # the helper is in systrace's group: covered above
            # a session of its own: the attacker finds the helper as the one other process
            # of its group (it may not open the helper's /proc entry)
            result = run(["setsid", *runner.argv("-U", "-f", str(policy), "-a", *supervisors, reach, mode, vector,
                                                 *where)],
                         env=runner.env, cwd=runner.cwd)
            lines = result.stdout.decode().splitlines()
            assert len(lines) == 2 and lines[1] in ("helper alive", "helper dead"), (vector, lines, result.stderr)
            through[vector] = lines[1] == "helper dead" or (vector not in SIGNAL_VECTORS and lines[0] == f"{vector} ok")
    finally:
        for sock in sockets:
            sock.close()
        fifo.unlink()
    got = sorted(v for v, t in through.items() if t)
    print(f"{who}, {helper} helper: {len(got)}/{len(through)} attacks got through: {got}")
    assert got == []


# -- death -------------------------------------------------------------------------
def _slots(map_path: Path, count: int) -> list[tuple[str, int, int]]:
    data = map_path.read_bytes()
    out = []
    for i in range(count):
        state, routed, listener = struct.unpack_from("=c3xii", data, 64 + 16 * i)
        out.append((state.decode() if state != b"\0" else "", routed, listener))
    return out


def _run_tree(runner: Runner, tree: str, map_path: Path, extra: list[str], slots: int, kill: bool,
              mode: list[str]) -> list[tuple[str, int, int]]:
    map_path = runner.writable(map_path)
    map_path.write_bytes(bytes(4096))
    argv = (runner.argv(*mode, tree, str(map_path), *extra) if kill else runner.native_argv(tree, str(map_path), *extra))
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=runner.env, cwd=runner.cwd)
    try:
        _wait_for(lambda: all(s[0] == "R" for s in _slots(map_path, slots)), "every thread to be ready")
        if kill:
            os.kill(proc.pid, signal.SIGKILL)  # setpriv execs in place: this is systrace
            proc.wait()
        with open(map_path, "r+b") as handle:
            handle.write(b"\1")  # the go signal: systrace is dead
        # stdout and stderr close once every process of the tree has exited
        proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
        proc.wait()
    return _slots(map_path, slots)


@pytest.mark.parametrize("who", ["root", "user"])
def test_killing_systrace_leaves_three_generations_unable_to_go_on(request, shared_dir: Path, who: str) -> None:
    """Three generations of processes, three threads each. Natively every thread's call
    runs and each can install its own seccomp listener; after systrace is SIGKILLed none
    can: the first generation is killed (PDEATHSIG), every other thread's routed call
    fails with ENOSYS and NEW_LISTENER is refused (EPERM) in the kernel."""
    runner = request.getfixturevalue(f"{who}_runner")
    tree = _compile("tree", shared_dir)
    native = _run_tree(runner, tree, shared_dir / f"tree-native-{who}.map", [], 9, kill=False, mode=[])
    assert native == [("D", 0, 0)] * 9  # natively: the call runs, and a listener can be had
    after = _run_tree(runner, tree, shared_dir / f"tree-{who}.map", [], 9, kill=True, mode=["--permit-all", "-E", "/dev/null"])
    through = [s for s in after if s[0] == "D" and (s[1] == 0 or s[2] == 0)]
    print(f"{who}: {len(through)} of 9 threads made a routed call or got a listener after systrace died")
    assert through == []
    assert after[3:] == [("D", 38, 1)] * 6, after  # ENOSYS, EPERM
    assert all(s[0] == "R" or s[1:] == (38, 1) for s in after[:3]), after  # killed, or the same


@pytest.mark.parametrize("who", ["root", "user"])
def test_killing_systrace_while_its_connect_helper_works(request, shared_dir: Path, who: str) -> None:
    runner = request.getfixturevalue(f"{who}_runner")
    tree = _compile("tree", shared_dir)
    sockets = _full_listener()
    port = sockets[0].getsockname()[1]
    policy = _permit_everything_but_connect(tree, shared_dir / f"tree-policy-{who}", port)
    try:
        after = _run_tree(runner, tree, shared_dir / f"tree-connect-{who}.map", ["connect", "127.0.0.1", str(port)], 7,
                          kill=True, mode=["-U", "-f", str(policy), "-a"])
    finally:
        for sock in sockets:
            sock.close()
    assert after[6] == ("D", 38, 1), after  # the connect in flight: ENOSYS; no listener of its own
    # the policy permits openat plainly, so the kernel runs it; still no listener
    assert after[3:6] == [("D", 0, 1)] * 3, after


def test_killing_systrace_while_a_question_waits(shared_dir: Path, root_runner: Runner, tmp_path: Path) -> None:
    """A -g frontend that never answers: systrace is killed while the question waits.
    The asking process gets no answer that runs its call; everything ends."""
    tree = _compile("tree", shared_dir)
    asked = tmp_path / "asked"
    frontend = tmp_path / "never.py"
    frontend.write_text(f"import sys\nline = sys.stdin.readline()\nopen({str(asked)!r}, 'w').write(line)\n"
                        "sys.stdin.read()\n")  # never answers; ends when systrace's end closes
    map_path = tmp_path / "map"
    map_path.write_bytes(bytes(4096))
    proc = subprocess.Popen(root_runner.argv("-d", str(tmp_path / "p"), "-g", f"{sys.executable} {frontend}",
                                             tree, str(map_path)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=root_runner.env)
    try:
        _wait_for(asked.exists, "the question")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        out, err = proc.communicate(timeout=TIMEOUT)  # EOF: the tree and the frontend are gone
    finally:
        proc.kill()
        proc.wait()
    assert b"pid: " in asked.read_bytes()
    assert _slots(map_path, 9) == [("", 0, 0)] * 9  # no thread ever got past its first question


# -- a signal to a thread whose open a helper does -------------------------------------
def _open_helper(pid: int) -> bool:
    """A helper of systrace's (no filter), not its reader of tracee memory (started while
    a FUSE mount exists anywhere on the machine, kernel/memory.py) nor its watchdog
    (kernel/watchdog.py)."""
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return False
    return _seccomp(pid) == "0" and comm not in ("systrace-memory", "systrace-watch")


def _in_openat(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/syscall").read_text().startswith("257 ")
    except OSError:
        return False


def _open_writer(fifo: Path) -> int:
    """Open the FIFO's write end once a reader is there (ENXIO until then)."""
    holder: list[int] = []

    def opened() -> bool:
        try:
            holder.append(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            return False
        return True

    _wait_for(opened, "a reader of the FIFO")
    return holder[0]


def _signal_during_open(argv: list[str], env: dict, fifo: Path, mode: str, traced: bool) -> str:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    writer = -1
    try:
        assert proc.stdout.readline() == b"waiting\n"
        if traced:  # the tracee is systrace's child under a filter; the helper one without
            _wait_for(lambda: any(_seccomp(c) == "2" for c in _children(proc.pid)), "the tracee")
            tracee = next(c for c in _children(proc.pid) if _seccomp(c) == "2")
            _wait_for(lambda: any(_open_helper(c) for c in _children(proc.pid)), "the open helper")
        else:
            tracee = proc.pid
        _wait_for(lambda: _in_openat(tracee), "the open to wait")
        os.kill(tracee, signal.SIGUSR1)
        if mode == "restart":  # the open goes on: give it its writer
            writer = _open_writer(fifo)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        if writer >= 0:
            os.close(writer)
        proc.kill()
        proc.wait()
    assert b"Traceback" not in err, err
    return out.decode().strip()


@pytest.mark.parametrize("mode", ["interrupt", "restart"])
@pytest.mark.parametrize("who", ["root", "user"])
def test_a_signal_interrupts_an_open_a_helper_does(request, shared_dir: Path, who: str, mode: str,
                                                   tmp_path: Path) -> None:
    """A FIFO open with no writer waits; a SIGUSR1 arrives. Natively its handler runs at
    once and the open fails with EINTR (no SA_RESTART) or goes on (SA_RESTART). Under
    systrace the open is a helper's and the thread waits killably: systrace sees the
    pending signal, abandons the helper's open and answers ERRESTARTSYS, so the same
    happens (before: the signal was held until a writer came)."""
    runner = request.getfixturevalue(f"{who}_runner")
    binary = _compile("fifo_signal", shared_dir)
    fifo = shared_dir / f"signal-fifo-{who}-{mode}"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo, 0o666)
    fifo.chmod(0o666)
    policy = _permit_everything_but_connect(binary, shared_dir / f"fifo-policy-{who}", 9, opens_by_path=True)
    try:
        native = _signal_during_open(runner.native_argv(binary, str(fifo), mode), runner.env, fifo, mode, False)
        traced = _signal_during_open(runner.argv("-U", "-f", str(policy), "-a", binary, str(fifo), mode), runner.env,
                                     fifo, mode, True)
    finally:
        fifo.unlink()
    expected = "open EINTR handlers=1" if mode == "interrupt" else "open ok handlers=1"
    print(f"{who} {mode}: natively {native!r}, under systrace {traced!r}")
    assert native == expected
    assert traced == expected


# -- cgroups -------------------------------------------------------------------------
CGROUP_ATTACKS = ("freeze", "kill", "move", "freezer")


def _cgroup_mounts() -> tuple[Path | None, Path | None]:
    """The cgroup2 mount and the v1 freezer mount, if any."""
    v2 = v1 = None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        dash = fields.index("-")
        if fields[dash + 1] == "cgroup2":
            v2 = Path(fields[4])
        elif fields[dash + 1] == "cgroup" and "freezer" in fields[dash + 3].split(","):
            v1 = Path(fields[4])
    return v2, v1


def _cgroup_script(a: Path, b: Path, f: Path | None, target: str) -> str:
    """Each attack on the cgroups holding TARGET (moved to B), and whether the kernel took
    the write."""
    lines = [f"echo 1 > {a}/cgroup.freeze; echo freeze $?", f"echo {target} > {b}/cgroup.procs; echo move $?"]
    if f is not None:
        lines.append(f"echo FROZEN > {f}/freezer.state; echo freezer $?")
    lines.append(f"echo 1 > {a}/cgroup.kill; echo kill $?")  # last: natively it ends the victim
    return "; ".join(lines)


def _frozen(a: Path, f: Path | None) -> bool:
    frozen = "frozen 1" in (a / "cgroup.events").read_text()
    return frozen or (f is not None and (f / "freezer.state").read_text().strip() != "THAWED")


def _remove_cgroups(made: list[Path]) -> None:
    """Remove the test's cgroups, innermost first, moving what is left in them to the parent."""
    for path in reversed(made):
        for pid in (path / "cgroup.procs").read_text().split():
            try:
                (path.parent / "cgroup.procs").write_text(pid)
            except OSError:
                pass
        path.rmdir()


def _thaw(a: Path, f: Path | None) -> None:
    (a / "cgroup.freeze").write_text("0")
    if f is not None:
        (f / "freezer.state").write_text("THAWED")


def test_a_permitted_cgroup_write_cannot_freeze_kill_or_move_systrace(shared_dir: Path, root_runner: Runner) -> None:
    """A cgroup holds systrace and the command, and the command's policy permits every
    open. Natively each write freezes, moves or kills a victim process in that cgroup;
    under systrace each is refused (EACCES), whatever the policy: systrace is never
    frozen, moved or killed, and the command goes on to its end."""
    v2, v1 = _cgroup_mounts()
    if v2 is None:
        pytest.skip("no cgroup2 mount")
    name = f"systrace-test-{os.getpid()}"
    a, b = v2 / name, v2 / f"{name}-other"
    f = v1 / name if v1 is not None else None
    made = [p for p in (a, b, f) if p is not None]
    for path in made:
        path.mkdir()
    sh = os.path.realpath("/bin/sh")
    policy = _permit_everything_but_connect(sh, shared_dir / "cgroup-policy", 9, opens_by_path=True)
    victims: list[subprocess.Popen] = []
    try:
        victims = [subprocess.Popen(["sleep", "1000"], stdout=subprocess.DEVNULL) for _ in range(2)]
        for victim in victims:
            (a / "cgroup.procs").write_text(str(victim.pid))
            if f is not None:
                (f / "tasks").write_text(str(victim.pid))
        native_out = subprocess.run([sh, "-c", _cgroup_script(a, b, f, str(victims[1].pid))], capture_output=True,
                                    timeout=TIMEOUT).stdout.decode()
        native = {word: status == "0" for word, status in (line.split() for line in native_out.splitlines())}
        # natively: each write was taken and did what it says
        assert native == dict.fromkeys(native, True) and len(native) == (4 if f is not None else 3), native_out
        assert _frozen(a, f)
        _thaw(a, f)
        assert f"/{b.name}" in Path(f"/proc/{victims[1].pid}/cgroup").read_text()  # moved
        victims[0].wait(timeout=TIMEOUT)
        assert victims[0].returncode == -signal.SIGKILL  # cgroup.kill

        enter = f"echo $$ > {a}/cgroup.procs; " + (f"echo $$ > {f}/tasks; " if f is not None else "")
        argv = root_runner.argv("-U", "-f", str(policy), "-a", sh, "-c", _cgroup_script(a, b, f, "$PPID"))
        proc = subprocess.Popen(["sh", "-c", enter + 'exec "$@"', "sh", *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=root_runner.env)
        froze = False

        def ended_or_frozen() -> bool:
            return proc.poll() is not None or _frozen(a, f)

        _wait_for(ended_or_frozen, "systrace to end")
        if proc.poll() is None:  # frozen: it got through; thaw it to finish
            froze = True
            _thaw(a, f)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        for victim in victims:
            victim.kill()
            victim.wait()
        _thaw(a, f)
        _remove_cgroups(made)
    traced = {word: status == "0" for word, status in (line.split() for line in out.decode().splitlines())}
    got = sorted(word for word, through in traced.items() if through)
    print(f"cgroups: natively {sum(native.values())}/{len(native)} writes took effect on the victim; "
          f"under systrace {len(got)}/{len(traced)} {got}, systrace frozen: {froze}, status {proc.returncode}")
    assert set(traced) == set(native), out
    assert got == [] and not froze and proc.returncode == 0, (out, err)
    assert err.count(b"whatever the policy says") == len(traced), err


# -- a FUSE mount whose server never answers -----------------------------------------
def _policy_with_opens_by_path(binaries: list[str], path: Path) -> Path:
    """Every call permitted plainly but openat, permitted by its path (so it is
    translated, and emulated), for each binary."""
    text = ""
    for binary in binaries:
        lines = [f"Policy: {binary}, Emulation: native"]
        lines += [f"\tnative-{name}: permit" for name in SYSCALLS if name != "openat"]
        lines.append('\tnative-openat: filename sub "/" then permit')
        text += "\n".join(lines) + "\n\n"
    path.write_text(text)
    path.chmod(0o644)
    return path


@pytest.mark.parametrize("mode", ["emulated", "logged"])
def test_a_fuse_lookup_that_never_ends_stalls_only_its_caller(shared_dir: Path, root_runner: Runner,
                                                              tmp_path: Path, mode: str) -> None:
    """A FUSE mount whose server never answers: natively a lookup below it waits
    forever. Under systrace one process of the run opens a file there: the path is
    resolved (and, under -a, opened) by a helper, so another process of the run is still
    served meanwhile, and SIGTERM to systrace reaches the command at once. Once the
    server dies the lookup fails, and the run ends. (Before: systrace's loop sat in the
    lookup, serving nobody and ignoring SIGTERM.)"""
    stall = _compile("fuse_stall", shared_dir)
    mount_point = tmp_path / "mnt"
    mount_point.mkdir()
    server = subprocess.Popen([stall, str(mount_point)], stdout=subprocess.PIPE)
    try:
        if server.stdout.readline() != b"mounted\n":
            pytest.skip("cannot mount FUSE here")
        native = subprocess.Popen(["cat", str(mount_point / "file")], stderr=subprocess.DEVNULL)
        _wait_for(lambda: _in_openat(native.pid), "the native lookup to wait")
        assert native.poll() is None  # it waits in openat for the server
        native.kill()

        sh, cat = os.path.realpath("/bin/sh"), os.path.realpath(shutil.which("cat"))
        policy = _policy_with_opens_by_path([sh, cat], shared_dir / "fuse-policy")
        script = f"cat {mount_point}/file & cat /etc/hostname >/dev/null && echo served; wait"
        options = ["-U", "-f", str(policy), "-a"] if mode == "emulated" else ["--permit-all", "-E", "/dev/null"]
        proc = subprocess.Popen(root_runner.argv(*options, sh, "-c", script), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=root_runner.env)
        try:
            # while the other cat's lookup waits (select: a safety net for a stalled run)
            assert select.select([proc.stdout], [], [], TIMEOUT)[0], "the run stalled"
            assert proc.stdout.readline() == b"served\n"
            command = next(c for c in _children(proc.pid) if _seccomp(c) == "2")
            waiting = [c for c in _children(command) if _in_openat(c)]
            assert len(waiting) == 1  # the cat on FUSE, still in its open
            os.kill(proc.pid, signal.SIGTERM)
            _wait_for(lambda: not Path(f"/proc/{command}").exists() or _zombie(command), "SIGTERM to reach the shell")
            assert proc.poll() is None  # systrace still supervises the waiting cat
        finally:
            server.kill()  # the connection is aborted: the lookup fails
            server.wait()
            out, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 128 + signal.SIGTERM, (out, err)
        assert b"Traceback" not in err and b"internal error" not in err, err
    finally:
        server.kill()
        server.wait()
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def test_an_ended_helper_fails_the_call_closed(shared_dir: Path, root_runner: Runner) -> None:
    """A helper ended (here by root, from outside the run) while it opens a FIFO for the
    tracee: the open fails (EIO), it never succeeds nor waits on."""
    binary = _compile("fifo_signal", shared_dir)
    fifo = shared_dir / "ended-helper-fifo"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo, 0o666)
    policy = _permit_everything_but_connect(binary, shared_dir / "ended-helper-policy", 9, opens_by_path=True)
    proc = subprocess.Popen(root_runner.argv("-U", "-f", str(policy), "-a", binary, str(fifo), "interrupt"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=root_runner.env)
    try:
        assert proc.stdout.readline() == b"waiting\n"
        _wait_for(lambda: any(_open_helper(c) for c in _children(proc.pid)), "the open helper")
        helper = next(c for c in _children(proc.pid) if _open_helper(c))
        os.kill(helper, signal.SIGKILL)
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
        proc.wait()
        fifo.unlink()
    assert out == b"open EIO handlers=0\n", (out, err)
    assert proc.returncode == 0 and b"Traceback" not in err
