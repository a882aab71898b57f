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
