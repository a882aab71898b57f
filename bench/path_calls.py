"""µs per call of each emulated path call family: native, under systrace with a plain
permit (continued), and under a learned filename rule (emulated by systrace).

    PYTHONPATH=src python3 bench/path_calls.py [N]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
FAMILIES = ["stat", "access", "readlink", "getxattr", "chmod", "utimensat", "truncate", "rename", "mkdir", "link",
            "symlink"]
ENV = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(HERE.parent / "src"), "LANG": "C.UTF-8", "HOME": "/root"}


def us(argv: list[str]) -> float:
    out = subprocess.run(argv, capture_output=True, env=ENV, timeout=600, check=True).stdout.split()
    return float(out[1])


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    work = Path(tempfile.mkdtemp())
    binary = work / "path_loop"
    subprocess.run(["gcc", "-O1", "-o", str(binary), str(HERE / "path_loop.c")], check=True)
    systrace = [sys.executable, "-m", "systrace"]
    print("| family | native µs | continued µs | emulated µs |\n|---|---|---|---|")
    for family in FAMILIES:
        arena = work / family
        arena.mkdir()
        (arena / "file").write_text("x")
        os.setxattr(arena / "file", "user.k", b"v")
        (arena / "link").symlink_to("file")
        learned = work / f"{family}-learned"
        subprocess.run([*systrace, "-d", str(learned), "-A", str(binary), family, str(arena), "1"], env=ENV, check=True,
                       capture_output=True)
        plain = work / f"{family}-plain"
        plain.mkdir()
        policy = next(learned.glob("*path_loop"))
        text = policy.read_text()
        # the same policy with each filename rule replaced by a plain permit: continued
        lines = [line if "filename" not in line else line.split(":", 1)[0] + ": permit" for line in text.splitlines()]
        (plain / policy.name).write_text("\n".join(lines) + "\n")
        native = us([str(binary), family, str(arena), str(n)])
        continued = us([*systrace, "-d", str(plain), "-a", str(binary), family, str(arena), str(n)])
        emulated = us([*systrace, "-d", str(learned), "-a", str(binary), family, str(arena), str(n)])
        print(f"| {family} | {native:.1f} | {continued:.1f} | {emulated:.1f} |", flush=True)


if __name__ == "__main__":
    main()
