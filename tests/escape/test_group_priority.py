"""getpriority/setpriority and ioprio_get/ioprio_set by process group or by user reach
every thread of the group or user natively, systrace's included (it shares the command's
process group, and its user). Under systrace they are done over the same threads minus
systrace's own (kernel/group_priority.py): nothing of systrace is read or changed, and the
run's own processes are read and reniced as natively."""

from __future__ import annotations

import ctypes
import dataclasses
import os
import pwd
import subprocess
import time
from pathlib import Path

import pytest
from conftest import TIMEOUT, Runner

from systrace.kernel import group_priority as gp

TRACEE = r'''
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
def call(nr, *args):
    result = libc.syscall(nr, *(ctypes.c_long(a) for a in args))
    return f"{result}" if result >= 0 else f"E{ctypes.get_errno()}"
IDLE, PGRP, USER = 3 << 13, {"prio": 1, "io": 2}, {"prio": 2, "io": 3}
vector = sys.argv[1]
if sys.argv[2:] == ["native"]:       # natively a process of the same user and group stands
    victim = os.fork()               # where systrace is (forked first: nice 0, I/O class unset)
    if victim == 0:
        os.execvp("sleep", ["sleep", "1000"])
    print(victim, flush=True)
os.nice(10)                          # the run's own processes: nice 10 and the idle I/O class,
call(251, 1, 0, IDLE)                # so a better value read by group or user is another's
print("ready", flush=True)
sys.stdin.readline()
op, kind, scope = vector.split("-")  # get-prio-pgrp, set-io-user...
which = (PGRP if scope == "pgrp" else USER)[kind]
who = os.getuid() if scope == "user" else 0  # (ioprio_set's user 0 is root, whoever calls)
if op == "get":
    print(call(140 if kind == "prio" else 252, which, who), flush=True)
else:
    print(call(141 if kind == "prio" else 251, which, who, 19 if kind == "prio" else IDLE), flush=True)
sys.stdin.readline()
if sys.argv[2:] == ["native"]:
    os.kill(victim, 9)
    os.waitpid(victim, 0)
'''
# as root the user forms would read and renice every root process of the machine
ROOT_VECTORS = ["get-prio-pgrp", "get-io-pgrp", "set-prio-pgrp", "set-io-pgrp"]
USER_VECTORS = ROOT_VECTORS + ["get-prio-user", "get-io-user", "set-prio-user", "set-io-user"]
OWN = {"get-prio": 20 - 10, "get-io": 3 << 13}  # what the run's own processes give (raw kernel values)


def _state(pid: int) -> tuple[int, int]:
    """(nice, raw I/O priority) of a process."""
    libc = ctypes.CDLL(None, use_errno=True)
    return os.getpriority(os.PRIO_PROCESS, pid), libc.syscall(gp.SYS_ioprio_get, gp.IOPRIO_WHO_PROCESS, pid)


def _fresh_user(user_runner: Runner) -> Runner:
    """The user runner as a uid no other process of the machine has: the user forms then
    reach only the test's processes (the suite's other runs share the test user)."""
    uid = next(uid for uid in range(54321, 54400) if not _has_processes(uid) and not _known(uid))
    prefix = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--"]
    return dataclasses.replace(user_runner, prefix=prefix) if dataclasses.is_dataclass(user_runner) else \
        Runner("user", prefix, user_runner.python, user_runner.env, user_runner.cwd)


