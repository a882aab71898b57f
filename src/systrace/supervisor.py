"""The event loop: one notification at a time, failing closed.

poll() waits on the listener and a signalfd. Each notification is mapped to its process
and binary, decided by the session's chain and answered. An exception while deciding
denies that call (EPERM) and is logged; serving goes on. The loop ends when the listener
reports that no supervised task is left (POLLHUP)."""

from __future__ import annotations

import errno
import os
import select
import signal

from .call import Call, syscall_name
from .decide import DENY, EMULATE_OPEN, EMULATE_PATH, EMULATE_SOCKET, KILL, PERMIT, RETURN, Decision
from .decide.breaks import BreakKeeper
from .kernel import procfs
from .kernel.emulate_identity import EmulationError, tracee_identity
from .kernel.emulate_path import PathCall, uses_access_identity
from .kernel.launch import Launched, exec_outcome
from .kernel.libc import pidfd_send_signal, tgkill
from .kernel.signals import JOB_STOPS, SI_KERNEL, SignalFd, stop_self
from .kernel.sockets import Pending, socket_call
from .kernel.syscalls_x86_64 import SYSCALLS
from .kernel.wakeup import WakeHere
from .kernel.worker import Deferred, open_without_blocking
from .translate.filename import NONEXISTENT

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from .kernel.notify import Listener, Notification
    from .session import Session
    from .translate.translator import Translated

EXECVE_NRS = frozenset((SYSCALLS["execve"], SYSCALLS["execveat"]))
FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
INTERNAL_ERROR = Decision(DENY, errno.EPERM, log=True, source="error")
MAX_BATCH = 256  # notifications received before deciding any
STALE = Decision(DENY, errno.EPERM, source="stale")


