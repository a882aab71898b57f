"""Where questions go: the controlling terminal (-t) or a frontend program (-g) that gets
a socketpair as its stdin and stdout, like the original's xsystrace."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from typing import Protocol

from ..kernel.wakeup import unpin
from .errors import FrontendGone


class Transport(Protocol):
    def ask(self, question: str) -> str: ...
    def tell(self, line: str) -> None: ...
    def read_answer(self) -> str: ...
    def restart(self) -> None: ...
    def close(self) -> None: ...


class TerminalTransport:
    """Questions on /dev/tty, so the tracee keeps its own stdin and stdout."""

    def __init__(self, path: str = "/dev/tty"):
        self.path = path
        self.reader = self.writer = None
        self.restart()

    def restart(self) -> None:
        self.close()
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as error:
            raise FrontendGone(f"{self.path}: {error.strerror}") from None
        # a terminal is not seekable: one stream each way
        self.reader = os.fdopen(fd, "r", encoding="utf-8", errors="surrogateescape")
        self.writer = os.fdopen(os.dup(fd), "w", encoding="utf-8", errors="surrogateescape")

    def ask(self, question: str) -> str:
        self.tell(question)
        return self.read_answer()

    def tell(self, line: str) -> None:
        try:
            self.writer.write(line + "\n")
            self.writer.flush()
        except OSError as error:
            raise FrontendGone(str(error)) from None

    def read_answer(self) -> str:
        try:
            self.writer.write("Answer: ")
            self.writer.flush()
            line = self.reader.readline()
        except OSError as error:
            raise FrontendGone(str(error)) from None
        if not line:
            raise FrontendGone("end of input on the terminal")
        return line.rstrip("\n")

    def close(self) -> None:
        for stream in (self.reader, self.writer):
            if stream is not None:
                stream.close()
        self.reader = self.writer = None


class ProgramTransport:
    """A frontend program with a socketpair as its stdin and stdout."""

    def __init__(self, argv: list[str]):
        self.argv = argv
        self.process: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.reader = None
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
        self.sock = ours
        self.reader = ours.makefile("r", encoding="utf-8", errors="surrogateescape", newline="\n")

    def ask(self, question: str) -> str:
        self.tell(question)
        return self.read_answer()

    def tell(self, line: str) -> None:
        try:
            self.sock.sendall((line + "\n").encode("utf-8", "surrogateescape"))
        except OSError as error:  # EPIPE, ECONNRESET: the frontend is gone
            raise FrontendGone(str(error)) from None

    def read_answer(self) -> str:
        try:
            line = self.reader.readline()
        except OSError as error:
            raise FrontendGone(str(error)) from None
        if not line:
            raise FrontendGone("EOF on policy input request")
        return line.rstrip("\n")

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except (subprocess.TimeoutExpired, ChildProcessError):
                self.process.kill()
            self.process = None


def _unblock_signals() -> None:
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    unpin()  # a frontend started during supervision gets systrace's CPUs back
