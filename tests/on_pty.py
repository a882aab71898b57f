"""Running a command on a new pseudo-terminal, as its session leader (shared by tests)."""

from __future__ import annotations

import os
import pty


def fork_on_pty(argv: list[str], env: dict[str, str]) -> tuple[int, int]:
    """(pid, master): argv runs as the session leader of a new pseudo-terminal, which is
    its controlling terminal (systrace's, or the native parent's)."""
    pid, master = pty.fork()
    if pid == 0:
        try:
            os.execvpe(argv[0], argv, env)
        finally:
            os._exit(127)
    return pid, master
