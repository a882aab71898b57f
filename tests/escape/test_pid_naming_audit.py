"""The audit of every system call that names another process by a pid, a process group,
a thread id, a pidfd or a CPU-time clock (SECURITY.md "Out of reach": the pid audit).
Each one naming systrace, one of its threads, a helper it forked or a replica of
--supervisors answers as for a pid no process has (ESRCH; EINVAL for a clock), whatever
the policy; for every other pid it answers as natively."""

from __future__ import annotations

import errno
import os
import select
import subprocess
from pathlib import Path

import pytest
from conftest import TIMEOUT, Runner, run, systrace_argv
from test_pid_reuse import ROUNDS, InPidNamespace, _by_inner, _children, _holds, _native_reuse, _policy, _Writer
from test_supervisor_integrity import _compile, _full_listener, _permit_everything_but_connect

from systrace import baseline
from systrace.facts import ROWS
from systrace.facts.args import PidArg
from systrace.kernel import abi, landlock
from systrace.kernel.filter import FilterPlan, evaluate
from systrace.kernel.syscalls_x86_64 import SYSCALLS

SYSTRACE, HELPER = 4242, 4300  # a helper: forked after the filter was built, its pid unknown to it
FILTERED, ROUTED, LANDLOCK, PIDFD, OWN, ITSELF, MEMORY = (
    "the filter, on systrace's pid", "routed when it names another process; systrace refuses a helper",
    "Landlock: outside the command's domain", "a pidfd: pidfd_open of systrace or a helper is refused",
    "acts only on the caller's own children or group", "acts only on the caller",
    "the pid is in memory: routed whenever the policy lets it run, systrace makes the call")
# call -> how a pid of systrace or of a helper is kept out of its reach. Every call of the
# kernel's list that takes a pid, a pgid, a thread id, a pidfd or a CPU clock is here.
AUDIT = {
    "kill": (FILTERED, LANDLOCK), "tkill": (FILTERED, LANDLOCK), "tgkill": (FILTERED, LANDLOCK),
    "rt_sigqueueinfo": (FILTERED, LANDLOCK), "rt_tgsigqueueinfo": (FILTERED, LANDLOCK),
    "pidfd_send_signal": (PIDFD, LANDLOCK), "pidfd_getfd": (PIDFD, LANDLOCK), "process_madvise": (PIDFD, LANDLOCK),
    "process_mrelease": (PIDFD,),  # and only of a process already dying (SIGKILL pending)
    "ptrace": (FILTERED, LANDLOCK), "process_vm_readv": (FILTERED, LANDLOCK),
    "process_vm_writev": (FILTERED, LANDLOCK), "kcmp": (FILTERED, LANDLOCK),
    "get_robust_list": (FILTERED, LANDLOCK), "migrate_pages": (FILTERED, LANDLOCK),
    "move_pages": (FILTERED, LANDLOCK), "perf_event_open": (FILTERED, ROUTED, LANDLOCK),
    "pidfd_open": (FILTERED, ROUTED), "prlimit64": (FILTERED, ROUTED),
    "setpriority": (FILTERED, ROUTED), "getpriority": (FILTERED, ROUTED),
    "ioprio_set": (FILTERED, ROUTED), "ioprio_get": (FILTERED, ROUTED),
    "sched_setparam": (FILTERED, ROUTED), "sched_getparam": (FILTERED, ROUTED),
    "sched_setscheduler": (FILTERED, ROUTED), "sched_getscheduler": (FILTERED, ROUTED),
    "sched_setaffinity": (FILTERED, ROUTED), "sched_getaffinity": (FILTERED, ROUTED),
    "sched_setattr": (FILTERED, ROUTED), "sched_getattr": (FILTERED, ROUTED),
    "sched_rr_get_interval": (FILTERED, ROUTED), "getpgid": (FILTERED, ROUTED), "getsid": (FILTERED, ROUTED),
    "clock_gettime": (FILTERED, ROUTED), "clock_getres": (FILTERED, ROUTED),
    "clock_nanosleep": (FILTERED, ROUTED), "timer_create": (FILTERED, ROUTED),
    "fcntl": (FILTERED, LANDLOCK),  # F_SETOWN: the SIGIO is a signal from inside the domain
    "ioctl": (LANDLOCK,),  # FIOSETOWN, SIOCSPGRP: the owner is in memory
    "setpgid": (OWN,), "wait4": (OWN,), "waitid": (OWN,),  # P_PIDFD too: only a child of the caller
    "capset": (ITSELF,),  # any other pid: EPERM
    "capget": (MEMORY,),  # the pid is in memory: always routed, systrace makes the call (a helper's: ESRCH)
    "setns": (PIDFD, LANDLOCK),  # or a /proc/PID/ns file: its open is a ptrace-mode access
}
READ_VECTORS = ["getpriority", "ioprio_get", "getparam", "getscheduler", "getaffinity", "getattr", "rr_interval",
                "getpgid", "getsid", "cpuclock", "cpuclock_res", "cpuclock_timer", "capget"]


