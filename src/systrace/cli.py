"""Command line: parse, wire a Session, launch, supervise, exit with the command's status."""

from __future__ import annotations

import gc
import os
import sys

from . import __version__

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

USAGE = ("systrace [-AaeitUuV] [-c user:group] [-d policydir] [-E logfile] [-f file] [-g gui] [--json-log] "
         "[--kill-on-violation] command ...")


class UsageError(Exception):
    pass


def _columns() -> int:
    """What shutil.get_terminal_size() says: $COLUMNS, else the terminal's width, else 80."""
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns > 0:
        return columns
    try:
        return os.get_terminal_size(sys.__stdout__.fileno()).columns or 80  # type: ignore[union-attr]
    except (AttributeError, ValueError, OSError):
        return 80


def build_parser() -> argparse.ArgumentParser:
    """The command line's grammar, its help and its messages. A plain command line is read
    without it (quick_options.py: importing argparse costs start-up time)."""
    import argparse

    # argparse passes each of its messages through gettext, and every gettext lookup
    # imports locale and searches the disk for message catalogues (2-3 ms of start-up).
    # Python ships no catalogue for argparse's messages, so they are used as they are.
    argparse._ = lambda message: message  # type: ignore[attr-defined]
    argparse.ngettext = lambda singular, plural, count: singular if count == 1 else plural  # type: ignore[attr-defined]

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:  # type: ignore[override]
            raise UsageError(message)

    class _Formatter(argparse.HelpFormatter):
        """argparse's formatter imports shutil (2 ms of start-up) for the terminal width;
        argparse builds one for every add_argument. os gives the same width."""

        def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24, width: int | None = None):
            if width is None:
                width = _columns() - 2
            super().__init__(prog, indent_increment, max_help_position, width)

    parser = _Parser(prog="systrace", usage=USAGE, formatter_class=_Formatter,
                     description="Run a command under system call policies (seccomp user notification).")
    parser.add_argument("-V", action="version", version=f"systrace {__version__} (Linux, seccomp user notification)")
    mode = parser.add_argument_group("modes")
    mode.add_argument("-A", dest="learn", action="store_true", help="learn: permit unmatched calls and add them to the policy")
    mode.add_argument("-a", dest="enforce", action="store_true", help="enforce: deny unmatched calls (EPERM) and log them")
    mode.add_argument("-t", dest="text", action="store_true", help="ask on the terminal about calls no rule decides")
    mode.add_argument("-g", dest="gui", metavar="PROGRAM", help="ask a frontend PROGRAM (its stdin and stdout are a socket)")
    mode.add_argument("--answer-timeout", metavar="SECONDS", type=_seconds,
                      help="with -t/-g: deny a call whose question is not answered in time (default: 60 for -g, none for -t)")
    mode.add_argument("--permit-all", action="store_true", help="permit every call (with -e/-E: log every call)")
    mode.add_argument("--explore", action="store_true",
                      help="first option only: fail each call site in turn, report what breaks (--explore --help)")
    mode.add_argument("--kill-on-violation", action="store_true", help="with -a: kill a process at its first unmatched call")
    mode.add_argument("--converge", metavar="N", type=_positive,
                      help="with -A: repeat the command (under -r faults if given) until N runs in a row add no rule")
    mode.add_argument("--max-runs", metavar="M", type=_positive, default=20, help="with --converge: give up after M runs")
    policies = parser.add_argument_group("policies")
    policies.add_argument("-d", dest="policy_dir", metavar="DIR", help="user policy directory (default ~/.systrace)")
    policies.add_argument("-f", dest="policy_files", metavar="FILE", action="append", default=[],
                          help="also use the policies in FILE (may be repeated)")
    policies.add_argument("-U", dest="no_user", action="store_true",
                          help="ignore user policies (only /etc/systrace and -f); write nothing")
    policies.add_argument("--add-base", action="store_true",
                          help="with -A: also add the base to existing policies without it (README \"The base\")")
    policies.add_argument("-u", dest="no_aliases", action="store_true", help="no aliases (fsread, fswrite)")
    policies.add_argument("-i", dest="inherit", action="store_true", help="after execve a process keeps its parent's policy")
    parser.add_argument("-c", dest="credentials", metavar="USER:GROUP",
                        help="run the command as USER (and GROUP, default USER's); root only")
    faults = parser.add_argument_group("fault injection")
    faults.add_argument("-r", dest="random_percent", metavar="PERCENT", type=_percent,
                        help="fail each eligible call with this probability, with an errno it can return")
    faults.add_argument("--seed", type=int, help="seed for -r (the same seed fails the same calls)")
    faults.add_argument("--eligible", metavar="SET", help="which calls -r may fail: names, fsread/fswrite, "
                        "%%file %%network %%memory %%process %%desc (default: every call with an errno table)")
    faults.add_argument("--inject", metavar="SPEC", action="append", default=[],
                        help="SET[:error=E|:retval=N][:signal=SIG][:when=EXPR][:path=GLOB] (strace's syntax)")
    faults.add_argument("--fault", metavar="SPEC", action="append", default=[], help="like --inject, error=ENOSYS by default")
    faults.add_argument("--replay", metavar="LOG", help="inject exactly the faults recorded in LOG (written by -E)")
    logs = parser.add_argument_group("logging")
    logs.add_argument("-e", dest="log_stderr", action="store_true", help="log to stderr")
    logs.add_argument("-E", dest="log_file", metavar="FILE", help="log to FILE")
    logs.add_argument("--json-log", action="store_true", help="write log records as JSON lines")
    logs.add_argument("--stats", action="store_true",
                      help="at exit, print to stderr how many calls reached systrace and its peak memory")
    tuning = parser.add_argument_group("tuning")
    tuning.add_argument("--no-cpu-pin", action="store_true",
                        help="let systrace move between CPUs (by default it keeps to one; the command keeps all of its)")
    tuning.add_argument("--supervisors", type=_positive, default=1, metavar="N",
                        help="serve with N processes sharing the listener (-a only; for many threads opening files "
                        "at once; README: Several supervisor processes)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments")
    return parser


