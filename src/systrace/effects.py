"""Carrying out a Decision: the answer sent for a notification (CONTINUE, an errno, a
return value, a kill) and the effects systrace does itself on what was checked (open and
inject with ADDFD, connect/bind on the tracee's socket, a path call, a send to the checked
destination). Work that may block (a FIFO open, a slow connect, a send that would wait)
goes to helpers whose descriptors the loop watches; the effect is finished when one is
ready. Anything that cannot be done faithfully is denied (fail closed)."""

from __future__ import annotations

import errno
import os
import select
import time

from .call import Call, syscall_name
from .decide import (
    DENY,
    EMULATE_HANDLE,
    EMULATE_MOUNT,
    EMULATE_OPEN,
    EMULATE_OPEN_AS,
    EMULATE_PATH,
    EMULATE_SEND,
    EMULATE_SOCKET,
    EMULATE_STRING,
    KILL,
    PERMIT,
    RETURN,
    Decision,
    protected,
)
from .domains import UNKNOWN, Domains
from .kernel import abi, handed_procfs, memory, offload, procfs, watchdog
from .kernel.emulate import openat2
from .kernel.emulate_fstat import NEWFSTATAT, STATX, MayWait, descriptor_form, stat_descriptor
from .kernel.emulate_identity import EmulationError, Identity, tracee_identity
from .kernel.emulate_view import RootFd, other_mount_view
from .kernel.libc import pidfd_send_signal, tgkill
from .kernel.mounts import MountTable, MountViews, below
from .kernel.offload import Offloaded
from .kernel.opener_devices import OpenerElsewhere
from .kernel.plain_signal import signal
from .kernel.syscalls_x86_64 import SYSCALLS
from .kernel.wakeup import WakeHere
from .kernel.worker import Deferred, open_without_blocking
from .kernel.worker import _defer as defer_job
from .lazy import lazy
from .policy.match import Unreadable
from .translate.filename import NONEXISTENT
from .translate.pids import OUTSIDE_RUN
from .translate.tracee import LiveTracee

DESCRIPTOR_STATS = (NEWFSTATAT, STATX)  # their descriptor form: kernel/emulate_fstat.py
SYMLINKS = ("symlink", "symlinkat")  # their target (argument 0) is a string a rule may decide on

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable

    from .kernel import emulate_handle, open_as, resolve_flags
    from .kernel import emulate_mount as mount_calls
    from .kernel import emulate_path as path_calls
    from .kernel import emulate_strings as string_calls
    from .kernel import send as sends
    from .kernel import sockets as socket_calls
    from .kernel.emulate_path import PathCall
    from .kernel.landlock_domain import Domain
    from .kernel.listening import Listener
    from .kernel.notify import Notification
    from .kernel.send import Outcome, PendingSend, SendCall
    from .kernel.sockets import Pending
    from .session import Session
    from .translate.translator import Translated
else:  # imported when first needed: most runs never use them (start-up time)
    path_calls = lazy("systrace.kernel.emulate_path")
    emulate_handle = lazy("systrace.kernel.emulate_handle")
    mount_calls = lazy("systrace.kernel.emulate_mount")
    string_calls = lazy("systrace.kernel.emulate_strings")
    open_as = lazy("systrace.kernel.open_as")
    resolve_flags = lazy("systrace.kernel.resolve_flags")
    sends = lazy("systrace.kernel.send")
    socket_calls = lazy("systrace.kernel.sockets")

SIGNAL_CHECK_MS = 10  # how often a thread waiting on a helper's call is looked at for signals
ERESTARTSYS = 512  # the kernel's "interrupted: restart if SA_RESTART, else EINTR"
LANDLOCK_RESTRICT_SELF = SYSCALLS["landlock_restrict_self"]
O_TMPFILE = getattr(os, "O_TMPFILE", 0)


