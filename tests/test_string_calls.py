"""Pure: which permits of a call decided on a string that is not a path (memfd_create,
mq_open, sethostname, the module calls, add_key...) are carried out on the checked copy
(kernel/emulate_strings.py), which are refused (the kernel would read the string again),
which are continued; and what -A learns for the refused ones."""

from __future__ import annotations

import errno
import os

import pytest


def _call(name: str):
    from systrace.call import Call
    from systrace.kernel.notify import Notification
    from systrace.kernel.syscalls_x86_64 import SYSCALLS

    return Call(Notification(1, os.getpid(), 0, SYSCALLS[name], 0xC000003E, 0, (0,) * 6), os.getpid(), os.getppid(),
                "/bin/true")


def _rule(text: str):
    from systrace.wiring import make_parser

    head, body = text.split(": ", 1)
    name = head.split("-", 1)[1]
    return name, make_parser().parse_rule(body, syscall=name)


@pytest.mark.parametrize("text, effect", [
    ('native-memfd_create: name eq "buf" then permit', "emulate-string"),
    ('native-mq_open: name eq "q" and oflags eq "rwc" then permit', "emulate-string"),
    ('native-mq_open: oflags eq "rwc" then permit', ""),  # a register only: continued
    ('native-mq_unlink: name eq "q" then permit', "emulate-string"),
    ('native-sethostname: name eq "box" then permit', "emulate-string"),
    ('native-setdomainname: not name eq "evil" then permit', "emulate-string"),
    ('native-delete_module: name eq "dummy" then permit', "emulate-string"),
    ("native-memfd_create: permit", ""),  # every name anyway: continued
    ("native-sethostname: permit", ""),
    ('native-add_key: keyring eq "session" then permit', ""),  # (refused in apply when on a string)
    ('native-symlink: target eq "/ok" then permit', "emulate-path"),  # made with the target the check read
    ('native-symlinkat: target eq "/ok" then permit', "emulate-path"),
])
def test_which_rules_carry_a_string_call_out(text: str, effect: str) -> None:
    from systrace.decide.policy import effect_of
    from systrace.translate.translator import Translated

    name, rule = _rule(text)
    assert effect_of(_call(name), Translated(), rule) == effect


def _apply(rules: list[str]):
    """The decision of the last rule of `rules` (one policy), and the call's reason."""
    from systrace.decide.policy import PolicyDecider
    from systrace.policy import ast
    from systrace.policy.store import StoredPolicy
    from systrace.translate.translator import Translated

    parsed = [_rule(text) for text in rules]
    name, rule = parsed[-1]
    call = _call(name)
    call.translation = Translated()
    decider = PolicyDecider.__new__(PolicyDecider)
    decider._decisions, decider._carried, decider._mountns, decider._earlier = {}, {}, {}, {}
    stored = StoredPolicy(ast.Policy("/bin/true", "native", [r for _, r in parsed]), None, False)
    return decider.apply(call, stored, rule), call


@pytest.mark.parametrize("text, refused", [
    ('native-add_key: description eq "k" then permit', True),
    ('native-add_key: type eq "user" and keyring eq "session" then permit', True),
    ('native-request_key: description eq "k" then permit', True),
    ('native-add_key: keyring eq "session" then permit', False),
    ("native-request_key: permit", False),
    ('native-init_module: params eq "x=1" then permit', True),
    ('native-finit_module: params eq "" then permit', True),
    ('native-finit_module: fdname eq "/lib/modules/m.ko" then permit', False),
    ('native-kexec_file_load: cmdline eq "quiet" then permit', True),
    ('native-memfd_create: name eq "buf" then permit', False),  # carried out instead
])
def test_a_rule_on_a_string_no_one_can_carry_out_is_refused(text: str, refused: bool, monkeypatch) -> None:
    from systrace.decide import DENY, PERMIT
    from systrace.kernel import emulate_strings

    monkeypatch.setattr(emulate_strings, "kernel_lacks", lambda name: False)  # (no modules, no kexec here)

    decision, call = _apply([text])
    assert decision is not None
    if refused:
        assert (decision.verdict, decision.errno, decision.log) == (DENY, errno.EACCES, True)
        assert "which the kernel would read again: refused" in call.reason
    else:
        assert decision.verdict == PERMIT


def test_a_module_call_the_kernel_lacks_gets_its_enosys(monkeypatch) -> None:
    """Without CONFIG_MODULES (this machine) init_module fails with ENOSYS whatever its
    parameters: that, not a refusal."""
    from systrace.decide import DENY
    from systrace.kernel import emulate_strings

    monkeypatch.setattr(emulate_strings, "kernel_lacks", lambda name: True)
    decision, _ = _apply(['native-init_module: params eq "x=1" then permit'])
    assert decision is not None and (decision.verdict, decision.errno, decision.log) == (DENY, errno.ENOSYS, False)


