"""The command line of a plain run, read without argparse (start-up time, issue 16:
importing argparse and gettext, compiling their patterns and building the parser cost
about 4 ms of the 60 ms `systrace -a true` took).

Only the forms whose reading is certain are read here: options of OPTIONS spelled in full
and alone (`-a`, `--stats`), a value as the next argument (or after `=` for a long
option), up to the first argument that is not an option, which starts the command.
Anything else returns None and argparse (cli.build_parser) reads the whole command line:
help, -V, abbreviations (`--perm`), clusters (`-ae`), attached values (`-dDIR`), `--`, a
value that starts with `-`, a value its type refuses. So every message and the help are
argparse's alone. tests/test_quick_options.py checks that OPTIONS is build_parser's table
and that whatever is read here, argparse reads the same.
"""

from __future__ import annotations

from types import SimpleNamespace

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Mapping

FLAG, VALUE, APPEND = "flag", "value", "append"  # argparse's store_true, store, append

# (option, dest, kind, default), in build_parser's order
OPTIONS: tuple[tuple[str, str, str, object], ...] = (
    ("-A", "learn", FLAG, False),
    ("-a", "enforce", FLAG, False),
    ("-t", "text", FLAG, False),
    ("-g", "gui", VALUE, None),
    ("--answer-timeout", "answer_timeout", VALUE, None),
    ("--permit-all", "permit_all", FLAG, False),
    ("--explore", "explore", FLAG, False),
    ("--kill-on-violation", "kill_on_violation", FLAG, False),
    ("--converge", "converge", VALUE, None),
    ("--max-runs", "max_runs", VALUE, 20),
    ("-d", "policy_dir", VALUE, None),
    ("-f", "policy_files", APPEND, ()),
    ("-U", "no_user", FLAG, False),
    ("--add-base", "add_base", FLAG, False),
    ("-u", "no_aliases", FLAG, False),
    ("-i", "inherit", FLAG, False),
    ("-c", "credentials", VALUE, None),
    ("-r", "random_percent", VALUE, None),
    ("--seed", "seed", VALUE, None),
    ("--eligible", "eligible", VALUE, None),
    ("--inject", "inject", APPEND, ()),
    ("--fault", "fault", APPEND, ()),
    ("--replay", "replay", VALUE, None),
    ("-e", "log_stderr", FLAG, False),
    ("-E", "log_file", VALUE, None),
    ("--json-log", "json_log", FLAG, False),
    ("--stats", "stats", FLAG, False),
    ("--no-cpu-pin", "no_cpu_pin", FLAG, False),
    ("--supervisors", "supervisors", VALUE, 1),
)
_BY_NAME = {option: (dest, kind) for option, dest, kind, _ in OPTIONS}


def parse(argv: list[str], types: Mapping[str, Callable[[str], object]]) -> argparse.Namespace | None:
    """The options and `command` (the rest of the line) as argparse's Namespace would
    hold them, or None when argparse must read this line. `types` converts the values of
    some options (dest -> cli's type function); a value it refuses gives None."""
    values: dict[str, object] = {dest: list(default) if kind == APPEND else default  # type: ignore[call-overload]
                                 for _, dest, kind, default in OPTIONS}
    index = 0
    while index < len(argv):
        argument = argv[index]
        if argument == "-":
            return None  # argparse takes `-` alone for a positional: its rules decide
        if not argument.startswith("-"):
            break  # the command
        name, equals, attached = argument.partition("=") if argument.startswith("--") else (argument, "", "")
        known = _BY_NAME.get(name)
        if known is None:
            return None
        dest, kind = known
        if kind == FLAG:
            if equals:
                return None
            values[dest] = True
            index += 1
            continue
        if equals:
            value, index = attached, index + 1
        elif index + 1 < len(argv):
            value, index = argv[index + 1], index + 2
        else:
            return None  # no value: argparse's error
        if value.startswith("-"):
            return None  # an option, a negative number or a value: argparse's rules decide
        convert = types.get(dest)
        if convert is not None:
            try:
                converted = convert(value)
            except Exception:  # noqa: BLE001 - argparse reads the line again and says why
                return None
        else:
            converted = value
        if kind == APPEND:
            values[dest].append(converted)  # type: ignore[attr-defined]
        else:
            values[dest] = converted
    values["command"] = argv[index:]
    return SimpleNamespace(**values)  # type: ignore[return-value]  # what code reads of a Namespace
