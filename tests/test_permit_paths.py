"""Every way a call can be permitted goes through the same code (issue 13, item 6): a
policy file's rule, a template chosen by a frontend, a frontend's filter and a plain
permit answer. In process, with a fake listener and no tracee: the decision carries its
effect, and the supervisor's table of effects carries it out instead of continuing."""

from __future__ import annotations

import errno
import os
import select
from pathlib import Path

import pytest
from fakes import FakeFrontend, FakeListener

from systrace import effects as effects_module
from systrace.call import Call
from systrace.decide import DENY, EMULATE_OPEN, EMULATE_PATH, PERMIT, Chain
from systrace.decide.ask import Asker
from systrace.decide.policy import PolicyDecider
from systrace.decide.reporting import Reporter
from systrace.kernel.notify import Notification
from systrace.kernel.syscalls_x86_64 import SYSCALLS
from systrace.log import Log
from systrace.policy.match import expander
from systrace.policy.store import Store
from systrace.session import Session
from systrace.translate.translator import Translated
from systrace.wiring import make_parser

FAKE = "/usr/bin/fake-program"


def rename_call(notif_id: int = 1) -> Call:
    """rename(/x/a, /x/b) by this process (its mount namespace is systrace's), translated
    beforehand: no tracee memory is read."""
    notif = Notification(notif_id, os.getpid(), 0, SYSCALLS["rename"], 0xC000003E, 0, (0,) * 6)
    call = Call(notif, os.getpid(), os.getppid(), FAKE, os.getuid(), os.getgid())
    translated = Translated([("filename", "/x/a"), ("filename", "/x/b")], "fswrite",
                            [("filename", "/x/a"), ("filename", "/x/b")])
    translated.targets = [b"/x/a", b"/x/b"]
    call.translation = translated
    return call


def pipeline(tmp_path: Path, rules: str, answers: list[str], require_policy: bool = False):
    (tmp_path / "policies").mkdir(exist_ok=True)
    (tmp_path / "policies" / "usr_bin_fake-program").write_text(
        f"Policy: {FAKE}, Emulation: native\n{rules}")
    (tmp_path / "templates").write_text(
        'Template: x, Emulation: native, Description: writes in /x\n\tnative-fswrite: filename match "/x/*" then permit\n')
    store = Store(make_parser(), tmp_path / "policies", [tmp_path / "templates"], system_dir=tmp_path / "none")
    store.load()
    decider = PolicyDecider(store, expander({}), require_policy=require_policy)
    transport = FakeFrontend(list(answers))
    reporter = Reporter(Log([]))
    asker = Asker(lambda: transport, store, make_parser(), decider, reporter=reporter)
    session = Session(Log([]), Chain([decider, asker]), store=store, reporter=reporter)
    return session, transport


def carried_out(session: Session, call: Call, monkeypatch) -> tuple[list, list]:
    """What the supervisor does with the decision: which effect ran, what was sent."""
    ran: list[str] = []
    for effect in effects_module.EFFECTS:
        monkeypatch.setitem(effects_module.EFFECTS, effect, lambda self, notif, c, effect=effect: ran.append(effect))
    listener = FakeListener()
    effects = effects_module.Effects(session, listener, select.poll())
    effects.carry_out(call.notif, call, session.decide(call))
    listener.close()
    return ran, listener.sent


@pytest.mark.parametrize("way, rules, answers", [
    ("policy file", '\tnative-fswrite: filename match "/x/*" then permit\n', []),
    ("template", "", ["template 1"]),
    ("frontend filter", "", ['filename match "/x/*" then permit']),
])
def test_every_way_to_permit_a_path_call_emulates_it(tmp_path: Path, monkeypatch, way: str, rules: str,
                                                      answers: list[str]) -> None:
    session, _ = pipeline(tmp_path, rules, answers)
    call = rename_call()
    ran, sent = carried_out(session, call, monkeypatch)
    assert (ran, sent) == ([EMULATE_PATH], []), way  # carried out by systrace, never continued raw


@pytest.mark.parametrize("way, rules, answers", [
    ("policy file", '\tnative-fswrite: filename eq "/x/a" then permit\n', ["deny-now"]),
    ("frontend filter", "", ['filename eq "/x/a" then permit', "deny-now"]),
])
def test_a_rule_naming_one_of_two_names_permits_neither(tmp_path: Path, monkeypatch, way: str, rules: str,
                                                        answers: list[str]) -> None:
    """rename(/x/a, /x/b) through fswrite changes both names: a rule that looks at the
    first name only does not permit writing the second; the question is asked (again)."""
    session, transport = pipeline(tmp_path, rules, answers)
    ran, sent = carried_out(session, rename_call(), monkeypatch)
    assert (ran, sent) == ([], [("fail", 1, errno.EPERM)]), way
    assert transport.answers == []
    both = '\tnative-fswrite: filename eq "/x/a" then permit\n\tnative-fswrite: filename eq "/x/b" then permit\n'
    session, _ = pipeline(tmp_path, both, [])
    assert carried_out(session, rename_call(), monkeypatch) == ([EMULATE_PATH], [])


