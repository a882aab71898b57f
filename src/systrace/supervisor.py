"""The event loop: one notification at a time, failing closed.

poll() waits on the listener, a signalfd and the helpers' descriptors. Each notification
goes through the same stages, in order (README "Architecture"):

    receive -> identify -> translate -> decide -> log -> settle -> carry out

receive: every pending notification is read before any is decided (serve_batch);
identify: the calling process, its parent, credentials and binary make a Call (the
launcher's own calls before the command's exec are let through unrecorded); translate:
translate/stage.py translates the call once, if a decider reads its arguments (or, only
once its decision is logged, for the log); decide: the session's chain returns a
Decision carrying its effect, reading the translation, never making it; log: a decision
marked for the log is written;
settle: a refused brk returns the break, a call that went away while its memory was read
gets no answer worth sending, a permitted exec forgets the process's cached binary; carry
out: effects.py answers (CONTINUE, errno, return value, kill, an emulated call).

An exception while deciding denies that call (EPERM) and is logged; serving goes on. The
loop ends when the listener reports that no supervised task is left (POLLHUP). The launch
handshake (handshake.py), the effects (effects.py) and the signals and reaping
(children.py) each live in their own module; this one only runs the loop."""

from __future__ import annotations

import errno
import os
import select

from .baseline import NAMING_A_PROCESS, absent_errno, process_named
from .call import Call, syscall_name
from .children import Children
from .decide import DENY, EMULATE_OPEN, EMULATE_OPEN_AS, EMULATE_PATH, KILL, PERMIT, RETURN, Decision, protected
from .decide.breaks import BreakKeeper
from .decide.roots import Roots
from .effects import DESCRIPTOR_STATS, Effects
from .facts import ROWS, invalidating_calls
from .handshake import LaunchHandshake
from .kernel import forking, group_priority, memory, namespaces, procfs, watchdog
from .kernel.emulate_fstat import MayWait, descriptor_form, stat_descriptor
from .kernel.emulate_view import other_mount_view
from .kernel.handed_procfs import OWN_ENTRY
from .kernel.mounts import cgroups_holding_me
from .kernel.syscalls_x86_64 import SYSCALLS
from .kernel.wakeup import WakeHere
from .processes import PIDFD_THREAD, alive
from .record import replace
from .translate import aliases
from .translate.filename import MayBlock
from .translate.stage import TranslateStage
from .translate.tracee import LiveTracee
from .translate.translator import arg_count, translate

# system call -> what of the process table it changes (facts `invalidates`: always routed)
INVALIDATES = {SYSCALLS[name]: what for name, what in invalidating_calls().items()}

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable

    from .kernel.launch import Launched
    from .kernel.listening import Listener
    from .kernel.notify import Notification
    from .kernel.signals import SignalFd
    from .replicas import Replicas
    from .session import Session
    from .translate.translator import Translated

INTERNAL_ERROR = Decision(DENY, errno.EPERM, log=True, source="error")
# effects a helper can carry out in the caller's network, IPC and user namespaces
JOINING_EFFECTS = (EMULATE_OPEN, EMULATE_OPEN_AS, EMULATE_PATH)
# calls no check of the loop's looks at beyond the chain (decide by name: answered_by_name):
# not those that change what is cached, name another process, move the break (a refused
# brk returns it), or carry an alias (fswrite: the cgroup files)
BY_NAME_CALLS = frozenset(nr for name, nr in SYSCALLS.items()
                          if nr not in INVALIDATES and nr not in NAMING_A_PROCESS and name != "brk"
                          and name in ROWS and ROWS[name].alias is None)
CHROOT = SYSCALLS["chroot"]
MAX_BATCH = 256  # notifications received before deciding any
STALE = Decision(DENY, errno.EPERM, source="stale")
_UNKNOWN = Decision(DENY, errno.EPERM, source="unknown")  # not yet in a by-name table (None is "call by call")


