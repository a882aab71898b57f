"""A compiled policy kept up to date rule by rule (learning) decides as one compiled anew."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from systrace.policy.compiled import CompiledPolicy
from systrace.wiring import make_parser

NAMES = ["/etc/a", "/etc/b", "/usr/c", "/tmp/d"]
RULE_LINES = st.sampled_from(
    [f'native-fsread: filename eq "{n}" then permit' for n in NAMES]
    + [f'native-fsread: filename eq "{n}" then deny[eacces]' for n in NAMES]
    + ['native-fsread: filename match "/etc/*" then deny', "native-getpid: permit", 'native-fswrite: filename sub "c" then permit']
)


def _policy(lines: list[str]):
    text = "Policy: /bin/p, Emulation: native\n" + "".join(f"\t{line}\n" for line in lines)
    return make_parser().parse_file(text).policies[0]


def _decisions(compiled: CompiledPolicy) -> list[object]:
    ok = lambda predicate: True
    out: list[object] = []
    for syscall in ("fsread", "fswrite", "getpid"):
        for name in NAMES:
            rule = compiled.first_match(syscall, {"filename": [name]}, ok)
            out.append(None if rule is None else (rule.action.verdict, rule.action.errno, rule.expr))
    return out


@settings(max_examples=60, deadline=None)
@given(st.lists(RULE_LINES, max_size=6), st.lists(RULE_LINES, min_size=1, max_size=6))
def test_rules_appended_one_by_one_decide_as_a_fresh_compile(first: list[str], later: list[str]) -> None:
    policy = _policy(first)
    compiled = CompiledPolicy(policy, str)
    for rule in _policy(later).rules:
        policy.lines.append(rule)
        assert compiled.catch_up()
    fresh = CompiledPolicy(policy, str)
    assert _decisions(compiled) == _decisions(fresh)
    assert compiled.rule_count == fresh.rule_count == len(policy.rules)


def test_a_rule_inserted_before_others_asks_for_a_fresh_compile() -> None:
    policy = _policy(['native-fsread: filename eq "/etc/a" then permit', "native-getpid: permit"])
    compiled = CompiledPolicy(policy, str)
    policy.lines.insert(0, _policy(['native-fsread: filename eq "/etc/a" then deny']).rules[0])
    assert not compiled.catch_up()


# -- the literal index and the prefix-filtered patterns decide as a plain walk ---------------
VALUES = ["/etc/a", "/etc/A", "/etc/ab", "/usr/c", "/usr/cd/e", "/usr", "/tmp/d", "/", "etc/a"]
PATTERN_RULES = st.sampled_from(
    [f'native-fsread: filename eq "{v}" then permit' for v in VALUES]
    + [f'native-fsread: filename eq "{v}" then deny[eacces]' for v in VALUES[:4]]
    + ['native-fsread: filename re "^/etc/a" then deny', 'native-fsread: filename re "^/etc/ab?$" then deny[enoent]',
       'native-fsread: filename re "^/usr/c\\\\.?d" then permit', 'native-fsread: filename re "a$" then deny[eio]',
       'native-fsread: filename re "^/etc|^/usr" then deny[enoent]', 'native-fsread: filename re "^/u[s]r" then permit',
       'native-fsread: filename match "/usr/*" then deny', 'native-fsread: filename match "/etc/?" then deny[eio]',
       'native-fsread: filename match "/tmp" then deny[enoent]', 'native-fsread: filename sub "c" then deny[eio]',
       'native-fsread: filename re "^/etc/a" and filename neq "/etc/ab" then deny[eperm]',
       'native-fsread: filename[1] re "^/usr" then deny', 'native-fsread: filename eq "/etc/a" then permit, if user = 0',
       "native-fsread: permit", 'native-fsread: not filename re "^/etc" then deny[enoent]'])


def _walk(policy, syscall: str, args, user_ok: bool) -> object:
    """First match by evaluating every rule in order: what the compiled form must agree with."""
    from systrace.policy.match import evaluate

    for rule in policy.rules:
        if rule.syscall == syscall and (rule.expr is None or evaluate(rule.expr, args)):
            if rule.action.predicate is None or user_ok:
                return rule
    return None


@settings(max_examples=300, deadline=None)
@given(st.lists(PATTERN_RULES, max_size=12), st.sampled_from(VALUES), st.sampled_from([None, *VALUES]), st.booleans())
def test_the_compiled_policy_picks_the_first_rule_in_order(lines: list[str], value: str, second: str | None,
                                                           user_ok: bool) -> None:
    from systrace.policy.match import UNREADABLE

    policy = _policy(lines)
    compiled = CompiledPolicy(policy, str)
    for args in ({"filename": [value]}, {"filename": [value, second]} if second else {"filename": [value]},
                 {"filename": [UNREADABLE]}, {}):
        # (equal, not the same object: the compiled form holds the rules with $VARIABLES expanded)
        assert compiled.first_match("fsread", args, lambda predicate: user_ok) == _walk(policy, "fsread", args,
                                                                                         user_ok), (lines, args)


def test_a_pattern_below_another_directory_is_not_evaluated() -> None:
    """A block of learned patterns below one directory costs one prefix test for a value
    elsewhere (and a literal rule after them is found by one lookup)."""
    import systrace.policy.compiled as module

    lines = [f'native-fsread: filename re "^/usr/lib/x[a-z]{{6}}/f{i}\\\\.py$" then permit' for i in range(50)]
    policy = _policy([*lines, 'native-fsread: filename eq "/etc/late" then deny'])
    compiled = CompiledPolicy(policy, str)
    calls: list[object] = []
    real = module.evaluate
    module.evaluate = lambda expr, args: calls.append(expr) or real(expr, args)
    try:
        rule = compiled.first_match("fsread", {"filename": ["/etc/late"]}, lambda predicate: True)
        assert rule is not None and rule.action.verdict == "deny" and calls == []
        rule = compiled.first_match("fsread", {"filename": ["/usr/lib/xabcdef/f3.py"]}, lambda predicate: True)
        # inside the block, the patterns before the one that holds are tried, in order
        assert rule is not None and rule.action.verdict == "permit" and len(calls) == 4
    finally:
        module.evaluate = real


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(RULE_LINES, st.sampled_from([None, "fsread", "fswrite", "getpid"])), min_size=1, max_size=10))
def test_matches_between_appends_decide_as_the_plain_walk(steps: list[tuple[str, str | None]]) -> None:
    """A syscall's index is built when it is first matched (its rules wait until then):
    learning matches a call, appends a rule, matches again. Each match, before or after its
    index exists, is the first rule in order."""
    policy = _policy([])
    compiled = CompiledPolicy(policy, str)
    for line, asked in steps:
        policy.lines.append(_policy([line]).rules[0])
        assert compiled.catch_up()
        for syscall in (asked,) if asked else ():
            for name in NAMES:
                args = {"filename": [name]}
                assert compiled.first_match(syscall, args, lambda predicate: True) == _walk(policy, syscall, args, True)
    assert compiled.rule_count == len(policy.rules)
    assert set(compiled.by_syscall).isdisjoint(compiled._waiting)  # (each syscall's rules in one place)


def test_only_the_syscalls_matched_are_indexed() -> None:
    policy = _policy(["native-getpid: permit", 'native-fsread: filename eq "/etc/a" then permit',
                      'native-fswrite: filename sub "c" then permit'])
    compiled = CompiledPolicy(policy, str)
    assert compiled.by_syscall == {} and compiled.rule_count == 3
    assert compiled.first_match("fsread", {"filename": ["/etc/a"]}, lambda predicate: True) is not None
    assert set(compiled.by_syscall) == {"fsread"}
    assert compiled.first_match("open", {"filename": ["/etc/a"]}, lambda predicate: True) is None
    assert set(compiled.by_syscall) == {"fsread"}
