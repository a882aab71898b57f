"""Command line: parse, wire a Session, launch, supervise, exit with the command's status."""

from __future__ import annotations

import argparse
import os
import sys

from . import __version__

USAGE = "systrace [-AaeituUV] [-d policydir] [-E logfile] [-f file] [-g gui] [--json-log] command ..."


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="systrace",
        usage=USAGE,
        description="Run a command under system call policies (seccomp user notification).",
        add_help=True,
    )
    parser.add_argument("-V", action="version", version=f"systrace {__version__} (Linux, seccomp user notification)")
    parser.add_argument("-e", dest="log_stderr", action="store_true", help="log to stderr (in the default mode: every call)")
    parser.add_argument("-E", dest="log_file", metavar="FILE", help="log to FILE (in the default mode: every call)")
    parser.add_argument("--json-log", action="store_true", help="write log records as JSON lines")
    parser.add_argument("--permit-all", action="store_true", help="permit every call (the default for now)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command and its arguments")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except UsageError as error:
        print(f"systrace: {error}", file=sys.stderr)
        print(f"usage: {USAGE}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _main(argv: list[str]) -> int:
    options = build_parser().parse_args(argv)
    command = options.command
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise UsageError("no command given")
    return run(options, command)


def run(options: argparse.Namespace, command: list[str]) -> int:
    # Import the whole engine now: the child must not import anything after fork.
    from .baseline import base_plan
    from .decide import Chain, PermitAll
    from .engine import supervise
    from .kernel import abi
    from .kernel.launch import LaunchError, resolve_command, user_notification_available
    from .log import Log, SyslogSink, open_file_sink, stderr_sink
    from .session import Session

    try:
        path = resolve_command(command[0], os.environ.get("PATH"))
    except LaunchError as error:
        return _fail(str(error), error.status)
    if not user_notification_available():
        return _fail("this kernel does not support seccomp user notification (Linux 5.5 or later is needed)", 2)

    sinks = []
    try:
        if options.log_stderr:
            sinks.append(stderr_sink(options.json_log))
        if options.log_file:
            sinks.append(open_file_sink(options.log_file, options.json_log))
    except OSError as error:
        return _fail(f"{options.log_file}: {error.strerror}", 2)
    log_calls = bool(sinks)
    log = Log(sinks or [SyslogSink()])
    session = Session(log=log, chain=Chain([PermitAll(log=log_calls)]))
    plan = base_plan(abi.RET_USER_NOTIF if log_calls else abi.RET_ALLOW)
    try:
        return supervise(path, command, dict(os.environ), session, plan)
    except LaunchError as error:
        return _fail(str(error), error.status)
    finally:
        log.close()


def _fail(message: str, status: int) -> int:
    print(f"systrace: {message}", file=sys.stderr)
    return status
