"""Carrying out a Decision: the answer sent for a notification (CONTINUE, an errno, a
return value, a kill) and the effects systrace does itself on what was checked (open and
inject with ADDFD, connect/bind on the tracee's socket, a path call). Work that may block
(a FIFO open, a slow connect) goes to helpers whose descriptors the loop watches; the
effect is finished when one is ready. Anything that cannot be done faithfully is denied
(fail closed)."""

from __future__ import annotations

import errno
import os
import select
import signal

from .call import Call, syscall_name
from .decide import DENY, EMULATE_OPEN, EMULATE_PATH, EMULATE_SOCKET, KILL, PERMIT, RETURN, Decision
from .domains import UNKNOWN, Domains
from .kernel.emulate_identity import EmulationError, tracee_identity
from .kernel.emulate_path import PathCall, uses_access_identity
from .kernel.libc import pidfd_send_signal, tgkill
from .kernel.sockets import Pending, socket_call
from .kernel.syscalls_x86_64 import SYSCALLS
from .kernel.wakeup import WakeHere
from .kernel.worker import Deferred, open_without_blocking
from .translate.filename import NONEXISTENT

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable

    from .kernel.landlock_domain import Domain
    from .kernel.listening import Listener
    from .kernel.notify import Notification
    from .session import Session
    from .translate.translator import Translated


LANDLOCK_RESTRICT_SELF = SYSCALLS["landlock_restrict_self"]