def _absent(vector: str) -> str:
    return "EINVAL" if vector.startswith("cpuclock") else "ESRCH"


def _plan() -> FilterPlan:
    """A policy that plainly permits every call, with systrace's guards."""
    plan = FilterPlan(default=abi.RET_ALLOW, actions={nr: abi.RET_ALLOW for nr in SYSCALLS.values()})
    baseline.apply_baseline(plan)
    baseline.protect_supervisor(plan, SYSTRACE, 4200, signals_scoped=True)
    return plan


def test_every_call_taking_a_pid_is_audited() -> None:
    """A call the facts table says names a process must have its line in the audit."""
    naming = {name for name, row in ROWS.items() if any(isinstance(arg, PidArg) for arg in row.args)}
    assert naming - set(AUDIT) == set()
    assert set(AUDIT) <= set(SYSCALLS)


def _args(name: str, pid: int) -> tuple[int, ...]:
    """Arguments of `name` naming `pid` (by its CPU clock for the clock calls)."""
    if name in baseline.CPU_CLOCK_CALLS:
        return (((~pid << 3) | 2) & 0xFFFFFFFF, 0, 0, 0)
    if name in ("setpriority", "getpriority"):
        return (baseline.PRIO_PROCESS, pid, 0)
    if name in ("ioprio_set", "ioprio_get"):
        return (baseline.IOPRIO_WHO_PROCESS, pid, 0)
    if name == "perf_event_open":
        return (0, pid, -1 & 0xFFFFFFFF, -1 & 0xFFFFFFFF, 0)
    if name == "prlimit64":
        return (pid, 0, 0x1000, 0)
    if name == "ptrace":
        return (16, pid)  # PTRACE_ATTACH
    if name == "fcntl":
        return (3, baseline.F_SETOWN, pid)
    return (pid, pid, 0, 0)


@pytest.mark.parametrize("name", sorted(n for n, how in AUDIT.items() if FILTERED in how))
def test_the_filter_answers_for_systrace_as_for_no_process(name: str) -> None:
    plan = _plan()
    nr = SYSCALLS[name]
    absent = errno.EINVAL if name in baseline.CPU_CLOCK_CALLS else errno.ESRCH
    assert evaluate(plan, nr, _args(name, SYSTRACE)) == abi.ret_errno(absent)
    if ROUTED in AUDIT[name]:  # another pid: systrace sees it (a helper's is refused there)
        assert evaluate(plan, nr, _args(name, HELPER)) == abi.RET_USER_NOTIF
        assert baseline.process_named(nr, _args(name, HELPER)) == HELPER
        assert baseline.absent_errno(nr) == absent
        if name != "pidfd_open":  # (always routed: its pid is never 0)
            assert evaluate(plan, nr, _args(name, 0)) == abi.RET_ALLOW  # the caller itself: in the kernel


def test_capget_always_reaches_systrace() -> None:
    """Its pid is in memory: every capget goes to systrace, which makes the call."""
    plan = _plan()
    for args in ((0x1000, 0x2000), (0, 0), (0x7FFF0000, 0)):
        assert evaluate(plan, SYSCALLS["capget"], args) == abi.RET_USER_NOTIF
        assert baseline.process_named(SYSCALLS["capget"], args) is None  # (the header address is no pid)


def test_clock_ids_of_the_caller_stay_in_the_kernel() -> None:
    plan = _plan()
    for clock in (0, 1, 2, 3, 7, ((~0 << 3) | 2) & 0xFFFFFFFF, ((~0 << 3) | 6) & 0xFFFFFFFF):
        assert evaluate(plan, SYSCALLS["clock_gettime"], (clock, 0)) == abi.RET_ALLOW, clock
        assert baseline.process_named(SYSCALLS["clock_gettime"], (clock, 0)) is None


