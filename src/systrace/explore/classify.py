"""What a fault did to the program, judged against the recorded run (pure).

    crashed     killed by a signal (the recorded run was not)
    hung        no end within the per-run timeout
    ignored     exit 0, but its output (stdout, and the --reset directory) differs from
                the recorded run's: the failure silently lost or changed data
    handled     a non-zero exit (`message` tells whether it said why on stderr)
    unaffected  the same exit status and the same output as the recorded run
"""

from __future__ import annotations

import re
import signal

from ..record import record

CRASHED, HUNG, IGNORED, HANDLED, UNAFFECTED = "crashed", "hung", "ignored", "handled", "unaffected"
OUTCOMES = (CRASHED, HUNG, IGNORED, HANDLED, UNAFFECTED)
FINDINGS = (CRASHED, HUNG, IGNORED)  # what makes --explore exit 1
STATS_LINE = re.compile(rb"^systrace: \d+ calls reached systrace, (\d+) faults injected.*$", re.M)
MAX_SIGNAL = 64


@record
class RunResult:
    status: int | None  # systrace's exit status (the command's, 128+N when killed by N); None: timed out
    output: str  # digest of stdout and of the --reset directory afterwards
    stderr: bytes = b""  # its tail, without systrace's --stats line
    duration: float = 0.0
    injected: int | None = None  # faults injected, from --stats (None: not known)

    @property
    def signal(self) -> int | None:
        if self.status is not None and 128 < self.status <= 128 + MAX_SIGNAL:
            return self.status - 128
        return None

    def exit(self, timeout: float) -> dict:
        if self.status is None:
            return {"timeout": timeout}
        if self.signal is not None:
            return {"signal": signal_name(self.signal)}
        return {"status": self.status}


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"SIG{number}"


def classify(result: RunResult, reference: RunResult) -> str:
    if result.status is None:
        return HUNG
    if result.signal is not None and result.status != reference.status:
        return CRASHED
    same_output = result.output == reference.output
    if result.status == 0 and not same_output:
        return IGNORED
    if result.status == reference.status and same_output:
        return UNAFFECTED
    if result.status != 0:
        return HANDLED
    return UNAFFECTED  # exit 0 and the same output although the recorded run failed


def split_stats(stderr: bytes) -> tuple[bytes, int | None]:
    """systrace's --stats lines out of stderr, and the number of faults they report. They
    come last (printed once the command is gone): everything from the last one is theirs."""
    matches = list(STATS_LINE.finditer(stderr))
    if not matches:
        return stderr, None
    last = matches[-1]
    return stderr[:last.start()], int(last.group(1))


def tail(data: bytes, lines: int = 12, limit: int = 2000) -> str:
    text = data[-limit:].decode("utf-8", "replace")
    return "\n".join(text.rstrip("\n").splitlines()[-lines:])
