"""The tracee cannot reach, outlive or take over systrace (SECURITY.md "Out of reach",
"Death is fail closed"). Each attack is shown working natively, on an ordinary victim
process, and then counted under systrace, where it must get through 0 times."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TIMEOUT, Runner

from systrace.kernel import landlock
from systrace.kernel.syscalls_x86_64 import SYSCALLS

HERE = Path(__file__).resolve().parent

# Vectors that work by delivering a signal: natively the victim dies; through systrace
# they would kill it (SIGKILL, or SIGIO whose default action terminates).
SIGNAL_VECTORS = ["kill", "tkill", "tgkill", "sigqueue", "tgsigqueue", "killpg", "kill0", "pidfd_signal",
                  "procfd_signal", "setown", "setown_pgrp", "setown_ex", "fiosetown", "siocspgrp"]
# Vectors whose accepted call is the attack (ptrace access, rlimits, scheduling, I/O priority).
CALL_VECTORS = ["ptrace_attach", "ptrace_seize", "vm_readv", "vm_writev", "proc_mem", "pidfd_getfd", "prlimit_cpu",
                "setpriority", "setpriority_pgrp", "affinity", "setscheduler", "ioprio", "ioprio_pgrp", "kcmp", "perf",
                "migrate_pages", "robust_list"]
# Only shown under systrace: natively it would renice every process of the user on the machine.
UNDER_SYSTRACE_ONLY = ["setpriority_user"]
HELPER_SELF_HARM = {"prlimit_cpu", "setpriority", "affinity", "setscheduler", "ioprio", "perf"}

pytestmark = pytest.mark.skipif(landlock.abi_version() < landlock.SCOPE_ABI,
                                reason="Landlock signal scoping (Linux 6.12) is needed for these guarantees")


def _compile(name: str, shared_dir: Path) -> str:
    out = shared_dir / name
    if not out.exists():
        subprocess.run(["gcc", "-O1", "-pthread", "-o", str(out), str(HERE / f"{name}.c")], check=True, timeout=120)
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
    native = {v: _native_through(runner, reach, v) for v in SIGNAL_VECTORS + CALL_VECTORS}
    traced = {v: _traced_through(runner, reach, v) for v in SIGNAL_VECTORS + CALL_VECTORS + UNDER_SYSTRACE_ONLY}
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
def _permit_everything_but_connect(binary: str, path: Path, port: int) -> Path:
    """A policy that permits every call plainly and connect only to 127.0.0.1:PORT, so
    that connect is emulated (a blocking one in a helper process)."""
    lines = [f"Policy: {binary}, Emulation: native"]
    lines += [f"\tnative-{name}: permit" for name in SYSCALLS if name != "connect"]
    lines.append(f'\tnative-connect: sockaddr eq "inet-[127.0.0.1]:{port}" then permit')
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


@pytest.mark.parametrize("who", ["root", "user"])
def test_connect_helper_is_out_of_reach(request, shared_dir: Path, who: str) -> None:
    """While a blocking connect runs in systrace's helper, the tracee finds the helper and
    attacks it: every vector is refused, and the helper holds nothing to steal."""
    runner = request.getfixturevalue(f"{who}_runner")
    reach = _compile("reach", shared_dir)
    sockets = _full_listener()
    port = sockets[0].getsockname()[1]
    policy = _permit_everything_but_connect(reach, shared_dir / f"reach-policy-{who}", port)
    through = {}
    try:
        for vector in SIGNAL_VECTORS + CALL_VECTORS:
            if vector in ("kill0", "setpriority_pgrp", "ioprio_pgrp", "killpg", "setown_pgrp"):
                continue  # group vectors: the helper is in systrace's group, covered above
            result = runner("-U", "-f", str(policy), "-a", reach, "helper", vector, "127.0.0.1", str(port))
            lines = result.stdout.decode().splitlines()
            assert len(lines) == 2 and lines[1] in ("helper alive", "helper dead"), (vector, lines, result.stderr)
            through[vector] = lines[1] == "helper dead" or (vector in CALL_VECTORS and lines[0] == f"{vector} ok")
    finally:
        for sock in sockets:
            sock.close()
    got = sorted(v for v, t in through.items() if t)
    print(f"{who}: {len(got)}/{len(through)} attacks on the helper got through: {got}")
    # Landlock does not cover scheduling, rlimits and (for root) perf counting; aimed at a
    # helper (unlike systrace, its pid is not known when the filter is built) they can
    # only slow it or end it, which fails the tracee's own connect (SECURITY.md)
    assert set(got) <= HELPER_SELF_HARM, got


# -- death -------------------------------------------------------------------------
def _slots(map_path: Path, count: int) -> list[tuple[str, int, int]]:
    data = map_path.read_bytes()
    out = []
    for i in range(count):
        state, routed, listener = struct.unpack_from("=c3xii", data, 64 + 16 * i)
        out.append((state.decode() if state != b"\0" else "", routed, listener))
    return out


def _wait_for(predicate, what: str) -> None:
    deadline = time.monotonic() + TIMEOUT  # a safety net: the condition decides
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


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
