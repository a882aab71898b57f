"""index.html: one self-contained page (no external resources): the findings first, each
with its copyable reproducer and stderr tail, then a chart of outcomes by system call
made of CSS bars, then every other trial (pure)."""

from __future__ import annotations

import os
import shlex
from html import escape

from .classify import FINDINGS, OUTCOMES

COLOURS = {"crashed": "#c0392b", "hung": "#8e44ad", "ignored": "#d35400", "handled": "#2980b9", "unaffected": "#7f8c8d"}

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 2em; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid #ddd; padding: 4px 6px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
code.repro { display: block; user-select: all; background: #f7f7f7; padding: 3px 5px; white-space: pre-wrap;
  word-break: break-all; }
pre { margin: 0; max-height: 12em; overflow: auto; background: #fbfbfb; font-size: 12px; }
.outcome { font-weight: bold; color: #fff; padding: 1px 6px; border-radius: 3px; }
.bar { display: flex; height: 16px; min-width: 2px; }
.bar span { display: block; height: 100%; }
.legend span { display: inline-block; padding: 0 8px; margin-right: 6px; color: #fff; border-radius: 3px; }
.chart td { border: none; padding: 2px 6px; }
button { font-size: 11px; }
"""

COPY_SCRIPT = """
for (const button of document.querySelectorAll('button.copy')) {
  button.addEventListener('click', () => {
    navigator.clipboard.writeText(button.previousElementSibling.textContent);
    button.textContent = 'copied';
  });
}
"""


def _badge(outcome: str) -> str:
    return f'<span class="outcome" style="background:{COLOURS[outcome]}">{escape(outcome)}</span>'


def _args(finding: dict) -> str:
    return escape(" ".join(f"{name}={value}" for name, value in finding["args"]))


def _exit(finding: dict) -> str:
    exit_ = finding["exit"]
    if "signal" in exit_:
        return escape(exit_["signal"])
    if "timeout" in exit_:
        return escape(f"timeout {exit_['timeout']:g} s")
    return escape(str(exit_["status"]))


def _repro_state(finding: dict) -> str:
    if finding["confirmed"]:
        return "confirmed"
    return "flaky" if finding["flaky"] else "not re-run"


def _finding_rows(findings: list[dict]) -> str:
    rows = []
    for finding in findings:
        rows.append(
            f'<tr class="finding {escape(finding["outcome"])}" data-outcome="{escape(finding["outcome"])}" '
            f'data-syscall="{escape(finding["syscall"])}" data-errno="{escape(finding["errno"])}">'
            f"<td>{_badge(finding['outcome'])}</td><td>{escape(finding['syscall'])}</td>"
            f"<td>{escape(finding['errno'])}</td><td>{'lasting' if finding['lasting'] else 'one-off'}</td>"
            f"<td>{finding['occurrence']}</td><td>{escape(os.path.basename(finding['binary']))}<br><small>{_args(finding)}"
            f"</small></td><td>{_exit(finding)}</td><td>{_repro_state(finding)}</td>"
            f'<td><code class="repro">{escape(shlex.join(finding["reproducer"]))}</code>'
            f'<button class="copy" type="button">copy</button>'
            f"<pre>{escape(finding['stderr_tail'])}</pre></td></tr>")
    return "\n".join(rows)


def _chart(by_syscall: dict[str, dict[str, int]]) -> str:
    if not by_syscall:
        return "<p>No trials.</p>"
    widest = max(sum(row.values()) for row in by_syscall.values()) or 1
    rows = []
    for syscall, row in by_syscall.items():
        total = sum(row.values())
        segments = "".join(
            f'<span title="{escape(outcome)}: {row[outcome]}" style="width:{100 * row[outcome] / total:.2f}%;'
            f'background:{COLOURS[outcome]}"></span>' for outcome in OUTCOMES if row[outcome])
        rows.append(f'<tr data-syscall="{escape(syscall)}"><td>{escape(syscall)}</td><td style="width:70%">'
                    f'<div class="bar" style="width:{100 * total / widest:.2f}%">{segments}</div></td>'
                    f"<td>{' · '.join(f'{row[o]} {o}' for o in OUTCOMES if row[o])}</td></tr>")
    legend = "".join(f'<span style="background:{COLOURS[o]}">{o}</span>' for o in OUTCOMES)
    return f'<p class="legend">{legend}</p><table class="chart" id="chart">{"".join(rows)}</table>'


def _other_rows(findings: list[dict]) -> str:
    return "\n".join(
        f'<tr data-outcome="{escape(f["outcome"])}"><td>{_badge(f["outcome"])}</td><td>{escape(f["syscall"])}</td>'
        f"<td>{escape(f['errno'])}</td><td>{'lasting' if f['lasting'] else 'one-off'}</td><td>{f['occurrence']}</td>"
        f"<td>{escape(os.path.basename(f['binary']))} <small>{_args(f)}</small></td><td>{_exit(f)}</td>"
        f'<td><code class="repro">{escape(shlex.join(f["reproducer"]))}</code></td></tr>' for f in findings)


def render(report: dict) -> str:
    findings = [f for f in report["findings"] if f["outcome"] in FINDINGS]
    others = [f for f in report["findings"] if f["outcome"] not in FINDINGS]
    summary = " · ".join(f"{report['summary'][o]} {o}" for o in OUTCOMES)
    stats = report["stats"]
    command = shlex.join(report.get("command") or [])
    header = ("<tr><th>outcome</th><th>syscall</th><th>errno</th><th>kind</th><th>call</th><th>binary / args</th>"
              "<th>exit</th>")
    shard = report.get("shard")
    notes = []
    if shard:
        notes.append(f"shard {shard[0]}/{shard[1]}")
    if report.get("merged"):
        notes.append(f"merged from shards {', '.join(map(str, report['merged']))}")
    if report.get("missing_shards"):
        notes.append(f"missing shards {', '.join(map(str, report['missing_shards']))}")
    if not report.get("output_stable", True):
        notes.append("the output differs between two runs without faults: 'ignored' is unreliable")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>systrace --explore: {escape(command)}</title>
<style>{STYLE}</style></head><body>
<h1>systrace --explore: <code>{escape(command)}</code></h1>
<p id="summary">{escape(summary)}</p>
<p>{stats['sites']} sites, {stats['runs']} runs, {stats['folded']} folded, {stats['left_out']} left out by --max-runs,
{stats['seconds']:.1f} s. Working directory <code>{escape(str(report.get('cwd')))}</code>, stdin
<code>{escape(str(report.get('stdin')))}</code>{'; ' + escape('; '.join(notes)) if notes else ''}.</p>
<h2>Findings: crashed, hung, ignored ({len(findings)})</h2>
<table id="findings">{header}<th>reproduced</th><th>reproducer and stderr tail</th></tr>
{_finding_rows(findings)}
</table>
<h2>Outcomes by system call</h2>
{_chart(report['by_syscall'])}
<h2>Handled and unaffected ({len(others)})</h2>
<table id="others">{header}<th>reproducer</th></tr>
{_other_rows(others)}
</table>
<script>{COPY_SCRIPT}</script>
</body></html>
"""
