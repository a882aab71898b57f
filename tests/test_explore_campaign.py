"""--explore on real programs (issue 15): the planted bugs of tests/c/explore_bugs.c are
all found with confirmed reproducers, the careful twin gives no finding, shards merged
equal one run, the page works in a real browser, bad input is refused. Campaigns are kept
small (--only, a static binary: a few tens of runs, -j 2)."""

from __future__ import annotations

import json
import os
import pty
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import base_env, run, systrace_argv

ONLY = "openat,read,mmap,write"
TIMEOUT = "4"  # per run: the hung trial costs this (twice, with its confirmation)


def explore(*args: str, cwd: str | None = None, **kwargs) -> subprocess.CompletedProcess:
    return run(systrace_argv() + ["--explore", *args], cwd=cwd, **kwargs)


@pytest.fixture(scope="module")
def inputs(shared_dir: Path) -> Path:
    directory = shared_dir / "explore-inputs"
    directory.mkdir(exist_ok=True)
    (directory / "input").write_text("first line\n")
    (directory / "config").write_text("cfg\n")
    for path in [directory, *directory.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return directory


@pytest.fixture(scope="module")
def bugs_campaign(cbin, inputs: Path, tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict, Path]:
    binary = cbin("explore_bugs", "-static")
    report = tmp_path_factory.mktemp("bugs-report")
    done = explore("-j", "2", "--timeout", TIMEOUT, "--only", ONLY, "--report", str(report), "--",
                   binary, str(inputs / "input"), str(inputs / "config"))
    return done, json.loads((report / "findings.json").read_text()), report


@pytest.fixture(scope="module")
def careful_campaign(cbin, inputs: Path, tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict, list[str]]:
    command = [cbin("explore_careful", "-static"), str(inputs / "input"), str(inputs / "config")]
    report = tmp_path_factory.mktemp("careful-report")
    done = explore("-j", "2", "--timeout", TIMEOUT, "--only", ONLY, "--report", str(report), "--", *command)
    return done, json.loads((report / "findings.json").read_text()), command


def found(report: dict, outcome: str, syscall: str, lasting: bool, path: str | None = None) -> list[dict]:
    return [f for f in report["findings"] if f["outcome"] == outcome and f["syscall"] == syscall
            and f["lasting"] == lasting and (path is None or ["filename", path] in f["args"])]


def test_each_planted_bug_is_found_with_a_confirmed_reproducer(bugs_campaign, inputs: Path) -> None:
    done, report, _ = bugs_campaign
    assert done.returncode == 1, done.stderr.decode()
    planted = {
        "unchecked open, dereferenced": found(report, "crashed", "openat", False, str(inputs / "input")),
        "unchecked allocation": found(report, "crashed", "mmap", False),
        "retry loop spinning on an error": found(report, "hung", "openat", True, str(inputs / "config")),
        "ignored write error": found(report, "ignored", "write", False),
    }
    for bug, findings in planted.items():
        assert findings, f"{bug}: not found in {report['summary']}"
        assert all(f["confirmed"] and not f["flaky"] for f in findings), bug
        assert all(f["injected"] for f in findings if f["outcome"] != "hung"), bug
    crash = planted["unchecked open, dereferenced"][0]
    assert crash["exit"] == {"signal": "SIGSEGV"} and crash["errno"] == "ENOENT" and crash["occurrence"] == 1
    assert crash["reproducer"][:3] == ["systrace", "--permit-all", "--inject"]
    assert crash["reproducer"][3] == f"openat:error=ENOENT:when=1:path={inputs / 'input'}"
    # Only a lasting failure makes the retry loop spin: once, the next try succeeds.
    assert not found(report, "hung", "openat", False)
    assert report["summary"]["crashed"] >= 2 and report["summary"]["hung"] == 1
    text = done.stdout.decode()
    assert "crashed    openat" in text and "hung       openat" in text and "confirmed" in text


def test_a_reproducer_reproduces_by_itself(bugs_campaign) -> None:
    _, report, _ = bugs_campaign
    crash = found(report, "crashed", "mmap", False)[0]
    again = run(systrace_argv() + crash["reproducer"][1:], input=b"")
    assert again.returncode == 128 + 11  # SIGSEGV, as systrace reports a signal
    ignored = found(report, "ignored", "write", False)[0]
    again = run(systrace_argv() + ignored["reproducer"][1:], input=b"")
    assert again.returncode == 0 and again.stdout.count(b"\n") == 3  # one line of four lost, silently


def test_no_false_finding_on_a_program_that_checks_every_call(careful_campaign) -> None:
    done, report, _ = careful_campaign
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    assert report["summary"]["crashed"] == report["summary"]["hung"] == report["summary"]["ignored"] == 0
    assert report["summary"]["handled"] >= 8
    handled = [f for f in report["findings"] if f["outcome"] == "handled"]
    assert all(f["injected"] for f in report["findings"]), "every trial's fault was injected"
    assert any("explore_careful: " in f["stderr_tail"] for f in handled)
    assert {f["syscall"] for f in report["findings"]} == {"openat", "read", "mmap", "write"}


def projection(report: dict) -> list[tuple]:
    return [(f["binary"], f["syscall"], json.dumps(f["args"]), f["occurrence"], f["errno"], f["lasting"], f["outcome"],
             json.dumps(f["exit"]), tuple(f["reproducer"])) for f in report["findings"]]


def test_sharded_runs_merged_equal_one_unsharded_run(careful_campaign, tmp_path: Path) -> None:
    _, whole, command = careful_campaign
    shards = []
    for index in (1, 2):
        directory = tmp_path / f"shard{index}"
        done = explore("-j", "2", "--timeout", TIMEOUT, "--only", ONLY, "--shard", f"{index}/2", "--report",
                       str(directory), "--", *command)
        assert done.returncode == 0, done.stderr.decode()
        shards.append(json.loads((directory / "findings.json").read_text()))
    # which shard a site lands in hashes its paths, here below a random directory: with a
    # handful of call groups one shard may be empty (test_shards_spread_sites covers the spread)
    assert whole["stats"]["sites"] == sum(shard["stats"]["sites"] for shard in shards)
    merged_dir = tmp_path / "merged"
    done = run(systrace_argv() + ["--explore-merge", "--report", str(merged_dir), str(tmp_path / "shard2"),
                                  str(tmp_path / "shard1")])
    assert done.returncode == 0, done.stderr.decode()
    merged = json.loads((merged_dir / "findings.json").read_text())
    assert projection(merged) == projection(whole)
    assert merged["summary"] == whole["summary"] and merged["missing_shards"] == []
    assert "sites" in done.stdout.decode()


class FindingsTable(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inside = False
        self.rows: list[dict] = []
        self.cell = ""

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        if tag == "table":
            self.inside = attrs.get("id") == "findings"
        elif self.inside and tag == "tr" and "data-outcome" in attrs:
            self.rows.append({"outcome": attrs["data-outcome"], "syscall": attrs["data-syscall"], "repro": ""})
        elif self.inside and tag == "code" and self.rows:
            self.cell = "repro"

    def handle_data(self, data) -> None:
        if self.cell and self.rows:
            self.rows[-1][self.cell] += data

    def handle_endtag(self, tag) -> None:
        if tag == "code":
            self.cell = ""
        elif tag == "table":
            self.inside = False


def test_the_page_in_a_headless_browser(bugs_campaign) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (.ci/run installs it)")
    _, report, directory = bugs_campaign
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                           (directory / "index.html").as_uri()], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    dom = done.stdout.decode()
    table = FindingsTable()
    table.feed(dom)
    expected = [f for f in report["findings"] if f["outcome"] in ("crashed", "hung", "ignored")]
    assert [(row["outcome"], row["syscall"]) for row in table.rows] == [(f["outcome"], f["syscall"]) for f in expected]
    order = [row["outcome"] for row in table.rows]
    assert order == sorted(order, key=["crashed", "hung", "ignored"].index)
    assert all(row["repro"].startswith("systrace --permit-all --inject ") for row in table.rows)
    assert 'data-syscall="mmap"' in dom.split('id="chart"')[1]  # the chart rendered, one bar per call
    assert "Segmentation" in dom or "SIGSEGV" in dom


def test_reset_restores_the_work_directory_and_counts_it_as_output(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "kept").write_text("untouched\n")
    stdin = tmp_path / "stdin"
    stdin.write_text("some data\n")
    # noclobber: without the reset every run after the first would fail to create out.txt.
    script = "set -C; tr a-z A-Z > out.txt; exit 0"  # (cat would copy_file_range: no write)
    report = tmp_path / "report"
    done = explore("--timeout", "20", "--only", "write", "--stdin", str(stdin), "--reset", str(work), "--report",
                   str(report), "--", "sh", "-c", script, cwd=str(work))
    data = json.loads((report / "findings.json").read_text())
    assert done.returncode == 1, done.stdout.decode() + done.stderr.decode()
    lost = found(data, "ignored", "write", False)
    assert lost and lost[0]["confirmed"], data["summary"]  # cat said so, but sh exited 0: the file lost its data
    assert "write error" in lost[0]["stderr_tail"]
    assert not any("File exists" in f["stderr_tail"] or "cannot create" in f["stderr_tail"] for f in data["findings"])
    assert sorted(os.listdir(work)) == ["kept"]  # as it was before


def test_max_runs_and_every_errno(careful_campaign) -> None:
    *_, command = careful_campaign
    done = explore("--only", "openat", "--errnos", "all", "--max-runs", "5", "--no-confirm", "--", *command)
    assert done.returncode == 0, done.stderr.decode()
    assert "5 runs" in done.stdout.decode() and "left out by --max-runs" in done.stdout.decode()
    summary = next(line for line in done.stdout.decode().splitlines() if "left out by --max-runs" in line)
    left = int(summary.split("folded, ")[1].split(" left out")[0])
    assert left > 0


def test_progress_bar_on_a_terminal(careful_campaign) -> None:
    *_, command = careful_campaign
    master, slave = pty.openpty()
    try:
        done = subprocess.run(systrace_argv() + ["--explore", "--only", "mmap", "--", *command], stderr=slave,
                              stdout=subprocess.PIPE, env=base_env(), timeout=120)
        os.close(slave)
        slave = -1
        shown = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(master)
        if slave >= 0:
            os.close(slave)
    assert done.returncode == 0
    assert b"2/2 runs" in shown and b"handled 2" in shown and b"crashed 0" in shown
    assert b"runs  crashed" not in done.stdout  # the bar is on the terminal only


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shard", "3/2", "true"], "--shard: invalid shard '3/2'"),
        (["--shard", "x", "true"], "--shard: invalid shard 'x'"),
        (["--only", "nosuchcall", "true"], "--only=nosuchcall: invalid system call 'nosuchcall'"),
        (["--skip", "%bogus", "true"], "--skip=%bogus: invalid system call '%bogus'"),
        (["--only", "getpid", "true"], "no call of this set can be failed"),
        (["--errnos", "ENOENT,EBOGUS", "true"], "--errnos: unknown errno 'EBOGUS'"),
        ([], "no command given"),
        (["--"], "no command given"),
        (["-j", "0", "true"], "argument -j: expected a positive number, got '0'"),
        (["--timeout", "-1", "true"], "argument --timeout: timeout out of range: '-1'"),
        (["--stdin", "/nonexistent", "true"], "--stdin: /nonexistent: not a readable file"),
        (["--reset", "/nonexistent", "true"], "--reset: /nonexistent: not a directory"),
        (["no-such-command-anywhere"], "no-such-command-anywhere"),
    ],
)
def test_bad_input_is_refused_in_one_line(args: list[str], message: str) -> None:
    done = explore(*args)
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert err.startswith(f"systrace: {message}"), err
    assert "Traceback" not in err and done.stdout == b""


