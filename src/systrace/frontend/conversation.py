"""The ask conversation as a pure state machine (no I/O, no clock), as h11 treats HTTP.

One Conversation per frontend connection (a terminal, a program's socket); its buffer
outlives a question, since a frontend may write ahead. The caller does the I/O:

    out = conversation.question(line)         bytes to write: the question (and a prompt)
    conversation.receive_data(chunk)          what was read; b"" is end of input
    event = conversation.next_event()         an Answer, or NEED_DATA
    out = conversation.accept()               OKAY: the question is settled
    out = conversation.reject(["Parse error."])  the reply lines and WRONG: answer again

The frontend's answer line is at most `max_line` bytes: a longer one is a protocol error,
so a frontend that writes without a newline cannot grow systrace. After `max_rounds`
rejected answers the frontend is taken to be confused (FrontendGone)."""

from __future__ import annotations

from . import protocol
from .errors import FrontendGone, ProtocolError

MAX_LINE = 64 * 1024  # bytes in one answer line
MAX_ROUNDS = 50  # answers to one question before giving up (a confused frontend)

IDLE, AWAITING, DECIDING = "idle", "awaiting an answer", "deciding"


class NeedData:
    """next_event()'s answer when no complete line has been received yet."""

    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = NeedData()


class Conversation:
    def __init__(self, prompt: bytes = b"", eof_message: str = "end of input", max_line: int = MAX_LINE,
                 max_rounds: int = MAX_ROUNDS):
        self.prompt = prompt  # written before each answer is read (the terminal's "Answer: ")
        self.eof_message = eof_message
        self.max_line = max_line
        self.max_rounds = max_rounds
        self.state = IDLE
        self.prompt_only = False
        self.rounds = 0
        self._buffer = b""
        self._eof = False

    # -- what systrace says ---------------------------------------------------------------
    def question(self, text: str, prompt_only: bool = False) -> bytes:
        """Start a question; prompt_only: an `ask` rule's prompt takes only permit or deny."""
        if self.state != IDLE:
            raise RuntimeError(f"a question while {self.state}")
        self.state, self.prompt_only, self.rounds = AWAITING, prompt_only, 0
        return _line(text) + self.prompt

    def accept(self) -> bytes:
        """The answer settled the question."""
        self._expect(DECIDING)
        self.state = IDLE
        return _line(protocol.OKAY)

    def reject(self, reply: list[str]) -> bytes:
        """The answer did not settle it: say why, then WRONG, and wait for another."""
        self._expect(DECIDING)
        if self.rounds >= self.max_rounds:
            self.state = IDLE
            raise FrontendGone("too many answers to one question")
        self.state = AWAITING
        return b"".join(_line(text) for text in reply) + _line(protocol.WRONG) + self.prompt

    def abandon(self) -> None:
        """The question ended without an answer (timeout, signal): the next one starts afresh."""
        self.state = IDLE

    @staticmethod
    def notice(text: str) -> bytes:
        """A line outside the exchange (the terminal's "(no answer: denied)")."""
        return _line(text)

    # -- what the frontend says -----------------------------------------------------------
    def receive_data(self, data: bytes) -> None:
        if not data:
            self._eof = True
        self._buffer += data

    def discard(self) -> None:
        """Forget what was received and not read (typed for a question that ended)."""
        self._buffer = b""

    def reset(self) -> None:
        """A new connection (the frontend was (re)started)."""
        self.state = IDLE
        self.prompt_only = False
        self.rounds = 0
        self._buffer = b""
        self._eof = False

    def next_event(self) -> protocol.Answer | NeedData:
        self._expect(AWAITING)
        line, newline, rest = self._buffer.partition(b"\n")
        if not newline:
            if len(self._buffer) > self.max_line:
                self._buffer = b""
                raise ProtocolError(f"an answer longer than {self.max_line} bytes")
            if self._eof:
                raise FrontendGone(self.eof_message)
            return NEED_DATA
        self._buffer = rest
        if len(line) > self.max_line:
            raise ProtocolError(f"an answer longer than {self.max_line} bytes")
        self.rounds += 1
        self.state = DECIDING
        text = line.decode("utf-8", "surrogateescape").rstrip("\r")
        return protocol.prompt_answer(text) if self.prompt_only else protocol.parse_answer(text)

    def _expect(self, state: str) -> None:
        if self.state != state:
            raise RuntimeError(f"expected to be {state}, not {self.state}")


def _line(text: str) -> bytes:
    return (text + "\n").encode("utf-8", "surrogateescape")
