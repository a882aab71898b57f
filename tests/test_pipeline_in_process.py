"""The whole pipeline in process, without a tracee (issue 16, item 2): a fake listener
(tests/fakes.py) feeds notifications made by this test process itself (its own pid, its
own memory, so identification and translation read real /proc files and real memory),
and the answers the Supervisor sends are checked: CONTINUE, an errno, ADDFD and the
installed number, a return value, a kill. The deciders are the real ones (PolicyDecider,
Enforce, Learn, Asker with a scripted frontend through the conversation state machine)."""

from __future__ import annotations

import ctypes
import errno
import os
import select
import signal
import subprocess
from pathlib import Path

import pytest
from fakes import FakeClock, FakeFrontend, FakeListener, ListSink
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from systrace.decide import DENY, PERMIT, RETURN, Chain, Decision, PermitAll
from systrace.decide.ask import Asker
from systrace.decide.faults import FaultDecider
from systrace.decide.modes import Enforce, Learn, Observer
from systrace.decide.policy import PolicyDecider
from systrace.decide.reporting import Reporter
from systrace.effects import Effects
from systrace.faults.plan import RuleFaults
from systrace.faults.spec import parse_inject
from systrace.frontend.errors import Abandoned
from systrace.frontend.relay import SignalRelay
from systrace.frontend.waiting import Waiter
from systrace.handshake import LaunchHandshake
from systrace.kernel.launch import Launched
from systrace.kernel.syscalls_x86_64 import SYSCALLS
from systrace.log import Log
from systrace.policy.match import expander
from systrace.policy.store import Store
from systrace.processes import ProcessTable
from systrace.session import Session
from systrace.supervisor import Supervisor
from systrace.translate import stage as stage_module
from systrace.translate import translator as translator_module
from systrace.wiring import make_parser

AT_FDCWD = 2**64 - 100  # as the kernel hands it over: an unsigned register
SELF_EXE = os.readlink("/proc/self/exe")  # the binary identify() finds for this process


class Parts:
    """A Supervisor over a fake listener, with the session its deciders share."""

    def __init__(self, chain_of, tmp_path: Path, rules: str = "", handshake: LaunchHandshake | None = None,
                 children=None):
        self.sink = ListSink()
        self.log = Log([self.sink], fallbacks=())
        self.reporter = Reporter(self.log)
        self.processes = ProcessTable()
        policies = tmp_path / "policies"
        policies.mkdir(exist_ok=True)
        if rules is not None:
            (policies / "self").write_text(f"Policy: {SELF_EXE}, Emulation: native\n{rules}")
        self.store = Store(make_parser(), policies, [], system_dir=tmp_path / "none")
        self.store.load()
        self.session = Session(self.log, Chain(chain_of(self)), processes=self.processes, store=self.store,
                               reporter=self.reporter)
        self.listener = FakeListener()
        effects = Effects(self.session, self.listener, select.poll())
        self.supervisor = Supervisor(self.session, self.listener, handshake or NoHandshake(), children or NoChildren(),
                                     effects)
        OPEN.append(self)

    def policy_decider(self, **options) -> PolicyDecider:
        return PolicyDecider(self.store, expander({}), **options)

    def serve(self) -> list[tuple[str, int, int]]:
        """Serve what is queued; the answers sent for it."""
        before = len(self.listener.sent)
        self.supervisor.serve_batch()
        return self.listener.sent[before:]

    def close(self) -> None:
        self.listener.close()
        self.processes.close()
        if isinstance(self.supervisor.children, NoChildren):
            self.supervisor.children.close()


OPEN: list[Parts] = []


@pytest.fixture(autouse=True)
def closed_afterwards():
    yield
    while OPEN:
        OPEN.pop().close()


class NoHandshake:
    """The command already runs: no call is the launcher's."""

    exec_error = 0
    child_started = True

    def launcher_call(self, tgid: int, nr: int) -> bool:
        return False

    def finish(self) -> None:
        pass


