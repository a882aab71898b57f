"""bench/bench.py --smoke: every workload, configuration and probe runs once, small, and the
document it prints has BENCHMARKS.md's shape. Its figures are never looked at (timing is
never asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import base_env

ROOT = Path(__file__).resolve().parent.parent
VERDICTS = {"met", "not met", "not met: out of reach (floor)", "not measured"}
TARGETS = 9  # issue 16's


def _rows(text: str, header: str) -> list[list[str]]:
    """The cells of each row of the Markdown table that starts with `header`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.replace("\\|", "¦").strip("|").split("|")])
    return rows


def test_the_smoke_run_prints_every_table(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    written = tmp_path / "BENCHMARKS.md"
    env = base_env(PYTHONPATH=str(ROOT / "src"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "bench.py"), "--smoke", "--json", str(out), "--write",
                             str(written)], capture_output=True, env=env, timeout=1800, cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    text = result.stdout.decode()
    assert written.read_text() + "\n" == text  # --write writes what it prints
    assert text.startswith("# Benchmarks\n")

    rows = _rows(text, "| workload | configuration |")
    assert all(len(row) == 11 for row in rows), [row for row in rows if len(row) != 11]
    by_workload: dict[str, list[list[str]]] = {}
    for row in rows:
        by_workload.setdefault(row[0], []).append(row)
    assert len(by_workload) == 9
    for workload, its_rows in by_workload.items():
        configurations = [row[1] for row in its_rows]
        assert configurations[0] == "native", workload
        if workload.startswith("lseek loop"):  # the CONTINUE target's: decided by name, and logged
            assert [c.split(" (")[0] for c in configurations] == ["native", "systrace --permit-all -E",
                                                                  "systrace -a, lseek decided by name"]
        else:
            assert "systrace -a (learned policy)" in configurations and "systrace -a --supervisors 2" in configurations
        assert len(set(configurations)) == len(configurations)
        for row in its_rows:
            like, runs = row[9].split()[0].split("/")
            assert runs == "1"
            if row[3] == "not a speed":  # marked: no time is quoted for it
                assert row[2] == "—" and row[4:7] == ["", "", ""] and like != runs
            else:
                assert like == runs and row[3].endswith("x")
            if row[1] == "systrace -a (learned policy)":  # its routed calls at the C floors (FloorModel)
                assert row[10].endswith("x") and float(row[10][:-1]) >= 1.0, row
            elif row[1] == "native" or row[1].startswith(("strace", "fiu-run", "engine")):
                assert row[10] == "", row  # no routed calls counted: no floor
    # the configurations that run one workload only
    assert any(row[1].startswith("systrace -A (fresh") for row in by_workload["tar cf - /usr/lib/python3*/json ¦ wc -c"])
    assert sum(row[1].startswith("systrace --permit-all -E") for row in rows) == 2  # the openat and lseek loops

    floors = dict((name, value) for name, value in _rows(text, "| probe | value |"))
    for probe in ("no filter", "allow-all filter", "CONTINUE floor", "emulated open floor",
                  "emulated open, 16 threads, 1 supervisor", "emulated open, 16 threads, 2 supervisors",
                  "CONTINUE, 16 threads, 1 supervisor", "CONTINUE floor, lseek loop (continue_floor.c, median of 3)",
                  "start-up: true"):
        assert probe in floors, probe
    targets = _rows(text, "| target | measured |")
    assert len(targets) == TARGETS and all(row[2] in VERDICTS for row in targets), targets

    raw = json.loads(out.read_text())
    assert len(raw["targets"]) == TARGETS and raw["probes"] == floors
    assert all(r["runs"] == 1 for r in raw["results"])
    assert "Traceback" not in result.stderr.decode()
    assert not os.listdir(tmp_path) or set(os.listdir(tmp_path)) == {"results.json", "BENCHMARKS.md"}


def test_a_bad_option_is_one_line() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "bench.py"), "--runs", "0"], capture_output=True,
                            env=base_env(), timeout=60)
    assert result.returncode == 2 and b"--runs must be at least 1" in result.stderr and b"Traceback" not in result.stderr
