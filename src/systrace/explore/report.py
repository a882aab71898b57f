"""findings.json: one object per trial run, the summary, and the merge of shard reports
(pure but for reading and writing the report directory)."""

from __future__ import annotations

import json
import os
import shlex

from ..policy.errnos import name_of
from .classify import FINDINGS, OUTCOMES, RunResult, tail
from .plan import Trial

FORMAT = 1
# What must be equal for shard reports to be merged: the same campaign.
CAMPAIGN_KEYS = ("command", "cwd", "stdin", "reset", "selected", "errnos", "fold", "timeout")


class ReportError(Exception):
    pass


def finding_of(trial: Trial, outcome: str, result: RunResult, command: list[str], timeout: float) -> dict:
    site = trial.site
    return {
        "outcome": outcome,
        "binary": site.binary,
        "syscall": site.syscall,
        "args": [list(pair) for pair in site.args],
        "errno": name_of(trial.errno).upper(),
        "occurrence": site.occurrence,
        "lasting": trial.lasting,
        "exit": result.exit(timeout),
        "reproducer": trial.reproducer(command),
        "confirmed": None,  # set once the reproducer is re-run (findings only)
        "flaky": False,
        "injected": result.injected,
        "message": bool(result.stderr.strip()),
        "stderr_tail": tail(result.stderr),
        "duration": round(result.duration, 3),
    }


def sort_key(finding: dict) -> tuple:
    """Findings first (crashed, hung, ignored), then by call: the same order for a merged
    report as for an unsharded one."""
    return (OUTCOMES.index(finding["outcome"]), finding["binary"], finding["syscall"], json.dumps(finding["args"]),
            finding["occurrence"], finding["errno"], finding["lasting"])


def counts(findings: list[dict]) -> dict[str, int]:
    out = dict.fromkeys(OUTCOMES, 0)
    for finding in findings:
        out[finding["outcome"]] += 1
    return out


def by_syscall(findings: list[dict]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for finding in findings:
        row = out.setdefault(finding["syscall"], dict.fromkeys(OUTCOMES, 0))
        row[finding["outcome"]] += 1
    return dict(sorted(out.items()))


def build(campaign: dict, findings: list[dict], stats: dict) -> dict:
    findings = sorted(findings, key=sort_key)
    return {"format": FORMAT, **campaign, "summary": counts(findings), "by_syscall": by_syscall(findings),
            "stats": stats, "findings": findings}


def exit_status(report: dict) -> int:
    return 1 if any(report["summary"][outcome] for outcome in FINDINGS) else 0


def write(directory: str, report: dict) -> None:
    from .html import render

    os.makedirs(directory, exist_ok=True)
    for name, text in (("findings.json", json.dumps(report, indent=1, ensure_ascii=False) + "\n"),
                       ("index.html", render(report))):
        temporary = os.path.join(directory, f".{name}.tmp")
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(temporary, os.path.join(directory, name))


def load(directory: str) -> dict:
    path = os.path.join(directory, "findings.json")
    try:
        with open(path, encoding="utf-8") as handle:
            report = json.load(handle)
    except OSError as error:
        raise ReportError(f"{path}: {error.strerror}") from None
    except ValueError as error:
        raise ReportError(f"{path}: not a findings report ({error})") from None
    if not isinstance(report, dict) or report.get("format") != FORMAT or not isinstance(report.get("findings"), list):
        raise ReportError(f"{path}: not a findings report of this version")
    return report


def merge(reports: list[tuple[str, dict]]) -> dict:
    """Shard reports of one campaign -> one report, as one unsharded run would have written."""
    first_name, first = reports[0]
    shards: dict[int, str] = {}
    count = None
    for name, report in reports:
        for key in CAMPAIGN_KEYS:
            if report.get(key) != first.get(key):
                raise ReportError(f"{name}: not the same campaign as {first_name} ({key} differs)")
        index, total = report.get("shard") or (1, 1)
        if count is not None and total != count:
            raise ReportError(f"{name}: shard {index}/{total} does not belong with shards of {count}")
        count = total
        if index in shards:
            raise ReportError(f"{name}: shard {index}/{total} given twice (also {shards[index]})")
        shards[index] = name
    missing = [i for i in range(1, (count or 1) + 1) if i not in shards]
    findings = [finding for _, report in reports for finding in report["findings"]]
    stats = {key: sum(report["stats"].get(key, 0) for _, report in reports)
             for key in ("sites", "runs", "folded", "left_out", "confirmations", "seconds", "not_reached")}
    stats["seconds"] = round(stats["seconds"], 2)  # the shards' times added (they may have run side by side)
    campaign = {key: first.get(key) for key in CAMPAIGN_KEYS}
    campaign.update(shard=None, merged=sorted(shards), missing_shards=missing,
                    output_stable=all(report.get("output_stable", True) for _, report in reports),
                    recorded=first.get("recorded"))
    return build(campaign, findings, stats)


def command_line(argv: list[str]) -> str:
    return shlex.join(argv)


def summary_text(report: dict, limit: int = 40) -> str:
    """The terminal's table: findings first, then outcomes by system call."""
    lines = []
    findings = [f for f in report["findings"] if f["outcome"] in FINDINGS]
    if findings:
        lines.append(f"{'outcome':<10} {'syscall':<12} {'errno':<8} {'kind':<8} {'call':>5}  {'repro':<9} binary / args")
        for finding in findings[:limit]:
            kind = "lasting" if finding["lasting"] else "one-off"
            repro = "confirmed" if finding["confirmed"] else ("flaky" if finding["flaky"] else "-")
            args = " ".join(f"{name}={value}" for name, value in finding["args"])
            lines.append(f"{finding['outcome']:<10} {finding['syscall']:<12} {finding['errno']:<8} {kind:<8} "
                         f"{finding['occurrence']:>5}  {repro:<9} {os.path.basename(finding['binary'])} {args}")
            lines.append(f"    {command_line(finding['reproducer'])}")
        if len(findings) > limit:
            lines.append(f"... and {len(findings) - limit} more (see the report)")
        lines.append("")
    table = report["by_syscall"]
    if table:
        lines.append(f"{'syscall':<14}" + "".join(f"{outcome:>11}" for outcome in OUTCOMES))
        for syscall, row in table.items():
            lines.append(f"{syscall:<14}" + "".join(f"{row[outcome]:>11}" for outcome in OUTCOMES))
    stats = report["stats"]
    totals = ", ".join(f"{report['summary'][outcome]} {outcome}" for outcome in OUTCOMES)
    lines.append(f"{stats['sites']} sites, {stats['runs']} runs ({stats['folded']} folded, {stats['left_out']} left out "
                 f"by --max-runs), {stats['seconds']:.1f} s: {totals}")
    if stats.get("runs_per_second"):
        lines.append(f"{stats['runs_per_second']:.1f} runs per second, with the recording, the control run "
                     f"and {stats['confirmations']} confirmations")
    if stats.get("not_reached"):
        lines.append(f"{stats['not_reached']} trials never reached their call (the run went another way): "
                     "their outcome says nothing of that call")
    if report.get("missing_shards"):
        lines.append(f"missing shards: {', '.join(map(str, report['missing_shards']))}")
    if not report.get("output_stable", True):
        lines.append("warning: the output differs between two runs without faults: 'ignored' is unreliable")
    return "\n".join(lines)