class NoChildren:
    """A signalfd that never fires; the command's status is given."""

    def __init__(self, status: int = 0):
        self.status = status
        self._read, self._write = os.pipe2(os.O_CLOEXEC)
        self.started = 0

    def fileno(self) -> int:
        return self._read

    def start(self) -> None:
        self.started += 1

    def on_signals(self) -> None:
        raise AssertionError("no signal was sent")

    def finish(self) -> int:
        self.close()
        return self.status

    def close(self) -> None:
        for fd in (self._read, self._write):
            if fd >= 0:
                os.close(fd)
        self._read = self._write = -1


class Path_:
    """A path in this process's memory, as a tracee's pointer argument."""

    def __init__(self, path: str):
        self.buffer = ctypes.create_string_buffer(path.encode())

    @property
    def address(self) -> int:
        return ctypes.addressof(self.buffer)


@pytest.fixture
def target(tmp_path: Path) -> Path:
    path = tmp_path / "data.txt"
    path.write_text("hello\n")
    return path


def openat(parts: Parts, path: Path_, flags: int = os.O_RDONLY):
    return parts.listener.push(SYSCALLS["openat"], args=(AT_FDCWD, path.address, flags, 0))


def test_a_permitted_open_is_emulated_installed_with_addfd_and_answered_with_its_number(tmp_path: Path,
                                                                                        target: Path) -> None:
    parts = Parts(lambda p: [p.policy_decider(), Enforce()], tmp_path,
                  f'\tnative-fsread: filename eq "{target}" then permit\n')
    path = Path_(str(target))
    notif = openat(parts, path, os.O_RDONLY | os.O_CLOEXEC)
    assert parts.serve() == [("addfd", notif.id, 3), ("succeed", notif.id, 3)]
    assert parts.listener.installed == [(target.stat().st_ino, True)]  # the checked file, O_CLOEXEC kept
    assert parts.supervisor.served == 1 and parts.supervisor.routed == {SYSCALLS["openat"]: 1}
    assert parts.supervisor.carried == {"emulate-open": 1}


def test_an_unmatched_call_is_denied_with_its_errno_and_logged(tmp_path: Path, target: Path) -> None:
    parts = Parts(lambda p: [p.policy_decider(), Enforce()], tmp_path, "\tnative-getpid: permit\n")
    path = Path_(str(target))
    notif = openat(parts, path)
    getpid = parts.listener.push(SYSCALLS["getpid"])
    assert parts.serve() == [("fail", notif.id, errno.EACCES), ("allow", getpid.id, 0)]  # file access: EACCES
    (line,) = parts.sink.messages
    assert line.startswith("deny[eacces] user: ") and f"filename: {target}" in line


def test_a_call_that_went_away_while_its_memory_was_read_gets_no_answer(tmp_path: Path, target: Path) -> None:
    parts = Parts(lambda p: [p.policy_decider(), Enforce()], tmp_path,
                  f'\tnative-fsread: filename eq "{target}" then permit\n')
    notif = openat(parts, Path_(str(target)))
    parts.listener.gone.add(notif.id)
    assert parts.serve() == []
    assert parts.listener.installed == []  # nothing was opened into a thread that is not there


def test_kill_kills_the_calling_process_and_refuses_its_call(tmp_path: Path) -> None:
    victim = subprocess.Popen(["sleep", "60"])
    try:
        parts = Parts(lambda p: [Enforce(kill=True)], tmp_path, None)
        notif = parts.listener.push(SYSCALLS["getpid"], pid=victim.pid)
        assert parts.serve() == [("fail", notif.id, errno.EPERM)]
        assert victim.wait(timeout=30) == -9
    finally:
        victim.kill()
        victim.wait()


def test_a_fault_returns_its_value_and_an_error_its_errno(tmp_path: Path) -> None:
    rules = RuleFaults([parse_inject("getppid:retval=42"), parse_inject("getuid:error=EIO")])
    parts = Parts(lambda p: [FaultDecider(None, rules, None, processes=p.processes, reporter=p.reporter),
                             PermitAll(log=False)], tmp_path, None)
    getppid = parts.listener.push(SYSCALLS["getppid"])
    getuid = parts.listener.push(SYSCALLS["getuid"])
    getpid = parts.listener.push(SYSCALLS["getpid"])
    assert parts.serve() == [("succeed", getppid.id, 42), ("fail", getuid.id, errno.EIO), ("allow", getpid.id, 0)]
    assert [message.split(" ")[0] for message in parts.sink.messages] == ["fault[retval=42]", "fault[EIO]"]