# -- against the real kernel -------------------------------------------------------------
needs_landlock = pytest.mark.skipif(landlock.abi_version() < landlock.SCOPE_ABI,
                                    reason="Landlock signal scoping (Linux 6.12) is needed for these guarantees")


def _on_victim(runner: Runner, attacker: list[str], vector: str) -> str:
    """The vector's line (`attacker` + VECTOR PID PGID), aimed at a fresh `sleep` of the
    runner's user, outside any run."""
    victim = subprocess.Popen(runner.native_argv("sh", "-c", "echo ready; exec sleep 1000"), stdout=subprocess.PIPE)
    try:
        assert victim.stdout.readline() == b"ready\n"
        result = run([*attacker, vector, str(victim.pid), str(victim.pid)], env=runner.env, cwd=runner.cwd)
        return result.stdout.decode().strip()
    finally:
        victim.kill()
        victim.wait()
        victim.stdout.close()


@needs_landlock
@pytest.mark.parametrize("who", ["root", "user"])
def test_reads_naming_systrace_answer_as_for_no_process(request, shared_dir: Path, who: str) -> None:
    """Natively each call reads an ordinary process; under systrace (every call permitted)
    aimed at systrace it answers as for no process, and at an outsider as natively."""
    runner: Runner = request.getfixturevalue(f"{who}_runner")
    reach = _compile("reach", shared_dir)
    native = {v: _on_victim(runner, runner.native_argv(reach), v) for v in READ_VECTORS}
    outsider = {v: _on_victim(runner, runner.argv("--permit-all", reach), v) for v in READ_VECTORS}
    on_systrace = {v: runner("--permit-all", reach, v, "0", "0").stdout.decode().strip() for v in READ_VECTORS}
    through = [v for v, line in on_systrace.items() if line == f"{v} ok"]
    print(f"{who}: natively {sum(line.endswith(' ok') for line in native.values())}/{len(native)} read the victim; "
          f"under systrace {len(through)}/{len(on_systrace)} read systrace, "
          f"{sum(line.endswith(' ok') for line in outsider.values())}/{len(outsider)} the outsider")
    assert native == {v: f"{v} ok" for v in READ_VECTORS}
    assert on_systrace == {v: f"{v} {_absent(v)}" for v in READ_VECTORS}
    assert outsider == native


@needs_landlock
@pytest.mark.parametrize("helper", ["open", "replica"])
@pytest.mark.parametrize("who", ["root", "user"])
def test_reads_naming_a_helper_answer_as_for_no_process(request, shared_dir: Path, who: str, helper: str) -> None:
    """The same calls aimed at a helper systrace forked after the filter was built (the
    open of a FIFO with no writer), or at a replica of --supervisors 2: routed, refused."""
    runner: Runner = request.getfixturevalue(f"{who}_runner")
    reach = _compile("reach", shared_dir)
    sockets = _full_listener()
    policy = _permit_everything_but_connect(reach, shared_dir / f"pid-audit-policy-{who}", sockets[0].getsockname()[1],
                                            opens_by_path=True)
    fifo = shared_dir / f"pid-audit-fifo-{who}"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo, 0o666)
    fifo.chmod(0o666)
    mode, where = ("fifohelper", [str(fifo)]) if helper == "open" else ("replica", [])
    supervisors = ["--supervisors", "2"] if helper == "replica" else []
    lines = {}
    try:
        for vector in READ_VECTORS:
            result = run(["setsid", *runner.argv("-U", "-f", str(policy), "-a", *supervisors, reach, mode, vector,
                                                 *where)], env=runner.env, cwd=runner.cwd)
            out = result.stdout.decode().splitlines()
            assert len(out) == 2 and out[1] == "helper alive", (vector, out, result.stderr)
            lines[vector] = out[0]
    finally:
        for sock in sockets:
            sock.close()
        fifo.unlink()
    through = [v for v, line in lines.items() if line == f"{v} ok"]
    print(f"{who}, {helper}: {len(through)}/{len(lines)} reads reached the helper: {through}")
    assert lines == {v: f"{v} {_absent(v)}" for v in READ_VECTORS}