def _known(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


def _has_processes(uid: int) -> bool:
    return any(t.uid == uid for t in gp.threads())


def _attack(argv: list[str], runner: Runner, victim_is_systrace: bool) -> tuple[str, bool]:
    """Run the tracee for one vector; (what the call returned, whether the victim's nice
    or I/O priority changed or was read)."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=runner.env, cwd=runner.cwd, start_new_session=True)
    try:
        first = proc.stdout.readline().decode().split()
        victim = proc.pid if victim_is_systrace else int(first.pop(0))
        if not first:
            first = proc.stdout.readline().decode().split()
        assert first == ["ready"], (first, proc.stderr.read() if proc.poll() is not None else b"")
        answer, changed = _go(proc, victim)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return answer.strip(), changed


def _go(proc: subprocess.Popen, victim: int) -> tuple[str, bool]:
    """The tracee is ready: let it make its calls ("go"), then end it ("end"). (The line
    it answered, whether the victim's nice or I/O priority changed meanwhile.)"""
    before = _state(victim)
    proc.stdin.write(b"go\n")
    proc.stdin.flush()
    answer = proc.stdout.readline().decode()
    after = _state(victim)
    proc.stdin.write(b"end\n")
    proc.stdin.close()
    assert proc.wait(timeout=TIMEOUT) == 0, proc.stderr.read()
    return answer, after != before


def _reached(vector: str, answer: str, changed: bool) -> bool:
    if vector.startswith("get"):
        return int(answer) != OWN[vector.rsplit("-", 1)[0]]  # a better value: the victim's
    return changed


@pytest.mark.parametrize("who", ["root", "user"])
def test_group_and_user_priorities_leave_systrace_out(request, shared_dir: Path, who: str) -> None:
    runner: Runner = request.getfixturevalue(f"{who}_runner")
    vectors = ROOT_VECTORS
    if who == "user":
        runner, vectors = _fresh_user(runner), USER_VECTORS
    tracee = shared_dir / "group_priority_tracee.py"
    tracee.write_text(TRACEE)
    tracee.chmod(0o644)
    python = runner.python
    native, under = {}, {}
    for vector in vectors:
        answer, changed = _attack(runner.native_argv(python, str(tracee), vector, "native"), runner, False)
        native[vector] = _reached(vector, answer, changed)
        answer, changed = _attack(runner.argv("--permit-all", python, str(tracee), vector), runner, True)
        under[vector] = _reached(vector, answer, changed)
        if vector.startswith("set"):
            assert answer == "0", (vector, answer)  # the run's own processes are reniced
        else:
            assert int(answer) == OWN[vector.rsplit("-", 1)[0]], (vector, answer)
    print(f"{who}: natively {sum(native.values())}/{len(native)} read or changed the victim; under systrace "
          f"{sum(under.values())}/{len(under)} read or changed systrace: {[v for v, hit in under.items() if hit]}")
    assert all(native.values()), native
    assert not any(under.values()), under
    if who == "user":  # the tools: renice and ionice of every process of the user
        script = "renice -n 5 -u $(id -u) >/dev/null && ionice -c 3 -u $(id -u) && echo done"
        assert runner.native("sh", "-c", script).stdout == b"done\n"
        result = runner("--permit-all", "sh", "-c", script)
        assert (result.returncode, result.stdout) == (0, b"done\n"), result.stderr


def test_the_emulation_gives_the_kernel_s_results(tmp_path: Path) -> None:
    """Over a process group of processes with various nice values, I/O classes and
    scheduling policies (systrace absent), the threads' values combined as the kernel
    does equal the kernel's own answer; and the writes reach exactly those threads."""
    script = ("sleep 1000 & nice -n 7 sleep 1000 & ionice -c 2 -n 3 sleep 1000 & chrt -i 0 sleep 1000 & "
              "ionice -c 3 sleep 1000 & nice -n 3 ionice -c 1 -n 5 sleep 1000 & echo ready; wait")
    group = subprocess.Popen(["sh", "-c", script], stdout=subprocess.PIPE, start_new_session=True)
    try:
        assert group.stdout.readline() == b"ready\n"
        caller = gp.Caller(os.getpid())
        caller.pgrp = group.pid  # (who 0: the caller's group; here named by number)

        def targets(name: str) -> list[gp.Thread]:
            return gp.reached(name, (gp.BY_GROUP[name], group.pid), caller, lambda tgid: False)

        for _ in range(1_000_000):  # until each child has exec'd its sleep (with its nice and class)
            if sorted(_comm(t.tid) for t in targets("getpriority")) == ["sh"] + ["sleep"] * 6:
                break
            os.sched_yield()
        kernel = {"getpriority": gp._syscall(gp.SYS_getpriority, gp.PRIO_PGRP, group.pid),
                  "ioprio_get": gp._syscall(gp.SYS_ioprio_get, gp.IOPRIO_WHO_PGRP, group.pid)}
        emulated = {name: gp.get(name, targets(name)) for name in kernel}
        print(f"kernel {kernel}, emulated {emulated}, over {len(targets('getpriority'))} threads")
        assert len(targets("getpriority")) == 7
        assert emulated == kernel
        assert gp.set_("setpriority", (gp.PRIO_PGRP, group.pid, 15), targets("setpriority")) == 0
        assert {t.nice for t in targets("getpriority")} == {15}
        assert gp.set_("ioprio_set", (gp.IOPRIO_WHO_PGRP, group.pid, 5 << 13), targets("ioprio_set")) == -22
        assert gp.set_("ioprio_set", (gp.IOPRIO_WHO_PGRP, group.pid, 3 << 13), targets("ioprio_set")) == 0
        assert gp.get("ioprio_get", targets("ioprio_get")) == gp._syscall(gp.SYS_ioprio_get, gp.IOPRIO_WHO_PGRP,
                                                                          group.pid) == 3 << 13
        assert gp.set_("setpriority", (gp.PRIO_PGRP, 1 << 30, 15), []) == -3  # no thread: ESRCH
    finally:
        os.killpg(group.pid, 9)
        group.wait()
        group.stdout.close()


def _comm(tid: int) -> str:
    try:
        return Path(f"/proc/{tid}/comm").read_text().strip()
    except OSError:
        return ""


def test_only_group_and_user_forms_are_done_by_systrace() -> None:
    assert gp.over_a_group("getpriority", (gp.PRIO_PGRP, 0, 0))
    assert gp.over_a_group("ioprio_set", (gp.IOPRIO_WHO_USER, 5, 0))
    assert not gp.over_a_group("setpriority", (gp.PRIO_PROCESS, 5, 0))
    assert not gp.over_a_group("ioprio_get", (gp.IOPRIO_WHO_PROCESS, 5, 0))
    assert not gp.over_a_group("getpriority", (7, 0, 0))  # EINVAL: the kernel's
    assert not gp.over_a_group("kill", (1, 0))
    root_s = gp.Caller(os.getpid())
    threads = [gp.Thread(1, 1, 1, 0, 0, 0), gp.Thread(2, 2, 2, 0, 0, 1000)]
    root_s.uid = 1000  # a caller of uid 1000: its user 0 is itself, but ioprio_set's is root
    assert [t.uid for t in gp.reached("ioprio_get", (3, 0), root_s, lambda tgid: False, lambda: iter(threads))] == [1000]
    assert [t.uid for t in gp.reached("ioprio_set", (3, 0, 0), root_s, lambda tgid: False, lambda: iter(threads))] == [0]
    assert gp.map_uid(b"         0       1000          1\n", 0) == 1000
    assert gp.map_uid(b"         0       1000          1\n", 1) is None


HELPER_TRACEE = r'''
import ctypes, os, sys, threading
libc = ctypes.CDLL(None, use_errno=True)
def call(nr, *args):
    result = libc.syscall(nr, *(ctypes.c_long(a) for a in args))
    return f"{result}" if result >= 0 else f"E{ctypes.get_errno()}"
threading.Thread(target=lambda: open(sys.argv[1], "rb"), daemon=True).start()  # a helper opens it
print("opening", flush=True)
sys.stdin.readline()
print(call(141, 1, 0, 19), call(251, 2, 0, 3 << 13), flush=True)  # the whole group: nice 19, idle I/O
sys.stdin.readline()
os._exit(0)
'''


def _in_open(pid: int) -> bool:
    """Is this process (a child of systrace) waiting in openat (the FIFO helper)?"""
    try:
        return Path(f"/proc/{pid}/syscall").read_text().split()[0] == str(SYS_OPENAT)
    except (OSError, IndexError):
        return False


SYS_OPENAT = 257


@pytest.mark.parametrize("who", ["root", "user"])
def test_a_helper_is_left_out_of_its_group(request, shared_dir: Path, who: str) -> None:
    """systrace's helper (the open of a FIFO with no writer) is in the command's group:
    setpriority and ioprio_set of that group renice the command, not the helper."""
    from test_pid_reuse import _children
    from test_supervisor_integrity import _permit_everything_but_connect

    runner: Runner = request.getfixturevalue(f"{who}_runner")
    script = shared_dir / "group_priority_helper.py"
    script.write_text(HELPER_TRACEE)
    script.chmod(0o644)
    fifo = shared_dir / f"group-priority-fifo-{who}"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo, 0o666)
    fifo.chmod(0o666)
    python = os.path.realpath(runner.python)
    policy = _permit_everything_but_connect(python, shared_dir / f"group-priority-policy-{who}", 1, opens_by_path=True)
    proc = subprocess.Popen(runner.argv("-U", "-f", str(policy), "-a", python, str(script), str(fifo)),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=runner.env,
                            cwd=runner.cwd, start_new_session=True)
    writer = -1
    try:
        assert proc.stdout.readline() == b"opening\n", proc.stderr.read() if proc.poll() is not None else b""
        helper = None
        deadline = time.monotonic() + TIMEOUT  # a safety net: polled until the helper waits in its open
        while helper is None and time.monotonic() < deadline:
            helper = next((pid for pid in _children(proc.pid) if _in_open(pid)), None)
            os.sched_yield()
        assert helper is not None, "no helper opens the FIFO"
        before = _state(helper)
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        answers = proc.stdout.readline().decode().split()
        after = _state(helper)
        writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # the open ends
        proc.stdin.write(b"end\n")
        proc.stdin.close()
        assert proc.wait(timeout=TIMEOUT) == 0, proc.stderr.read()
    finally:
        if writer >= 0:
            os.close(writer)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        fifo.unlink()
    print(f"{who}: the group reniced ({answers}); the helper's nice and I/O priority {before} -> {after}")
    assert answers == ["0", "0"]
    assert after == before
