"""bench/bench.py --smoke: every workload, configuration and probe runs once, small, and the
document it prints has BENCHMARKS.md's shape. Its figures are never looked at (timing is
never asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import base_env

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import bench  # noqa: E402  (bench/bench.py: the floor model's arithmetic, the verdicts)

VERDICTS = {"met", "not met", "not met: out of reach (floor)", "not met: out of reach (Python floor)", "not measured"}
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
    assert all(len(row) == 12 for row in rows), [row for row in rows if len(row) != 12]
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
            if row[1] == "systrace -a (learned policy)":  # its routed calls at the C and Python floors
                assert all(c.endswith("x") and float(c[:-1]) >= 1.0 for c in row[10:12]), row
                assert float(row[11][:-1]) >= float(row[10][:-1]), row  # (the start-up floor at least)
            elif row[1] == "native" or row[1].startswith(("strace", "fiu-run", "engine")):
                assert row[10:12] == ["", ""], row  # no routed calls counted: no floor
    # the floors run on the four macro workloads under systrace's own filter: as native, routing what it routes
    floored = [row for row in rows if row[1].startswith(("C floor on the workload", "Python floor on the workload"))]
    assert len(floored) == 8, floored
    for row in floored:
        assert row[9] == "1/1" and row[3].endswith("x") and int(row[7]) > 0, row
    # the configurations that run one workload only
    assert any(row[1].startswith("systrace -A (fresh") for row in by_workload["tar cf - /usr/lib/python3*/json ¦ wc -c"])
    assert sum(row[1].startswith("systrace --permit-all -E") for row in rows) == 2  # the openat and lseek loops

    floors = dict((name, value) for name, value in _rows(text, "| probe | value |"))
    for probe in ("no filter", "allow-all filter", "CONTINUE floor", bench.EMULATED_FLOOR,
                  "emulated open, 16 threads, 1 supervisor", "emulated open, 16 threads, 2 supervisors",
                  "Python emulated open, 16 threads, 1 supervisor", "Python emulated open, 16 threads, 2 supervisors",
                  "CONTINUE, 16 threads, 1 supervisor", bench.HELD_FLOOR, bench.HELD_PYTHON_FLOOR, bench.EMULATED_PYTHON_FLOOR,
                  "start-up: true", *bench.C_FLOORS.values(), *bench.PYTHON_FLOORS.values(), *bench.NATIVE_LOOPS.values(),
                  f"start-up: {bench.PYTHON_STARTUP}"):
        assert probe in floors and floors[probe][0].isdigit(), probe
    assert "systrace runs installed" in text and floors[f"start-up: {bench.INSTALLED}"][0].isdigit()
    first = floors[f"start-up: {bench.REFERENCE_STARTUP}"]  # (a shallow clone has no first version to install)
    assert first[0].isdigit() or first.startswith("not measured (commit "), first
    if first[0].isdigit():
        assert floors[f"start-up: {bench.OURS_BESIDE}"][0].isdigit()
    targets = _rows(text, "| target | measured |")
    assert len(targets) == TARGETS and all(row[2] in VERDICTS for row in targets), targets
    macro = [row for row in targets if row[0].startswith(("tar ", "gcc ", "python import ", "sh loop "))]
    assert len(macro) == 4 and all("measured on the workload: C floor " in row[1] and ", Python floor " in row[1]
                                   for row in macro), macro

    raw = json.loads(out.read_text())
    assert len(raw["targets"]) == TARGETS and raw["probes"] == floors
    assert all(r["runs"] == 1 for r in raw["results"])
    assert raw["systrace"]["installed"] and raw["systrace"]["argv"][0].endswith("/bin/systrace")
    enforced = [f for f in raw["floor_ratios"] if f["config"] == "enforce"]
    assert len(enforced) == 8 and all(f["python_floor_ratio"] >= f["c_floor_ratio"] >= 1.0 for f in enforced)
    assert "Traceback" not in result.stderr.decode()
    assert not os.listdir(tmp_path) or set(os.listdir(tmp_path)) == {"results.json", "BENCHMARKS.md"}


def test_a_bad_option_is_one_line() -> None:
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "bench.py"), "--runs", "0"], capture_output=True,
                            env=base_env(), timeout=60)
    assert result.returncode == 2 and b"--runs must be at least 1" in result.stderr and b"Traceback" not in result.stderr


def test_without_a_venv_systrace_runs_from_the_checkout_and_says_so(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    env = base_env(PYTHONPATH=str(ROOT / "src"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    result = subprocess.run([sys.executable, str(ROOT / "bench" / "bench.py"), "--smoke", "--checkout", "--only", "true",
                             "--configs", "permit-all", "--json", str(out)], capture_output=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert b"bench: systrace runs from the checkout, not installed (--checkout)" in result.stderr
    text = result.stdout.decode()
    assert "**systrace runs from the checkout, not installed** (--checkout)" in text
    raw = json.loads(out.read_text())
    assert not raw["systrace"]["installed"] and raw["systrace"]["argv"][1:2] == ["-c"]
    assert raw["probes"][f"start-up: {bench.INSTALLED}"].startswith("not measured")


# the probes of a run: each kind's loop natively, at its C floor and at its Python floor (µs)
PROBES = {"native openat+close loop, per iteration": "2.00 us", "native fstat loop, per call": "0.50 us",
          "native stat loop, per call": "1.00 us", bench.C_FLOORS["continue"]: "10.00 us", bench.C_FLOORS["emulate-open"]: "42.00 us",
          bench.C_FLOORS["emulate-fstat"]: "12.50 us", bench.C_FLOORS["emulate-path"]: "21.00 us",
          bench.PYTHON_FLOORS["continue"]: "14.00 us", bench.PYTHON_FLOORS["emulate-open"]: "62.00 us",
          bench.PYTHON_FLOORS["emulate-fstat"]: "20.50 us", bench.PYTHON_FLOORS["emulate-path"]: "31.00 us",
          f"start-up: {bench.PYTHON_STARTUP}": "15.0 ms"}


def _result(*carried: dict[str, int]) -> bench.Result:
    return bench.Result("w", "c", carried=list(carried))


def test_the_floor_model_prices_each_kind_at_its_own_floor() -> None:
    c, python = bench.FloorModel(PROBES), bench.FloorModel(PROBES, python=True)
    assert c.known and python.known
    assert c.extra_us == {"continue": 8.0, "emulate-open": 40.0, "emulate-fstat": 12.0, "emulate-path": 20.0}
    assert python.extra_us == {"continue": 12.0, "emulate-open": 60.0, "emulate-fstat": 20.0, "emulate-path": 30.0}
    # 1000 of each kind with a floor, and kinds without one at the CONTINUE floor
    run = {"emulate-open": 1000, "emulate-fstat": 1000, "emulate-path": 1000, "continue": 500, "error": 250,
           "emulate-socket": 250}
    assert c.extra_seconds(run) == pytest.approx((40 + 12 + 20 + 8) * 1000e-6)
    assert python.extra_seconds(run) == pytest.approx((60 + 20 + 30 + 12) * 1000e-6)
    # native 0.1 s; the Python floor adds its start-up (15 ms); the median run of each kind
    runs = _result(run, {k: v * 3 for k, v in run.items()}, run)
    assert c.ratio(runs, 0.1) == pytest.approx((0.1 + 0.080) / 0.1)
    assert python.ratio(runs, 0.1) == pytest.approx((0.1 + 0.122 + 0.015) / 0.1)


def test_the_floor_model_is_unknown_without_every_floor() -> None:
    for missing in (bench.C_FLOORS["emulate-path"], "native fstat loop, per call"):
        model = bench.FloorModel({k: v for k, v in PROBES.items() if k != missing})
        assert not model.known and model.ratio(_result({"continue": 1}), 0.1) is None
    no_startup = {k: v for k, v in PROBES.items() if "start-up" not in k}
    assert bench.FloorModel(no_startup).known and not bench.FloorModel(no_startup, python=True).known
    failed = dict(PROBES, **{f"start-up: {bench.PYTHON_STARTUP}": "failed"})
    assert not bench.FloorModel(failed, python=True).known
    model = bench.FloorModel(PROBES)
    assert model.ratio(_result(), 0.1) is None and model.ratio(_result({"continue": 1}), None) is None
    # a floor below the native loop (noise) adds nothing rather than a negative cost
    assert bench.FloorModel(dict(PROBES, **{bench.C_FLOORS["continue"]: "1.00 us"})).extra_us["continue"] == 0.0


def test_a_target_is_out_of_reach_by_the_first_floor_that_misses_it() -> None:
    verdict = bench.ratio_verdict
    assert verdict(2.4, 2.5, 2.6, 3.0) == bench.MET  # met, whatever the floors say
    assert verdict(7.0, 2.5, 2.6, 3.0) == bench.UNREACHABLE  # even a C supervisor misses it
    assert verdict(7.0, 2.5, 1.5, 2.6) == bench.UNREACHABLE_IN_PYTHON  # only in Python
    assert verdict(7.0, 2.5, 1.5, 2.5) == bench.NOT_MET  # the floors reach it exactly: not out of reach
    assert verdict(7.0, 2.5, None, None) == bench.NOT_MET
    assert verdict(7.0, 2.5, None, 2.6) == bench.UNREACHABLE_IN_PYTHON


def _per_call_targets(held_us: float, open_us: float, floors: dict[str, str]) -> dict[str, tuple[str, str]]:
    """The two per-call targets' rows for a run whose lseek loop (decided by name) took
    held_us per call and whose openat loop (-a) open_us."""
    held = bench.Workload("held", "lseek loop", [], calls=1000)
    openat = bench.Workload("openat", "openat loop", [], calls=1000)
    names = {c.key: c.name for c in bench.configs()}
    results = {(w.name, names[config]): bench.Result(w.name, names[config], seconds=[1.0], loop_seconds=[us * 1000e-6],
                                                     runs=1)
               for w, config, us in ((held, "by-name", held_us), (openat, "enforce", open_us))}
    rows = bench.targets(bench.Figures([held, openat], results, floors))
    return {label.split(" ≤")[0]: (text, verdict) for label, text, verdict in rows
            if label.startswith(("CONTINUE per call", "emulated open"))}


def test_a_per_call_target_is_out_of_reach_in_python_when_the_python_floor_misses_it() -> None:
    """The CONTINUE and emulated-open targets are ratios to the C floor: a Python
    supervisor with no logic making the same calls (its floor, measured beside the C one)
    above the ratio puts it out of reach in Python; at or under it, a miss is a miss."""
    floors = {bench.HELD_FLOOR: "5.00 us", bench.HELD_PYTHON_FLOOR: "8.00 us",  # 1.6x > 1.3x
              bench.EMULATED_FLOOR: "30.00 us", bench.EMULATED_PYTHON_FLOOR: "42.00 us"}  # 1.4x <= 1.5x
    rows = _per_call_targets(12.0, 90.0, floors)
    assert rows["CONTINUE per call"][1] == bench.UNREACHABLE_IN_PYTHON
    assert "the Python floor: 8.0 µs = 1.60x" in rows["CONTINUE per call"][0]
    assert rows["emulated open"][1] == bench.NOT_MET and "the Python floor: 42.0 µs = 1.40x" in rows["emulated open"][0]
    met = _per_call_targets(6.0, 44.0, floors)  # met, whatever the Python floor says
    assert met["CONTINUE per call"][1] == met["emulated open"][1] == bench.MET
    without = _per_call_targets(12.0, 90.0, {bench.HELD_FLOOR: "5.00 us", bench.EMULATED_FLOOR: "30.00 us"})
    assert without["CONTINUE per call"][1] == without["emulated open"][1] == bench.NOT_MET  # no Python floor: no claim
    assert "Python floor" not in without["CONTINUE per call"][0]


def _macro_target(ours: float, c_floor: float | None, python_floor: float | None) -> tuple[str, str]:
    """The gcc target's row for a run at `ours` times native, with the floors measured on
    the workload at the given ratios (None: not run)."""
    gcc = bench.Workload("gcc", "gcc -c", [])
    names = {c.key: c.name for c in bench.configs()}
    ratios = {"native": 1.0, "enforce": ours, "workload-floor": c_floor, "workload-floor-python": python_floor}
    results = {(gcc.name, names[config]): bench.Result(gcc.name, names[config], seconds=[ratio / 10],
                                                       ratios=[] if config == "native" else [ratio], runs=1)
               for config, ratio in ratios.items() if ratio is not None}
    rows = bench.targets(bench.Figures([gcc], results, {}))
    return next((text, verdict) for label, text, verdict in rows if label.startswith("gcc"))


def test_a_macro_target_is_out_of_reach_when_a_floor_run_on_the_workload_misses_it() -> None:
    """The floors run on the workload itself (bench/workload_floor.c and .py under systrace's
    own filter) are lower bounds too: the C one above the target puts it out of reach for
    any supervisor, the Python one for one in Python; under it, a miss is a miss."""
    text, verdict = _macro_target(5.0, 1.4, 2.6)
    assert verdict == bench.UNREACHABLE_IN_PYTHON and "measured on the workload: C floor 1.40x, Python floor 2.60x" in text
    assert _macro_target(5.0, 2.7, 3.0)[1] == bench.UNREACHABLE
    assert _macro_target(5.0, 1.4, 2.0)[1] == bench.NOT_MET
    assert _macro_target(2.4, 1.4, 2.6)[1] == bench.MET
    text, verdict = _macro_target(5.0, None, None)  # no floor run: no claim
    assert verdict == bench.NOT_MET and "measured on the workload" not in text


def _startup_target(floors: dict[str, str]) -> tuple[str, str]:
    rows = bench.targets(bench.Figures([], {}, {"start-up: true": "1.0 ms", **floors}))
    return next((text, verdict) for label, text, verdict in rows if label.startswith("start-up"))


def test_the_start_up_target_is_the_first_versions_start_up_measured_beside_ours() -> None:
    """"Unchanged or better" than the first version's start-up: that tree installed and timed
    in the same run, alternated with ours; only without it, the 36 ms of its own run."""
    beside = {f"start-up: {bench.OURS_BESIDE}": "45.4 ms", f"start-up: {bench.REFERENCE_STARTUP}": "45.7 ms",
              f"start-up: {bench.INSTALLED}": "46.0 ms"}
    text, verdict = _startup_target(beside)
    assert verdict == bench.MET and text.startswith("44.4 ms over `true`, the first version") and "44.7 ms" in text
    slower = {**beside, f"start-up: {bench.OURS_BESIDE}": "47.0 ms"}
    assert _startup_target(slower)[1] == bench.NOT_MET
    alone = {f"start-up: {bench.INSTALLED}": "46.0 ms", f"start-up: {bench.REFERENCE_STARTUP}": "not measured (why)"}
    text, verdict = _startup_target(alone)  # no reference run: against the 36 ms
    assert verdict == bench.NOT_MET and text.startswith("45.0 ms over `true`")
    assert _startup_target({f"start-up: {bench.INSTALLED}": "30.0 ms"})[1] == bench.MET


def _threads_target(ours: float, strace: float, floors: dict[str, str]) -> tuple[str, str]:
    threads = bench.Workload("threads", "16 threads", [])
    names = {c.key: c.name for c in bench.configs()}
    results = {(threads.name, names[config]): bench.Result(threads.name, names[config], seconds=[seconds], runs=1)
               for config, seconds in (("enforce", ours), ("strace-seccomp", strace))}
    rows = bench.targets(bench.Figures([threads], results, floors))
    return next((text, verdict) for label, text, verdict in rows if label.startswith("16 threads"))


def test_the_thread_target_is_out_of_reach_by_the_lower_floor_that_misses_it() -> None:
    c = {"emulated open, 16 threads, 1 supervisor": "0.5600 s (70.00 us per open)",
         "emulated open, 16 threads, 2 supervisors": "0.2400 s (30.00 us per open)"}
    python = {"Python emulated open, 16 threads, 1 supervisor": "0.5400 s (67.50 us per open)",
              "Python emulated open, 16 threads, 2 supervisors": "0.3000 s (37.50 us per open)"}
    text, verdict = _threads_target(1.2, 0.26, {**c, **python})
    assert verdict == bench.UNREACHABLE_IN_PYTHON  # the C floor with 2 supervisors beats strace, Python's does not
    assert "the C emulated-open floor: 0.560 s with 1 supervisor, 0.240 s with 2 supervisors" in text
    assert "the Python emulated-open floor: 0.540 s with 1 supervisor, 0.300 s with 2 supervisors" in text
    assert _threads_target(1.2, 0.20, {**c, **python})[1] == bench.UNREACHABLE  # even the C floor misses it
    assert _threads_target(1.2, 0.35, {**c, **python})[1] == bench.NOT_MET  # both floors beat strace
    assert _threads_target(1.2, 0.26, c)[1] == bench.NOT_MET  # no Python floor measured: no claim
    assert _threads_target(0.25, 0.26, {**c, **python})[1] == bench.MET


def test_the_python_thread_floor_refuses_bad_input_in_one_line() -> None:
    floor = [sys.executable, "-S", str(ROOT / "bench" / "threads_floor.py")]
    for argv, said in (([], b"usage: threads_floor.py THREADS_OPEN [N]"), (["prog", "x"], b"usage:"),
                       (["/nonexistent/program", "5"], b"every run with 1 supervisor(s) failed")):
        result = subprocess.run([*floor, *argv], capture_output=True, timeout=120)
        assert result.returncode != 0 and said in result.stderr and b"Traceback" not in result.stderr, result.stderr


def test_a_floor_run_without_a_time_per_call_is_one_line_not_a_wrong_figure() -> None:
    said = subprocess.CompletedProcess(["floor"], 0, b"nothing timed\n", b"")
    with pytest.raises(SystemExit, match="floor: no time per call in its output"):
        bench.per_call_us(said, 100)
    assert bench.per_call_us(subprocess.CompletedProcess(["floor"], 0, b"", b"loop: 0.5 s\n"), 100_000) == pytest.approx(5.0)
    assert bench.per_call_us(subprocess.CompletedProcess(["floor"], 0, b"emulated open floor: 31.25 us\n", b""), 1) == 31.25


def _workload_floor(*options: str) -> subprocess.CompletedProcess[bytes]:
    env = base_env(PYTHONPATH=str(ROOT / "src"))
    return subprocess.run([sys.executable, str(ROOT / "bench" / "workload_floors.py"), *options], capture_output=True,
                          env=env, timeout=900)


def test_the_workload_floor_routes_what_systrace_routes_and_does_what_native_does() -> None:
    """bench/workload_floor.c, and workload_floor.py (the same in bare Python), under
    systrace's own dumped filter: the same calls reach it as reach systrace (but for a few of
    systrace's launch), and both carry them out so that each run's output and status are the
    native run's (their emulated opens, fstats and path calls included)."""
    result = _workload_floor("--smoke", "--runs", "1", "--only", "tar,sh,python")
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    rows = _rows(result.stdout.decode(), "| workload | native s |")
    assert len(rows) == 3
    for row in rows:
        assert row[8] == "systrace 1/1, floor 1/1, python 1/1", row
        assert row[4].endswith("x"), row  # the Python floor's ratio
        by_systrace, by_floor = int(row[5]), int(row[6])  # (systrace's count has its own launch's few calls)
        assert by_floor > 0 and abs(by_systrace - by_floor) <= max(3, by_systrace // 100), row
        kinds = dict(item.split(" ") for item in row[7].split(", "))
        assert int(kinds["open"]) > 0 and int(kinds["fstat"]) > 0, row


def test_the_python_workload_floor_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    odd = tmp_path / "odd.bpf"
    odd.write_bytes(b"\0" * 7)
    script = str(ROOT / "bench" / "workload_floor.py")
    for argv, said in (([], b"usage: workload_floor.py FILTER_FILE /PROGRAM"),
                       ([str(odd), "true"], b"usage: workload_floor.py FILTER_FILE /PROGRAM"),
                       ([str(tmp_path / "missing.bpf"), "/bin/true"], b"missing.bpf: No such file or directory"),
                       ([str(odd), "/bin/true"], b"odd.bpf: not a BPF program")):
        result = subprocess.run([sys.executable, "-S", script, *argv], capture_output=True, timeout=60)
        assert result.returncode == 2 and said in result.stderr and b"Traceback" not in result.stderr, result.stderr


def test_the_workload_floor_refuses_bad_input_in_one_line() -> None:
    for options, said in ((["--runs", "0"], b"--runs must be at least 1"),
                          (["--only", "nosuch"], b"no such workload: nosuch")):
        result = _workload_floor(*options)
        assert result.returncode == 2 and said in result.stderr and b"Traceback" not in result.stderr, result.stderr
