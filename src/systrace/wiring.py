"""Turn the command-line options into a Session (deciders, store) and a kernel plan."""

from __future__ import annotations

import os
import pwd

from .baseline import apply_baseline, base_plan
from .decide import Chain, PermitAll, protected
from .decide.reporting import Reporter
from .decide.uffd import UffdGuard, route_userfaultfd
from .frontend.relay import SignalRelay
from .kernel import abi
from .kernel.filter import FilterPlan
from .kernel.mounts import cgroups_changeable_by_us
from .kernel.syscalls_x86_64 import SYSCALLS
from .log import Log
from .policy.match import expander
from .policy.parse import Parser
from .policy.store import Store
from .processes import ProcessTable
from .session import Session
from .translate.aliases import ALIASES

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    import argparse  # only named by annotations: the command line is read without it (quick_options.py)

    from .decide import Decider
    from .decide.ask import Asker

SAVE_INTERVAL = 30.0  # seconds between writes of learned rules, as the original
NO_MODE = ("no terminal to ask on: choose a mode: -a (enforce a policy), -A (learn one), "
           "-t (ask on a terminal), -g PROGRAM (ask a frontend program) or --permit-all")


class NoMode(Exception):
    pass


class FaultSetupError(Exception):
    pass


def build_faults(options: argparse.Namespace, log: Log, processes: ProcessTable | None = None,
                 reporter: Reporter | None = None):
    """The fault decider for -r / --inject / --fault / --replay, or None."""
    if options.random_percent is None and not options.inject and not options.fault and not options.replay:
        return None
    from errno import ENOSYS

    from .baseline import never_notified
    from .decide.faults import FaultDecider
    from .faults.plan import RandomFaults, ReplayFaults, RuleFaults, parse_fault_log
    from .faults.spec import InjectRule, SpecError, expand_set, parse_inject
    from .faults.tables import NEVER_FAIL

    unreachable = never_notified() | frozenset(NEVER_FAIL)
    rules: list[InjectRule] = []
    for text, default in [*((t, None) for t in options.inject), *((t, ENOSYS) for t in options.fault)]:
        flag = "--inject" if default is None else "--fault"
        try:
            rule = parse_inject(text, default)
        except SpecError as error:
            raise FaultSetupError(f"{flag}={text}: {error}") from None
        reachable = rule.syscalls - unreachable
        if not reachable:
            raise FaultSetupError(f"{flag}={text}: these system calls are never failed (README: Fault injection)")
        rules.append(InjectRule(frozenset(reachable), rule.error, rule.retval, rule.signal, rule.when, rule.path, text))
    random = None
    if options.random_percent is not None:
        eligible = None
        if options.eligible:
            try:
                eligible = expand_set(options.eligible)
            except SpecError as error:
                raise FaultSetupError(f"--eligible={options.eligible}: {error}") from None
            if not RandomFaults(100, 0, eligible).eligible:
                raise FaultSetupError(f"--eligible={options.eligible}: none of these calls is ever failed "
                                      "(README: Fault injection)")
        seed = options.seed if options.seed is not None else int.from_bytes(os.urandom(4), "little")
        random = RandomFaults(options.random_percent, seed, eligible)
        log.message(f"random faults: {options.random_percent:g}% with seed {seed} (repeat with --seed {seed})",
                    event="faults", seed=seed, percent=options.random_percent)
    replay = None
    if options.replay:
        try:
            with open(options.replay, encoding="utf-8", errors="surrogateescape") as handle:
                text = handle.read()
        except OSError as error:
            raise FaultSetupError(f"{options.replay}: {error.strerror}") from None
        recorded = parse_fault_log(text)
        if not recorded:
            raise FaultSetupError(f"{options.replay}: no faults recorded in this log")
        replay = ReplayFaults(recorded)
    return FaultDecider(random, RuleFaults(rules) if rules else None, replay, processes=processes, reporter=reporter)


def route_faults(plan: FilterPlan, faults) -> None:
    """The calls the fault decider may fail must reach the supervisor (unless the kernel
    refuses them anyway); all others stay in the kernel."""
    if faults is None:
        return
    from .facts import real_name

    for name in faults.routed:
        nr = SYSCALLS[real_name(name)]  # a descriptor form (newfstatat/fd) is its call's
        if plan.action_of(nr) in (abi.RET_ALLOW, abi.RET_USER_NOTIF) or nr in plan.arg_rules:
            plan.actions[nr] = abi.RET_USER_NOTIF
            plan.arg_rules.pop(nr, None)


def route_refused_breaks(plan: FilterPlan) -> None:
    """The kernel's filter can only refuse with -errno, which brk never returns: a brk the
    plan refuses goes to the supervisor, which answers with the current break."""
    from .decide.breaks import FAILS_BY_RETURNING

    for name in FAILS_BY_RETURNING:
        nr = SYSCALLS[name]
        refused = plan.action_of(nr) & ~abi.RET_DATA == abi.RET_ERRNO or any(
            rule.action & ~abi.RET_DATA == abi.RET_ERRNO for rule in plan.arg_rules.get(nr, ()))
        if refused:
            plan.actions[nr] = abi.RET_USER_NOTIF
            plan.arg_rules.pop(nr, None)


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


