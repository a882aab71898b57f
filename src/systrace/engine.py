"""Run one command under supervision: launch it with a compiled filter plan and serve
its notifications with a Session until the whole tree is gone."""

from __future__ import annotations

import os

from .baseline import protect_supervisor
from .kernel import abi, bpf, landlock
from .kernel import filter as kfilter
from .kernel.filter import FilterPlan
from .kernel.launch import LaunchError, exec_failure, spawn
from .kernel.libc import prctl, raise_descriptor_limit
from .kernel.notify import Listener
from .kernel.own_entries import empty_environ_and_auxv
from .kernel.signals import SignalFd, asynchronous_signals
from .kernel.wakeup import pin_here
from .session import Session
from .supervisor import Supervisor

UNDUMPABLE_STATUS = 126  # the command could not be supervised (as a shell's "cannot execute")


def supervise(path: str, argv: list[str], env: dict[str, str], session: Session, plan: FilterPlan,
              pin_cpu: bool = True, credentials: tuple[int, int] | None = None, supervisors: int = 1) -> int:
    """Returns the command's exit status (128+N when killed by signal N). Raises
    LaunchError when the command cannot be started under a filter."""
    # The command runs in a Landlock domain that cannot signal or ptrace anything outside
    # it (systrace, its helpers), and under a filter that refuses the other calls naming
    # systrace's pid (SECURITY.md "Out of reach").
    domain = landlock.signal_scope_ruleset()
    # what a root tracee may still open of ours (kernel/own_entries.py); before any fork
    empty_environ_and_auxv()  # (left as they were when it cannot: a hardening, not a decision)
    replicas = None
    if supervisors > 1:  # forked now: the filter guards their pids as it guards ours
        from .replicas import Replicas

        replicas = Replicas(supervisors - 1, session)  # with us, N processes
    protect_supervisor(plan, os.getpid(), os.getpgrp(), signals_scoped=domain is not None)
    for pid in replicas.pids if replicas is not None else ():
        protect_supervisor(plan, pid)
    program = bpf.to_bytes(kfilter.compile_plan(plan))
    prctl(abi.PR_SET_CHILD_SUBREAPER, 1)  # orphans of the tree come back to us
    signals = SignalFd(asynchronous_signals())
    try:
        launched = spawn(path, argv, env, program, signals.previous_mask, credentials, domain)
    except LaunchError:
        signals.close()
        if replicas is not None:
            replicas.close()
        raise
    finally:
        landlock.close(domain)
    # Not dumpable: a tracee of the same user can no longer ptrace us or open our /proc
    # memory (the child had to stay dumpable until we took its listener).
    prctl(abi.PR_SET_DUMPABLE, 0)
    if pin_cpu:  # after the fork: the command keeps every CPU it had
        pin_here()
    raise_descriptor_limit()  # after the fork too: the command keeps its own limit
    listener = Listener(launched.listener_fd)
    listener.set_sync_wake_up()
    supervisor = Supervisor.of_launch(session, listener, launched, signals, replicas)
    try:
        status = supervisor.run()
    finally:
        session.served = supervisor.served
        session.routed = supervisor.routed
        session.served_by_name = supervisor.served_by_name
        session.carried = supervisor.carried
        paths = supervisor.translate.paths
        session.path_cache = (paths.hits, paths.misses, paths.shaped)
        if replicas is not None:  # what the other supervisor processes served
            session.served += replicas.served
            session.served_by_replicas = replicas.served
            for nr, count in replicas.routed.items():
                session.routed[nr] = session.routed.get(nr, 0) + count
        listener.close()
        signals.close()
    if supervisor.exec_error:
        raise LaunchError(exec_failure(argv[0], path, supervisor.exec_error), status)
    undumpable = supervisor.undumpable
    if launched.pid in undumpable:  # the command itself could not be supervised (kernel/undumpable.py)
        session.unsupervised.extend(reason for pid, reason in undumpable.items() if pid != launched.pid)
        raise LaunchError(undumpable[launched.pid], UNDUMPABLE_STATUS)
    session.unsupervised.extend(undumpable.values())
    return status