def _percent(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _type_error(f"invalid percentage '{text}'") from None
    if not 0 <= value <= 100:
        raise _type_error(f"percentage out of range (0-100): '{text}'")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise _type_error(f"invalid number '{text}'") from None
    if value < 1:
        raise _type_error(f"must be at least 1: '{text}'")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise _type_error(f"invalid number of seconds '{text}'") from None
    if not 0 < value <= 86400 * 365:
        raise _type_error(f"the answer timeout must be more than 0 seconds: '{text}'")
    return value


def _type_error(message: str) -> Exception:
    """What argparse reports as the option's error: raised here when quick_options reads
    the value too, and then argparse reads the line again to say it."""
    import argparse

    return argparse.ArgumentTypeError(message)


# the options whose values are converted (and checked) by a type function
_TYPES: dict[str, Callable[[str], object]] = {
    "answer_timeout": _seconds, "converge": _positive, "max_runs": _positive, "random_percent": _percent,
    "seed": int, "supervisors": _positive}


def entry() -> None:
    """The `systrace` command. Leaves without the interpreter's finalisation (about 5 ms of
    tearing down modules): by then the log is closed and every policy written."""
    status = main()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(status)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] in (["--explore"], ["--explore-merge"]):  # a campaign of runs, with its own options
        from .explore.cli import main as explore

        return explore(argv)
    try:
        return _main(argv)
    except UsageError as error:
        print(f"systrace: {error}", file=sys.stderr)
        print(f"usage: {USAGE}", file=sys.stderr)
        return 2
    except _Refused as error:
        return _fail(str(error), 2)
    except KeyboardInterrupt:
        return 130