def test_a_permitted_open_is_emulated_from_an_answer_too(tmp_path: Path, monkeypatch) -> None:
    session, _ = pipeline(tmp_path, "", ['filename eq "/x/a" then permit'])
    notif = Notification(2, os.getpid(), 0, SYSCALLS["openat"], 0xC000003E, 0, (0,) * 6)
    call = Call(notif, os.getpid(), os.getppid(), FAKE)
    translated = Translated([("filename", "/x/a"), ("oflags", "ro"), ("mode", "0")], "fsread", [("filename", "/x/a")])
    call.translation = translated
    ran, sent = carried_out(session, call, monkeypatch)
    assert (ran, sent) == ([EMULATE_OPEN], [])


def test_a_permit_answer_is_carried_out_on_the_file_shown_and_an_exec_it_permits_is_checked(tmp_path: Path, monkeypatch) -> None:
    """permit: an answer is as broad as its question, the file it showed (issue 14), so the
    call is carried out on that checked file (emulated), not continued; an execve permitted
    by an answer still meets the exec check (-a: no policy for the new binary)."""
    session, _ = pipeline(tmp_path, "", ["permit-now"])
    ran, sent = carried_out(session, rename_call(), monkeypatch)
    assert (ran, sent) == (["emulate-path"], [])
    session, _ = pipeline(tmp_path, "", ["permit-now"], require_policy=True)
    notif = Notification(3, os.getpid(), 0, SYSCALLS["execve"], 0xC000003E, 0, (0,) * 6)
    call = Call(notif, os.getpid(), os.getppid(), FAKE)
    call.translation = Translated([("filename", "/usr/bin/true"), ("argv", "true")])
    decision = session.decide(call)
    assert (decision.verdict, decision.errno) == (DENY, errno.EACCES)
    assert call.reason == "no policy for /usr/bin/true"


def test_a_call_from_another_mount_namespace_is_refused_whatever_permits_it(tmp_path: Path) -> None:
    """A thread id that is not there stands for a thread whose namespace cannot be read:
    refused (fail closed), for a policy rule and for an answer."""
    for rules, answers in (('\tnative-fswrite: filename match "/x/*" then permit\n', []),
                           ("", ['filename match "/x/*" then permit'])):
        session, _ = pipeline(tmp_path, rules, answers)
        call = rename_call()
        call.notif.pid = 2**22 + 1  # above pid_max: no such thread
        decision = session.decide(call)
        assert (decision.verdict, decision.errno, decision.source) == (DENY, errno.EACCES, "mount-view")
    session, _ = pipeline(tmp_path, "\tnative-fswrite: permit[mountns]\n", [])
    call = rename_call()
    call.notif.pid = 2**22 + 1
    assert session.decide(call).verdict == PERMIT


def test_descriptor_escapes_are_refused_unless_a_rule_names_them(tmp_path: Path) -> None:
    for name in ("open_tree", "open_by_handle_at", "name_to_handle_at", "fsopen", "fsmount", "move_mount", "fspick",
                 "mount_setattr", "pidfd_getfd"):
        session, _ = pipeline(tmp_path, "", ["permit-now"])
        notif = Notification(4, os.getpid(), 0, SYSCALLS[name], 0xC000003E, 0, (0,) * 6)
        call = Call(notif, os.getpid(), os.getppid(), FAKE)
        call.translation = Translated()
        decision = session.decide(call)
        assert (decision.verdict, decision.source) == (DENY, "protect"), name
    session, _ = pipeline(tmp_path, "\tnative-open_tree: permit\n", [])
    notif = Notification(5, os.getpid(), 0, SYSCALLS["open_tree"], 0xC000003E, 0, (0,) * 6)
    call = Call(notif, os.getpid(), os.getppid(), FAKE)
    call.translation = Translated()
    assert session.decide(call).verdict == PERMIT


def sendto_call(address: str, raw: bytes | None) -> Call:
    """sendto(fd 3, ..., address) by this process, translated beforehand."""
    notif = Notification(1, os.getpid(), 0, SYSCALLS["sendto"], 0xC000003E, 0, (3, 0, 0, 0, 0, 0))
    call = Call(notif, os.getpid(), os.getppid(), FAKE, os.getuid(), os.getgid())
    translated = Translated([("sockaddr", address)])
    translated.send_names = [raw] if raw else []
    call.translation, call.translated = translated, tuple(translated.args)
    return call


@pytest.mark.parametrize("way, rules, answers", [
    ("policy file", '\tnative-sendto: sockaddr eq "inet-[127.0.0.1]:53" then permit\n', []),
    ("frontend filter", "", ['sockaddr eq "inet-[127.0.0.1]:53" then permit']),
    ("permit answer", "", ["permit-now"]),
])
def test_every_way_to_permit_a_send_to_a_destination_sends_it_from_systrace(tmp_path: Path, monkeypatch, way: str,
                                                                            rules: str, answers: list[str]) -> None:
    from systrace.decide import EMULATE_SEND

    session, _ = pipeline(tmp_path, rules, answers)
    address = bytes.fromhex("02000035" "7f000001") + bytes(8)
    ran, sent = carried_out(session, sendto_call("inet-[127.0.0.1]:53", address), monkeypatch)
    assert (ran, sent) == ([EMULATE_SEND], []), way
    (tmp_path / "connected").mkdir()
    session, _ = pipeline(tmp_path / "connected", '\tnative-sendto: sockaddr eq "<no address>" then permit\n', [])
    ran, sent = carried_out(session, sendto_call("<no address>", None), monkeypatch)
    assert (ran, sent) == ([], [("allow", 1, 0)])  # no destination: continued, as before