def argument_names(syscall: str) -> frozenset[str] | None:
    """The argument names rules on `syscall` (or an alias) can test, as the translators
    name them; "" gives every name any call has. None: unknown, not checked. Asked for
    each rule a policy file has: kept (the tables it reads never change)."""
    names = _ARGUMENT_NAMES.get(syscall, _UNKNOWN)
    if names is _UNKNOWN:
        names = _ARGUMENT_NAMES[syscall] = _argument_names(syscall)
    return names  # type: ignore[return-value]


_ARGUMENT_NAMES: dict[str, frozenset[str] | None] = {}
_UNKNOWN = object()


def _argument_names(syscall: str) -> frozenset[str] | None:
    from .translate import aliases
    from .translate.table import TRANSLATORS, arg_names  # from the system call facts table

    if not syscall:
        return frozenset().union(*(arg_names(name) for name in TRANSLATORS), {"uid", "uname", "gid"})
    if syscall in ("fsread", "fswrite"):
        return frozenset({"filename"})
    if syscall in aliases.ALIASES:  # seteuid, setegid: the new effective id
        return frozenset({"uid", "uname"}) if syscall == "seteuid" else frozenset({"gid"})
    if syscall not in SYSCALLS:
        return None
    return frozenset(arg_names(syscall))


def id_known(kind: str, name: str) -> bool:
    """Does the user (or group) `name` exist here? (`if user = NAME` predicates)"""
    import grp

    try:
        (pwd.getpwnam if kind == "user" else grp.getgrnam)(name)
    except KeyError:
        return False
    return True


def user_policy_dir(options: argparse.Namespace, variables: dict[str, str] | None = None) -> str | None:
    """-d DIR, else ~/.systrace; None with -U."""
    if options.no_user:
        return None
    return options.policy_dir or os.path.join((variables or user_variables())["HOME"], ".systrace")


def make_parser(source: str = "<policy>") -> Parser:
    from .facts import refused_argument

    return Parser(source, syscall_known=syscall_known, all_syscalls=all_syscall_names,
                  argument_names=argument_names, id_known=id_known, refused_argument=refused_argument)


def reachable_policies(store: Store, command_path: str | None) -> list:
    """The policies the command can reach through the exec rules it is permitted (all of
    them when its own binary is not known or has none: then nothing runs anyway). Only
    these are parsed (policy/store.py): one of them that does not parse raises
    PolicyError, as at start-up it always did."""
    from .decide.policy import binary_run_by
    from .policy.reach import reachable

    def everything() -> list:
        return [stored.policy for stored in store.all()]

    start = store.require(binary_run_by(command_path)) if command_path else None
    if start is None:
        return everything()

    def find(binary: str):
        stored = store.require(binary)
        return stored.policy if stored is not None else None

    return reachable(start.policy, everything, find, binary_run_by)


def with_detached(policies: list) -> list:
    """A permit[detach] exec runs a process whose every call is permitted: the kernel plan
    must agree with that too, so it may keep only what every policy permits in the kernel
    (a plain deny there would also hit the detached process)."""
    from .policy import ast

    detaching = any(rule.syscall in ("execve", "execveat") and rule.action.flag == "detach"
                    for policy in policies for rule in policy.rules)
    if not detaching:
        return policies
    permit = ast.Action("permit")
    return [*policies, ast.Policy("<detached>", "native", [ast.Rule("native", name, None, permit) for name in SYSCALLS])]


def learning_plan(policies: list) -> FilterPlan:
    """-A's kernel plan: what every policy that may apply permits alike, the base included
    (every policy learning creates starts from it: decide/base.py), is decided in the
    kernel; -A would learn such a call nowhere, since each policy it may reach permits it
    already. Any other call is routed, among them every call one of them has no rule for
    (learned), and the calls whose names learning notes as made up (decide/generalise.py
    NOTED_CALLS), whatever the policies say. All the policies of the store, not only those
    the command reaches now: -A learns new exec rules as it runs."""
    from .decide.base import base_rules
    from .decide.generalise import NOTED_CALLS
    from .policy import ast
    from .policy.compile import kernel_plan

    plan = kernel_plan(with_detached([*policies, ast.Policy("<base>", "native", list(base_rules()))]))
    for name in NOTED_CALLS:
        nr = SYSCALLS.get(name)
        if nr is not None:
            plan.actions.pop(nr, None)
            plan.arg_rules.pop(nr, None)
    return plan


DEFAULT_FRONTEND_TIMEOUT = 60.0  # seconds a -g frontend has to answer (-t: no default, a person)


