"""One exploration: record, control run, the trials wave by wave on -j workers, the
confirmation of each finding's reproducer, the report."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from ..policy.errnos import name_of
from . import report as reports
from .classify import FINDINGS, RunResult, classify
from .plan import Campaign, Trial, trials_for
from .progress import Progress
from .runner import Runner, WorkDir
from .sites import parse_record, shard_of, sites_of

MIN_TIMEOUT = 5.0  # seconds: the default per-run timeout is 10 times the recorded run, at least this
NEVER = 65535  # when= of the control run's rule: counted, never reached


class ExploreError(Exception):
    """The exploration cannot start (exit 2)."""


class Settings:
    def __init__(self, command: list[str], selected: frozenset[str], errnos: str | frozenset[int], jobs: int = 1,
                 max_runs: int | None = None, timeout: float | None = None, fold: int = 3,
                 shard: tuple[int, int] | None = None, stdin: str = os.devnull, reset: str | None = None,
                 report_dir: str | None = None, progress: bool = False, confirm: bool = True):
        self.command, self.selected, self.errnos, self.jobs = command, selected, errnos, jobs
        self.max_runs, self.timeout, self.fold, self.shard = max_runs, timeout, fold, shard
        self.stdin, self.reset, self.report_dir = stdin, reset, report_dir
        self.progress, self.confirm = progress, confirm

    def errnos_text(self) -> str | list[str]:
        if isinstance(self.errnos, str):
            return self.errnos
        return sorted(name_of(code).upper() for code in self.errnos)


def explore(settings: Settings, out=sys.stdout, err=sys.stderr) -> int:
    started = time.monotonic()
    workdir = WorkDir(settings.reset) if settings.reset else None
    runner = Runner(settings.command, os.path.abspath(settings.stdin), dict(os.environ), os.getcwd(), workdir)
    try:
        return _explore(settings, runner, started, out, err)
    except KeyboardInterrupt:
        runner.stop()
        raise
    finally:
        if workdir is not None:
            workdir.restore()  # as it was before the campaign
            workdir.close()


def _explore(settings: Settings, runner: Runner, started: float, out, err) -> int:
    selected_text = ",".join(sorted(settings.selected))
    with tempfile.TemporaryDirectory(prefix="systrace-explore-") as scratch:
        record_path = os.path.join(scratch, "record.jsonl")
        safety = settings.timeout or 600.0
        recorded = runner.record(selected_text, record_path, safety)
        try:
            with open(record_path, encoding="utf-8", errors="surrogateescape") as handle:
                calls = parse_record(handle.read())
        except (OSError, ValueError):
            calls = []
    if recorded.status is None:
        raise ExploreError(f"the recording run did not end within {safety:g} s")
    if not calls and recorded.stderr.startswith(b"systrace: "):
        raise ExploreError("the recording run failed: " + recorded.stderr.decode(errors="replace").splitlines()[0][10:])
    control = runner.trial(f"{sorted(settings.selected)[0]}:error=EIO:when={NEVER}", safety)
    output_stable = control.status == recorded.status and control.output == recorded.output
    timeout = settings.timeout or max(MIN_TIMEOUT, 10 * max(recorded.duration, control.duration or 0))

    sites = sites_of(calls)
    mine = sites if settings.shard is None else [s for s in sites if shard_of(s, settings.shard[1]) == settings.shard[0] - 1]
    campaign = Campaign(trials_for(mine, settings.errnos), settings.fold, settings.max_runs)
    planned = sum(len(sequence) for sequence in campaign.sequences.values())
    if settings.max_runs is not None:
        planned = min(planned, settings.max_runs)
    progress = Progress(err, settings.progress)
    findings: dict[Trial, dict] = {}
    tally: dict[str, int] = {}

    def one(trial: Trial) -> tuple[Trial, RunResult]:
        return trial, runner.trial(trial.spec(), timeout)

    pool = ThreadPoolExecutor(max_workers=settings.jobs)
    try:
        progress.show(0, planned, tally)
        while True:
            wave = campaign.wave()
            if not wave:
                break
            for trial, result in pool.map(one, wave):
                outcome = classify(result, recorded)
                campaign.record(trial, outcome)
                findings[trial] = reports.finding_of(trial, outcome, result, settings.command, timeout)
                tally[outcome] = tally.get(outcome, 0) + 1
                progress.show(len(findings), planned - campaign.folded_total(), tally)
        to_confirm = [trial for trial, finding in findings.items() if finding["outcome"] in FINDINGS]
        confirmations = 0
        if settings.confirm:
            for trial, result in pool.map(lambda t: (t, runner.reproduce(findings[t]["reproducer"], timeout)), to_confirm):
                confirmations += 1
                same = classify(result, recorded) == findings[trial]["outcome"]
                findings[trial]["confirmed"] = same
                findings[trial]["flaky"] = not same
    except KeyboardInterrupt:
        runner.stop()  # kill the runs under way; the queued ones start none
        pool.shutdown(wait=True, cancel_futures=True)
        progress.close()
        raise
    pool.shutdown()
    progress.close()

    seconds = time.monotonic() - started
    campaign_info = {
        "command": settings.command, "cwd": runner.cwd, "stdin": settings.stdin, "reset": settings.reset,
        "selected": selected_text, "errnos": settings.errnos_text(), "fold": settings.fold, "timeout": timeout,
        "shard": list(settings.shard) if settings.shard else None, "output_stable": output_stable,
        "recorded": {"status": recorded.status, "seconds": round(recorded.duration, 3), "calls": len(calls),
                     "sites": len(sites)},
    }
    stats = {"sites": len(mine), "runs": len(findings), "folded": campaign.folded_total(), "left_out": campaign.left_out(),
             "confirmations": confirmations, "seconds": round(seconds, 2),
             # trials whose fault never fired: the run took another path than the recording
             "not_reached": sum(1 for f in findings.values() if f["injected"] == 0),
             # every run made: the recording, the control run, the trials and the confirmations
             "runs_per_second": round((len(findings) + confirmations + 2) / seconds, 2) if seconds else 0.0}
    report = reports.build(campaign_info, list(findings.values()), stats)
    if settings.report_dir:
        reports.write(settings.report_dir, report)
    print(reports.summary_text(report), file=out)
    return reports.exit_status(report)


def merge(directories: list[str], report_dir: str | None, out=sys.stdout) -> int:
    loaded = [(directory, reports.load(directory)) for directory in directories]
    report = reports.merge(loaded)
    if report_dir:
        reports.write(report_dir, report)
    print(reports.summary_text(report), file=out)
    return reports.exit_status(report)