@pytest.mark.parametrize("rules, effect", [
    (['native-memfd_create: name eq "evil" then deny', "native-memfd_create: permit"], "emulate-string"),
    (['native-add_key: description eq "x" then deny', "native-add_key: permit"], "refused"),
    (["native-memfd_create: permit", 'native-memfd_create: name eq "evil" then deny'], ""),  # the first decides
])
def test_an_earlier_rule_on_the_string_counts_too(rules: list[str], effect: str) -> None:
    """A string swapped after the check passes a deny on it that comes before a plain
    permit: the string decided, so the permit is carried out (or refused)."""
    from systrace.decide import DENY

    decision, _ = _apply(rules[:1] if effect == "" else rules)
    assert decision is not None
    assert ("refused" if decision.verdict == DENY else decision.effect) == effect


def test_the_parser_warns_of_a_rule_on_a_string_that_is_always_refused() -> None:
    """Bad input: a rule on add_key's description parses, with a warning saying that each
    call it decides is refused; one on memfd_create's name (carried out) does not."""
    from systrace.wiring import make_parser

    parser = make_parser("p")
    parser.parse_rule('description eq "k" then permit', syscall="add_key")
    parser.parse_rule('name eq "buf" then permit', syscall="memfd_create")
    parser.parse_rule('keyring eq "session" then permit', syscall="add_key")
    parser.parse_rule('params eq "" then deny', syscall="init_module")
    warnings = [str(warning) for warning in parser.warnings]
    assert len(warnings) == 2, warnings
    assert "'add_key' decided on its 'description' is refused at every call (EACCES)" in warnings[0]
    assert "'init_module' decided on its 'params'" in warnings[1]


@pytest.mark.parametrize("name, args, learned", [
    ("add_key", [("type", "user"), ("description", "k"), ("keyring", "session")], [("keyring", "session")]),
    ("request_key", [("type", "user"), ("description", "k"), ("keyring", "0")], [("keyring", "0")]),
    ("init_module", [("size", "4096"), ("params", "x=1")], [("size", "4096")]),
    ("finit_module", [("fd", "3"), ("fdname", "/m.ko"), ("params", "")], [("fdname", "/m.ko")]),
    ("kexec_file_load", [("fd", "3"), ("fdname", "/boot/k"), ("cmdline", "quiet")], [("fdname", "/boot/k")]),
    ("memfd_create", [("name", "buf")], [("name", "buf")]),  # carried out: learned with its name
])
def test_learning_names_no_string_a_replay_would_refuse(name: str, args: list, learned: list) -> None:
    from systrace.decide.modes import learned_args

    assert learned_args(name, args) == learned


def test_add_key_s_keyring_is_its_fifth_argument() -> None:
    from systrace.facts import ROWS

    assert [(spec.name, spec.index) for spec in ROWS["add_key"].args][-1] == ("keyring", 4)
    assert [(spec.name, spec.index) for spec in ROWS["request_key"].args][-1] == ("keyring", 3)


@pytest.mark.parametrize("command, effect", [
    (3, "refused"),  # FSCONFIG_SET_PATH: not carried out, and an earlier rule looked at its key
    (1, "emulate-mount"),  # FSCONFIG_SET_STRING: carried out by the mount-family helper
])
def test_an_earlier_rule_on_fsconfig_s_key_counts_too(command: int, effect: str) -> None:
    """fsconfig's key is read again by the kernel: a deny on it before a plain permit
    decided too, so the permit is carried out on the checked strings, or refused for the
    commands systrace does not carry out."""
    from systrace.decide import DENY
    from systrace.decide.policy import PolicyDecider
    from systrace.policy import ast
    from systrace.policy.store import StoredPolicy
    from systrace.translate.translator import Translated

    parsed = [_rule(text) for text in ('native-fsconfig: key eq "source" then deny', "native-fsconfig: permit")]
    from systrace.call import Call
    from systrace.kernel.notify import Notification
    from systrace.kernel.syscalls_x86_64 import SYSCALLS

    call = Call(Notification(1, os.getpid(), 0, SYSCALLS["fsconfig"], 0xC000003E, 0, (3, command, 0, 0, 0, 0)),
                os.getpid(), os.getppid(), "/bin/true")
    call.translation = Translated()
    decider = PolicyDecider.__new__(PolicyDecider)
    decider._decisions, decider._carried, decider._mountns, decider._earlier = {}, {}, {}, {}
    stored = StoredPolicy(ast.Policy("/bin/true", "native", [rule for _, rule in parsed]), None, False)
    decision = decider.apply(call, stored, parsed[-1][1])
    assert decision is not None
    assert ("refused" if decision.verdict == DENY else decision.effect) == effect