def test_explore_must_come_first_and_merge_needs_reports(tmp_path: Path) -> None:
    done = run(systrace_argv() + ["-e", "--explore", "true"])
    assert done.returncode == 2 and done.stderr.decode().startswith("systrace: --explore must be the first option")
    done = run(systrace_argv() + ["--explore-merge"])
    assert done.returncode == 2 and done.stderr.decode().startswith("systrace: no shard report directory given")
    done = run(systrace_argv() + ["--explore-merge", str(tmp_path)])
    assert done.returncode == 2 and "findings.json: No such file or directory" in done.stderr.decode()
    assert "Traceback" not in done.stderr.decode()


@pytest.mark.unprivileged
def test_explore_as_an_unprivileged_user(user_runner, cbin, inputs: Path, shared_dir: Path) -> None:
    binary = cbin("explore_careful", "-static")
    report = shared_dir / "explore-user-report"
    report.mkdir(exist_ok=True)
    report.chmod(0o777)
    done = user_runner("--explore", "-j", "2", "--only", "mmap,openat", "--report", str(report), "--",
                       binary, str(inputs / "input"), str(inputs / "config"))
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    data = json.loads((report / "findings.json").read_text())
    assert data["summary"]["handled"] >= 4 and all(f["injected"] for f in data["findings"])