def test_an_internal_error_denies_the_call_logs_it_and_serving_goes_on(tmp_path: Path) -> None:
    class Broken:
        def decide(self, call):
            if call.name == "getuid":
                raise RuntimeError("broken decider")
            return None

    parts = Parts(lambda p: [Broken(), PermitAll(log=False)], tmp_path, None)
    first = parts.listener.push(SYSCALLS["getuid"])
    second = parts.listener.push(SYSCALLS["getpid"])
    assert parts.serve() == [("fail", first.id, errno.EPERM), ("allow", second.id, 0)]
    assert "internal error deciding getuid" in parts.sink.messages[0]


def test_the_launchers_own_calls_run_unrecorded_until_its_exec_succeeded(tmp_path: Path) -> None:
    report_read, report_write = os.pipe2(os.O_CLOEXEC)
    handshake = LaunchHandshake(Launched(os.getpid(), -1, -1, report_read))
    asked: list[str] = []

    class Recording:
        def decide(self, call):
            asked.append(call.name)
            return Decision(DENY, errno.EPERM)

    parts = Parts(lambda p: [Recording()], tmp_path, None, handshake=handshake)
    before = parts.listener.push(SYSCALLS["close"])
    execve = parts.listener.push(SYSCALLS["execve"])
    assert parts.serve() == [("allow", before.id, 0), ("allow", execve.id, 0)]
    os.close(report_write)  # the exec succeeded: the report pipe (CLOEXEC) is closed
    after = parts.listener.push(SYSCALLS["close"])
    assert parts.serve() == [("fail", after.id, errno.EPERM)]
    assert asked == ["close"] and handshake.child_started and handshake.exec_error == 0


def test_a_failed_exec_of_the_command_is_reported(tmp_path: Path) -> None:
    report_read, report_write = os.pipe2(os.O_CLOEXEC)
    handshake = LaunchHandshake(Launched(os.getpid(), -1, -1, report_read))
    os.write(report_write, errno.ENOENT.to_bytes(4, "little", signed=True))
    os.close(report_write)
    handshake.finish()
    assert handshake.exec_error == errno.ENOENT


def test_run_serves_until_the_listener_hangs_up_and_returns_the_commands_status(tmp_path: Path) -> None:
    children = NoChildren(status=7)
    parts = Parts(lambda p: [PermitAll(log=False)], tmp_path, None, children=children)
    notifs = [parts.listener.push(SYSCALLS["getpid"]) for _ in range(3)]
    parts.listener.hang_up()
    assert parts.supervisor.run() == 7
    assert parts.listener.sent == [("allow", notif.id, 0) for notif in notifs]
    assert children.started == 1  # what was built before the launch heard of it (frontend/relay.py)


def test_an_asked_permit_is_learned_emulated_and_then_decided_by_the_policy(tmp_path: Path, target: Path) -> None:
    frontend = FakeFrontend(["bogus", "permit"])

    def chain(p: Parts):
        decider = p.policy_decider(create_missing=True)
        return [decider, Asker(lambda: frontend, p.store, make_parser(), decider, reporter=p.reporter,
                               transport=frontend)]

    parts = Parts(chain, tmp_path, "")
    path = Path_(str(target))
    first = openat(parts, path)
    assert parts.serve() == [("addfd", first.id, 3), ("succeed", first.id, 3)]
    question, *told = frontend.lines
    assert f"filename: {target}" in question and question.startswith(f"{SELF_EXE}, pid: {os.getpid()}(")
    assert told[:3] == ["Syntax error.", "WRONG", "OKAY"]  # one round rejected, the next accepted
    second = openat(parts, path)
    assert parts.serve() == [("addfd", second.id, 4), ("succeed", second.id, 4)]
    assert len(frontend.lines) == 4  # not asked again: the rule decided it
    assert frontend.began == frontend.ended == 1