def choose_asking(options: argparse.Namespace, relay: SignalRelay):
    """The transport factory for -t / -g, or for the default mode: the terminal if there is
    one; with the Waiter its questions wait in, the answer timeout and -t's job control.
    The Waiter and the job control hear of the launch and its signals through `relay`."""
    from .frontend.errors import FrontendGone
    from .frontend.transport import ProgramTransport, TerminalTransport
    from .frontend.waiting import Waiter

    waiter = Waiter(relay=relay)
    timeout = getattr(options, "answer_timeout", None)
    if options.gui:
        import shlex

        argv = shlex.split(options.gui)
        timeout = DEFAULT_FRONTEND_TIMEOUT if timeout is None else timeout
        return (lambda: ProgramTransport(argv, waiter)), timeout, None
    try:
        TerminalTransport().close()
    except FrontendGone as error:
        if options.text:
            raise FrontendGone(f"{error} (-t needs a terminal)") from None
        raise NoMode(NO_MODE) from None
    from .frontend.terminal import JobControl

    job = JobControl(relay=relay)
    return (lambda: TerminalTransport(waiter=waiter, job=job)), timeout, job


def build(options: argparse.Namespace, log: Log, explicit_log: bool, command_path: str | None = None
          ) -> tuple[Session, FilterPlan]:
    # built first and given to whoever needs them: no decider is handed the session later
    processes = ProcessTable()
    reporter = Reporter(log)
    relay = SignalRelay()  # the signals of the command, launched after the deciders are built
    faults = build_faults(options, log, processes, reporter)
    session, plan = _build_mode(options, log, explicit_log, command_path, processes, reporter, relay)
    if faults is not None:
        route_faults(plan, faults)
        apply_baseline(plan)
        session.chain.deciders.insert(0, faults)  # first: a failed call is never learned
    route_userfaultfd(plan)
    if cgroups_changeable_by_us():  # (or root, who may write the pid allocation files too)
        protected.route_write_opens(plan)  # those files are refused whatever the policy
    session.chain.deciders.insert(0, UffdGuard(session.store))  # before all: no mode may grant it unnamed
    return session, plan


def _build_mode(options: argparse.Namespace, log: Log, explicit_log: bool, command_path: str | None,
                processes: ProcessTable, reporter: Reporter, relay: SignalRelay) -> tuple[Session, FilterPlan]:
    if options.permit_all:
        session = Session(log=log, chain=Chain([PermitAll(log=explicit_log)]), processes=processes,
                          reporter=reporter, use_aliases=not options.no_aliases, relay=relay)
        return session, base_plan(abi.RET_USER_NOTIF if explicit_log else abi.RET_ALLOW)

    from .decide.enforce import Enforce
    from .decide.policy import PolicyDecider
    from .policy.compile import kernel_plan

    asking = not (options.learn or options.enforce)
    transport_factory, timeout, job = choose_asking(options, relay) if asking else (None, None, None)

    variables = user_variables()
    store = Store(make_parser(), user_policy_dir(options, variables), options.policy_files,
                  use_user=not options.no_user)
    if options.learn:  # now, not at the end when the rules are already lost (and first: a directory
        store.check_writable()  # it cannot write, such as /etc, is said to be one before a file it cannot read)
    store.load()
    use_aliases = not options.no_aliases
    decider = PolicyDecider(store, expander(variables), inherit=options.inherit,
                            require_policy=options.enforce and not options.inherit,
                            create_missing=not options.enforce)
    fallback: Enforce | Learn | Asker
    deciders: list[Decider] = [decider]
    if options.enforce:
        fallback = Enforce(kill=options.kill_on_violation)
        plan = kernel_plan(with_detached(reachable_policies(store, command_path)))
    elif options.learn:
        from .decide.modes import Learn, Observer  # only when learning (start-up time)

        fallback = Learn(store, use_aliases, add_base=options.add_base)
        fallback.policy_for = decider.policy_for
        deciders.insert(0, Observer(fallback))
        plan = learning_plan([stored.policy for stored in store.all()])
    else:
        from .decide.ask import Asker  # only when asking (start-up time)

        if transport_factory is None:  # not reached: asking chose one above
            raise NoMode(NO_MODE)
        transport = transport_factory()  # started now: a frontend that cannot start is an error
        fallback = Asker(transport_factory, store, make_parser(), decider, use_aliases, timeout, job,
                         reporter=reporter, transport=transport)
        plan = FilterPlan(default=abi.RET_USER_NOTIF)
        from .decide.policy import binary_run_by

        # the command's policy and those it can reach, parsed now: a broken one is refused
        # before the run (no policy of its own: nothing reached, nothing more parsed)
        if command_path is not None and store.require(binary_run_by(command_path)) is not None:
            reachable_policies(store, command_path)
    apply_baseline(plan)
    route_refused_breaks(plan)
    if job is not None:  # no group or foreground change while a question waits (frontend/terminal.py)
        from .frontend.terminal import route_job_control

        route_job_control(plan)
    deciders.append(fallback)
    session = Session(log=log, chain=Chain(deciders), processes=processes, store=store,
                      save_interval=None if options.enforce else SAVE_INTERVAL, reporter=reporter,
                      use_aliases=use_aliases, relay=relay)
    return session, plan
