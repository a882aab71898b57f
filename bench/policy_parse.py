#!/usr/bin/env python3
"""CPU time to parse a policy, per line, for several source trees side by side (issue 16).

    python3 bench/policy_parse.py [--runs 30] [--src DIR ...] [--policy FILE ...]

Three texts: filter rules (`NAME OP "VALUE" and/or ... then VERDICT`, the shapes of the
base and of hand-written policies), plain verdict lines (most of a learned policy's base),
and any --policy FILE given. Each tree parses them in its own interpreter with the parser
the store uses (wiring.make_parser); the trees take turns, so a loaded machine slows them
alike; medians of CPU time (time.process_time). Timing is never asserted by tests.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

FILTERS = [
    'native-fsread: filename eq "/etc/ld.so.cache" then permit',
    'native-fcntl: cmd neq "F_SETOWN" and cmd neq "F_SETOWN_EX" then permit',
    'native-kill: pidname eq "<own process>" or pidname eq "<own thread>" or pidname re "^<descendant: " then permit',
    'native-fswrite: filename match "/tmp/*" then deny[eacces] log',
    'native-connect: sockaddr eq "inet-[127.0.0.1]:53" then permit',
    'native-openat: filename sub "/proc/" and not oflags sub "O_WRONLY" then permit',
    'native-ioctl: request eq "TCGETS" or request eq "TIOCGWINSZ" or request eq "FIONREAD" then permit',
    'native-prlimit64: pidname eq "<own process>" and resource eq "RLIMIT_STACK" and limit eq "get" then permit',
]
PLAIN = ["native-read: permit", "native-mmap: permit", "native-futex: permit", "native-close_range: permit"]

# runs in each tree's interpreter: {text name: [seconds per line, one per run]}
WORKER = r"""
import json, sys, time
from systrace.wiring import make_parser
texts, runs = json.loads(sys.stdin.read())
parser = make_parser()
out = {}
for name, text in texts.items():
    lines = max(1, sum(1 for line in text.split("\n") if line.strip() and not line.lstrip().startswith("#")))
    parser.parse_file(text)
    samples = []
    for _ in range(runs):
        start = time.process_time()
        parser.parse_file(text)
        samples.append((time.process_time() - start) / lines)
    out[name] = samples
print(json.dumps(out))
"""


def policy(rules: list[str], copies: int) -> str:
    return "Policy: /usr/bin/x, Emulation: native\n" + "".join(f"\t{rule}\n" for rule in rules * copies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--src", action="append", type=Path, help="a source tree (default: this one)")
    parser.add_argument("--policy", action="append", type=Path, default=[], help="a policy file to parse too")
    options = parser.parse_args()
    trees = options.src or [HERE.parent]
    texts = {"filter rules": policy(FILTERS, 50), "plain verdicts": policy(PLAIN, 100)}
    for path in options.policy:
        texts[str(path)] = path.read_text()
    samples: dict[str, dict[str, list[float]]] = {str(tree): {name: [] for name in texts} for tree in trees}
    for _ in range(max(1, options.runs // 10)):  # turns of 10 runs each
        for tree in trees:
            env = {"PYTHONPATH": str(tree.resolve() / "src")}
            result = subprocess.run([sys.executable, "-S", "-c", WORKER], input=json.dumps([texts, 10]), env=env,
                                    capture_output=True, text=True, check=True)
            for name, values in json.loads(result.stdout).items():
                samples[str(tree)][name].extend(values)
    print(f"CPU time per policy line, medians of {options.runs} runs, µs")
    print(f"{'':40s}" + "".join(f"{str(tree)[-24:]:>26s}" for tree in trees))
    for name in texts:
        cells = "".join(f"{statistics.median(samples[str(tree)][name]) * 1e6:26.2f}" for tree in trees)
        print(f"{name[-40:]:40s}{cells}")


if __name__ == "__main__":
    main()
