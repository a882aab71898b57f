"""Turn the command-line options into a Session (deciders, store) and a kernel plan."""

from __future__ import annotations

import argparse
import os
import pwd
from pathlib import Path

from .baseline import apply_baseline, base_plan
from .decide import Chain, PermitAll
from .kernel import abi
from .kernel.filter import FilterPlan
from .kernel.syscalls_x86_64 import SYSCALLS
from .log import Log
from .policy.match import expander
from .policy.parse import Parser
from .policy.store import Store
from .session import Session
from .translate.aliases import ALIASES

SAVE_INTERVAL = 30.0  # seconds between writes of learned rules, as the original


def syscall_known(name: str) -> bool:
    return name in SYSCALLS or name in ALIASES


def all_syscall_names() -> list[str]:
    return [*SYSCALLS, *ALIASES]


def user_variables() -> dict[str, str]:
    try:
        entry = pwd.getpwuid(os.getuid())
        home, user = entry.pw_dir, entry.pw_name
    except KeyError:
        home, user = os.environ.get("HOME", "/"), str(os.getuid())
    return {"HOME": os.environ.get("HOME", home), "USER": user, "CWD": os.getcwd()}


def make_parser(source: str = "<policy>") -> Parser:
    return Parser(source, syscall_known=syscall_known, all_syscalls=all_syscall_names)


def build(options: argparse.Namespace, log: Log, explicit_log: bool) -> tuple[Session, FilterPlan]:
    if not (options.learn or options.enforce):
        session = Session(log=log, chain=Chain([PermitAll(log=explicit_log)]))
        return session, base_plan(abi.RET_USER_NOTIF if explicit_log else abi.RET_ALLOW)

    from .decide.modes import Enforce, Learn
    from .decide.policy import PolicyDecider
    from .policy.compile import kernel_plan

    variables = user_variables()
    user_dir = Path(options.policy_dir) if options.policy_dir else Path(variables["HOME"]) / ".systrace"
    store = Store(make_parser(), user_dir, [Path(f) for f in options.policy_files], use_user=not options.no_user)
    store.load()
    use_aliases = not options.no_aliases
    decider = PolicyDecider(store, expander(variables), use_aliases=use_aliases, inherit=options.inherit,
                            require_policy=options.enforce and not options.inherit, create_missing=options.learn)
    if options.enforce:
        fallback = Enforce(kill=options.kill_on_violation)
        plan = kernel_plan([stored.policy for stored in store.all()])
    else:
        fallback = Learn(store, use_aliases)
        plan = FilterPlan(default=abi.RET_USER_NOTIF)
    apply_baseline(plan)
    session = Session(log=log, chain=Chain([decider, fallback]), store=store,
                      save_interval=SAVE_INTERVAL if options.learn else None)
    return session, plan
