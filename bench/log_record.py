#!/usr/bin/env python3
"""Cost of one log record, as the supervisor writes it (issue 16: < 5 µs per text record).

    PYTHONPATH=src python3 bench/log_record.py [--records 200000]

Times Session.log_decision for a translated openat (the question line, the escaping, the
sink's write to /dev/null, and for comparison to a pipe drained by a thread), text and
JSON. Prints the median of 5 runs in µs of CPU time per record (process_time: a shared
machine's descheduling is not counted). Timing is never asserted by tests.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from systrace.call import Call  # noqa: E402
from systrace.decide import PERMIT, Chain, Decision  # noqa: E402
from systrace.kernel.notify import Notification  # noqa: E402
from systrace.log import FdSink, Log  # noqa: E402
from systrace.session import Session  # noqa: E402


def one_run(records: int, fd: int, json_lines: bool) -> float:
    session = Session(log=Log([FdSink(fd, "bench", json_lines, owned=False)]), chain=Chain([]))
    notif = Notification(1, os.getpid(), 0, 257, 0xC000003E, 0, (0,) * 6)
    decision = Decision(PERMIT, log=True, source="policy")
    call = Call(notif, os.getpid(), os.getppid(), "/usr/bin/cat", 0, 0)
    call.translated = (("filename", "/etc/hostname"), ("oflags", "ro"), ("mode", "0"))
    call.arg_count = 4
    start = time.process_time()
    for _ in range(records):
        session.log_decision(call, decision)
    return (time.process_time() - start) / records * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=200000)
    options = parser.parse_args()
    null = os.open("/dev/null", os.O_WRONLY)
    read_end, write_end = os.pipe()

    def drain() -> None:
        while os.read(read_end, 1 << 16):
            pass

    threading.Thread(target=drain, daemon=True).start()
    for label, fd in (("/dev/null", null), ("pipe", write_end)):
        for json_lines in (False, True):
            runs = [one_run(options.records, fd, json_lines) for _ in range(5)]
            print(f"{'json' if json_lines else 'text'} record to {label}: median {statistics.median(runs):.2f} µs, "
                  f"best {min(runs):.2f} µs")


if __name__ == "__main__":
    main()
