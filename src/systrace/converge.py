"""-A --converge N: learn by repeating the command, under random faults with -r, until N
runs in a row add no rule; report what each run added.

One learning run only learns the paths the program took that time. Repeating it with
faults (-r) drives it into its error paths, whose calls are learned too; a run that adds
nothing is evidence the policy covers what the program does, N such runs in a row are
the stopping rule. Each run is a whole systrace run (policies re-read, a new seed).
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
from collections.abc import Callable

SHOWN_RULES = 10  # rules listed per run; the rest are counted
STDIN_LIMIT = 256 << 20  # bytes of a piped stdin kept for the runs

RunOnce = Callable[[argparse.Namespace], tuple[int, "list[str] | None"]]  # -> (status, rules added; None: no run)


def converge(options: argparse.Namespace, run_once: RunOnce, out=None) -> int:
    """Run until `options.converge` quiet runs in a row, at most `options.max_runs` runs.
    The exit status is the last run's once converged, 1 when it did not converge."""
    out = out or sys.stderr
    try:
        rewind = same_stdin()
    except OSError as error:
        print(f"systrace: --converge: {error.strerror or error}", file=out)
        return 2
    base_seed = options.seed if options.seed is not None else int.from_bytes(os.urandom(4), "little")
    quiet = 0
    for number in range(1, options.max_runs + 1):
        this = argparse.Namespace(**vars(options))
        if options.random_percent is not None:
            this.seed = (base_seed + number - 1) & 0xFFFFFFFF
        rewind()
        status, added = run_once(this)
        if added is None:  # systrace itself failed (it said why): repeating would not help
            return status
        seed = f", seed {this.seed}" if options.random_percent is not None else ""
        print(f"systrace: run {number}: status {status}{seed}: {len(added)} rules added", file=out)
        for rule in added[:SHOWN_RULES]:
            print(f"systrace:     {rule}", file=out)
        if len(added) > SHOWN_RULES:
            print(f"systrace:     ... and {len(added) - SHOWN_RULES} more", file=out)
        quiet = 0 if added else quiet + 1
        if quiet >= options.converge:
            print(f"systrace: converged after {number} runs ({quiet} in a row added nothing)", file=out)
            return status
    print(f"systrace: did not converge in {options.max_runs} runs (raise --max-runs, or see what the last runs added)",
          file=out)
    return 1


def same_stdin() -> Callable[[], None]:
    """What makes every run read the same stdin, called before each: a file is read again
    from where it stood; a pipe, FIFO or socket is read once, whole, into a memfd that
    each run then reads from its start (every run, the first too, so all see the same kind
    of file). A terminal, a device (/dev/null) and a closed stdin are left as they are.
    Raises OSError when the copy cannot be made (EFBIG past STDIN_LIMIT)."""
    try:
        status = os.fstat(0)
    except OSError:
        return _nothing  # no stdin: no run has one
    if stat.S_ISREG(status.st_mode):
        start = os.lseek(0, 0, os.SEEK_CUR)

        def back() -> None:
            os.lseek(0, start, os.SEEK_SET)

        return back
    if not (stat.S_ISFIFO(status.st_mode) or stat.S_ISSOCK(status.st_mode)):
        return _nothing
    copy = os.memfd_create("systrace-stdin", os.MFD_CLOEXEC)
    try:
        kept = 0
        while chunk := os.read(0, 1 << 20):
            kept += len(chunk)
            if kept > STDIN_LIMIT:
                limit = f"{STDIN_LIMIT >> 20} MiB" if STDIN_LIMIT >= 1 << 20 else f"{STDIN_LIMIT} bytes"
                raise OSError(27, f"stdin is longer than {limit}: give it from a file (< FILE), which every "
                                  "run reads from its start")
            view = memoryview(chunk)
            while view:
                view = view[os.write(copy, view):]
    except BaseException:
        os.close(copy)
        raise

    def rewind() -> None:
        os.dup2(copy, 0)  # (inheritable: the command's stdin)
        os.lseek(0, 0, os.SEEK_SET)

    return rewind


def _nothing() -> None:
    pass