class Supervisor:
    def __init__(self, session: Session, listener: Listener, handshake: LaunchHandshake, children: Children,
                 effects: Effects, translate: TranslateStage | None = None, replicas: Replicas | None = None):
        self.session = session
        self.replicas = replicas  # more supervisor processes on the listener (--supervisors)
        self.listener = listener
        self.handshake = handshake
        self.children = children
        self.effects = effects
        self.poller = effects.poller  # the effects' helpers are watched in the loop's poll
        self.breaks = BreakKeeper(session.processes)  # a refused brk returns the break, not -errno
        # what the chain reads, now that wiring has built all of it
        self.translate = translate or TranslateStage.for_deciders(session.chain.deciders, session.use_aliases)
        # notifications served through the stages, by system call number, and by how each
        # was carried out (carried_as: continue, error, emulate-open...: each kind has its
        # own floor, bench/); those answered by name only are counted apart, by number
        # (nr if continued, -1 - nr if failed), one update each: see served, routed, carried
        self._staged = 0
        self._routed: dict[int, int] = {}
        self._carried: dict[str, int] = {}
        self._by_name_answers: dict[int, int] = {}
        self._listener_ready = select.poll()  # is another notification pending right now?
        self._listener_ready.register(listener.fileno(), select.POLLIN)
        self.pid_namespace = os.stat("/proc/self/ns/pid").st_ino
        self.roots = Roots(procfs.directory_identity)  # the roots tracees may have (decide/roots.py)
        self.undumpable: dict[int, str] = {}  # tgid -> why it was killed (kernel/undumpable.py)
        self.resolved: dict[int, Translated] = {}  # translations helpers made (FUSE paths), by notification id
        # decided by name only: binary -> nr -> the chain's decision for every such call
        # (None: call by call). Exact without invalidation: the chain answers only when
        # its rules cannot change during the run, and a process's binary is read again
        # after an exec (processes.py)
        self.by_name: dict[str, dict[int, Decision | None]] = {}
        self.by_descriptor: dict[str, dict[int, Decision | None]] = {}  # the same, for fstat's form
        self._by_descriptor_answers: dict[int, int] = {}  # (nr if emulated, -1 - nr if failed)
        self._state_checks = session.chain.state_checks()
        # pids named by continued calls the kernel may not have looked up: no helper gets one
        self.in_flight = protected.NamedInFlight(_watch_thread, alive, os.close,
                                                 None if replicas is None else replicas.marks.reserved.set)
        forking.reserve_from(self.in_flight.pids, self._helper_discarded)

    @classmethod
    def of_launch(cls, session: Session, listener: Listener, launched: Launched, signals: SignalFd,
                  replicas: Replicas | None = None) -> Supervisor:
        """The parts for a command started by kernel/launch.py, wired."""
        handshake = LaunchHandshake(launched)
        children = Children(launched, signals, handshake, session.relay)
        effects = Effects(session, listener, select.poll(), WakeHere())  # the ADDFD wake-up hint (wakeup.py)
        return cls(session, listener, handshake, children, effects, replicas=replicas)

    @property
    def served(self) -> int:
        """Notifications served (--stats)."""
        return self._staged + self.served_by_name

    @property
    def served_by_name(self) -> int:
        """... of them answered by name only (answered_by_name, answered_as_descriptor)."""
        return sum(self._by_name_answers.values()) + sum(self._by_descriptor_answers.values())

    @property
    def routed(self) -> dict[int, int]:
        """... by system call number."""
        routed = dict(self._routed)
        for answers in (self._by_name_answers, self._by_descriptor_answers):
            for key, count in answers.items():
                nr = key if key >= 0 else -1 - key
                routed[nr] = routed.get(nr, 0) + count
        return routed

    @property
    def carried(self) -> dict[str, int]:
        """... by how each was carried out (carried_as)."""
        carried = dict(self._carried)
        for key, count in self._by_name_answers.items():
            kind = CONTINUED if key >= 0 else FAILED
            carried[kind] = carried.get(kind, 0) + count
        for key, count in self._by_descriptor_answers.items():
            kind = EMULATED_FSTAT if key >= 0 else FAILED
            carried[kind] = carried.get(kind, 0) + count
        return carried

    @property
    def exec_error(self) -> int:
        """errno of a failed exec of the command (0: it ran)."""
        return self.handshake.exec_error

    def run(self) -> int:
        """Serve until no supervised task is left; return the command's exit status."""
        poller = self.poller
        listener_fd = self.listener.fileno()
        signal_fd = self.children.fileno()
        poller.register(listener_fd, select.POLLIN)
        poller.register(signal_fd, select.POLLIN)
        replicas = self.replicas
        for link in replicas.links if replicas is not None else ():
            poller.register(link, select.POLLIN)
        self.children.start()
        effects, session = self.effects, self.session
        serve_batch, poll, only_the_listener = self.serve_batch, poller.poll, [(listener_fd, select.POLLIN)]
        new_turn = memory.new_call
        watch = watchdog.start(os.getpid())  # ends a call that holds the loop (kernel/watchdog.py)
        section = watch.section if watch is not None else memoryview(bytearray(8)).cast("Q")
        turn = 0
        serving = True
        while serving:
            section[0] = 0  # out of the section while waiting for work (poll)
            ready = poll(effects.poll_timeout(session.poll_timeout()))
            turn += 1
            section[0] = turn  # every call the loop makes until the next poll is watched
            new_turn()  # nothing it does trusts an answer from before the poll
            if not ready:
                session.tick()
            effects.interrupt_helpers()
            if ready == only_the_listener and replicas is None:  # the common case, in short
                serve_batch()
                continue
            for fd, events in ready:
                if fd == listener_fd:
                    if events & select.POLLIN:
                        self.serve_batch()
                        if replicas is not None and self.handshake.child_started:
                            replicas.start(self, self.handshake.child_pid)  # once the command runs
                    elif events & (select.POLLHUP | select.POLLERR):
                        serving = False
                elif fd == signal_fd:
                    self.children.on_signals()
                    if replicas is not None:  # a replica held when systrace is asked to end: ended at once
                        replicas.say_signals(self.children.ending_signals)
                elif replicas is not None and fd in replicas.links:
                    replicas.readable(fd)
                else:
                    self.effects.on_ready(fd)
        section[0] = 0
        watchdog.stop()
        if replicas is not None:
            replicas.finish()
        self.effects.cancel_all()
        self.in_flight.close()
        status = self.children.finish()
        self.handshake.finish()
        return status

    # -- receive ---------------------------------------------------------------------
    def serve_batch(self) -> None:
        """Receive every pending notification first, then decide them in order. Until it
        is received a notified call can be interrupted by a signal (EINTR for the tracee,
        the kernel's behaviour); once received it waits killably (WAIT_KILLABLE_RECV). So
        calls queued behind a slow decision are received at once, not one by one."""
        listener = self.listener
        batch: list[Notification] = []
        by_name = self.handshake.child_started
        while len(batch) < MAX_BATCH:
            if by_name and not batch:  # the first: perhaps answered by name, from its id, pid and nr
                brief = listener.recv_brief()
                if brief is not None:
                    if self.answered_by_name(*brief):
                        return  # answered at once: the loop's poll finds the next one
                    batch.append(listener.last())
            else:
                notif = listener.recv()
                if notif is not None:
                    batch.append(notif)
            ready = self._listener_ready.poll(0)
            if not ready or not ready[0][1] & select.POLLIN:  # POLLHUP alone: nothing to receive
                break
        if self.replicas is not None:  # several pending at once: the other supervisor processes take some
            batch = self.replicas.delegate(batch)
        for notif in batch:
            self.serve_one(notif)

    def answered_by_name(self, notif_id: int, tid: int, nr: int) -> bool:
        """Answer a call the chain decides by its name alone, for a process known and
        current, when nothing logs it: no Call, no translation, no decider (README
        "Caches"). False: not such a call, serve it through the stages. (The command
        runs: serve_batch asks only then.) Every routed call the command makes while it
        runs steadily comes here first: each lookup is a dict's, each test a local's."""
        if nr not in BY_NAME_CALLS:
            return nr in DESCRIPTOR_STATS and self.answered_as_descriptor(notif_id, tid, nr)
        info = self.session.processes.cached(tid)
        if info is None or info.exe is None:
            return False
        exe = info.exe
        table = self.by_name.get(exe)
        if table is None:
            table = self.by_name[exe] = {}
        decision = table.get(nr, _UNKNOWN)
        if decision is _UNKNOWN:
            decision = table[nr] = self._chain_by_name(exe, nr)
        if decision is None:
            return False
        for keeps_state in self._state_checks:
            if keeps_state(info.tgid, info.ppid):
                return False
        answers = self._by_name_answers
        try:
            if decision.verdict == PERMIT:
                answers[nr] = answers.get(nr, 0) + 1
                self.listener.allow(notif_id)
            else:
                answers[-1 - nr] = answers.get(-1 - nr, 0) + 1
                self.listener.fail(notif_id, decision.errno)
        except Exception as error:  # noqa: BLE001 - fail closed, keep serving
            self.effects.refuse_after_error(self.listener.last(), f"answering {syscall_name(nr)}", error)
        return True

    def answered_as_descriptor(self, notif_id: int, tid: int, nr: int) -> bool:
        """glibc's fstat (newfstatat/statx(fd, "", AT_EMPTY_PATH)), when the chain decides
        every call of that form of the binary alike (Chain.by_descriptor): the path read
        once, and if it is "", the stat made on the descriptor by systrace, never
        continued (kernel/emulate_fstat.py); no Call, no translation. False: another
        form, or not such a call: the stages serve it (as answered_by_name)."""
        notif = self.listener.last()
        form = descriptor_form(nr, notif.args)  # first: no system call, and a path form
        if form is None:  # (tar's fstatat(dirfd, name)) goes to the stages, which check the thread
            return False
        info = self.session.processes.cached(tid)
        if info is None or info.exe is None:
            return False
        table = self.by_descriptor.get(info.exe)
        if table is None:
            table = self.by_descriptor[info.exe] = {}
        decision = table.get(nr, _UNKNOWN)
        if decision is _UNKNOWN:
            decision = table[nr] = self._chain_by_descriptor(info.exe, nr)
        if decision is None:
            return False
        for keeps_state in self._state_checks:
            if keeps_state(info.tgid, info.ppid):
                return False
        fd, path, flags, mask, out = form
        memory.new_call()  # the served file systems: looked at once for this call
        try:
            if memory.read_cstring(tid, path, 1) != b"":
                return False  # a path: checked through the stages
        except OSError:
            return False  # unreadable: the stages decide
        answers = self._by_descriptor_answers
        try:
            if decision.verdict != PERMIT:
                answers[-1 - nr] = answers.get(-1 - nr, 0) + 1
                self.listener.fail(notif_id, decision.errno)
                return True
            answers[nr] = answers.get(nr, 0) + 1
            try:
                result = stat_descriptor(tid, nr, fd, flags, mask, memory.fuse_present(),
                                         self.session.processes.thread_pidfd(tid))
            except MayWait:  # the stages have a helper make it
                answers[nr] -= 1
                return False
            except OSError as error:
                self.listener.fail(notif_id, error.errno or errno.EIO)
                return True
            if not self.listener.id_valid(notif_id):
                return True  # the thread is gone: write nothing
            try:
                memory.write(tid, out, result)
            except OSError:
                self.listener.fail(notif_id, errno.EFAULT)
                return True
            self.listener.succeed(notif_id, 0)
        except Exception as error:  # noqa: BLE001 - fail closed, keep serving
            self.effects.refuse_after_error(notif, f"answering {syscall_name(nr)}", error)
        return True

    def _chain_by_descriptor(self, exe: str, nr: int) -> Decision | None:
        """The chain's decision for every call `nr` of `exe` in its descriptor form, if one
        the fast path carries out exactly as the stages would (a permit, emulated; an
        errno; nothing logged, no signal)."""
        return self._chain_by(self.session.chain.by_descriptor, exe, nr)

    def _chain_by_name(self, exe: str, nr: int) -> Decision | None:
        """The chain's decision by name, if it is one the fast path carries out exactly as
        the stages would: continue, or an errno (no effect, no signal, nothing logged)."""
        return self._chain_by(self.session.chain.by_name, exe, nr)

    @staticmethod
    def _chain_by(ask: Callable[[str, int], Decision | None], exe: str, nr: int) -> Decision | None:
        try:
            decision = ask(exe, nr)
        except Exception:  # noqa: BLE001 - then call by call, where errors deny
            return None
        if decision is None or decision.effect or decision.signal or decision.log \
                or decision.verdict not in (PERMIT, DENY):
            return None
        return decision

    def serve_one(self, notif: Notification) -> None:
        """The stages of one notification; any error denies the call."""
        self._staged += 1
        self._routed[notif.nr] = self._routed.get(notif.nr, 0) + 1
        self.effects.new_call()  # the mount tables: polled once for this call
        if self.in_flight:  # this thread's previous call is over: the kernel looked its pid up
            self.in_flight.notified(notif.pid)
        call: Call | None = None
        decision: Decision | None
        try:
            call = self.identify(notif)
            if call is not None:
                self.translate.before_deciding(call)
            decision = None if call is None else self.decide(call)
        except MayBlock:
            if call is not None and call.translation is None:
                self.resolve_elsewhere(call)
                return  # decided again once a helper has resolved its path
            decision = INTERNAL_ERROR
        except Exception as error:  # noqa: BLE001 - fail closed, keep serving
            try:
                if self.refused_undumpable(notif):  # (a process it may not read: killed, said once)
                    return
            except Exception:  # noqa: BLE001 - (out of descriptors, say): denied below
                pass
            self.session.log.message(
                f"internal error deciding {syscall_name(notif.nr)} of pid {notif.pid}: {error!r}; denied",
                event="error",
                pid=notif.pid,
                syscall=syscall_name(notif.nr),
            )
            decision = INTERNAL_ERROR
            if call is not None:
                try:  # a refused brk must still look like the kernel's refusal
                    decision = self.breaks.settle(call, decision)
                except Exception:  # noqa: BLE001 - fail closed
                    decision = INTERNAL_ERROR
        kind = carried_as(decision)
        self._carried[kind] = self._carried.get(kind, 0) + 1
        try:
            self.effects.carry_out(notif, call, decision)
        except Exception as error:  # noqa: BLE001 - fail closed, keep serving
            self.effects.refuse_after_error(notif, f"answering {syscall_name(notif.nr)}", error)

    def refused_undumpable(self, notif: Notification) -> bool:
        """The call could not be looked at because its process is not dumpable and
        systrace is not root (kernel/undumpable.py): kill the process, say why once.
        False when that is not why."""
        from .kernel.undumpable import unreadable_reason  # (only after an error: start-up time)

        reason = unreadable_reason(notif.pid)
        if reason is None:
            return False
        try:
            tgid = self.session.processes.info(notif.pid).tgid
        except OSError:
            tgid = notif.pid
        if tgid not in self.undumpable:
            self.undumpable[tgid] = reason
            self.session.log.message(f"killed pid {tgid}: not dumpable, systrace as this user cannot read it",
                                     event="error", pid=tgid)
        self.effects.kill_process_of(notif)
        self.listener.fail(notif.id, errno.EPERM)  # (it is being killed: never runs on)
        return True

    # -- identify ----------------------------------------------------------------------
    def identify(self, notif: Notification) -> Call | None:
        """The Call, or None for the launcher's own calls (let run without a record)."""
        info = self.session.processes.info(notif.pid)
        if self.handshake.launcher_call(info.tgid, notif.nr):
            return None
        call = Call(notif, info.tgid, info.ppid, self.session.processes.binary(notif.pid, info), info.uid, info.gid)
        resolved = self.resolved.pop(notif.id, None)
        if resolved is not None:  # resolved by a helper (a path on a FUSE mount)
            call.translation, call.translated, call.arg_count = resolved, tuple(resolved.args), arg_count(call.name)
        else:
            call.may_block = self.effects.may_block
        return call

    def resolve_elsewhere(self, call: Call) -> None:
        """The call's path crosses a FUSE mount, where a lookup may wait forever: translate
        it in a helper (kernel/offload.py), then serve it again with that translation."""
        import pickle  # here, before the helper's fork (start-up time: only FUSE paths need it)

        name, args, tid, tgid, use_aliases = call.name, call.args, call.tid, call.tgid, self.translate.use_aliases

        def job() -> bytes:
            return pickle.dumps(translate(name, args, LiveTracee(tid, tgid), use_aliases))

        self.effects.offload(call.notif, job, self.serve_resolved)

    def serve_resolved(self, notif: Notification, output: bytes) -> None:
        import pickle

        self.resolved[notif.id] = pickle.loads(output)  # our own helper's: trusted
        try:
            self.serve_one(notif)
        finally:
            self.resolved.pop(notif.id, None)

    # -- decide, log, settle -------------------------------------------------------------
    def decide(self, call: Call) -> Decision:
        nr = call.nr
        named = process_named(nr, call.args) if nr in NAMING_A_PROCESS else None
        translation = call.translation
        if translation is not None and not self.roots.allows(translation.open_root, call.tid):
            # a continued chroot whose path was swapped after its check: nothing is resolved there
            call.reason = f"its root is {translation.open_root}, which no permitted chroot named (swapped after the check)"
            call.no_learn = True
            decision = Decision(KILL, log=True, source="root-mismatch")
        elif named is not None and self.names_us(call.tid, named):
            call.reason, call.no_learn = "it names systrace or one of its helpers", True
            decision = Decision(DENY, absent_errno(nr), log=True, source="guard")  # as if no process had that pid
        else:
            decision = self.guard_permit(call, self.session.chain.decide(call), named)
            if named is not None and decision.verdict == PERMIT:
                self.in_flight.continued(call.tid, named)
        if decision.log:
            self.translate.before_logging(call)
            self.session.log_decision(call, decision)
        decision = self.breaks.settle(call, decision)
        if nr == CHROOT and decision.verdict == PERMIT and translation is not None and translation.open_root is not None:
            for name, value in translation.args:  # before the answer: the kernel makes it the root
                if name == "filename" and isinstance(value, str):
                    self.roots.approve(translation.open_root, value)
        if self.replicas is not None:  # before the answer: the process's next call sees it
            self.replicas.note(call, decision)
        notif = call.notif
        if translation is not None and translation.read_memory and not self.listener.id_valid(notif.id):
            # The call went away while we read its memory: what we read may belong to
            # another process that reused the id. Nothing to answer.
            return STALE
        changes = INVALIDATES.get(notif.nr)
        if changes is not None and decision.verdict == PERMIT:  # an exec, new credentials: read them again after
            self.session.processes.permitted(changes, notif.pid, call.tgid)
        return decision

    # -- what no policy may permit (SECURITY.md "Out of reach") ---------------------------
    def names_us(self, tid: int, pid: int) -> bool:
        """Does `pid`, seen from thread `tid`, name systrace or a process it started? A
        thread in another PID namespace cannot name them: they are outside it."""
        try:
            if os.stat(f"/proc/{tid}/ns/pid").st_ino != self.pid_namespace:
                return False
        except OSError:
            return True  # cannot tell: fail closed
        return self.is_ours(pid)

    def is_ours(self, pid: int) -> bool:
        """Is `pid`, in systrace's PID namespace, systrace or a process it started?"""
        if pid in self.effects.helper_pids() or os.path.exists(f"/proc/self/task/{pid}"):  # (a thread: a Landlock copy's)
            return True
        if self.replicas is not None:  # a replica, one of its threads, or a helper it forked
            return pid in self.replicas.pids or any(ours in self.replicas.pids for ours in _tgid_and_parent(pid))
        return False

    def _helper_discarded(self, pid: int) -> None:
        self.session.log.message(f"a helper was forked with pid {pid}, which a call of the command in flight "
                                 "names: discarded, another forked", event="protect", pid=pid)

    def guard_permit(self, call: Call, decision: Decision, named: int | None) -> Decision:
        """A permit the policy gave, unless the call touches what reaches systrace."""
        if decision.verdict != PERMIT:
            return decision
        if not decision.effect and protected.routed_write_open(call.name, call.args):
            decision = self.write_open_permit(call, decision)
            if decision.verdict != PERMIT:
                return decision
        translation = call.translation
        refusal = self.protected_path(call, translation) if translation is not None else None
        if refusal is None and decision.effect and translation is not None:
            kinds = self.namespace_of_opener(call, translation)
            if kinds and decision.effect in JOINING_EFFECTS:
                call.opener_namespaces = kinds  # carried out by a helper in those namespaces (effects.py)
            elif kinds:
                refusal = (f"a /proc entry of the opener's {'/'.join(kinds)} namespace, and the caller is in another "
                           "than systrace (carried out by systrace it would be systrace's)")
        if refusal is not None:
            call.reason, call.no_learn = refusal, True
            return Decision(DENY, errno.EACCES, log=True, source="protect")
        if call.nr in NAMING_A_PROCESS and group_priority.over_a_group(call.name, call.args):
            return self.over_a_group(call, decision)
        if call.name == "capget":
            return self.capget(call, decision)
        if named is not None and not _alive(named):
            # Continued, it would reach whatever process takes that pid next, perhaps a
            # helper we fork before the kernel looks it up: answer as the kernel would now.
            return Decision(DENY, absent_errno(call.nr), source="guard")
        return decision

    def over_a_group(self, call: Call, decision: Decision) -> Decision:
        """A permitted get/setpriority or ioprio_get/set by process group or user: done
        over the threads the kernel would reach, systrace's and its helpers' left out
        (kernel/group_priority.py). A thread in another PID namespace cannot name them
        (continued), except as its own process group (`who` 0): the kernel walks the
        group's members whatever namespace they are in, systrace among them."""
        from .kernel.emulate_identity import EmulationError, tracee_identity

        try:
            if os.stat(f"/proc/{call.tid}/ns/pid").st_ino != self.pid_namespace \
                    and not group_priority.own_group(call.name, call.args):
                return decision
            # (the threads are listed as systrace sees them, whatever the caller's namespace)
            targets = group_priority.reached(call.name, call.args, group_priority.Caller(call.tid), self.is_ours)
            if call.name in ("getpriority", "ioprio_get"):
                result = group_priority.get(call.name, targets)
            else:
                identity = tracee_identity(self.session.processes.credentials_status(call.tid, False), call.tid)
                result = identity.run(lambda: group_priority.set_(call.name, call.args, targets))
        except EmulationError as error:
            call.reason, call.no_learn = str(error), True
            return Decision(DENY, error.errno, log=True, source="protect")
        except OSError as error:  # the caller is gone, or /proc unreadable: fail closed
            call.reason, call.no_learn = f"cannot find the threads it names: {error}", True
            return Decision(DENY, errno.ESRCH if error.errno == errno.ESRCH else errno.EPERM, log=True,
                            source="protect")
        if result < 0:
            return replace(decision, verdict=DENY, errno=-result, effect="")
        return replace(decision, verdict=RETURN, value=result, effect="")

    def capget(self, call: Call, decision: Decision) -> Decision:
        """A permitted capget: made by systrace, a pid naming systrace or a helper
        answered ESRCH (kernel/capget_for.py). A thread in another PID namespace cannot
        name them: continued."""
        from .kernel.capget_for import capget_for

        try:
            if os.stat(f"/proc/{call.tid}/ns/pid").st_ino != self.pid_namespace:
                return decision
        except OSError:
            return Decision(DENY, errno.ESRCH, source="guard")  # the caller is gone
        result = capget_for(call.tid, call.args, lambda pid: self.names_us(call.tid, pid))
        if result == -errno.ESRCH:
            call.reason, call.no_learn = "it names systrace or one of its helpers, or no process", True
        if result < 0:
            return replace(decision, verdict=DENY, errno=-result, effect="")
        return replace(decision, verdict=RETURN, value=0, effect="")

    def write_open_permit(self, call: Call, decision: Decision) -> Decision:
        """A write open the filter routes whatever the policy (decide/protected.py) and the
        policy permits without looking at its path: checked on its path like any other,
        and carried out by systrace on the path checked (a second thread could swap it
        after the check). A thread in another mount namespace, and a user namespace's map
        file (a write to it is judged by who opened it), are opened by a helper that
        becomes the tracee (kernel/open_as.py). O_PATH opens write nothing (the kernel
        ignores the other flags; a reopen for writing through /proc/self/fd is a write
        open itself, checked on the file it names), and ADDFD cannot pass them: continued."""
        if call.name == "open_by_handle_at":  # no path to check, and it may name any file (a cgroup's)
            call.reason, call.no_learn = "a write open by file handle, whatever the policy says", True
            return Decision(DENY, errno.EACCES, log=True, source="protect")
        if call.translation is None and not call.translation_error:
            self.translate.before_logging(call)
        translation = call.translation
        if translation is None:
            call.reason = f"a write open whose path cannot be checked ({call.translation_error})"
            return Decision(DENY, errno.EFAULT, log=True, source="protect")
        if translation.reaches_systrace:  # opened by systrace, outside the command's Landlock domain
            call.reason = OWN_ENTRY
            return Decision(DENY, errno.ENOENT, log=True, source="protect")  # as for a process gone
        if translation.native_error:  # it fails whatever is decided: the kernel's own error
            return Decision(DENY, translation.native_error, source="native")
        flags = translation.open_flags
        if flags & os.O_PATH:
            return decision
        if other_mount_view(call.tid) \
                or any(protected.opener_checked(value) for name, value in translation.args if name == "filename"):
            return replace(decision, effect=EMULATE_OPEN_AS)
        if flags & os.O_TMPFILE == os.O_TMPFILE and translation.open_target is not None:
            return decision  # (an O_TMPFILE open makes a file with no name: never a cgroup or sysctl file)
        return replace(decision, effect=EMULATE_OPEN)

    def namespace_of_opener(self, call: Call, translation: Translated) -> tuple[str, ...]:
        """The kinds of namespace systrace may not carry out this call in itself: it names a
        /proc entry the kernel resolves in its opener's network, IPC or user namespace,
        and the thread is in another one than systrace (decide/protected.py). Continued,
        the kernel would resolve it in the tracee's; carried out here it would be
        systrace's (the host's): a helper that joins the tracee's does it."""
        found: list[str] = []
        for kind in protected.opener_resolved([value for name, value in translation.args if name == "filename"],
                                              self.effects.proc_points):
            try:
                elsewhere = namespaces.differs(call.tid, kind)
            except OSError:
                elsewhere = True  # cannot tell: fail closed
            if elsewhere:
                found.append(kind)
        return tuple(found)

    def protected_path(self, call: Call, translation: Translated) -> str | None:
        """Why a permitted call may not change a file it names: a cgroup file that would
        reach systrace, the pid allocation (decide/protected.py). (systrace's and its helpers' /proc entries:
        the policy decider's check.)"""
        if aliases.alias_of(call.name, translation.open_flags) != "fswrite":
            return None
        mounts = self.effects.mounts
        for name in [value for name, value in translation.args if name == "filename"]:
            reason = protected.pid_allocation_change_refused(name)
            if reason is not None:
                return reason
            cgroup_points = [point for point, kind, _ in mounts.mounts() if kind in ("cgroup", "cgroup2")]
            if protected.on_cgroup_mount(name, cgroup_points):
                with open("/proc/self/cgroup", encoding="utf-8", errors="replace") as handle:
                    holding = cgroups_holding_me(mounts.mounts(), handle.read())
                reason = protected.cgroup_change_refused(name, holding)
                if reason is not None:
                    return reason
        return None


