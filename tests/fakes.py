"""In-memory stand-ins for the pipeline's seams, for in-process tests without a tracee:
a seccomp listener (kernel/listening.py's protocol), a frontend connection (a transport
around frontend/conversation.py's state machine), a clock."""

from __future__ import annotations

import os

from systrace.frontend.conversation import Conversation
from systrace.frontend.errors import NoAnswer
from systrace.kernel.notify import Notification
from systrace.log import Sink

X86_64 = 0xC000003E


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeListener:
    """Notifications queued by the test; every answer recorded in `sent` as
    (what, id, value): ("allow", id, 0), ("fail", id, errno), ("succeed", id, value),
    ("addfd", id, tracee fd). Its fileno is readable while notifications are queued and
    hangs up (POLLHUP) once `hang_up()` is called and the queue is empty, as the kernel's
    listener does when no supervised task is left."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, int, int]] = []
        self.queue: list[Notification] = []
        self.gone: set[int] = set()  # ids whose thread went away (id_valid False, answers fail)
        self.next_fd = 3  # the fd number the next ADDFD gives in the "tracee"
        self.installed: list[tuple[int, bool]] = []  # (what the fd pointed to: inode, cloexec)
        self._read, self._write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._next_id = 1

    def push(self, nr: int, pid: int | None = None, args: tuple[int, ...] = (0,) * 6) -> Notification:
        notif = Notification(self._next_id, os.getpid() if pid is None else pid, 0, nr, X86_64, 0,
                             tuple(args) + (0,) * (6 - len(args)))
        self._next_id += 1
        self.queue.append(notif)
        os.write(self._write, b"n")
        return notif

    def hang_up(self) -> None:
        if self._write >= 0:
            os.close(self._write)
            self._write = -1

    def close(self) -> None:
        self.hang_up()
        if self._read >= 0:
            os.close(self._read)
            self._read = -1

    # -- the protocol ----------------------------------------------------------------------
    def fileno(self) -> int:
        return self._read

    def recv(self) -> Notification | None:
        os.read(self._read, 1)
        self._last = self.queue.pop(0)
        return self._last

    def recv_brief(self) -> tuple[int, int, int] | None:
        notif = self.recv()
        return None if notif is None else (notif.id, notif.pid, notif.nr)

    def last(self) -> Notification:
        return self._last

    def id_valid(self, notif_id: int) -> bool:
        return notif_id not in self.gone

    def allow(self, notif_id: int) -> bool:
        return self._answer("allow", notif_id, 0)

    def fail(self, notif_id: int, errno_value: int) -> bool:
        if errno_value <= 0:
            raise ValueError(f"errno must be positive, not {errno_value}")
        return self._answer("fail", notif_id, errno_value)

    def succeed(self, notif_id: int, value: int) -> bool:
        return self._answer("succeed", notif_id, value)

    def add_fd(self, notif_id: int, srcfd: int, cloexec: bool, send: bool = False) -> int | None:
        if notif_id in self.gone:
            return None
        number = self.next_fd
        self.next_fd += 1
        self.installed.append((os.fstat(srcfd).st_ino, cloexec))
        self.sent.append(("addfd", notif_id, number))
        return number

    def _answer(self, what: str, notif_id: int, value: int) -> bool:
        if notif_id in self.gone:
            return False
        self.sent.append((what, notif_id, value))
        return True


class FakeFrontend:
    """A transport to a scripted frontend: each answer it is asked for is the next line
    of `answers`; None stands for a frontend that does not answer (the clock passes the
    deadline); when the script runs out the frontend hangs up (end of input). What
    systrace wrote is in `lines`."""

    def __init__(self, answers: list[str | None], clock: FakeClock | None = None, prompt: bytes = b""):
        self.answers = list(answers)
        self.clock = clock or FakeClock()
        self.conversation = Conversation(prompt, "EOF on policy input request")
        self.written = b""
        self.began = self.ended = self.closed = self.restarts = 0

    @property
    def lines(self) -> list[str]:
        return self.written.decode().splitlines()

    def begin(self) -> None:
        self.began += 1

    def end(self) -> None:
        self.ended += 1

    def send(self, data: bytes) -> None:
        self.written += data

    def receive(self, deadline: float | None) -> bytes:
        if not self.answers:
            return b""
        answer = self.answers.pop(0)
        if answer is None:
            if deadline is None:
                raise AssertionError("a question without a deadline would wait for ever")
            self.clock.now = deadline
            raise NoAnswer
        return (answer + "\n").encode()

    def restart(self) -> None:
        self.restarts += 1
        self.conversation.reset()

    def close(self) -> None:
        self.closed += 1


class ListSink(Sink):
    """A log sink that keeps (message, fields) in memory."""

    name = "memory"

    def __init__(self) -> None:
        super().__init__(json_lines=False)
        self.records: list[tuple[str, dict[str, object]]] = []

    def write(self, message: str, fields: dict[str, object]) -> None:
        self.records.append((message, fields))

    @property
    def messages(self) -> list[str]:
        return [message for message, _ in self.records]
