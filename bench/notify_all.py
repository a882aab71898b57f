#!/usr/bin/env python3
"""Benchmark harness: run a command with every system call routed to the supervisor and
permitted without translation or logging -- the engine's own cost per notified call.

    python3 bench/notify_all.py COMMAND [ARGS...]
"""

from __future__ import annotations

import os
import shutil
import sys

from systrace.baseline import base_plan
from systrace.decide import Chain, PermitAll
from systrace.engine import supervise
from systrace.kernel import abi
from systrace.log import Log
from systrace.session import Session


def main() -> int:
    if len(sys.argv) < 2:
        print("usage: notify_all.py COMMAND [ARGS...]", file=sys.stderr)
        return 2
    path = shutil.which(sys.argv[1]) or sys.argv[1]
    session = Session(log=Log([]), chain=Chain([PermitAll(log=False)]))
    return supervise(path, sys.argv[1:], dict(os.environ), session, base_plan(abi.RET_USER_NOTIF))


if __name__ == "__main__":
    sys.exit(main())