CONTINUED, FAILED = "continue", "error"
EMULATED_FSTAT = "emulate-fstat"  # the descriptor form's stat, answered by answered_as_descriptor


def carried_as(decision: Decision | None) -> str:
    """How a decision is carried out, by what it costs: continued (the launcher's own
    calls too), failed with an errno, completed with a value, killed, or an effect
    (emulate-open, emulate-path...: the call made by systrace)."""
    if decision is None:
        return CONTINUED
    if decision.effect:
        return decision.effect
    return {PERMIT: CONTINUED, DENY: FAILED}.get(decision.verdict, decision.verdict)


def _tgid_and_parent(pid: int) -> tuple[int, ...]:
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            status = handle.read()
    except OSError:
        return ()  # gone: it names nothing now
    return tuple(int(value) for value in (procfs.field(status, b"Tgid"), procfs.field(status, b"PPid")) if value)


def _watch_thread(tid: int) -> int | None:
    try:
        return os.pidfd_open(tid, PIDFD_THREAD)
    except OSError:
        return None  # kept until the thread's next call


def _alive(pid: int) -> bool:
    """Is there a process or thread with this id (in our PID namespace)?"""
    try:
        os.stat(f"/proc/{pid}")
    except FileNotFoundError:
        return False
    except OSError:
        pass
    return True