def _main(argv: list[str]) -> int:
    from .quick_options import parse

    options = parse(argv, _TYPES)  # a plain line; anything else argparse reads, and says what is wrong
    if options is None:
        options = build_parser().parse_args(argv)
    command = options.command
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UsageError("no command given")
    if options.explore:
        raise UsageError("--explore must be the first option")
    if options.learn and options.enforce:
        raise UsageError("-a and -A cannot be used together")
    if options.text and options.gui:
        raise UsageError("-t and -g cannot be used together")
    if (options.text or options.gui) and (options.learn or options.enforce):
        raise UsageError("-t and -g ask about unmatched calls; -a and -A decide them: choose one")
    if options.permit_all and (options.learn or options.enforce or options.text or options.gui):
        raise UsageError("--permit-all cannot be combined with -a, -A, -t or -g")
    if options.answer_timeout is not None and (options.learn or options.enforce or options.permit_all):
        raise UsageError("--answer-timeout goes with -t or -g (asking)")
    if options.kill_on_violation and not options.enforce:
        raise UsageError("--kill-on-violation needs -a")
    if options.supervisors > 1 and (not options.enforce or options.random_percent is not None or options.inject
                                    or options.fault or options.replay):
        raise UsageError("--supervisors needs -a without fault injection (learning, asking and faults are decided "
                         "in one process, in the order of the calls)")
    if (options.seed is not None or options.eligible) and options.random_percent is None:
        raise UsageError("--seed and --eligible go with -r")
    if options.converge and not options.learn:
        raise UsageError("--converge needs -A")
    if options.add_base and not options.learn:
        raise UsageError("--add-base needs -A")
    if options.converge and options.replay:
        raise UsageError("--converge repeats the command under new faults: it cannot be combined with --replay")
    for flag, value in (("-d", options.policy_dir), ("-E", options.log_file), ("--replay", options.replay)):
        if value == "":
            raise UsageError(f"{flag}: empty file name")
    if options.gui is not None:
        _check_gui(options.gui)
    if options.credentials is not None:
        options.credentials = _credentials(options.credentials)
    return run(options, command)


def _check_gui(text: str) -> None:
    import shlex

    try:
        argv = shlex.split(text)
    except ValueError as error:
        raise UsageError(f"-g {text}: {str(error).lower()}") from None
    if not argv:
        raise UsageError("-g: no program given")


def _credentials(text: str) -> tuple[int, int]:
    from .credentials import CredentialsError, parse_credentials

    if os.getuid() != 0:  # the original's words
        raise UsageError("Need to be root to change credentials.")
    try:
        parsed = parse_credentials(text)
    except CredentialsError as error:
        if error.usage:
            raise UsageError(str(error)) from None
        raise _Refused(str(error)) from None
    return parsed.uid, parsed.gid


class _Refused(Exception):
    """A bad argument: one line, exit 2, no usage line."""


def run(options: argparse.Namespace, command: list[str]) -> int:
    collecting = gc.isenabled()
    gc.disable()  # until the command starts (_run_once): start-up makes no garbage worth collecting
    try:
        return _run(options, command)
    finally:  # the collector as it was (main() may be called by a process that goes on)
        gc.unfreeze()
        if collecting:
            gc.enable()
        else:
            gc.disable()


def _run(options: argparse.Namespace, command: list[str]) -> int:
    from .preload import ENFORCING, PLAIN, preload

    preload(PLAIN + ENFORCING if options.enforce else PLAIN)  # what the run imports, in one pass (start-up time)
    from .kernel.launch import LaunchError, resolve_command, user_notification_available

    try:
        path = resolve_command(command[0], os.environ.get("PATH"))
    except LaunchError as error:
        return _fail(str(error), error.status)
    if not user_notification_available():
        return _fail("this kernel does not support seccomp user notification (Linux 5.5 or later is needed)", 2)
    if options.converge:
        from .converge import converge

        return converge(options, lambda each: _run_once(each, command, path))
    return _run_once(options, command, path)[0]


