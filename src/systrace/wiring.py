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
NO_MODE = ("no terminal to ask on: choose a mode: -a (enforce a policy), -A (learn one), "
           "-t (ask on a terminal), -g PROGRAM (ask a frontend program) or --permit-all")


class NoMode(Exception):
    pass


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


def choose_asking(options: argparse.Namespace):
    """The transport for -t / -g, or for the default mode: the terminal if there is one."""
    from .frontend.transport import FrontendGone, ProgramTransport, TerminalTransport

    if options.gui:
        import shlex

        argv = shlex.split(options.gui)
        return lambda: ProgramTransport(argv)
    try:
        TerminalTransport().close()
    except FrontendGone as error:
        if options.text:
            raise FrontendGone(f"{error} (-t needs a terminal)") from None
        raise NoMode(NO_MODE) from None
    return TerminalTransport


def build(options: argparse.Namespace, log: Log, explicit_log: bool) -> tuple[Session, FilterPlan]:
    if options.permit_all:
        session = Session(log=log, chain=Chain([PermitAll(log=explicit_log)]))
        return session, base_plan(abi.RET_USER_NOTIF if explicit_log else abi.RET_ALLOW)

    from .decide.ask import Asker
    from .decide.modes import Enforce, Learn
    from .decide.policy import PolicyDecider
    from .policy.compile import kernel_plan

    asking = not (options.learn or options.enforce)
    transport_factory = choose_asking(options) if asking else None

    variables = user_variables()
    user_dir = Path(options.policy_dir) if options.policy_dir else Path(variables["HOME"]) / ".systrace"
    store = Store(make_parser(), user_dir, [Path(f) for f in options.policy_files], use_user=not options.no_user)
    store.load()
    use_aliases = not options.no_aliases
    decider = PolicyDecider(store, expander(variables), use_aliases=use_aliases, inherit=options.inherit,
                            require_policy=options.enforce and not options.inherit,
                            create_missing=not options.enforce)
    if options.enforce:
        fallback = Enforce(kill=options.kill_on_violation)
        plan = kernel_plan([stored.policy for stored in store.all()])
    elif options.learn:
        fallback = Learn(store, use_aliases)
        plan = FilterPlan(default=abi.RET_USER_NOTIF)
    else:
        transport = transport_factory()  # started now: a frontend that cannot start is an error
        fallback = Asker(lambda: transport_factory(), store, make_parser(), decider, use_aliases)
        fallback.transport = transport
        plan = FilterPlan(default=abi.RET_USER_NOTIF)
    apply_baseline(plan)
    session = Session(log=log, chain=Chain([decider, fallback]), store=store,
                      save_interval=None if options.enforce else SAVE_INTERVAL)
    if asking:
        fallback.session = session  # type: ignore[attr-defined]
    return session, plan