def _sigint_at_its_default() -> None:
    """In the child before its exec: SIGINT at its default and not blocked, as an
    interactive shell starts a command, whatever the suite inherited (a non-interactive
    shell's background job has SIGINT ignored, and an ignored SIGINT stays ignored
    across exec: systrace would then never hear this test's Ctrl-C)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])


def test_ctrl_c_ends_the_campaign_and_every_run(tmp_path: Path) -> None:
    """Runs live in their own sessions (no SIGINT from the terminal reaches them): Ctrl-C
    on systrace --explore must kill them, the recording run included."""
    import select
    import signal

    fifo = tmp_path / "started"
    os.mkfifo(fifo)
    process = subprocess.Popen(systrace_argv() + ["--explore", "--timeout", "100", "--only", "openat", "--", "sh", "-c",
                                                  f"echo $$ > {fifo}; exec sleep 100"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=base_env(),
                               preexec_fn=_sigint_at_its_default)
    try:
        with open(fifo) as started:  # opens once the command runs under the recording
            pid = int(started.read())
        pidfd = os.pidfd_open(pid)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 130, err.decode()
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        assert poller.poll(60_000), "the command outlived systrace --explore"
        os.close(pidfd)
        assert b"Traceback" not in err
    finally:
        process.kill()
        process.wait()


def test_shards_spread_sites() -> None:
    """Sites are split by call group, deterministically, and every shard gets some."""
    from systrace.explore.sites import Site, shard_of

    sites = [Site("/usr/bin/prog", syscall, (("filename", f"/data/f{n}"),), occurrence)
             for n in range(40) for syscall in ("openat", "newfstatat") for occurrence in (1, 2)]
    for count in (2, 3, 4):
        shards = [shard_of(site, count) for site in sites]
        assert set(shards) == set(range(count))
        assert shards == [shard_of(site, count) for site in sites]  # the same every time
        # a loop's occurrences stay together
        assert all(shard_of(a, count) == shard_of(b, count) for a, b in zip(sites[::2], sites[1::2], strict=True))
