"""A flood of threads or processes does not exhaust systrace's descriptors. The process table keeps two
per thread it has seen alive (its pidfd, its /proc status file): with the usual soft limit
of 1,024 descriptors, a program with 1,000 threads each making a routed call killed
systrace (EMFILE, then a traceback while handling it: exit 1, found by the red team; with
this machine's 20,000, 12,000 threads did), and its processes went on with ENOSYS. Now
past a quarter of the limit threads are read uncached, and an error while handling an
error denies the call instead of ending systrace. And systrace raises its own soft limit
to the hard one once the command is forked (the command keeps its own): what it keeps
for each permitted exec until the process next calls (a pidfd) made 493 of 1,100 execs
of processes that then paused fail with EMFILE under a soft limit of 1,024."""

from __future__ import annotations

from pathlib import Path

from conftest import Runner
from test_supervisor_integrity import _compile

THREADS = "1000"
DONE = b"threads 1000, open after: OK\n"


def test_a_thousand_threads_under_the_usual_descriptor_limit(runner: Runner, shared_dir: Path) -> None:
    """Natively, under -A and under -a (learned with 10 threads), with systrace's soft and
    hard limit at 1,024: the program completes, systrace with it (before: -a exit 1, a
    traceback, root and user)."""
    binary = _compile("thread_flood", shared_dir)
    limited = Runner(runner.name, [*runner.prefix, "prlimit", "--nofile=1024:1024", "--"], runner.python, runner.env,
                     runner.cwd)
    native = limited.native(binary, THREADS)
    assert native.returncode == 0 and native.stdout == DONE, native
    policies = runner.policy_dir(shared_dir / f"thread-flood-policies-{runner.name}")
    assert limited("-A", "-d", str(policies), binary, "10").returncode == 0
    completed = 0
    for mode in (["-A", "-d", str(policies)], ["-a", "-d", str(policies)]):
        result = limited(*mode, binary, THREADS)
        assert b"Traceback" not in result.stderr and b"internal error" not in result.stderr, result.stderr[-2000:]
        assert result.returncode == 0 and result.stdout == DONE, (mode, result.returncode, result.stderr[-2000:])
        completed += 1
    print(f"{runner.name}: {THREADS} threads with 1,024 descriptors completed natively 1/1, under systrace "
          f"{completed}/2 (systrace ended by the flood 0/2)")


def test_a_thousand_execs_under_the_usual_descriptor_limit(runner: Runner, shared_dir: Path) -> None:
    """1,100 children exec a program that pauses (soft limit 1,024, hard 4,096): natively
    none fails; under -a with the policy learned from 3, none fails (before: 493 failed,
    `internal error ... Too many open files`)."""
    binary = _compile("exec_flood", shared_dir)
    pauses = _compile("pauses", shared_dir, "-static")
    limited = Runner(runner.name, [*runner.prefix, "prlimit", "--nofile=1024:4096", "--"], runner.python, runner.env,
                     runner.cwd)
    native = limited.native(binary, "1100", pauses)
    assert native.returncode == 0 and native.stdout == b"children 1100, execs failed 0\n", native
    policies = runner.policy_dir(shared_dir / f"exec-flood-policies-{runner.name}")
    assert limited("-A", "-d", str(policies), binary, "3", pauses).returncode == 0
    result = limited("-a", "-d", str(policies), binary, "1100", pauses)
    print(f"{runner.name}: 1,100 execs with a soft limit of 1,024: {result.stdout.decode().strip()}")
    assert b"Too many open files" not in result.stderr and b"Traceback" not in result.stderr, result.stderr[-2000:]
    assert result.returncode == 0 and result.stdout == native.stdout, result
