"""What the supervisor needs of a seccomp notification listener, as a Protocol:
kernel/notify.py's Listener is the real one; tests drive the supervisor with an in-memory
one (tests/fakes.py). Only imported for type checking (typing costs start-up time)."""

from __future__ import annotations

from typing import Protocol

from .notify import Notification


class Listener(Protocol):
    def fileno(self) -> int: ...

    def recv(self) -> Notification | None:
        """The next notification; None when its caller went away before it was read."""

    def recv_brief(self) -> tuple[int, int, int] | None:
        """(id, pid, nr) of the next notification (None: as recv); last() makes it whole."""

    def last(self) -> Notification:
        """The notification recv_brief received last."""

    def id_valid(self, notif_id: int) -> bool:
        """Is the notification still pending (its thread alive, its call not interrupted)?"""

    def allow(self, notif_id: int) -> bool:
        """CONTINUE. Each answer returns False when the notification is gone."""

    def fail(self, notif_id: int, errno_value: int) -> bool: ...

    def succeed(self, notif_id: int, value: int) -> bool: ...

    def add_fd(self, notif_id: int, srcfd: int, cloexec: bool, send: bool = False) -> int | None:
        """Install srcfd in the tracee; its number there, or None when the call is gone."""