def test_a_frontend_that_does_not_answer_in_time_is_denied_and_restarted(tmp_path: Path, target: Path) -> None:
    clock = FakeClock()
    frontend = FakeFrontend([None], clock)
    started: list[FakeFrontend] = []

    def start() -> FakeFrontend:
        started.append(FakeFrontend(["deny-now"], clock))
        return started[-1]

    def chain(p: Parts):
        decider = p.policy_decider(create_missing=True)
        return [decider, Asker(start, p.store, make_parser(), decider, timeout=5.0, reporter=p.reporter,
                               transport=frontend, clock=clock)]

    parts = Parts(chain, tmp_path, "")
    path = Path_(str(target))
    late = openat(parts, path)
    assert parts.serve() == [("fail", late.id, errno.EPERM)]
    assert clock.now == 1005.0 and frontend.closed == 1  # the deadline was the clock's + the timeout
    assert any("no answer within 5 s" in message for message in parts.sink.messages)
    again = openat(parts, path)
    assert parts.serve() == [("fail", again.id, errno.EPERM)]  # a fresh frontend said deny-now
    assert len(started) == 1 and started[0].lines[-1] == "OKAY"


def test_learning_adds_a_rule_per_unmatched_call_and_the_rule_decides_the_next_one(tmp_path: Path,
                                                                                   target: Path) -> None:
    learned: list[Learn] = []

    def chain(p: Parts):
        learn = Learn(p.store)
        learned.append(learn)
        return [Observer(learn), p.policy_decider(create_missing=True), learn]

    parts = Parts(chain, tmp_path, "")
    path = Path_(str(target))
    first = openat(parts, path)
    getpid = parts.listener.push(SYSCALLS["getpid"])
    # learning lets the call run as it asked (nothing checked it yet) and records the rule
    assert parts.serve() == [("allow", first.id, 0), ("allow", getpid.id, 0)]
    (learn,) = learned
    assert learn.learned == [f'{SELF_EXE}: native-fsread: filename eq "{target}" then permit',
                             f"{SELF_EXE}: native-getpid: permit"]
    second = openat(parts, path)
    assert parts.serve() == [("addfd", second.id, 3), ("succeed", second.id, 3)]  # the rule's permit: checked
    assert len(learn.learned) == 2  # decided by the learned rule, nothing new
    other = Path_(str(target.with_name("other.txt")))
    target.with_name("other.txt").write_text("")
    third = openat(parts, other)
    assert parts.serve() == [("allow", third.id, 0)]
    assert len(learn.learned) == 3  # another file: another rule, never a plain permit


def test_save_interval_follows_the_injected_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    saved: list[float] = []

    class Store_:
        def save(self) -> list[str]:
            saved.append(clock.now)
            return []

    session = Session(Log([], fallbacks=()), Chain([]), store=Store_(), save_interval=30.0, clock=clock)  # type: ignore[arg-type]
    assert session.poll_timeout() == 30000
    clock.advance(29.5)
    session.tick()
    assert saved == [] and session.poll_timeout() == 500
    clock.advance(0.5)
    session.tick()
    assert saved == [1030.0] and session.poll_timeout() == 30000


DECISIONS = st.one_of(
    st.just(Decision(PERMIT)),
    st.builds(lambda code: Decision(DENY, code), st.integers(1, 133)),
    st.builds(lambda value: Decision(RETURN, value=value), st.integers(-(2**63), 2**63 - 1)),
    st.none(),  # the scripted decider passes: the chain's end denies (EPERM)
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(DECISIONS, min_size=1, max_size=20))
def test_every_notification_gets_exactly_the_answer_its_decision_says_in_order(tmp_path: Path, decisions) -> None:
    script = list(decisions)

    class Scripted:
        def decide(self, call):
            return script.pop(0)

    parts = Parts(lambda p: [Scripted()], tmp_path, None)
    notifs = [parts.listener.push(SYSCALLS["getpid"]) for _ in decisions]
    expected = []
    for notif, decision in zip(notifs, decisions, strict=True):
        if decision is None:
            expected.append(("fail", notif.id, errno.EPERM))
        elif decision.verdict == PERMIT:
            expected.append(("allow", notif.id, 0))
        elif decision.verdict == DENY:
            expected.append(("fail", notif.id, decision.errno))
        else:
            expected.append(("succeed", notif.id, decision.value))
    assert parts.serve() == expected
    parts.close()
    OPEN.remove(parts)


