"""How a question waits: poll() on the answer's descriptor, systrace's signalfd and a
deadline, never a blocking read. Signals that arrive meanwhile are read through the
run's SignalRelay (frontend/relay.py) and served as the supervisor serves them (children
reaped, signals passed on to the command); one that asks systrace to stop abandons the
question."""

from __future__ import annotations

import select
import signal
import time
from collections.abc import Callable

from ..kernel import watchdog
from .errors import Abandoned, Interrupted, NoAnswer
from .relay import SignalRelay

SI_KERNEL = 0x80  # sent by the kernel: for SIGINT, the terminal's Ctrl-C
ENDING = frozenset((signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT))


class Waiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic, relay: SignalRelay | None = None) -> None:
        self.clock = clock  # the deadlines it is given are on this clock (tests inject one)
        self.relay = SignalRelay() if relay is None else relay  # the signalfd, once the command is launched
        self.owns_terminal = False  # Ctrl-C reaches systrace alone: it means "end the run"

    def wait(self, fd: int, events: int, deadline: float | None) -> None:
        """Return when `fd` is ready for `events` (or hung up: the caller's read or write
        says so). Raises NoAnswer at the deadline, Abandoned or Interrupted for a signal."""
        poller = select.poll()
        poller.register(fd, events)
        signal_fd = self.relay.fileno()
        if signal_fd >= 0:
            poller.register(signal_fd, select.POLLIN)
        while True:
            timeout = None
            if deadline is not None:
                left = deadline - self.clock()
                if left <= 0:
                    raise NoAnswer
                timeout = int(left * 1000) + 1
            held = watchdog.pause()  # a wait made on purpose: not one the watchdog ends
            try:
                ready_now = poller.poll(timeout)
            finally:
                watchdog.resume(held)
            for ready, _ in ready_now:
                if ready == fd:
                    return
                self._on_signals()

    def _on_signals(self) -> None:
        for number, code, sender in self.relay.read():
            if number == signal.SIGINT and code == SI_KERNEL and self.owns_terminal:
                raise Interrupted
            self.relay.serve([(number, code, sender)])
            if number in ENDING:
                raise Abandoned(signal.Signals(number).name)
