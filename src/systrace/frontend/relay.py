"""Where the run's asynchronous signals meet the parts that wait for or watch the command.

The relay is made first, before either side. Wiring builds the deciders before the launch
(a frontend that cannot start is reported before anything runs), but the signalfd is read
and the command exists only from the launch on. So the parts built first are given the
relay and declare their interests in it when they are built (-t's job control: the
command at its launch, each SIGCHLD after); the supervisor's signal handling
(children.py) is given the same relay at the launch and serves them; a question's Waiter
reads signals through it while it waits and hands them to that same handling. Nothing is
attached to a decider after it is built (issue 16: no cycle closed after construction)."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable

Signals = list[tuple[int, int, int]]  # (number, si_code, sender pid)


def _no_signals() -> Signals:
    return []


def _serve_nothing(signals: Signals) -> None:
    pass


class SignalRelay:
    def __init__(self) -> None:
        self._at_launch: list[Callable[[int, int], None]] = []
        self._after_child_event: list[Callable[[], None]] = []
        self._fd = -1  # until the launch: nothing to read, nobody to serve
        self._read: Callable[[], Signals] = _no_signals
        self._serve: Callable[[Signals], None] = _serve_nothing

    # -- interests, declared by the parts built before the launch ------------------------
    def at_launch(self, hook: Callable[[int, int], None]) -> None:
        """Call `hook(child_pid, child_pidfd)` at the launch, before the command execs."""
        self._at_launch.append(hook)

    def after_child_event(self, hook: Callable[[], None]) -> None:
        """Call `hook()` after each SIGCHLD: whoever declares this owns the command's stops."""
        self._after_child_event.append(hook)

    @property
    def watches_stops(self) -> bool:
        return bool(self._after_child_event)

    # -- the supervisor's signal handling, at the launch ---------------------------------
    def launched(self, child_pid: int, child_pidfd: int, signal_fd: int, read: Callable[[], Signals],
                 serve: Callable[[Signals], None]) -> None:
        """The command runs (not exec'd yet); signals come from `signal_fd`, read with
        `read` and served with `serve`."""
        self._fd, self._read, self._serve = signal_fd, read, serve
        for hook in self._at_launch:
            hook(child_pid, child_pidfd)

    def child_event(self) -> None:
        for hook in self._after_child_event:
            hook()

    # -- for whoever waits meanwhile (a question) ----------------------------------------
    def fileno(self) -> int:
        """The signalfd to poll (-1 before the launch)."""
        return self._fd

    def read(self) -> Signals:
        return self._read()

    def serve(self, signals: Signals) -> None:
        """Serve signals read while waiting as the supervisor serves them."""
        self._serve(signals)
