"""`systrace --explore [options] command ...` and `systrace --explore-merge DIR ...`:
their own options (they are not supervising runs), the same error style as systrace."""

from __future__ import annotations

import argparse
import os
import sys

USAGE = ("systrace --explore [-j N] [--max-runs N] [--timeout S] [--only SET] [--skip SET] [--errnos first|all|E,...] "
         "[--fold K] [--shard I/N] [--stdin FILE] [--reset DIR] [--report DIR] command ...")
MERGE_USAGE = "systrace --explore-merge [--report DIR] SHARD_REPORT_DIR ..."


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got '{text}'")
    return int(text)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got '{text}'") from None
    if not 0 < value < 86400:
        raise argparse.ArgumentTypeError(f"timeout out of range: '{text}'")
    return value


def explore_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="systrace --explore", usage=USAGE,
                     description="Fail each call site of a command in turn (one errno, one-off and lasting) and "
                                 "report what crashed, hung or ignored the error.")
    parser.add_argument("-j", dest="jobs", type=_positive, default=1, metavar="N", help="runs in parallel")
    parser.add_argument("--max-runs", type=_count, metavar="N", help="make at most N fault runs")
    parser.add_argument("--timeout", type=_seconds, metavar="S",
                        help="per-run timeout: hung after S seconds (default 10 times the recorded run, at least 5)")
    parser.add_argument("--only", metavar="SET", help="only these calls (the syntax of --eligible)")
    parser.add_argument("--skip", metavar="SET", help="not these calls")
    parser.add_argument("--errnos", default="first", metavar="WHICH",
                        help="first (one representative, the default), all (every errno of the call's table) "
                             "or a comma list of names")
    parser.add_argument("--fold", type=_count, default=3, metavar="K",
                        help="fold a loop's later occurrences after K identical outcomes (0: never; default 3)")
    parser.add_argument("--shard", metavar="I/N", help="only the I-th of N deterministic parts of the sites")
    parser.add_argument("--stdin", metavar="FILE", default=os.devnull, help="replay this file as stdin (default /dev/null)")
    parser.add_argument("--reset", metavar="DIR", help="restore DIR before each run; its contents count as output")
    parser.add_argument("--report", metavar="DIR", help="write findings.json and index.html to DIR")
    parser.add_argument("--no-confirm", action="store_true", help="do not re-run the reproducers of the findings")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (there is none off a terminal)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    return parser


def parse_errnos(text: str) -> str | frozenset[int]:
    from ..policy import errnos

    if text in ("first", "all"):
        return text
    codes = set()
    for name in text.split(","):
        code = errnos.lookup(name.strip())
        if code is None:
            raise UsageError(f"--errnos: unknown errno '{name.strip()}'")
        codes.add(code)
    return frozenset(codes)


# Left out unless --only names them: a brk fault answers -ENOMEM, which the kernel never
# does (brk returns the unchanged break), and glibc takes -12 for the new break and
# crashes: a crash of systrace's making (DESIGN.md, kernel facts).
UNFAITHFUL = frozenset({"brk"})


def _selected(only: str | None, skip: str | None) -> frozenset[str]:
    from .sites import failable

    chosen = _expand("--only", only) if only else None
    skipped = _expand("--skip", skip) if skip else frozenset()
    if chosen is None:
        skipped |= UNFAITHFUL
    names = failable(chosen) - skipped
    if not names:
        raise UsageError("no call of this set can be failed (README: Fault injection)")
    return names


def _expand(flag: str, text: str) -> frozenset[str]:
    from ..faults.spec import SpecError, expand_set

    try:
        return expand_set(text)
    except SpecError as error:
        raise UsageError(f"{flag}={text}: {error}") from None


def settings_of(argv: list[str]):
    from .campaign import Settings
    from .sites import parse_shard

    options = explore_parser().parse_args(argv)
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    if not command:
        raise UsageError("no command given")
    shard = None
    if options.shard:
        try:
            shard = parse_shard(options.shard)
        except ValueError as error:
            raise UsageError(f"--shard: {error}") from None
    wanted = parse_errnos(options.errnos)
    selected = _selected(options.only, options.skip)
    if not os.access(options.stdin, os.R_OK) or os.path.isdir(options.stdin):
        raise UsageError(f"--stdin: {options.stdin}: not a readable file")
    if options.reset and not os.path.isdir(options.reset):
        raise UsageError(f"--reset: {options.reset}: not a directory")
    progress = not options.no_progress and sys.stderr.isatty()
    return Settings(command, selected, wanted, options.jobs, options.max_runs, options.timeout, options.fold, shard,
                    options.stdin, options.reset, options.report, progress, not options.no_confirm)


def main(argv: list[str]) -> int:
    """argv starts with --explore or --explore-merge."""
    try:
        if argv[0] == "--explore-merge":
            return _merge(argv[1:])
        settings = settings_of(argv[1:])
    except UsageError as error:
        print(f"systrace: {error}", file=sys.stderr)
        print(f"usage: {MERGE_USAGE if argv[0] == '--explore-merge' else USAGE}", file=sys.stderr)
        return 2
    from ..kernel.launch import LaunchError, resolve_command
    from .campaign import ExploreError, explore

    try:
        resolve_command(settings.command[0], os.environ.get("PATH"))
    except LaunchError as error:
        print(f"systrace: {error}", file=sys.stderr)
        return 2
    try:
        return explore(settings)
    except ExploreError as error:
        print(f"systrace: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"systrace: {error.filename or ''}: {error.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _merge(argv: list[str]) -> int:
    from .campaign import merge
    from .report import ReportError

    parser = _Parser(prog="systrace --explore-merge", usage=MERGE_USAGE,
                     description="Merge the reports of the shards of one --explore campaign.")
    parser.add_argument("--report", metavar="DIR", help="write the merged findings.json and index.html to DIR")
    parser.add_argument("directories", nargs="*", metavar="DIR")
    options = parser.parse_args(argv)
    if not options.directories:
        raise UsageError("no shard report directory given")
    try:
        return merge(options.directories, options.report)
    except ReportError as error:
        print(f"systrace: {error}", file=sys.stderr)
        return 2