# -- the translate stage (translate/stage.py) -------------------------------------------
class CountedTranslations:
    """Every translation the stage makes, by call (the notification's id)."""

    def __init__(self, monkeypatch) -> None:
        self.by_call: dict[int, int] = {}
        real = stage_module.translate

        def counting(syscall, raw, tracee, use_aliases=True, **options):
            self.by_call[self.current] = self.by_call.get(self.current, 0) + 1
            return real(syscall, raw, tracee, use_aliases, **options)

        self.current = -1
        monkeypatch.setattr(stage_module, "translate", counting)


class Seen:
    """A decider that passes, noting what each call carried when it got there."""

    def __init__(self, reads: frozenset[str] | None = None) -> None:
        self.reads_arguments_of = reads
        self.translations: list[tuple[str, object]] = []

    def decide(self, call):
        self.translations.append((call.name, call.translation))
        return None


def serve_counted(parts: Parts, counted: CountedTranslations) -> list[tuple[str, int, int]]:
    """Serve what is queued, one notification at a time, counting each one's translations."""
    answers = []
    while parts.listener.queue:
        notif = parts.listener.queue[0]
        counted.current = notif.id
        before = len(parts.listener.sent)
        parts.supervisor.serve_one(parts.listener.recv())
        answers += parts.listener.sent[before:]
    return answers


def test_every_call_is_translated_once_before_any_decider_sees_it(tmp_path: Path, target: Path, monkeypatch) -> None:
    counted = CountedTranslations(monkeypatch)
    seen = Seen()  # declares nothing: it reads every call
    parts = Parts(lambda p: [seen, p.policy_decider(), Enforce()], tmp_path,
                  f'\tnative-fsread: filename eq "{target}" then permit\n\tnative-getpid: permit\n')
    path = Path_(str(target))
    permitted = openat(parts, path)
    getpid = parts.listener.push(SYSCALLS["getpid"])
    other = Path_(str(target.with_name("other")))
    denied = openat(parts, other)
    assert serve_counted(parts, counted) == [("addfd", permitted.id, 3), ("succeed", permitted.id, 3),
                                             ("allow", getpid.id, 0), ("fail", denied.id, errno.EACCES)]
    assert counted.by_call == {permitted.id: 1, getpid.id: 1, denied.id: 1}  # once each: deciding, logging, emulating
    assert [name for name, translation in seen.translations if translation is not None] == ["openat", "getpid", "openat"]
    (line,) = parts.sink.messages  # the denial, logged with what the stage translated
    assert f"filename: {target.with_name('other')}, oflags: ro, mode: 0" in line


def test_a_decider_cannot_translate_a_call_it_did_not_declare_it_reads(tmp_path: Path, target: Path,
                                                                       monkeypatch) -> None:
    counted = CountedTranslations(monkeypatch)

    class Undeclared:
        reads_arguments_of: frozenset[str] = frozenset()  # says it reads nothing ...

        def decide(self, call):
            call.require_translation()  # ... and asks anyway: fails closed
            return Decision(PERMIT)

    parts = Parts(lambda p: [Undeclared()], tmp_path, None)
    path = Path_(str(target))
    notif = openat(parts, path)
    assert serve_counted(parts, counted) == [("fail", notif.id, errno.EPERM)]  # denied, never permitted
    assert counted.by_call == {}  # and nothing translated it on its behalf
    assert "openat not translated: its decider did not declare that it reads it" in parts.sink.messages[0]
    assert not hasattr(translator_module, "translated")  # no translation on demand left to call


