"""-A --converge N: repeat the command until N runs in a row add no rule, reporting what
each run added (converge.py): the loop on a fake run, then real runs, then bad input."""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Runner, base_env, systrace_argv

from systrace.converge import converge


def options(**overrides) -> argparse.Namespace:
    values = {"converge": 2, "max_runs": 10, "seed": None, "random_percent": None}
    values.update(overrides)
    return argparse.Namespace(**values)


def fake_runs(results):
    seen = []

    def run_once(each: argparse.Namespace):
        seen.append(each.seed)
        return results[len(seen) - 1]

    return run_once, seen


def test_stops_after_n_quiet_runs_in_a_row_and_reports_each() -> None:
    run_once, seen = fake_runs([(0, ["a: r1", "a: r2"]), (0, []), (3, ["a: r3"]), (0, []), (5, [])])
    out = io.StringIO()
    assert converge(options(random_percent=10.0, seed=40), run_once, out) == 5  # the last run's status
    assert seen == [40, 41, 42, 43, 44]  # a new seed each run
    text = out.getvalue()
    assert "run 1: status 0, seed 40: 2 rules added" in text and "systrace:     a: r3" in text
    assert text.rstrip().endswith("converged after 5 runs (2 in a row added nothing)")


def test_gives_up_after_max_runs() -> None:
    run_once, seen = fake_runs([(0, [f"a: r{i}"]) for i in range(3)])
    out = io.StringIO()
    assert converge(options(max_runs=3), run_once, out) == 1
    assert len(seen) == 3 and "did not converge in 3 runs" in out.getvalue()


def test_a_run_systrace_could_not_set_up_ends_it() -> None:
    run_once, seen = fake_runs([(0, ["a: r"]), (2, None)])
    assert converge(options(), run_once, io.StringIO()) == 2 and len(seen) == 2


def test_long_reports_are_cut() -> None:
    run_once, _ = fake_runs([(0, [f"a: r{i}" for i in range(25)]), (0, []), (0, [])])
    out = io.StringIO()
    converge(options(), run_once, out)
    assert "... and 15 more" in out.getvalue()


def test_converges_on_a_real_program(root_runner: Runner, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("hello\n")
    result = root_runner("-A", "--converge", "2", "-d", str(tmp_path / "p"), "/usr/bin/cat", str(tmp_path / "in.txt"))
    assert result.returncode == 0
    assert result.stdout == b"hello\n" * len(re.findall(rb"run \d+:", result.stderr))
    counts = [int(n) for n in re.findall(rb"run \d+: status 0: (\d+) rules added", result.stderr)]
    assert counts[0] > 0 and counts[-2:] == [0, 0]
    assert b"converged after" in result.stderr


def _runs(stderr: bytes) -> int:
    return len(re.findall(rb"run \d+:", stderr))


def test_every_run_reads_the_same_piped_stdin(root_runner: Runner, tmp_path: Path) -> None:
    """A pipe is read once, whole; each run reads the copy from its start (before, the
    second run read an empty stdin and learned the empty-input path)."""
    result = root_runner("-A", "--converge", "2", "-d", str(tmp_path / "p"), "/usr/bin/wc", "-c", input=b"b\na\n")
    assert result.returncode == 0 and _runs(result.stderr) >= 3, result.stderr[-2000:]
    assert result.stdout == b"4\n" * _runs(result.stderr)


def test_a_file_stdin_is_read_again_from_where_it_stood(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(b"skip:kept\n")
    with open(source, "rb", buffering=0) as stdin:
        stdin.read(5)  # (the shell's offset: a run starts there)
        result = subprocess.run([*systrace_argv(), "-A", "--converge", "1", "-d", str(tmp_path / "p"), "/usr/bin/cat"],
                                stdin=stdin, capture_output=True, env=base_env(), timeout=120)
    assert result.returncode == 0 and _runs(result.stderr) >= 2, result.stderr[-2000:]
    assert result.stdout == b"kept\n" * _runs(result.stderr)


def test_a_piped_stdin_over_the_limit_is_one_line_and_no_run(tmp_path: Path) -> None:
    script = ("import sys; from systrace import converge, cli; converge.STDIN_LIMIT = 8; "
              "sys.exit(cli.main(sys.argv[1:]))")
    policies = tmp_path / "p"
    result = subprocess.run([sys.executable, "-c", script, "-A", "--converge", "2", "-d", str(policies), "/usr/bin/cat"],
                            input=b"0123456789", capture_output=True, env=base_env(), timeout=120)
    assert result.returncode == 2 and result.stdout == b""
    assert result.stderr == (b"systrace: --converge: stdin is longer than 8 bytes: give it from a file (< FILE), "
                             b"which every run reads from its start\n")
    assert not policies.exists() or not list(policies.iterdir())


def test_random_faults_drive_error_paths_into_the_policy(root_runner: Runner, tmp_path: Path) -> None:
    """Under -r each run fails other calls (seed S, S+1...); what the error paths called
    is learned, and the report names the seed of each run."""
    (tmp_path / "in.txt").write_text("hello\n")
    result = root_runner("-A", "--converge", "3", "--max-runs", "8", "-r", "30", "--seed", "100",
                         "-d", str(tmp_path / "p"), "/usr/bin/cat", str(tmp_path / "in.txt"))
    seeds = [int(n) for n in re.findall(rb"seed (\d+):", result.stderr)]
    assert seeds == list(range(100, 100 + len(seeds))) and len(seeds) >= 4
    assert b"converged after" in result.stderr or b"did not converge in 8 runs" in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["-A", "--converge", "0"], "must be at least 1: '0'"),
    (["-A", "--converge", "x"], "invalid number 'x'"),
    (["-A", "--converge", "2", "--max-runs", "0"], "must be at least 1: '0'"),
    (["-a", "--converge", "2"], "--converge needs -A"),
    (["--converge", "2"], "--converge needs -A"),
    (["-A", "--converge", "2", "--replay", "/nonexistent"], "cannot be combined with --replay"),
])
def test_bad_convergence_options(root_runner: Runner, tmp_path: Path, args: list[str], message: str) -> None:
    result = root_runner(*args, "-d", str(tmp_path), "/usr/bin/true")
    assert result.returncode == 2
    first = result.stderr.decode().splitlines()[0]
    assert first.startswith("systrace: ") and message in first
    assert b"Traceback" not in result.stderr and not list(tmp_path.iterdir())
