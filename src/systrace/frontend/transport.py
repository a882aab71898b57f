"""Where questions go: the controlling terminal (-t) or a frontend program (-g) that gets
a socketpair as its stdin and stdout, like the original's xsystrace.

Transports only move bytes; what the bytes mean (the question, OKAY/WRONG, answer lines
and their limits) is the Conversation's (frontend/conversation.py), which each transport
carries for its connection. Nothing here blocks: reads and writes wait in a Waiter (poll
on the descriptor, the signalfd and a deadline)."""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import termios
from typing import Protocol

from ..kernel.wakeup import unpin
from .conversation import MAX_LINE, Conversation
from .errors import FrontendGone, NoAnswer
from .waiting import Waiter

WRITE_TIMEOUT = 10.0  # seconds a question may take to be written (a frontend that never reads)


class Transport(Protocol):
    conversation: Conversation  # the protocol state of this connection

    def begin(self) -> None: ...
    def end(self) -> None: ...
    def send(self, data: bytes) -> None: ...
    def receive(self, deadline: float | None) -> bytes: ...
    def restart(self) -> None: ...
    def close(self) -> None: ...


class _Bytes:
    """Writing and reading on a non-blocking descriptor, through a Waiter."""

    def __init__(self, waiter: Waiter | None, what: str, conversation: Conversation):
        self.waiter = waiter or Waiter()
        self.what = what
        self.conversation = conversation
        self.fd = -1

    def send(self, data: bytes) -> None:
        deadline = self.waiter.clock() + WRITE_TIMEOUT
        while data:
            try:
                written = os.write(self.fd, data)
            except BlockingIOError:
                try:
                    self.waiter.wait(self.fd, select.POLLOUT, deadline)
                except NoAnswer:
                    raise FrontendGone(f"{self.what} does not read its questions") from None
                continue
            except OSError as error:  # EPIPE, ECONNRESET, EIO: gone
                raise FrontendGone(error.strerror or str(error)) from None
            data = data[written:]

    def receive(self, deadline: float | None) -> bytes:
        """What can be read, waiting until `deadline` (raises NoAnswer); b"": end of input."""
        while True:
            try:
                return os.read(self.fd, MAX_LINE + 1)
            except BlockingIOError:
                self.waiter.wait(self.fd, select.POLLIN, deadline)
            except OSError as error:
                raise FrontendGone(error.strerror or str(error)) from None


class TerminalTransport(_Bytes):
    """Questions on /dev/tty, so the tracee keeps its own stdin and stdout. With job
    control, systrace owns the terminal while a question waits (frontend/terminal.py)."""

    def __init__(self, path: str = "/dev/tty", waiter: Waiter | None = None, job=None):
        super().__init__(waiter, path, Conversation(b"Answer: ", "end of input on the terminal"))
        self.path = path
        self.job = job  # a terminal.JobControl, or None
        self.previous: int | None = None
        self.restart()

    def restart(self) -> None:
        self.close()
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as error:
            raise FrontendGone(f"{self.path}: {error.strerror}") from None

    def begin(self) -> None:
        if self.job is not None:
            self.previous = self.job.take()
            self.waiter.owns_terminal = True

    def end(self) -> None:
        if self.job is not None:
            self.waiter.owns_terminal = False
            self.job.give_back(self.previous)
            self.previous = None

    def discard_input(self) -> None:
        """After a question ends unanswered: what was typed for it is not the next answer."""
        self.conversation.discard()
        try:
            termios.tcflush(self.fd, termios.TCIFLUSH)
        except termios.error:
            pass

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class ProgramTransport(_Bytes):
    """A frontend program with a socketpair as its stdin and stdout."""

    def __init__(self, argv: list[str], waiter: Waiter | None = None):
        super().__init__(waiter, argv[0], Conversation(b"", "EOF on policy input request"))
        self.argv = argv
        self.process: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.restart()

    def restart(self) -> None:
        self.close()
        ours, theirs = socket.socketpair()
        try:
            # the supervisor blocks signals for its signalfd; the frontend must not inherit
            # that (preexec_fn is safe here: the supervisor is single-threaded)
            self.process = subprocess.Popen(self.argv, stdin=theirs.fileno(), stdout=theirs.fileno(), close_fds=True,
                                            preexec_fn=_unblock_signals)
        except OSError as error:
            ours.close()
            raise FrontendGone(f"{self.argv[0]}: {error.strerror}") from None
        finally:
            theirs.close()
        ours.setblocking(False)
        self.sock = ours
        self.fd = ours.fileno()
        self.conversation.reset()

    def begin(self) -> None:
        pass

    def end(self) -> None:
        pass

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
            self.fd = -1
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except (subprocess.TimeoutExpired, ChildProcessError):
                self.process.kill()
                try:
                    self.process.wait(timeout=5)
                except (subprocess.TimeoutExpired, ChildProcessError):
                    pass
            self.process = None


def _unblock_signals() -> None:
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    unpin()  # a frontend started during supervision gets systrace's CPUs back
