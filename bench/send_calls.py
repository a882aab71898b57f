"""µs per call of a send with a destination: native, under systrace with a plain permit
(continued) and under the learned destination rule (sent by systrace, kernel/send.py).
The unix families include a recv per send (decided in the kernel, ~1 µs).

    PYTHONPATH=src python3 bench/send_calls.py [N]
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FAMILIES = ["sendto-inet", "sendto-unix", "sendmsg-unix"]
ENV = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(HERE.parent / "src"), "LANG": "C.UTF-8", "HOME": "/root"}


def us(argv: list[str], repeat: int = 3) -> float:
    """The best of `repeat` runs (the machine's other load only adds)."""
    best = float("inf")
    for _ in range(repeat):
        out = subprocess.run(argv, capture_output=True, env=ENV, timeout=600, check=True).stdout.split()
        best = min(best, float(out[1]))
    return best


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    work = Path(tempfile.mkdtemp())
    binary = work / "send_loop"
    subprocess.run(["gcc", "-O1", "-o", str(binary), str(HERE / "send_loop.c")], check=True)
    systrace = [sys.executable, "-m", "systrace"]
    print("| family | native µs | continued µs | emulated µs |\n|---|---|---|---|")
    for family in FAMILIES:
        arena = work / family
        arena.mkdir()
        learned = work / f"{family}-learned"
        subprocess.run([*systrace, "-d", str(learned), "-A", str(binary), family, str(arena), "1"], env=ENV, check=True,
                       capture_output=True)
        plain = work / f"{family}-plain"
        plain.mkdir()
        policy = next(learned.glob("*send_loop"))
        # the same policy with the learned destination rules replaced by a plain permit: continued
        lines = [line.split(":", 1)[0] + ": permit" if "sockaddr eq" in line and "<no address>" not in line
                 and "bind" not in line else line for line in policy.read_text().splitlines()]
        (plain / policy.name).write_text("\n".join(lines) + "\n")
        native = us([str(binary), family, str(arena), str(n)])
        continued = us([*systrace, "-d", str(plain), "-a", str(binary), family, str(arena), str(n)])
        emulated = us([*systrace, "-d", str(learned), "-a", str(binary), family, str(arena), str(n)])
        print(f"| {family} | {native:.1f} | {continued:.1f} | {emulated:.1f} |", flush=True)


if __name__ == "__main__":
    main()
