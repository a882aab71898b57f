"""A close systrace makes can wait: the last close of a TCP socket with SO_LINGER and
unsent data waits until the data is acknowledged or the linger time ends. systrace takes
a tracee's socket (pidfd_getfd) to send for it, to connect it, to fstat it; when another
thread of the tracee closes its own descriptor meanwhile, systrace's copy is the last
one. Before the fix the loop made that close itself and was held for the linger time:
every process of the run waited, then the watchdog killed the run (found by the red
team: sendto with a destination, 4 MiB read from the tracee while the socket was held,
2/2 runs under -a and 1/1 under -A held and killed, exit 137; the fstat fast path 1 of
about 500 closes). Now such copies are closed by a thread of systrace's own
(kernel/closer.py): the loop serves the next call at once."""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
from conftest import Runner
from test_supervisor_integrity import _compile

LINGER = "2"  # seconds: above the watchdog's 1 s bound, so a held loop is a kill


def _free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def _counts(output: bytes) -> tuple[int, int]:
    """(closes another holder made the last, calls held after one) the program printed."""
    found = re.search(rb"other holders closed (\d+), held the next call (\d+)", output)
    assert found, output
    return int(found.group(1)), int(found.group(2))


@pytest.mark.parametrize("vector", ["send", "fstat"])
def test_a_lingering_last_close_never_holds_the_loop(runner: Runner, shared_dir: Path, vector: str) -> None:
    """Natively no later call waits for a last close (and seldom does another holder make
    it: a call in flight of the other thread).
    Under -a with the learned policy the copy systrace took is the last one in some
    attempts (sendto: in each run; fstat: seldom), and the next call is served at once:
    held 0, the run ends 0."""
    binary = _compile("linger_close", shared_dir)
    port = _free_port()
    native = runner.native(binary, "3", LINGER, port, vector)
    # (natively a close may return at once too, now and then under load: the other
    # thread's call in flight holds the file, and its end makes the last close; what
    # matters is that nothing else waits for it)
    assert native.returncode == 0 and _counts(native.stdout)[1] == 0, native
    policies = runner.policy_dir(shared_dir / f"linger-policies-{runner.name}-{vector}")
    learned = runner("-A", "-d", str(policies), binary, "1", "1", port, vector)
    assert learned.returncode == 0, learned.stderr
    closed = held = 0
    for _ in range(3):
        result = runner("-a", "-d", str(policies), binary, "10", LINGER, port, vector)
        assert result.returncode == 0 and b"is held" not in result.stderr, result
        ours, waited = _counts(result.stdout)
        closed, held = closed + ours, held + waited
    print(f"{runner.name} {vector}: last closes by another holder natively 0/24, under -a {closed}; "
          f"calls held by them {held}")
    if vector == "send":
        assert closed >= 1  # the race is won (each run, as measured): the loop's copy was the last
    assert held == 0
