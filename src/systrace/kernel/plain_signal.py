"""The signal module's functions and numbers without its enum classes (start-up time,
issue 16: `import signal` imports enum, functools and collections, about 8 M
instructions of the interpreter's start-up; `_signal` is what it wraps).

    from .plain_signal import signal   # signal.SIGKILL, signal.pthread_sigmask(...)

The numbers are plain ints, and pthread_sigmask, sigpending and valid_signals return
sets of ints (the signal module turns them into Signals members). Type checkers see the
signal module."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    import signal as signal
else:
    import _signal as signal

pidfd_send_signal = signal.pidfd_send_signal

# what signal.Signals enumerates: every name SIGxxx (not SIG_xxx) of the platform; a number
# with two names (SIGABRT, SIGIOT) is called by the first in order, as the enum does
SIGNAL_NUMBERS: dict[str, int] = {name: getattr(signal, name) for name in sorted(dir(signal))
                                  if name.startswith("SIG") and not name.startswith("SIG_")}
SIGNAL_NAMES: dict[int, str] = {}
for _name, _number in sorted(SIGNAL_NUMBERS.items(), key=lambda item: (item[1], item[0])):
    SIGNAL_NAMES.setdefault(_number, _name)
NAMED_SIGNALS = frozenset(SIGNAL_NAMES)