class Effects:
    def __init__(self, session: Session, listener: Listener, poller: select.poll,
                 wake_here: WakeHere | None = None):
        self.session = session  # the process table (credentials) and the log
        self.listener = listener
        self.poller = poller  # the loop's: helpers' descriptors are watched there
        # the ADDFD wake-up hint (kernel/wakeup.py); None: none (in-process tests)
        self.wake_here = wake_here
        self.pending: dict[int, Pending] = {}  # blocking connects done by helpers, by result fd
        self.pending_sends: dict[int, tuple[PendingSend, SendCall]] = {}  # blocking sends done by helpers, by fd watched
        self.deferred: dict[int, tuple[Deferred, Call]] = {}  # opens that may wait, done by helpers, by fd watched
        self.pending_callers: dict[int, int] = {}  # the tgid of each pending connect's caller
        # work done by helpers because it may wait on a FUSE daemon, by each fd watched:
        # (the job, the notification, what to do with its output)
        self.offloaded: dict[int, tuple[Offloaded, Notification, Callable[[Notification, bytes], None]]] = {}
        self.mounts = MountTable()  # where the cgroup files and FUSE mounts are
        self.views = MountViews()  # ... as tracees with a root of their own see them
        self.next_signal_check = 0.0  # when to look again for signals to threads helpers work for
        # the Landlock domains tracees put themselves in, copied for the calls emulated for them
        self.domains = Domains(lambda text, pid: session.log.message(text, event="landlock", pid=pid))

    def carry_out(self, notif: Notification, call: Call | None, decision: Decision | None) -> None:
        """None means: let the call run without a record (the launcher's own calls)."""
        try:
            self._carry_out(notif, call, decision)
        finally:  # what the translation holds (an open's probe) is not needed once answered
            if call is not None and call.translation is not None:
                call.translation.release()

    def _carry_out(self, notif: Notification, call: Call | None, decision: Decision | None) -> None:
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

    def new_call(self) -> None:
        """The loop starts on another notification (or a helper's result): the mount
        tables are polled again at its first question, once, and whether a served file
        system exists anywhere is looked at once (kernel/mounts.py)."""
        self.mounts.expire()
        self.views.expire()
        memory.new_call()
        self.session.processes.new_call()

    # -- helpers the loop watches ------------------------------------------------------
    def on_ready(self, fd: int) -> bool:
        """A helper's descriptor is ready: finish its effect. False: not one of ours."""
        self.new_call()
        if fd in self.pending:
            self.finish_socket_call(self.pending.pop(fd))
        elif fd in self.deferred:
            self.finish_deferred_safely(fd)
        elif fd in self.offloaded:
            self.finish_offloaded_safely(fd)
        elif fd in self.pending_sends:
            self.finish_pending_send_safely(fd)
        else:
            return False
        return True

    def cancel_all(self) -> None:
        """Nothing is left to answer: stop the helpers."""
        for fd in list(self.pending_sends):
            if fd in self.pending_sends:  # (each is there under two fds)
                self.finish_pending_send(fd, cancel=True)
        for fd in list(self.deferred):
            if fd in self.deferred:  # (each is there under two fds)
                self.finish_deferred_open(fd, cancel=True)
        for fd in list(self.offloaded):
            if fd in self.offloaded:
                self.drop_offloaded(self.offloaded[fd][0]).cancel()
        self.mounts.close()
        self.views.close()
        self.domains.close()

    def helper_pids(self) -> set[int]:
        """systrace and every process it started that is alive: connect, open, send and
        FUSE helpers, a -g frontend."""
        pids = {os.getpid()}
        pids.update(pending.pid for pending in self.pending.values())
        pids.update(deferred.pid for deferred, _ in self.deferred.values())
        pids.update(job.pid for job, _, _ in self.offloaded.values())
        pids.update(send.pid for send, _ in self.pending_sends.values())
        pids.update(memory.reader_pids())  # the readers of tracee memory while FUSE exists
        pids.update(watchdog.watchdog_pids())  # kernel/watchdog.py
        for decider in self.session.chain.deciders:  # a -g frontend program
            process = getattr(getattr(decider, "transport", None), "process", None)
            if process is not None:
                pids.add(process.pid)
        return pids

    # -- a signal to a thread waiting on a helper ---------------------------------------
    def poll_timeout(self, timeout: int) -> int:
        """`timeout` (ms, -1: none), shortened while helpers work: their callers are
        looked at for signals."""
        if self.deferred or self.pending:
            return SIGNAL_CHECK_MS if timeout < 0 else min(timeout, SIGNAL_CHECK_MS)
        return timeout

    def interrupt_helpers(self) -> None:
        """Natively a signal interrupts an open or a connect that waits (a FIFO with no
        partner, a slow peer): the handler runs, and the call is restarted (SA_RESTART)
        or fails with EINTR. A thread waiting on a helper's call has its non-fatal
        signals held by the kernel until it is answered; so when one is pending, the
        helper's call is abandoned and answered with ERESTARTSYS, which the kernel turns
        into exactly that (kernel/procfs.signal_interrupts)."""
        if not (self.deferred or self.pending) or time.monotonic() < self.next_signal_check:
            return
        self.next_signal_check = time.monotonic() + SIGNAL_CHECK_MS / 1000
        for fd, pending in list(self.pending.items()):
            if _readable(fd):
                continue  # done: answered with its result next
            if procfs.signal_interrupts(pending.tid, self.pending_callers.get(fd, 0)):
                self.poller.unregister(fd)
                del self.pending[fd]
                self.pending_callers.pop(fd, None)
                pending.cancel()
                self._interrupted(pending.notif_id)
        for fd, (deferred, call) in list(self.deferred.items()):
            if fd != deferred.fd or fd not in self.deferred:
                continue  # each is there under two fds
            if _readable(deferred.fd):
                continue  # the open is done: answered with it next
            if procfs.signal_interrupts(call.tid, call.tgid):
                self.finish_deferred_open(fd, cancel=True)
                self._interrupted(call.notif.id)

    def _interrupted(self, notif_id: int) -> None:
        try:
            self.listener.fail(notif_id, ERESTARTSYS)
        except OSError:
            pass

    # -- work that may wait on a FUSE daemon (kernel/offload.py) -------------------------
    def proc_points(self) -> list[str]:
        """The proc mounts of systrace's mount table."""
        return [point for point, kind, _ in self.mounts.mounts() if kind == "proc"]

    def may_block(self, path: bytes, tid: int = 0, root: str | bytes | None = None) -> bool:
        """Would looking `path` up wait on a file system a process serves (FUSE)? With
        the `root` of thread `tid` (not "/"), `path` is below that root: it is looked up
        through /proc/TID/root, across the mounts the tracee sees (MountViews)."""
        points = self.mounts.servable()
        if root is None or root in ("/", b"/"):
            return bool(points) and below(path, points)
        rooted = os.fsencode(root).rstrip(b"/")
        if points and below(rooted + path, points):
            return True
        view = self.views.servable(tid, rooted)
        return view is None or (bool(view) and below(path, view))

    def offload(self, notif: Notification, job: Callable[[], bytes],
                done: Callable[[Notification, bytes], None]) -> None:
        started = offload.start(job, notif.pid, self.listener.fileno())
        for watched in started.fds():
            self.offloaded[watched] = (started, notif, done)
            self.poller.register(watched, select.POLLIN)

    def drop_offloaded(self, job: Offloaded) -> Offloaded:
        for watched in job.fds():
            del self.offloaded[watched]
            self.poller.unregister(watched)
        return job

    def finish_offloaded_safely(self, ready_fd: int) -> None:
        job, notif, done = self.offloaded[ready_fd]
        try:
            if ready_fd != job.fd:  # the calling thread is gone
                self.drop_offloaded(job).cancel()
                return
            output = job.read()
            if output is None:
                return  # more to come
            self.drop_offloaded(job).close()
            if not output:
                raise RuntimeError("the helper died")
            done(notif, output)
        except Exception as error:  # noqa: BLE001 - fail closed, keep serving
            self.refuse_after_error(notif, "in a helper's work", error)

    # -- a tracee's own Landlock domain -----------------------------------------------
    def restrict_landlock(self, notif: Notification, call: Call) -> None:
        """A permitted landlock_restrict_self: copy the domain it makes (domains.py), then
        let it run; or answer the kernel's error when it would change nothing."""
        code = self.domains.restrict(notif.pid, call.tgid, call.ppid, abi.s32(call.args[0]), call.args[1] & 0xFFFFFFFF)
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
        if domain is None and _names_outside_the_run(call):
            # the command's domain refuses ptrace-mode access outside the run: so does this one
            domain = self.domains.outside_the_run()
            if domain is not None and domain.error:
                self._emulation_refused(notif, call, errno.EACCES, "no Landlock domain for /proc outside the run")
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
        if target is not None and target.startswith(b"/proc/") and protected.opener_checked(os.fsdecode(target)):
            self.emulate_open_as(notif, call)  # a write to it is judged by its opener: the tracee must be
            return
        if target is None:
            names = [value for name, value in translation.args if name == "filename"]
            if names and names[0].startswith(NONEXISTENT):  # a missing directory: the native error
                self.listener.fail(notif.id, errno.ENOENT)
                return
            self._emulation_refused(notif, call, errno.EACCES, "this path cannot be opened on the tracee's behalf")
            return
        if call.name == "openat2" and not self._resolve_flags_kept(notif, call, target):
            return
        if call.opener_namespaces:  # a /proc entry of its own network, IPC or user namespace
            self.emulate_open_as(notif, call)
            return
        try:
            fd = open_without_blocking(notif.id, notif.pid, call.tgid, target, translation.open_flags,
                                       translation.open_mode,
                                       self.session.processes.credentials_status(notif.pid, bool(
                                           translation.open_flags & (os.O_CREAT | O_TMPFILE))),
                                       translation.open_root, self.listener.fileno(), translation.open_link,
                                       translation.proc_pins,
                                       # asked only if the path is looked up again (not through the probe)
                                       lambda: self.may_block(target, notif.pid, translation.open_root), domain,
                                       translation.open_probe)
        except OpenerElsewhere as elsewhere:  # /dev/net/tun of its own network namespace: opened there
            call.opener_namespaces = elsewhere.kinds
            self.emulate_open_as(notif, call)
            return
        except EmulationError as error:
            self._emulation_refused(notif, call, error.errno, str(error))
            return
        except OSError as error:  # what the tracee's own open would have got
            self.listener.fail(notif.id, error.errno or errno.EIO)
            return
        if isinstance(fd, Deferred):  # it may wait: a helper opens it, we keep serving
            self.defer_open(fd, call)
            return
        self._install(notif, call, fd, translation.open_flags)

    def emulate_open_by_handle(self, notif: Notification, call: Call) -> None:
        """open_by_handle_at with the handle that was checked (kernel/emulate_handle.py),
        installed in the tracee (ADDFD)."""
        usable, domain = self.landlock_domain(notif, call)
        if not usable:
            return
        texts = [value for name, value in translation_of(call).args if name == "handle"]
        handle = emulate_handle.parse_handle(texts[0]) if texts else None
        if handle is None:
            self._emulation_refused(notif, call, errno.EACCES, "the handle checked could not be read")
            return
        try:
            identity = tracee_identity(self.session.processes.credentials_status(notif.pid, False), notif.pid)
            identity.domain = domain
            fd = emulate_handle.open_by_handle(notif.pid, call.tgid, call.args, handle, identity)
        except EmulationError as error:
            self._emulation_refused(notif, call, error.errno, str(error))
            return
        except OSError as error:  # what the tracee's own call would have got
            self.listener.fail(notif.id, error.errno or errno.EIO)
            return
        self._install(notif, call, fd, call.args[2] & 0xFFFFFFFF)

    def _resolve_flags_kept(self, notif: Notification, call: Call, target: bytes) -> bool:
        """openat2's struct open_how, as the kernel checks it (EINVAL, E2BIG), and its
        RESOLVE_* flags: the path resolved as the tracee asked must name the file checked
        (kernel/resolve_flags.py). False when the call is answered already."""
        translation = translation_of(call)
        try:
            if self.may_block(target, notif.pid, translation.open_root) and resolve_flags.resolve_of(notif.pid,
                                                                                                      call.args):
                raise EmulationError(errno.EACCES, "openat2 with RESOLVE flags on a FUSE mount")
            identity = tracee_identity(self.session.processes.credentials_status(notif.pid, False), notif.pid)
            resolve_flags.check_as_asked(notif.pid, call.tgid, call.args, translation.open_flags, target,
                                         translation.open_root, identity, self.listener.fileno())
        except EmulationError as error:
            self._emulation_refused(notif, call, error.errno, str(error))
            return False
        except OSError as error:  # what the tracee's own openat2 would have got
            self.listener.fail(notif.id, error.errno or errno.EIO)
            return False
        return True

    def emulate_open_as(self, notif: Notification, call: Call) -> None:
        """An open systrace cannot make itself (kernel/open_as.py): a user namespace's map
        file, or an open in another mount namespace. A helper becomes the tracee and opens
        it; installed and answered when it is done, as a deferred open."""
        usable, domain = self.landlock_domain(notif, call)
        if not usable:
            return
        translation = translation_of(call)
        flags, mode = translation.open_flags, translation.open_mode
        status = self.session.processes.credentials_status(notif.pid, bool(flags & (os.O_CREAT | O_TMPFILE)))
        target = translation.open_target
        map_file = target is not None and protected.opener_checked(os.fsdecode(target))
        try:
            if other_mount_view(notif.pid) and not map_file:  # (a map file is reopened as checked, in any view)
                path, dirfd = _raw_path(call)
                if not self.listener.id_valid(notif.id):
                    return  # the thread is gone: what was read may be another process's
                pids = set() if _other_pid_namespace(notif.pid) else self.helper_pids()
                deferred = open_as.in_own_view(notif.id, notif.pid, call.tgid, path, dirfd, flags, mode, status,
                                               self.listener.fileno(), pids, domain)
            elif call.opener_namespaces and not map_file and target is not None:
                joined = open_as.in_namespaces(notif.id, notif.pid, target, flags, mode, status,
                                               translation.open_root, call.opener_namespaces,
                                               self.listener.fileno(), lambda: self.listener.id_valid(notif.id),
                                               domain)
                if joined is None:
                    return  # the thread is gone: its namespaces would be another's
                deferred = joined
            else:
                if domain is not None:
                    raise EmulationError(errno.EACCES, "a user namespace's map file, in a Landlock domain")
                deferred = self._map_file(notif, call, translation, status)
        except EmulationError as error:
            self._emulation_refused(notif, call, error.errno, str(error))
            return
        except OSError as error:  # what the tracee's own open would have got
            self.listener.fail(notif.id, error.errno or errno.EIO)
            return
        self.defer_open(deferred, call)

    def _map_file(self, notif: Notification, call: Call, translation: Translated, status: bytes) -> Deferred:
        """The checked map file, reopened by a helper with the tracee's credentials."""
        target = translation.open_target
        if target is None:
            raise EmulationError(errno.EACCES, "this path cannot be opened on the tracee's behalf")
        root = RootFd(notif.pid, translation.open_root)
        try:
            probe = openat2(root.fd, target, os.O_PATH | os.O_CLOEXEC, 0, root.resolve_flags())
        finally:
            root.close()
        try:
            if not protected.opener_checked(os.readlink(f"/proc/self/fd/{probe}")):
                raise EmulationError(errno.EACCES, f"opened {os.readlink(f'/proc/self/fd/{probe}')!r}, not the checked map file")
            return open_as.map_file(notif.id, notif.pid, probe, flags=translation.open_flags, status=status,
                                    listener_fd=self.listener.fileno())
        finally:
            os.close(probe)

    def defer_open(self, deferred: Deferred, call: Call) -> None:
        """Watch the helper's descriptors; the loop finishes the open when one is ready."""
        for watched in deferred.fds():
            self.deferred[watched] = (deferred, call)
            self.poller.register(watched, select.POLLIN)

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
        # (bpf's BPF_OBJ_GET and an mqueue descriptor (kernel/emulate_strings.py): the
        # kernel's new descriptor is always close-on-exec; fsopen's with FSOPEN_CLOEXEC)
        flags = os.O_CLOEXEC if call.name in ("bpf", "mq_open") or call.name == "fsopen" and call.args[1] & 1 else \
            translation_of(call).open_flags
        self._install(notif, call, fd, flags)

    def _install(self, notif: Notification, call: Call, fd: int, open_flags: int) -> None:
        """Hand our descriptor to the tracee (ADDFD) and answer the call with its number;
        never one of systrace's own /proc entries, whatever mount of proc named it
        (kernel/handed_procfs.py)."""
        def ours(pid: int) -> bool:  # (asked only for a descriptor on procfs: nothing made per open before)
            return pid in self.helper_pids() or LiveTracee(notif.pid, call.tgid).of_systrace(pid)

        reason = handed_procfs.refused(fd, ours)
        if reason:
            os.close(fd)
            self._emulation_refused(notif, call, errno.ENOENT, reason)  # (ENOENT: as translation refuses them)
            return
        # With the hint, ADDFD wakes the waiting thread to install the fd on this CPU, not
        # an idle one; its affinity is restored before the answer lets it run its own code.
        wake_here = self.wake_here
        allowed = wake_here.narrow(notif.pid) if wake_here is not None else None
        try:
            installed = self.listener.add_fd(notif.id, fd, cloexec=bool(open_flags & os.O_CLOEXEC))
        finally:
            os.close(fd)
            if allowed is not None:
                WakeHere.restore(notif.pid, allowed)
        if installed is not None:
            self.listener.succeed(notif.id, installed)

    # -- path calls and sockets ----------------------------------------------------------
    def emulate_path_call(self, notif: Notification, call: Call) -> None:
        """Do a path call on what was checked (kernel/emulate_path.py), as the tracee; write
        its results into the tracee and answer with its return value."""
        translation = translation_of(call)
        if translation.fd_form and notif.nr in DESCRIPTOR_STATS:
            self.emulate_descriptor_stat(notif)
            return
        usable, domain = self.landlock_domain(notif, call)
        if not usable:
            return
        # what each path argument was checked as; "" for a descriptor form (faccessat2,
        # getxattrat... on fd, ""): it acts on whatever the descriptor is, as fgetxattr would
        checked = [value if name == "filename" else "" for name, value in translation.args if name in ("filename", "fd")]
        status = self.session.processes.credentials_status(notif.pid, path_calls.creates(call.name))
        try:
            identity = tracee_identity(status, notif.pid, path_calls.uses_access_identity(call.name, call.args))
            identity.domain = domain
            path_call = path_calls.PathCall(call.name, notif.pid, call.tgid, call.args, translation.targets,
                                            checked, translation.open_root, identity, translation.tails, translation.proc_pins)
        except EmulationError as error:
            self._emulation_refused(notif, call, error.errno, str(error))
            return
        if call.name in SYMLINKS and call.args[0] != 0:  # the target the check read, not read again
            targets = [value for name, value in translation.args if name == "target"]
            if targets and not isinstance(targets[0], Unreadable):
                path_call.checked_target = os.fsencode(targets[0])
        if call.opener_namespaces:  # a /proc entry of its own network, IPC or user namespace
            self._path_call_in_namespaces(notif, call, path_call, status)
            return
        if self._may_block_any(translation.targets, notif.pid, translation.open_root):
            # it may wait on a FUSE daemon: a helper does it (pickle imported here, before its fork)
            import pickle

            self.offload(notif, lambda: pickle.dumps(_run_path_call(path_call)),
                         lambda notif, output: self._finish_path_call(notif, call, path_call, pickle.loads(output)))
            return
        path_call.use_probe(translation.open_probe)  # (here only: a helper's copy holds no descriptor of ours)
        self._finish_path_call(notif, call, path_call, _run_path_call(path_call))

    def _may_block_any(self, targets: list[bytes | int | None], tid: int, root: str | None) -> bool:
        for target in targets:  # (a loop, not any() over a generator: most calls have one)
            if isinstance(target, bytes) and self.may_block(target, tid, root):
                return True
        return False

    def _path_call_in_namespaces(self, notif: Notification, call: Call, path_call: PathCall, status: bytes) -> None:
        """The path call made by a helper that joined the caller's namespaces of the kinds
        its path is resolved by (kernel/opener_namespaces.py), as the tracee."""
        import pickle  # (before the helper's fork)

        from .kernel.opener_namespaces import Joining

        try:
            joining = Joining(notif.pid, call.opener_namespaces, status)
        except EmulationError as error:
            self._emulation_refused(notif, call, error.errno, str(error))
            return
        except OSError:  # the thread is gone
            self.listener.fail(notif.id, errno.ESRCH)
            return
        try:
            if not self.listener.id_valid(notif.id):
                return  # the thread is gone: those namespaces may be another process's
            tracee = path_call.identity

            def job() -> bytes:
                try:
                    joining.enter()
                except EmulationError as error:
                    return pickle.dumps(("refused", error.errno, str(error), []))
                own = Identity.own()  # the helper is the tracee now: nothing more to switch
                path_call.identity = Identity(own[0], own[1], own[2], own[3], own[4], own[5], tracee.umask)
                path_call.identity.domain = tracee.domain
                return pickle.dumps(_run_path_call(path_call))

            self.offload(notif, job,
                         lambda notif, output: self._finish_path_call(notif, call, path_call, pickle.loads(output)))
        finally:
            joining.close()

    def emulate_descriptor_stat(self, notif: Notification) -> None:
        """newfstatat/statx(fd, "", AT_EMPTY_PATH) made by systrace on the tracee's
        descriptor, the result written into the tracee (kernel/emulate_fstat.py): the
        kernel never reads the path again. While a FUSE file system exists anywhere the
        stat may wait on its server: a helper makes it."""
        form = descriptor_form(notif.nr, notif.args)
        if form is None:  # (translated as the descriptor form: flags the kernel refuses)
            self.listener.fail(notif.id, errno.EINVAL)
            return
        fd, _, flags, mask, out = form
        tid, nr = notif.pid, notif.nr
        try:
            outcome = _stat_outcome(tid, nr, fd, flags, mask, memory.fuse_present())
        except MayWait:
            self.offload(notif, lambda: _stat_outcome(tid, nr, fd, flags, mask),
                         lambda notif, output: self._finish_descriptor_stat(notif, out, output))
            return
        self._finish_descriptor_stat(notif, out, outcome)

    def _finish_descriptor_stat(self, notif: Notification, out: int, outcome: bytes) -> None:
        """Answer with `outcome` (_stat_outcome): the errno, or the result written first."""
        if outcome[:1] == b"E":
            self.listener.fail(notif.id, int(outcome[1:]))
            return
        if not self.listener.id_valid(notif.id):
            return  # the thread is gone: its id may name another process now, write nothing
        try:
            memory.write(notif.pid, out, outcome[1:])
        except OSError:
            self.listener.fail(notif.id, errno.EFAULT)  # where the kernel would write: EFAULT
            return
        self.listener.succeed(notif.id, 0)

    def _finish_path_call(self, notif: Notification, call: Call, path_call: PathCall,
                          outcome: tuple[str, int, str, list[tuple[int, bytes]]]) -> None:
        """Answer a path call with what running it gave: ("ok", result, "", writes),
        ("error", errno, "", []) or ("refused", errno, reason, [])."""
        kind, value, reason, writes = outcome
        if kind == "refused":
            self._emulation_refused(notif, call, value, reason)
            return
        if kind == "error":  # what the tracee's own call would have got
            self.listener.fail(notif.id, value)
            return
        path_call.writes = writes
        if path_call.writes and not self.listener.id_valid(notif.id):
            return  # the thread is gone: its id may name another process now, write nothing
        try:
            path_call.flush()
        except OSError as error:
            self.listener.fail(notif.id, error.errno if error.errno == errno.EFAULT else errno.EACCES)
            return
        self.listener.succeed(notif.id, value)

    def emulate_mount_call(self, notif: Notification, call: Call) -> None:
        """A mount-family call decided on what it reads from memory, made by a helper on
        what was checked (kernel/emulate_mount.py); answered when the helper is done."""
        usable, domain = self.landlock_domain(notif, call)
        if not usable:
            return
        if domain is not None:  # (the helper is outside it; its copy lives in a thread of ours)
            self._emulation_refused(notif, call, errno.EACCES, f"{call.name} in a Landlock domain of its own")
            return
        if call.name == "uselib":
            if mount_calls.uselib_exists():  # (not this kernel: CONFIG_USELIB is off here)
                self._emulation_refused(notif, call, errno.EACCES, "uselib reads its path again: not carried out")
            else:
                self.listener.fail(notif.id, errno.ENOSYS)  # as natively, whatever its path
            return
        if call.name not in mount_calls.CALLS:
            self._emulation_refused(notif, call, errno.EACCES, f"{call.name} decided on its path: not carried out "
                                                               "(SECURITY.md)")
            return
        translation = translation_of(call)
        strings: dict[str, bytes | None] = {}
        registers = mount_calls.STRING_REGISTERS.get(call.name, {})
        for name, value in translation.args:
            if name in registers:
                if isinstance(value, Unreadable):  # the kernel cannot read it either
                    self.listener.fail(notif.id, errno.EFAULT)
                    return
                strings[name] = None if call.args[registers[name]] == 0 else os.fsencode(value)
        targets = list(translation.targets)
        if call.name == "acct" and call.args[0] == 0:
            targets = [b""]  # accounting off
        if call.name == "quotactl" and call.args[1] == 0:
            targets[0] = b""  # no device: Q_SYNC of every file system (else ENODEV)
        try:
            identity = tracee_identity(self.session.processes.credentials_status(notif.pid, False))
            read = lambda address, size: memory.read(notif.pid, address, size)  # noqa: E731
            data = mount_calls.read_data(read, call.args[4]) if call.name == "mount" else \
                mount_calls.read_attr(read, call.args[3], call.args[4]) if call.name == "mount_setattr" else \
                mount_calls.read_quota_struct(read, call.args[0], call.args[3]) if call.name == "quotactl" else None
            number, access = mount_calls.read_bpf_attr(read, call.args[0], call.args[1], call.args[2]) \
                if call.name == "bpf" else (-1, 0)
            mount_call = mount_calls.MountCall(call.name, notif.pid, call.args, targets, strings, identity, data)
            mount_call.object_flags = access
            taken = number if call.name == "bpf" and call.args[0] & 0xFFFFFFFF == mount_calls.BPF_OBJ_PIN else \
                call.args[0] & 0xFFFFFFFF if call.name == "fsconfig" else -1  # (its fs context)
            if taken >= 0:
                try:
                    mount_call.object_fd = mount_call.take_descriptor(call.tgid, taken,
                                                                      errno.EINVAL if call.name == "bpf" else errno.EBADF)
                except BaseException:
                    mount_call.close()
                    raise
        except EmulationError as error:
            self._emulation_refused(notif, call, error.errno, str(error))
            return
        except OSError as error:
            self.listener.fail(notif.id, error.errno or errno.EIO)
            return

        def job() -> bytes:
            try:
                return b"R%d " % mount_call.run() + mount_call.written
            except EmulationError as error:
                return b"X%d " % error.errno + str(error).encode("utf-8", "replace")[:400]
            except OSError as error:
                return b"E%d" % (error.errno or errno.EIO)

        try:
            if not self.listener.id_valid(notif.id):
                return  # the thread is gone: what was read may be another process's
            if call.name == "fsopen" or call.name == "bpf" and call.args[0] & 0xFFFFFFFF != mount_calls.BPF_OBJ_PIN:
                # BPF_OBJ_GET, fsopen: the helper passes the new descriptor back, installed with ADDFD
                self.defer_open(defer_job(notif.id, notif.pid, self.listener.fileno(), mount_call.run), call)
                return
            self.offload(notif, job, lambda notif, output: self._finish_mount_call(notif, call, output))
        finally:
            mount_call.close()

    def _finish_mount_call(self, notif: Notification, call: Call, output: bytes) -> None:
        kind, rest = output[:1], output[1:]
        if kind == b"R":
            value, _, written = rest.partition(b" ")
            if written:  # (quotactl's struct, written by the call into the helper's copy)
                try:
                    memory.write(notif.pid, call.args[3], written)
                except OSError:
                    self.listener.fail(notif.id, errno.EFAULT)  # as the kernel's copy to the caller
                    return
            self.listener.succeed(notif.id, int(value))
        elif kind == b"E":
            self.listener.fail(notif.id, int(rest))
        else:
            code, _, reason = rest.partition(b" ")
            self._emulation_refused(notif, call, int(code), reason.decode("utf-8", "replace"))

    def emulate_string_call(self, notif: Notification, call: Call) -> None:
        """A call decided on a string that is not a path, made on the copy the check read
        (kernel/emulate_strings.py): memfd_create here, the others by a helper in the
        caller's namespaces; answered (and a descriptor installed) when it is done."""
        translation = translation_of(call)
        values = [value for name, value in translation.args if name in ("name",)]
        if not values:
            raise RuntimeError(f"{call.name}: no string to carry out")
        value = values[0]
        out_of_range = call.name in ("sethostname", "setdomainname") and not 0 <= abi.s32(call.args[1]) <= 64
        if call.args[0] == 0 or isinstance(value, Unreadable) and not out_of_range:
            self.listener.fail(notif.id, errno.EFAULT)  # the kernel cannot read it either
            return
        string = b"" if out_of_range else os.fsencode(value)
        status = self.session.processes.credentials_status(notif.pid, call.name in ("memfd_create", "mq_open"))
        try:
            if call.name == "memfd_create":
                fd = string_calls.memfd_create(notif.pid, string, call.args[1] & 0xFFFFFFFF,
                                               tracee_identity(status, notif.pid))
                self._install(notif, call, fd, os.O_CLOEXEC if call.args[1] & string_calls.MFD_CLOEXEC else 0)
                return
            if call.name == "delete_module" and string_calls.kernel_lacks(call.name):
                self.listener.fail(notif.id, errno.ENOSYS)  # as natively, whatever its name
                return
            if call.name == "delete_module" and not string_calls.may_delete_module(status, notif.pid):
                self.listener.fail(notif.id, errno.EPERM)  # as natively: no CAP_SYS_MODULE here
                return
            attr = limit = None
            if call.name == "mq_open":
                attr = string_calls.read_mq_attr(lambda address, size: memory.read(notif.pid, address, size),
                                                 call.args[3], call.args[1])
                if call.args[1] & os.O_CREAT:
                    limit = string_calls.msgqueue_limit(call.tgid)
            string_call = string_calls.StringCall(call.name, call.args, string, status, attr, limit)
            joining = None if call.name == "delete_module" else string_calls.joining_for(notif.pid, call.name, status)
        except (EmulationError, OSError) as error:
            self._refused_or_failed(notif, call, error)
            return
        try:
            if not self.listener.id_valid(notif.id):
                return  # the thread is gone: its namespaces may be another process's
            if call.name == "mq_open":
                self.defer_open(string_calls.in_helper_fd(notif.id, notif.pid, self.listener.fileno(), string_call,
                                                          joining), call)
            else:
                self.offload(notif, lambda: string_calls.in_helper(string_call, joining),
                             lambda notif, output: self._finish_mount_call(notif, call, output))
        finally:
            if joining is not None:
                joining.close()

    def _refused_or_failed(self, notif: Notification, call: Call, error: OSError | EmulationError) -> None:
        """Answer a call that could not be carried out: refused (EmulationError, logged),
        or the error the tracee's own call would have got (OSError)."""
        if isinstance(error, EmulationError):
            self._emulation_refused(notif, call, error.errno, str(error))
        else:
            self.listener.fail(notif.id, error.errno or errno.EIO)

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
        if translation.sockaddr_path is not None and self.may_block(translation.sockaddr_path, notif.pid,
                                                                                 translation.open_root):
            self.socket_call_elsewhere(notif, call, pidfd, address, identity)
            return
        try:
            result = socket_calls.socket_call(call.name, pidfd, translation.sockfd, address, notif.id, identity,
                                              translation.sockaddr_path, notif.pid, translation.open_root)
        except EmulationError as error:
            self._emulation_refused(notif, call, error.errno, str(error))
            return
        finally:
            os.close(pidfd)
        if isinstance(result, socket_calls.Pending):
            self.pending_callers[result.fd] = call.tgid
            self.pending[result.fd] = result
            self.poller.register(result.fd, select.POLLIN)
        else:
            self._answer_result(notif.id, result)

    def socket_call_elsewhere(self, notif: Notification, call: Call, pidfd: int, address: bytes,
                              identity: Identity) -> None:
        """A unix socket on FUSE: its lookups may wait on the daemon, so a helper makes
        the whole call (and waits for a blocking connect itself); answered when it ends."""
        if identity.domain is not None:  # (the copy of a domain lives in a thread of ours: no helper has it)
            os.close(pidfd)
            self._emulation_refused(notif, call, errno.EACCES, "a unix socket on a FUSE mount, in a Landlock domain")
            return
        translation = translation_of(call)

        def job() -> bytes:
            try:
                result = socket_calls.socket_call(call.name, pidfd, translation.sockfd, address, notif.id, identity,
                                                  translation.sockaddr_path, notif.pid, translation.open_root)
                if isinstance(result, socket_calls.Pending):
                    result = result.result()
            except EmulationError as error:
                result = error.errno
            return result.to_bytes(4, "little", signed=True)

        try:
            self.offload(notif, job, lambda notif, output: self._answer_result(
                notif.id, int.from_bytes(output, "little", signed=True)))
        finally:
            os.close(pidfd)

    def finish_socket_call(self, pending: Pending) -> None:
        self.poller.unregister(pending.fd)
        self.pending_callers.pop(pending.fd, None)
        self._answer_result(pending.notif_id, pending.result())

    # -- sends to a destination ------------------------------------------------------------
    def emulate_send(self, notif: Notification, call: Call) -> None:
        """sendto/sendmsg/sendmmsg to the destination that was checked, on the tracee's own
        socket, as the tracee (kernel/send.py), in the copy of its own Landlock domain."""
        usable, domain = self.landlock_domain(notif, call)
        if not usable:
            return
        translation = translation_of(call)
        if domain is not None and domain.scopes_abstract_unix \
                and any(name[:3] == b"\x01\x00\x00" for name in translation.send_names):
            # an abstract name, in a domain that scopes them: only the tracee's own kernel
            # call knows which receivers are inside its domain (as for connect; SECURITY.md)
            self.listener.allow(notif.id)
            return
        on_fuse = translation.sockaddr_path is not None and self.may_block(translation.sockaddr_path, notif.pid,
                                                                           translation.open_root)
        if on_fuse and domain is not None:  # (the copy of a domain lives in a thread of ours: no helper has it)
            self._emulation_refused(notif, call, errno.EACCES, "a send to a unix socket on a FUSE mount, in a Landlock domain")
            return
        status = self.session.processes.status_bytes(notif.pid)
        try:
            identity = tracee_identity(status, notif.pid)
            identity.domain = domain
            send = sends.SendCall(call.name, notif.pid, call.tgid, call.args, translation.send_names,
                                  translation.sockaddr_path, translation.open_root, identity, status)
            pidfd = os.pidfd_open(call.tgid)
        except EmulationError as error:
            self._emulation_refused(notif, call, error.errno, str(error))
            return
        except OSError:
            return  # the process is gone: nothing to answer
        if on_fuse:
            self.send_elsewhere(notif, send, pidfd)
            return
        try:
            outcome = send.run(pidfd, notif.id)
        except EmulationError as error:
            self._emulation_refused(notif, call, error.errno, str(error))
            return
        finally:
            os.close(pidfd)
        if isinstance(outcome, sends.PendingSend):  # it waits: a helper sends, we keep serving
            for watched in outcome.fds():
                self.pending_sends[watched] = (outcome, send)
                self.poller.register(watched, select.POLLIN)
        else:
            self.finish_send(outcome, send)

    def send_elsewhere(self, notif: Notification, send: SendCall, pidfd: int) -> None:
        """A send to a unix name on FUSE: its lookups may wait on the daemon, so a helper
        makes the sends (and waits for a blocking one itself) on the message read here;
        answered when it ends, as a connect there is."""
        try:
            failed = send.read_first(pidfd)
            if failed is not None:
                send.notif_id = notif.id
                self.finish_send(failed, send)
                return

            def job() -> bytes:
                try:
                    outcome = send.run(pidfd, notif.id)
                    if isinstance(outcome, sends.PendingSend):
                        outcome = outcome.result()
                except EmulationError as error:
                    outcome = sends.Outcome(error=error.errno)
                return outcome.to_bytes()

            send.notif_id = notif.id
            self.offload(notif, job, lambda notif, output: self.finish_send(sends.Outcome.from_bytes(output), send))
        finally:
            os.close(pidfd)

    def finish_pending_send_safely(self, ready_fd: int) -> None:
        send = self.pending_sends[ready_fd][1]
        try:
            self.finish_pending_send(ready_fd)
        except Exception as error:  # noqa: BLE001 - fail closed, keep serving
            self.session.log.message(f"internal error finishing a send of pid {send.tid}: {error!r}; denied",
                                     event="error", pid=send.tid, syscall=send.name)
            try:
                self.listener.fail(send.notif_id, errno.EPERM)
            except OSError:
                pass

    def finish_pending_send(self, ready_fd: int, cancel: bool = False) -> None:
        """A helper's sends are done (answer with them), or their caller is gone (stop it)."""
        pending, send = self.pending_sends[ready_fd]
        for watched in pending.fds():
            del self.pending_sends[watched]
            self.poller.unregister(watched)
        if cancel or ready_fd != pending.fd:
            pending.cancel()
        else:
            self.finish_send(pending.result(), send)

    def finish_send(self, outcome: Outcome, send: SendCall) -> None:
        notif_id = send.notif_id
        if not self.listener.id_valid(notif_id):
            return  # the thread is gone: its id may name another process now, write nothing
        value, code = send.answer(outcome)
        if code:
            self.listener.fail(notif_id, code)
        else:
            self.listener.succeed(notif_id, value)

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
    EMULATE_PATH: Effects.emulate_path_call, EMULATE_SEND: Effects.emulate_send,
    EMULATE_OPEN_AS: Effects.emulate_open_as, EMULATE_HANDLE: Effects.emulate_open_by_handle,
    EMULATE_MOUNT: Effects.emulate_mount_call, EMULATE_STRING: Effects.emulate_string_call}


