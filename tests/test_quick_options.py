"""The command line read without argparse (quick_options.py, start-up time): its table is
build_parser's, whatever it reads argparse reads the same, and whatever it cannot read
with certainty it leaves to argparse (whose messages stay the only ones). Pure logic."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from systrace import cli, quick_options
from systrace.quick_options import APPEND, FLAG, OPTIONS, VALUE

KINDS = {argparse._StoreTrueAction: FLAG, argparse._StoreAction: VALUE, argparse._AppendAction: APPEND}


def argparse_reads(argv: list[str]) -> dict | None:
    try:
        return vars(cli.build_parser().parse_args(argv))
    except (cli.UsageError, SystemExit):
        return None


def quick_reads(argv: list[str]) -> dict | None:
    options = quick_options.parse(argv, cli._TYPES)
    return None if options is None else vars(options)


def test_the_table_is_build_parsers() -> None:
    actions = [a for a in cli.build_parser()._actions
               if not isinstance(a, (argparse._HelpAction, argparse._VersionAction)) and a.option_strings]
    table = [(a.option_strings, a.dest, KINDS[type(a)], [] if a.default == [] else a.default) for a in actions]
    assert table == [([option], dest, kind, [] if default == () else default) for option, dest, kind, default in OPTIONS]
    typed = {a.dest: a.type for a in actions if a.type is not None}
    assert typed == cli._TYPES


PLAIN = [
    ["-a", "true"],
    ["-d", "/tmp/p", "-a", "true", "-a", "--stats"],
    ["--permit-all", "-E", "log", "--json-log", "sh", "-c", "exit 3"],
    ["-A", "-f", "one", "-f", "two", "--add-base", "cat", "-"],
    ["-r", "12.5", "--seed=7", "--eligible", "%file", "make"],
    ["--inject", "openat:error=ENOENT", "--fault=read", "-e", "true"],
    ["--supervisors", "2", "-a", "--no-cpu-pin", "--kill-on-violation", "true"],
    ["-t", "--answer-timeout", "1.5", "true"],
    ["-A", "--converge", "3", "--max-runs=9", "true"],
    ["-a"],
    ["-d", "", "true"],
]


@pytest.mark.parametrize("argv", PLAIN)
def test_a_plain_line_is_read_as_argparse_reads_it(argv: list[str]) -> None:
    assert quick_reads(argv) is not None
    assert quick_reads(argv) == argparse_reads(argv)


LEFT = [
    ["-h"], ["--help", "true"], ["-V"], ["--perm", "true"], ["-ae", "true"], ["-d/tmp", "-a", "true"],
    ["-a", "--", "true"], ["-E", "-e", "true"], ["-r", "x", "true"], ["-r", "200", "true"], ["--seed", "-3", "true"],
    ["--stats=1", "true"], ["-d"], ["--bogus", "true"], ["-", "x"], ["--supervisors", "0", "true"],
]


@pytest.mark.parametrize("argv", LEFT)
def test_what_is_not_certain_is_left_to_argparse(argv: list[str]) -> None:
    assert quick_reads(argv) is None


WORDS = sorted({option for option, _, _, _ in OPTIONS} | {
    "-h", "--help", "-V", "--", "-", "-ae", "-Aa", "--perm", "--stat", "-dX", "--seed=", "--seed=-1", "--max-runs=0",
    "--answer-timeout=0", "-x", "-5", "--json-log=yes", "true", "sh", "-c", "", "1", "0", "2.5", "150", "abc", "a b",
    "-a b", "%file", "=", "--inject=x", "-E=f"})


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(WORDS), max_size=8))
def test_whatever_is_read_argparse_reads_the_same(argv: list[str]) -> None:
    quick = quick_reads(argv)
    if quick is not None:
        assert quick == argparse_reads(argv)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([o for o in OPTIONS if o[2] == FLAG]), max_size=5),
       st.lists(st.tuples(st.sampled_from([o for o in OPTIONS if o[2] != FLAG and o[1] not in cli._TYPES]),
                          st.text("abc/._%", max_size=5), st.booleans()), max_size=4),
       st.lists(st.text("xyz -", max_size=4), max_size=3))
def test_every_well_formed_line_is_read_quickly(flags: list, valued: list, command: list[str]) -> None:
    """Not only errors fall back: a line of full options and values is read here."""
    argv = [option for option, _, _, _ in flags]
    for (option, _, _, _), value, joined in valued:
        argv += [f"{option}={value}"] if joined and option.startswith("--") else [option, value]
    argv += ["prog", *command]
    assert quick_reads(argv) == argparse_reads(argv)
    assert quick_reads(argv) is not None