def _run_once(options: argparse.Namespace, command: list[str], path: str) -> tuple[int, list[str] | None]:
    """One supervised run: (exit status, the rules it learned; None when systrace could not
    set the run up)."""
    gc.disable()  # (again for each run of --converge)
    # Import the whole engine now: the child must not import anything after fork.
    from .engine import supervise
    from .frontend.errors import FrontendGone, Interrupted
    from .kernel.launch import LaunchError
    from .log import default_log
    from .policy.errors import PolicyError
    from .policy.errors import printable as printable_text
    from .wiring import FaultSetupError, NoMode, build

    problem = _log_in_policy_dir(options)
    if problem:
        return _fail(problem, 2), None
    try:
        log = default_log(options.log_stderr, options.log_file, options.json_log)
    except OSError as error:
        return _fail(f"{options.log_file}: {error.strerror}", 2), None
    sinks = options.log_stderr or options.log_file
    try:
        try:
            session, plan = build(options, log, explicit_log=bool(sinks), command_path=path)
        except (PolicyError, FrontendGone, NoMode, FaultSetupError) as error:
            return _fail(str(error), 2), None
        store = session.store
        for warning in store.warnings if store is not None else ():
            print(f"systrace: {warning}", file=sys.stderr)
        if options.enforce and store is not None:
            problem = _no_policy(path, store)
            if problem:
                return _fail(problem, 2), None
        # What start-up made lives as long as the run: collections while the command runs
        # leave it out (gc.freeze), and they run again from here.
        gc.freeze()
        gc.enable()
        try:
            status = supervise(path, command, dict(os.environ), session, plan, pin_cpu=not options.no_cpu_pin,
                               credentials=options.credentials, supervisors=options.supervisors)
        except LaunchError as error:
            status = _fail(str(error), error.status)
        except Interrupted:
            status = _fail("interrupted at a question (Ctrl-C): the command was killed", 130)
        problems = session.finish()
        if store is not None:  # learned rules not written: keep them elsewhere, say where
            problems, lost = store.rescue()
            if lost:
                status = status or 2
            for late in store.late:  # policy files first parsed mid-run: their warnings, a broken one
                _say(f"systrace: {printable_text(late)}")
        for problem in session.unsupervised + problems:
            _say(f"systrace: {problem}")
        for notice in (n for d in session.chain.deciders for n in getattr(d, "notices", ())):
            _say(f"systrace: {notice}")
        if options.stats:
            import resource

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            faults = sum(getattr(d, "injected", 0) for d in session.chain.deciders)
            _say(f"systrace: {session.served} calls reached systrace, {faults} faults injected, peak RSS {peak} KiB")
            if store is not None:
                _say(f"systrace: {store.parsed_files} of {store.read_files} policy files parsed (the others are "
                     "not used: README \"Policies\")")
            if session.served_by_name:
                _say(f"systrace: {session.served_by_name} of them decided by name only (README \"Caches\")")
            hits, misses, shaped = session.path_cache
            if hits or misses or shaped:
                _say(f"systrace: path cache: {hits + shaped} path calls translated from it ({shaped} of them from "
                     f"another file's of the same shape), {misses} in full (README \"Caches\")")
            if options.supervisors > 1:
                _say(f"systrace: {session.served_by_replicas} of them served by the supervisor processes sharing "
                     f"the listener ({options.supervisors})")
            if session.routed:
                from .call import syscall_name

                by_count = sorted(session.routed.items(), key=lambda item: (-item[1], item[0]))
                _say("systrace: routed by system call: " + ", ".join(f"{syscall_name(nr)} {count}" for nr, count in by_count))
            if session.carried:  # (what bench/bench.py's floors multiply: each kind by its own floor)
                _say("systrace: carried out as: " + ", ".join(
                    f"{kind} {count}" for kind, count in sorted(session.carried.items(), key=lambda i: (-i[1], i[0]))))
        return status, [text for d in session.chain.deciders for text in getattr(d, "learned", ())]
    finally:
        log.close()


def _no_policy(path: str, store) -> str | None:
    """Under -a, a command whose own binary has no policy could not make one call: say so
    now instead of killing it at its first call."""
    from .decide.policy import binary_run_by
    from .policy.errors import printable

    binary = binary_run_by(path)
    if store.find(binary) is not None or not os.path.lexists(binary):
        return None  # (a missing #! interpreter: the exec fails as natively, and says so)
    return printable(f"no policy for {binary} (searched {store.searched() or 'no policy directory'}): "
                     "learn one with -A, or write one (README: Policies)")


def _log_in_policy_dir(options: argparse.Namespace) -> str | None:
    """-E inside a policy directory would be read back as a policy by the next run."""
    if not options.log_file:
        return None
    from .policy.store import SYSTEM_DIR
    from .wiring import user_policy_dir

    log_dir = os.path.realpath(os.path.dirname(os.path.abspath(options.log_file)))
    for directory in (user_policy_dir(options), SYSTEM_DIR):
        if directory is None:
            continue
        real = os.path.realpath(directory)
        if log_dir == real or log_dir.startswith(real.rstrip("/") + "/"):
            return (f"-E {options.log_file}: the log may not be inside the policy directory {directory} "
                    "(the next run would read it); choose another place")
    return None


def _say(line: str) -> None:
    """A line on stderr after supervision: stderr may be a closed pipe by now (-e), and
    that must not replace the command's status."""
    try:
        print(line, file=sys.stderr, flush=True)
    except (OSError, ValueError):
        pass


def _fail(message: str, status: int) -> int:
    print(f"systrace: {message}", file=sys.stderr)
    return status