def _stat_outcome(tid: int, nr: int, fd: int, flags: int, mask: int, served_exist: bool = False) -> bytes:
    """b"R" + the result of stat_descriptor, or b"E" + the errno (bytes: a helper's too).
    MayWait: on a served file system (then a helper makes it)."""
    try:
        return b"R" + stat_descriptor(tid, nr, fd, flags, mask, served_exist)
    except OSError as error:
        return b"E%d" % (error.errno or errno.EIO)


def _run_path_call(path_call: PathCall) -> tuple[str, int, str, list[tuple[int, bytes]]]:
    """Run it (here, or in a helper): see Effects._finish_path_call."""
    try:
        result = path_call.run()
    except EmulationError as error:
        return "refused", error.errno, str(error), []
    except OSError as error:
        return "error", error.errno or errno.EIO, "", []
    return "ok", result, "", path_call.writes


def _raw_path(call: Call) -> tuple[bytes, int]:
    """The path an open names and its directory descriptor, read from the tracee (for an
    open made in its own view: what it opens is checked after, not this string)."""
    if call.name in ("openat", "openat2"):
        return memory.read_cstring(call.tid, call.args[1]), abi.s32(call.args[0])
    return memory.read_cstring(call.tid, call.args[0]), -100


def _other_pid_namespace(tid: int) -> bool:
    try:
        return os.readlink(f"/proc/{tid}/ns/pid") != os.readlink("/proc/self/ns/pid")
    except OSError:
        return False  # cannot tell: systrace's pids are refused (the stricter answer)


def translation_of(call: Call) -> Translated:
    """The translation an effect carries out. Deciders translate every call they permit
    on its arguments; a call without one cannot be carried out faithfully: raising here
    denies it (the loop fails closed)."""
    if call.translation is None:
        raise RuntimeError(f"{call.name}: no translation to carry out")
    return call.translation


_OUTSIDE = "/proc/" + OUTSIDE_RUN


def _names_outside_the_run(call: Call) -> bool:
    """Does the call act below /proc/PID of a process outside the run (as translated)?"""
    translation = call.translation
    return translation is not None and bool(translation.proc_pins) and any(
        isinstance(value, str) and _OUTSIDE in value for _, value in translation.args)


def _readable(fd: int) -> bool:
    """Is `fd` readable now? (poll, not select(): a descriptor may be numbered past 1023)"""
    ready = select.poll()
    ready.register(fd, select.POLLIN)
    return bool(ready.poll(0))