# -- the replicas' helpers keep off reserved pids -----------------------------------------
@pytest.mark.skipif(os.geteuid() != 0, reason="writing ns_last_pid needs root")
@pytest.mark.parametrize("who", ["root", "user"])
def test_a_replica_forks_no_helper_with_a_reserved_pid(request, shared_dir: Path, who: str) -> None:
    """test_pid_reuse.py's attack under --supervisors 2: the FIFO open is served by a
    replica, which forks the helper. The pid the main process's continued call names is
    in memory the replicas share: the replica's child that gets it exits at once."""
    runner: Runner = request.getfixturevalue(f"{who}_runner")
    native = _native_reuse(ROUNDS)
    tracee = _compile("pid_reuse", shared_dir)
    policy = _policy(tracee, shared_dir / f"replica-reuse-policy-{who}")
    fifo = shared_dir / f"replica-reuse-fifo-{who}"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo, 0o666)
    fifo.chmod(0o666)
    log = runner.writable(shared_dir / f"replica-reuse-log-{who}")
    argv = runner.argv("-U", "-f", str(policy), "-a", "--supervisors", "2", "-E", str(log), tracee, str(fifo),
                       str(ROUNDS))
    space = InPidNamespace(argv, runner.env, runner.cwd)  # (only the run forks there: test_pid_reuse.py)
    proc = space.proc
    reached = 0
    try:
        assert select.select([proc.stdout], [], [], TIMEOUT)[0], "the tracee never started"
        first = proc.stdout.readline().decode()
        assert first.startswith("freed "), (first, proc.stderr.read() if proc.poll() is not None else b"")
        freed = int(first.split()[1])  # (the namespace's pid)
        supervisor = space.systrace()
        started = _children(supervisor)  # the command and the replicas
        for _ in range(ROUNDS):
            writer = _Writer(fifo)
            space.aim(freed)
            proc.stdin.write(b"go\n")
            proc.stdin.flush()
            fd = writer.opened()  # a helper (the replica's, then the main process's) opened the read end
            helpers = _by_inner((_children(supervisor) - started).union(*(_children(pid) for pid in started)))
            reached += freed in helpers and _holds(helpers[freed], fifo)
            # kept open until the tracee has its descriptor: the replica hands the open to the
            # main process, whose helper opens the FIFO again
            assert proc.stdout.readline() == b"opened\n"
            os.close(fd)
        proc.stdin.close()
        proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        space.close()
        fifo.unlink()
    discarded = log.read_text().count("which a call of the command in flight names: discarded")
    print(f"{who}: natively the call reached the new process {native}/{ROUNDS}; under --supervisors 2 a helper "
          f"forked with the freed pid was discarded {discarded} times, one doing the open had it {reached}/{ROUNDS}")
    assert native > 0
    assert discarded > 0  # the replica's fork did get the reserved pid: the guard was put to the test
    assert reached == 0
    assert proc.returncode == 0, proc.stderr.read()


# -- bpf: kernel code reading any process's memory -----------------------------------------
@pytest.mark.skipif(os.geteuid() != 0, reason="loading a tracing program needs CAP_BPF and CAP_PERFMON")
def test_bpf_is_refused_unless_the_policy_names_it(shared_dir: Path, tmp_path: Path) -> None:
    """A kprobe program may read systrace's memory: natively root loads one; under -A it
    is refused and not learned, and so under -a with the policy that run learned."""
    program = _compile("bpf_trace", shared_dir)
    vectors = ("prog_load_kprobe_read_user", "map_create", "map_get_next_id")
    native = run([program]).stdout.decode().splitlines()
    if native[0] != f"{vectors[0]} ok":
        pytest.skip(f"no tracing programs here: {native}")
    policies = tmp_path / "policies"
    learning = run([*systrace_argv(), "-d", str(policies), "-A", program])
    enforcing = run([*systrace_argv(), "-d", str(policies), "-a", program])
    refused = [f"{v} EPERM" for v in vectors]
    print(f"natively {sum(line.endswith(' ok') for line in native)}/3 bpf calls succeed; under -A "
          f"{sum(line.endswith(' ok') for line in learning.stdout.decode().splitlines())}/3, under -a "
          f"{sum(line.endswith(' ok') for line in enforcing.stdout.decode().splitlines())}/3")
    assert native == [f"{v} ok" for v in vectors]
    assert learning.stdout.decode().splitlines() == refused, learning.stderr
    assert enforcing.stdout.decode().splitlines() == refused, enforcing.stderr
    assert "native-bpf" not in "".join(path.read_text() for path in policies.iterdir())
