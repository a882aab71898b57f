"""Errors of the asking transports, importable without loading them (start-up time)."""


class FrontendGone(Exception):
    """The frontend closed its end, exited, or the terminal went away."""


class ProtocolError(FrontendGone):
    """The frontend broke the protocol (an answer line over the bound): it is treated as
    gone, after the call is denied."""


class NoAnswer(Exception):
    """No answer within --answer-timeout: the call is denied."""


class Abandoned(Exception):
    """A signal asked systrace to stop (SIGTERM, SIGINT, SIGHUP, SIGQUIT) while a question
    waited: the call is denied and the signal is passed on as README "Signals" says."""


class Interrupted(BaseException):
    """Ctrl-C at `Answer:` while systrace owns the terminal: the run ends at once. A
    BaseException, so that the supervisor's fail-closed `except Exception` does not
    swallow it."""


class NotAsked(Exception):
    """The question cannot be asked on the terminal now: its foreground process group
    holds processes outside the run, which systrace may not stop and which could read
    the answer. The call is denied (fail closed)."""