class Effects:
    def __init__(self, session: Session, listener: Listener, poller: select.poll,
                 wake_here: WakeHere | None = None):
        self.session = session  # the process table (credentials) and the log
        self.listener = listener
        self.poller = poller  # the loop's: helpers' descriptors are watched there
        self.wake_here = WakeHere() if wake_here is None else wake_here
        self.pending: dict[int, Pending] = {}  # blocking connects done by helpers, by result fd
        self.deferred: dict[int, tuple[Deferred, Call]] = {}  # opens that may wait, done by helpers, by fd watched
        # the Landlock domains tracees put themselves in, copied for the calls emulated for them
        self.domains = Domains(lambda text, pid: session.log.message(text, event="landlock", pid=pid))

    def carry_out(self, notif: Notification, call: Call | None, decision: Decision | None) -> None:
        """None means: let the call run without a record (the launcher's own calls)."""
        if decision is not None and decision.signal:
            self.signal_thread(notif, decision.signal)
        if decision is not None and decision.effect and call is not None:
            EFFECTS[decision.effect](self, notif, call)
        elif decision is not None and decision.verdict == PERMIT and notif.nr == LANDLOCK_RESTRICT_SELF \
                and call is not None:
            self.restrict_landlock(notif, call)
        elif decision is None or decision.verdict == PERMIT:
            self.listener.allow(notif.id)
        elif decision.verdict == DENY:
            self.listener.fail(notif.id, decision.errno)
        elif decision.verdict == KILL:
            self.kill_process_of(notif)
            self.listener.fail(notif.id, errno.EPERM)  # the call must not run either way
        elif decision.verdict == RETURN:
            self.listener.succeed(notif.id, decision.value)

    # -- helpers the loop watches ------------------------------------------------------
    def on_ready(self, fd: int) -> bool:
        """A helper's descriptor is ready: finish its effect. False: not one of ours."""
        if fd in self.pending:
            self.finish_socket_call(self.pending.pop(fd))
        elif fd in self.deferred:
            self.finish_deferred_safely(fd)
        else:
            return False
        return True

    def cancel_all(self) -> None:
        """Nothing is left to answer: stop the helpers."""
        for fd in list(self.deferred):
            if fd in self.deferred:  # (each is there under two fds)
                self.finish_deferred_open(fd, cancel=True)
        self.domains.close()

    # -- a tracee's own Landlock domain -----------------------------------------------
    def restrict_landlock(self, notif: Notification, call: Call) -> None:
        """A permitted landlock_restrict_self: copy the domain it makes (domains.py), then
        let it run; or answer the kernel's error when it would change nothing."""
        code = self.domains.restrict(notif.pid, call.tgid, call.ppid, _signed(call.args[0]), call.args[1] & 0xFFFFFFFF)
        if code:
            self.listener.fail(notif.id, code)
        else:
            self.listener.allow(notif.id)

    def landlock_domain(self, notif: Notification, call: Call) -> tuple[bool, Domain | None]:
        """(may the call be emulated, the copy of the process's own Landlock domain)."""
        domain = self.domains.of(call.tgid, call.ppid)
        if domain == UNKNOWN:
            self._emulation_refused(notif, call, errno.EACCES, "its own Landlock domain cannot be copied")
            return False, None
        return True, domain  # type: ignore[return-value]

    # -- opens ------------------------------------------------------------------------
    def emulate_open(self, notif: Notification, call: Call) -> None:
        """Open the checked file ourselves, install it in the tracee (ADDFD) and answer the
        call with its number."""
        usable, domain = self.landlock_domain(notif, call)
        if not usable:
            return
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
                                       translation.open_root, self.listener.fileno(), translation.open_link,
                                       translation.proc_pins, domain)
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
            self.refuse_after_error(notif, "finishing an open", error)

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

    # -- path calls and sockets ----------------------------------------------------------
    def emulate_path_call(self, notif: Notification, call: Call) -> None:
        """Do a path call on what was checked (kernel/emulate_path.py), as the tracee; write
        its results into the tracee and answer with its return value."""
        usable, domain = self.landlock_domain(notif, call)
        if not usable:
            return
        translation = translation_of(call)
        checked = [value for name, value in translation.args if name in ("filename", "fd")]
        status = self.session.processes.status_bytes(notif.pid)
        try:
            identity = tracee_identity(status, notif.pid, uses_access_identity(call.name, call.args))
            identity.domain = domain
            path_call = PathCall(call.name, notif.pid, call.tgid, call.args, translation.targets, checked,
                                 translation.open_root, identity, translation.tails, translation.proc_pins)
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
        usable, domain = self.landlock_domain(notif, call)
        if not usable:
            return
        translation = translation_of(call)
        if domain is not None and domain.scopes_abstract_unix and call.name == "connect" \
                and translation.sockaddr_raw is not None and translation.sockaddr_raw[:3] == b"\x01\x00\x00":
            # an abstract name, in a domain that scopes them: only the tracee's own kernel
            # call knows which servers are inside its domain (SECURITY.md)
            self.listener.allow(notif.id)
            return
        try:
            identity = tracee_identity(self.session.processes.status_bytes(notif.pid), notif.pid)
            identity.domain = domain
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

    # -- refusals and signals --------------------------------------------------------------
    def _emulation_refused(self, notif: Notification, call: Call, code: int, reason: str) -> None:
        call.reason = reason
        self.session.log_decision(call, Decision(DENY, code, log=True, source="emulate"))
        self.listener.fail(notif.id, code)

    def refuse_after_error(self, notif: Notification, doing: str, error: Exception) -> None:
        """An internal error while carrying out a call: log it and deny the call (the
        notification may be gone already)."""
        self.session.log.message(f"internal error {doing} of pid {notif.pid}: {error!r}; denied",
                                 event="error", pid=notif.pid, syscall=syscall_name(notif.nr))
        try:
            self.listener.fail(notif.id, errno.EPERM)
        except OSError:
            pass

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


# how each effect a Decision carries is carried out (decide.EFFECTS)
EFFECTS: dict[str, Callable[[Effects, Notification, Call], None]] = {
    EMULATE_OPEN: Effects.emulate_open, EMULATE_SOCKET: Effects.emulate_socket_call,
    EMULATE_PATH: Effects.emulate_path_call}


def _signed(value: int) -> int:
    """A 32-bit int argument (a descriptor number), with its sign."""
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def translation_of(call: Call) -> Translated:
    """The translation an effect carries out. Deciders translate every call they permit
    on its arguments; a call without one cannot be carried out faithfully: raising here
    denies it (the loop fails closed)."""
    if call.translation is None:
        raise RuntimeError(f"{call.name}: no translation to carry out")
    return call.translation