class Supervisor:
    def __init__(self, session: Session, listener: Listener, launched: Launched, signals: SignalFd):
        self.session = session
        self.listener = listener
        self.child_pid = launched.pid
        self.child_pidfd = launched.pidfd
        self.report_fd = launched.report_fd
        self.signals = signals
        self.child_status: int | None = None
        self.exec_pending = False  # the child asked to exec the command
        self.child_started = False  # ... and that exec succeeded
        self.exec_error = 0  # errno of a failed exec of the command
        self.served = 0
        self.routed: dict[int, int] = {}  # notifications by system call number (--stats)
        self.current_call: Call | None = None
        self.child_hooks: list = []  # called after each SIGCHLD (job control)
        self.breaks = BreakKeeper(session.processes)  # a refused brk returns the break, not -errno
        self.pending: dict[int, Pending] = {}  # blocking connects done by helpers, by result fd
        self.deferred: dict[int, tuple[Deferred, Call]] = {}  # opens that may wait, done by helpers, by fd watched
        self.poller = select.poll()
        self.wake_here = WakeHere()
        self._listener_ready = select.poll()  # is another notification pending right now?
        self._listener_ready.register(listener.fileno(), select.POLLIN)
        self.terminal = _controlling_terminal()  # for job control: None without one
        self.child_stopped = 0  # the stop signal while the command's first process is stopped
        self.terminal_to_restore: int | None = None  # its own group held the terminal when it stopped

    # -- the loop ---------------------------------------------------------------
    def run(self) -> int:
        """Serve until no supervised task is left; return the command's exit status."""
        poller = self.poller
        listener_fd = self.listener.fileno()
        poller.register(listener_fd, select.POLLIN)
        poller.register(self.signals.fileno(), select.POLLIN)
        self.attach_deciders()
        serving = True
        while serving:
            ready = poller.poll(self.session.poll_timeout())
            if not ready:
                self.session.tick()
            for fd, events in ready:
                if fd == listener_fd:
                    if events & select.POLLIN:
                        self.serve_batch()
                    elif events & (select.POLLHUP | select.POLLERR):
                        serving = False
                elif fd in self.pending:
                    self.finish_socket_call(self.pending.pop(fd))
                elif fd in self.deferred:
                    self.finish_deferred_safely(fd)
                else:
                    self.on_signals()
        for fd in list(self.deferred):  # nothing is left to answer: stop the helpers
            if fd in self.deferred:  # (each is there under two fds)
                self.finish_deferred_open(fd, cancel=True)
        self.reap(block_for_child=True)
        if self.terminal is not None:
            os.close(self.terminal)
            self.terminal = None
        if self.report_fd >= 0:
            self.child_exec_succeeded()
        return self.exit_status()

    def serve_batch(self) -> None:
        """Receive every pending notification first, then decide them in order. Until it
        is received a notified call can be interrupted by a signal (EINTR for the tracee,
        the kernel's behaviour); once received it waits killably (WAIT_KILLABLE_RECV). So
        calls queued behind a slow decision are received at once, not one by one."""
        batch: list[Notification] = []
        while len(batch) < MAX_BATCH:
            notif = self.listener.recv()
            if notif is not None:
                batch.append(notif)
            ready = self._listener_ready.poll(0)
            if not ready or not ready[0][1] & select.POLLIN:  # POLLHUP alone: nothing to receive
                break
        for notif in batch:
            self.serve_one(notif)

    def serve_one(self, notif: Notification) -> None:
        self.served += 1
        self.routed[notif.nr] = self.routed.get(notif.nr, 0) + 1
        try:
            decision = self.decide(notif)
        except Exception as error:  # noqa: BLE001 - fail closed, keep serving
            self.session.log.message(
                f"internal error deciding {syscall_name(notif.nr)} of pid {notif.pid}: {error!r}; denied",
                event="error",
                pid=notif.pid,
                syscall=syscall_name(notif.nr),
            )
            decision = INTERNAL_ERROR
            if self.current_call is not None and self.current_call.notif is notif:
                try:  # a refused brk must still look like the kernel's refusal
                    decision = self.breaks.settle(self.current_call, decision)
                except Exception:  # noqa: BLE001 - fail closed
                    decision = INTERNAL_ERROR
        try:
            self.answer(notif, decision)
        except Exception as error:  # noqa: BLE001 - fail closed, keep serving
            self._refuse_after_error(notif, f"answering {syscall_name(notif.nr)}", error)

    def decide(self, notif: Notification) -> Decision | None:
        """None means: let the call run without a record (the launcher's own calls)."""
        self.current_call = None
        processes = self.session.processes
        info = processes.info(notif.pid)
        if not self.child_started and info.tgid == self.child_pid:
            # systrace's own child before it becomes the command: only our code runs
            # here (the child is single-threaded until its exec succeeds).
            if self.exec_pending and self.child_exec_succeeded():
                self.child_started = True
            else:
                self.exec_pending = self.exec_pending or notif.nr in EXECVE_NRS
                return None
        exe = procfs.exe(notif.pid)
        call = Call(notif, info.tgid, info.ppid, exe, info.uid, info.gid)
        self.current_call = call
        decision = self.breaks.settle(call, self.session.decide(call))
        translation = call.translation
        if translation is not None and translation.read_memory and not self.listener.id_valid(notif.id):
            # The call went away while we read its memory: what we read may belong to
            # another process that reused the id. Nothing to answer.
            return STALE
        if notif.nr in EXECVE_NRS and decision.verdict == PERMIT:
            processes.forget_group(info.tgid)
        return decision

    def answer(self, notif: Notification, decision: Decision | None) -> None:
        if decision is not None and decision.signal:
            self.signal_thread(notif, decision.signal)
        if decision is not None and decision.effect and self.current_call is not None:
            EFFECTS[decision.effect](self, notif, self.current_call)
        elif decision is None or decision.verdict == PERMIT:
            self.listener.allow(notif.id)
        elif decision.verdict == DENY:
            self.listener.fail(notif.id, decision.errno)
        elif decision.verdict == KILL:
            self.kill_process_of(notif)
            self.listener.fail(notif.id, errno.EPERM)  # the call must not run either way
        elif decision.verdict == RETURN:
            self.listener.succeed(notif.id, decision.value)

    def emulate_open(self, notif: Notification, call: Call) -> None:
        """Open the checked file ourselves, install it in the tracee (ADDFD) and answer the
        call with its number. Anything that cannot be done faithfully is denied (fail closed)."""
        translation = translation_of(call)
        target = translation.open_target
        if target is None:
            names = [value for name, value in translation.args if name == "filename"]
            if names and names[0].startswith(NONEXISTENT):  # a missing directory: the native error
                self.listener.fail(notif.id, errno.ENOENT)
                return
            self._emulation_refused(notif, call, errno.EACCES, "this path cannot be opened on the tracee's behalf")
            return
        try:
            fd = open_without_blocking(notif.id, notif.pid, call.tgid, target, translation.open_flags,
                                       translation.open_mode, self.session.processes.status_bytes(notif.pid),
                                       translation.open_root, self.listener.fileno())
        except EmulationError as error:
            self._emulation_refused(notif, call, error.errno, str(error))
            return
        except OSError as error:  # what the tracee's own open would have got
            self.listener.fail(notif.id, error.errno or errno.EIO)
            return
        if isinstance(fd, Deferred):  # it may wait: a helper opens it, we keep serving
            for watched in fd.fds():
                self.deferred[watched] = (fd, call)
                self.poller.register(watched, select.POLLIN)
            return
        self._install(notif, fd, translation.open_flags)

    def finish_deferred_safely(self, ready_fd: int) -> None:
        notif = self.deferred[ready_fd][1].notif
        try:
            self.finish_deferred_open(ready_fd)
        except Exception as error:  # noqa: BLE001 - fail closed, keep serving
            self._refuse_after_error(notif, "finishing an open", error)

    def _refuse_after_error(self, notif: Notification, doing: str, error: Exception) -> None:
        """An internal error while carrying out a call: log it and deny the call (the
        notification may be gone already)."""
        self.session.log.message(f"internal error {doing} of pid {notif.pid}: {error!r}; denied",
                                 event="error", pid=notif.pid, syscall=syscall_name(notif.nr))
        try:
            self.listener.fail(notif.id, errno.EPERM)
        except OSError:
            pass

    def finish_deferred_open(self, ready_fd: int, cancel: bool = False) -> None:
        """A helper's open is done (answer with it), or its caller is gone (stop it)."""
        deferred, call = self.deferred[ready_fd]
        for watched in deferred.fds():
            del self.deferred[watched]
            self.poller.unregister(watched)
        if cancel or ready_fd != deferred.fd:
            deferred.cancel()
            return
        notif = call.notif
        try:
            fd = deferred.result()
        except EmulationError as error:
            self._emulation_refused(notif, call, error.errno, str(error))
            return
        except OSError as error:
            self.listener.fail(notif.id, error.errno or errno.EIO)
            return
        self._install(notif, fd, translation_of(call).open_flags)

    def _install(self, notif: Notification, fd: int, open_flags: int) -> None:
        """Hand our descriptor to the tracee (ADDFD) and answer the call with its number."""
        # ADDFD wakes the waiting thread to install the fd: on this CPU, not an idle one.
        # Its affinity is restored before the answer lets it run its own code again.
        allowed = self.wake_here.narrow(notif.pid)
        try:
            installed = self.listener.add_fd(notif.id, fd, cloexec=bool(open_flags & os.O_CLOEXEC))
        finally:
            os.close(fd)
            if allowed is not None:
                self.wake_here.restore(notif.pid, allowed)
        if installed is not None:
            self.listener.succeed(notif.id, installed)

    def emulate_path_call(self, notif: Notification, call: Call) -> None:
        """Do a path call on what was checked (kernel/emulate_path.py), as the tracee; write
        its results into the tracee and answer with its return value."""
        translation = translation_of(call)
        checked = [value for name, value in translation.args if name in ("filename", "fd")]
        status = self.session.processes.status_bytes(notif.pid)
        try:
            identity = tracee_identity(status, notif.pid, uses_access_identity(call.name, call.args))
            path_call = PathCall(call.name, notif.pid, call.tgid, call.args, translation.targets, checked,
                                 translation.open_root, identity, translation.tails)
            result = path_call.run()
        except EmulationError as error:
            self._emulation_refused(notif, call, error.errno, str(error))
            return
        except OSError as error:  # what the tracee's own call would have got
            self.listener.fail(notif.id, error.errno or errno.EIO)
            return
        if path_call.writes and not self.listener.id_valid(notif.id):
            return  # the thread is gone: its id may name another process now, write nothing
        try:
            path_call.flush()
        except OSError as error:
            self.listener.fail(notif.id, error.errno if error.errno == errno.EFAULT else errno.EACCES)
            return
        self.listener.succeed(notif.id, result)

    def emulate_socket_call(self, notif: Notification, call: Call) -> None:
        """connect/bind the address that was checked, on the tracee's own socket, as the tracee."""
        translation = translation_of(call)
        try:
            identity = tracee_identity(self.session.processes.status_bytes(notif.pid), notif.pid)
        except EmulationError as error:
            self._emulation_refused(notif, call, error.errno, str(error))
            return
        try:
            pidfd = os.pidfd_open(call.tgid)
        except OSError:
            return
        address = translation.sockaddr_raw
        if address is None:  # the effect is only chosen for an address that was read
            os.close(pidfd)
            raise RuntimeError(f"{call.name}: no address to carry out")
        try:
            result = socket_call(call.name, pidfd, translation.sockfd, address, notif.id, identity,
                                 translation.sockaddr_path, notif.pid, translation.open_root)
        except EmulationError as error:
            self._emulation_refused(notif, call, error.errno, str(error))
            return
        finally:
            os.close(pidfd)
        if isinstance(result, Pending):
            self.pending[result.fd] = result
            self.poller.register(result.fd, select.POLLIN)
        else:
            self._answer_result(notif.id, result)

    def finish_socket_call(self, pending: Pending) -> None:
        self.poller.unregister(pending.fd)
        self._answer_result(pending.notif_id, pending.result())

    def _answer_result(self, notif_id: int, result: int) -> None:
        """0: the call succeeded; otherwise it failed with that errno."""
        if result == 0:
            self.listener.succeed(notif_id, 0)
        else:
            self.listener.fail(notif_id, result)

    def _emulation_refused(self, notif: Notification, call: Call, code: int, reason: str) -> None:
        call.reason = reason
        self.session.log_decision(call, Decision(DENY, code, log=True, source="emulate"))
        self.listener.fail(notif.id, code)

    def signal_thread(self, notif: Notification, number: int) -> None:
        """tgkill the calling thread, if the notification (and so the thread) is still there."""
        try:
            tgid = self.session.processes.info(notif.pid).tgid
        except OSError:
            return
        if self.listener.id_valid(notif.id):
            try:
                tgkill(tgid, notif.pid, number)
            except OSError:
                pass

    def kill_process_of(self, notif: Notification) -> None:
        """SIGKILL the whole process through a pidfd, checked to be the one that made the
        call (the notification is still pending, so its thread and tgid are alive)."""
        try:
            tgid = self.session.processes.info(notif.pid).tgid
            pidfd = os.pidfd_open(tgid)
        except OSError:
            return  # already gone
        try:
            if self.listener.id_valid(notif.id):
                pidfd_send_signal(pidfd, signal.SIGKILL)
        finally:
            os.close(pidfd)

    def child_exec_succeeded(self) -> bool:
        if self.report_fd < 0:
            return True
        outcome = exec_outcome(self.report_fd)
        if outcome is None:
            return False  # the child is reporting a failed exec right now
        os.close(self.report_fd)
        self.report_fd = -1
        self.exec_error = outcome
        return outcome == 0

    # -- signals and children ------------------------------------------------------
    def attach_deciders(self) -> None:
        """A decider that waits (a question) waits on our signalfd too, and serves what it
        reads as we do; -t's job control also hears of the command stopping (Ctrl-Z)."""
        for decider in self.session.chain.deciders:
            attach = getattr(decider, "attach", None)
            if attach is not None:
                hook = attach(self.signals.fileno(), self.signals.read, self.handle_signals, self.child_pid,
                              self.child_pidfd)
                if hook is not None:
                    self.child_hooks.append(hook)

    def on_signals(self) -> None:
        self.handle_signals(self.signals.read())

    def handle_signals(self, signals: list[tuple[int, int, int]]) -> None:
        """Every asynchronous signal arrives here (kernel/signals.py). Job control: the
        command shares systrace's process group, as natively it shares its job's, but the
        Landlock domain keeps its own group signals from reaching systrace; so when the
        command's first process stops, systrace stops too (its parent, a shell, sees the
        job stop), and a SIGCONT that reaches only systrace is passed on."""
        stop = 0
        for number, code, sender in signals:
            if number == signal.SIGCHLD:
                stop = self.reap(block_for_child=False) or stop
                for hook in self.child_hooks:
                    hook()
            elif number in JOB_STOPS:
                if code == SI_KERNEL:  # the terminal stopped our job: stop with it
                    stop = number
                else:
                    self.forward(number)
            elif number == signal.SIGCONT:
                self.continue_child()
            elif number in FORWARDED_SIGNALS and code != SI_KERNEL and sender != self.child_pid:
                # Sent to systrace by someone (kill, a service manager): pass it on. A
                # terminal's signal (SI_KERNEL) already reached the command's group.
                self.forward(number)
        if stop:
            stop_self(stop)
            self.continue_child()

    def forward(self, number: int) -> None:
        if self.child_status is not None:
            return
        try:
            pidfd_send_signal(self.child_pidfd, number)
        except OSError as error:
            if error.errno != errno.ESRCH:
                raise

    def continue_child(self) -> None:
        """After systrace was continued: continue the command if it is still stopped (its
        own process group was not continued with ours), with the terminal back to that
        group if it had it."""
        if not self.child_stopped:
            return
        self.child_stopped = 0
        if self.terminal_to_restore is not None and self.terminal is not None:
            try:
                if os.tcgetpgrp(self.terminal) == os.getpgrp():  # we were put in the foreground
                    os.tcsetpgrp(self.terminal, self.terminal_to_restore)
            except OSError:
                pass
            self.terminal_to_restore = None
        self.forward(signal.SIGCONT)

    def reap(self, block_for_child: bool) -> int:
        """Collect the child and any orphans reparented to us (we are a subreaper). Returns
        the signal to stop systrace with when the child stopped under job control."""
        stop = 0
        if block_for_child and self.child_status is None:
            _, status = os.waitpid(self.child_pid, 0)
            self.child_status = status
        elif self.child_status is None and not self.child_hooks:  # else -t's job control owns stops
            pid, status = os.waitpid(self.child_pid, os.WNOHANG | os.WUNTRACED)
            if pid and os.WIFSTOPPED(status):
                stop = self.child_stopped_by(os.WSTOPSIG(status))
            elif pid:
                self.child_status = status
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return stop
            if pid == 0:
                return stop
            if pid == self.child_pid:
                self.child_status = status

    def child_stopped_by(self, number: int) -> int:
        """Natively the shell would see its child stop: with a terminal (job control),
        systrace stops the same way. Without one nobody waits for stops, and systrace
        keeps serving the rest of the tree."""
        if self.terminal is None or not self.child_started:
            return 0
        self.child_stopped = number
        try:
            holder = os.tcgetpgrp(self.terminal)
            self.terminal_to_restore = holder if holder == os.getpgid(self.child_pid) != os.getpgrp() else None
        except OSError:
            self.terminal_to_restore = None
        return signal.SIGTSTP if number == signal.SIGSTOP else number

    def exit_status(self) -> int:
        status = self.child_status
        if status is None:
            return 1
        if os.WIFSIGNALED(status):
            return 128 + os.WTERMSIG(status)
        return os.WEXITSTATUS(status)


# how each effect a Decision carries is carried out (decide.EFFECTS)
EFFECTS = {EMULATE_OPEN: Supervisor.emulate_open, EMULATE_SOCKET: Supervisor.emulate_socket_call,
           EMULATE_PATH: Supervisor.emulate_path_call}


def _controlling_terminal() -> int | None:
    try:
        return os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError:
        return None


def translation_of(call: Call) -> Translated:
    """The translation an effect carries out. Deciders translate every call they permit
    on its arguments; a call without one cannot be carried out faithfully: raising here
    denies it (serve_one fails closed)."""
    if call.translation is None:
        raise RuntimeError(f"{call.name}: no translation to carry out")
    return call.translation
