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
import sys
from collections.abc import Callable

SHOWN_RULES = 10  # rules listed per run; the rest are counted

RunOnce = Callable[[argparse.Namespace], tuple[int, "list[str] | None"]]  # -> (status, rules added; None: no run)


def converge(options: argparse.Namespace, run_once: RunOnce, out=None) -> int:
    """Run until `options.converge` quiet runs in a row, at most `options.max_runs` runs.
    The exit status is the last run's once converged, 1 when it did not converge."""
    out = out or sys.stderr
    base_seed = options.seed if options.seed is not None else int.from_bytes(os.urandom(4), "little")
    quiet = 0
    for number in range(1, options.max_runs + 1):
        this = argparse.Namespace(**vars(options))
        if options.random_percent is not None:
            this.seed = (base_seed + number - 1) & 0xFFFFFFFF
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