def test_permit_all_with_a_log_logs_translated_arguments_and_without_one_translates_nothing(
        tmp_path: Path, target: Path, monkeypatch) -> None:
    counted = CountedTranslations(monkeypatch)
    logged = Parts(lambda p: [PermitAll(log=True)], tmp_path, None)  # --permit-all -e
    path = Path_(str(target))  # kept alive: the "tracee's" memory
    first = openat(logged, path)
    getpid = logged.listener.push(SYSCALLS["getpid"])
    assert serve_counted(logged, counted) == [("allow", first.id, 0), ("allow", getpid.id, 0)]
    opened, pid_line = logged.sink.messages
    assert opened.startswith("permit user: ") and opened.endswith(f"filename: {target}, oflags: ro, mode: 0")
    assert "args: 0" in pid_line  # getpid has no argument: its count, not `args: 6`
    assert counted.by_call == {first.id: 1, getpid.id: 1}
    counted.by_call.clear()  # (another listener: its ids start afresh)
    unlogged = Parts(lambda p: [PermitAll(log=False)], tmp_path, None)  # --permit-all, the bare engine
    second = openat(unlogged, path)
    assert serve_counted(unlogged, counted) == [("allow", second.id, 0)]
    assert counted.by_call == {}  # nobody reads it: no translation at all


def test_a_fault_decider_has_only_the_calls_it_may_fail_translated(tmp_path: Path, target: Path,
                                                                   monkeypatch) -> None:
    counted = CountedTranslations(monkeypatch)
    rules = RuleFaults([parse_inject(f"openat:error=EIO:path={target}")])
    parts = Parts(lambda p: [FaultDecider(None, rules, None, processes=p.processes, reporter=p.reporter),
                             PermitAll(log=False)], tmp_path, None)
    path = Path_(str(target))
    faulted = openat(parts, path)
    getpid = parts.listener.push(SYSCALLS["getpid"])
    assert serve_counted(parts, counted) == [("fail", faulted.id, errno.EIO), ("allow", getpid.id, 0)]
    assert counted.by_call == {faulted.id: 1}  # getpid: neither read by the fault decider nor logged
    assert f"filename: {target}" in parts.sink.messages[0]  # the fault's record has its path


def test_a_call_that_cannot_be_translated_is_denied_by_a_policy_and_still_logged(tmp_path: Path, target: Path,
                                                                                 monkeypatch) -> None:
    def broken(syscall, raw, tracee, use_aliases=True, **options):
        raise RuntimeError("unreadable")

    monkeypatch.setattr(stage_module, "translate", broken)
    parts = Parts(lambda p: [p.policy_decider(), Enforce()], tmp_path, "\tnative-fsread: permit\n")
    path = Path_(str(target))
    notif = openat(parts, path)
    assert parts.serve() == [("fail", notif.id, errno.EPERM)]  # fail closed, not the plain permit
    assert "openat not translated: RuntimeError('unreadable')" in parts.sink.messages[0]


# -- signals reach what was built before the launch (frontend/relay.py) ----------------------
def test_a_question_waits_on_the_signals_of_the_launch_through_the_relay() -> None:
    relay = SignalRelay()
    clock = FakeClock()
    waiter = Waiter(clock, relay)  # built before the launch, as wiring builds it
    launches: list[tuple[int, int]] = []
    stops: list[int] = []
    relay.at_launch(lambda pid, pidfd: launches.append((pid, pidfd)))
    relay.after_child_event(lambda: stops.append(1))
    assert relay.fileno() == -1 and relay.watches_stops
    signal_read, signal_write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    answer_read, answer_write = os.pipe2(os.O_CLOEXEC)
    pending = [[(signal.SIGCHLD, 1, 4242)], [(signal.SIGTERM, 0, 1)]]
    served: list[list[tuple[int, int, int]]] = []

    def read() -> list[tuple[int, int, int]]:
        os.read(signal_read, 1)
        return pending.pop(0)

    try:
        relay.launched(4242, 7, signal_read, read, served.append)  # what Children.start() does
        assert launches == [(4242, 7)] and relay.fileno() == signal_read
        os.write(signal_write, b"ss")
        with pytest.raises(Abandoned, match="SIGTERM"):  # a stop request abandons the question ...
            waiter.wait(answer_read, select.POLLIN, None)
        assert served == [[(signal.SIGCHLD, 1, 4242)], [(signal.SIGTERM, 0, 1)]]  # ... served as the loop serves it
        relay.child_event()
        assert stops == [1]
    finally:
        for fd in (signal_read, signal_write, answer_read, answer_write):
            os.close(fd)
