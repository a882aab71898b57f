"""--explore's pure logic (issue 15): sites and their occurrence numbers, shards, the plan
of trials and its folding, classification, reports, merging, the page and the progress
line. No tracee here; tests/test_explore_campaign.py runs real programs."""

from __future__ import annotations

import errno
import json
from html.parser import HTMLParser

import pytest

from systrace.explore import report as reports
from systrace.explore.classify import CRASHED, HANDLED, HUNG, IGNORED, OUTCOMES, UNAFFECTED, RunResult, classify, split_stats
from systrace.explore.html import render
from systrace.explore.plan import Campaign, Trial, choose_errnos, trials_for
from systrace.explore.progress import Progress, line
from systrace.explore.sites import Site, escape_glob, failable, parse_shard, shard_of, sites_of, stable
from systrace.faults.plan import RuleFaults
from systrace.faults.spec import expand_set, parse_inject
from systrace.faults.tables import ERRNOS, NEVER_FAIL
from systrace.policy.match import compile_fnmatch


def call(proc: int, syscall: str, *filenames: str, binary: str = "/bin/prog", pid: int = 100, **args: str) -> dict:
    pairs = [["filename", name] for name in filenames] + [[k, v] for k, v in args.items()]
    return {"proc": proc, "pid": pid, "binary": binary, "syscall": syscall, "args": pairs}


CALLS = [
    call(1, "openat", "/etc/a"),
    call(1, "openat", "/etc/a/b"),  # path=/etc/a also selects what is below it
    call(1, "openat", "/etc/b"),
    call(1, "openat", "/etc/a"),
    call(1, "write", fd="1"),
    call(1, "write", fd="1"),
    call(1, "openat", "/tmp/x:y"),
    call(1, "readlink", "/proc/100/exe"),
    call(1, "readlink", "/proc/7/exe"),
    call(2, "openat", "/etc/a"),  # another process (or the same after exec) counts afresh
    call(2, "write", fd="1"),
    call(2, "newfstatat", "/etc/a"),
    call(2, "newfstatat", fd="4"),  # fstat: no filename, so its rule counts every newfstatat
]


def fires_at(trial: Trial, calls: list[dict]) -> list[int]:
    """Where the --inject rule of a trial fails, run through the real rule counter."""
    rules = RuleFaults([parse_inject(trial.spec())])
    counters: dict[int, dict[int, int]] = {}
    hits = []
    for number, c in enumerate(calls):
        names = [v for k, v in c["args"] if k == "filename"]
        matches = lambda glob, names=names: any(compile_fnmatch(glob).match(n) for n in names)  # noqa: E731
        if rules.decide(c["syscall"], counters.setdefault(c["proc"], {}), matches) is not None:
            hits.append(number)
    return hits


def test_sites_are_numbered_as_the_inject_rule_counts() -> None:
    sites = sites_of(CALLS)
    # The first /etc/a and the first write of process 2 are those of process 1: one site each.
    assert len(sites) == len(CALLS) - 2
    by_call = {}
    for site in sites:
        trial = Trial(site, errno.ENOENT if site.syscall != "write" else errno.ENOSPC, False)
        hits = fires_at(trial, CALLS)
        assert hits, trial.spec()
        by_call[trial.spec()] = hits
    # Each one-off rule fails its site (in each process that has it) and nothing else.
    assert by_call["openat:error=ENOENT:when=1:path=/etc/a"] == [0, 9]
    assert by_call["openat:error=ENOENT:when=1:path=/etc/a/b"] == [1]
    # path=/etc/a counts /etc/a/b as its second call, so the second /etc/a is its third.
    assert by_call["openat:error=ENOENT:when=3:path=/etc/a"] == [3]
    assert by_call["write:error=ENOSPC:when=2"] == [5]
    assert by_call["openat:error=ENOENT:when=1:path=/tmp/x?y"] == [6]
    assert by_call["newfstatat:error=ENOENT:when=2"] == [12]


def test_lasting_fails_every_later_call_the_rule_selects() -> None:
    site = next(s for s in sites_of(CALLS) if s.syscall == "write" and s.occurrence == 1)
    assert fires_at(Trial(site, errno.ENOSPC, True), CALLS) == [4, 5, 10]
    assert Trial(site, errno.ENOSPC, True).spec() == "write:error=ENOSPC:when=1+"


def test_proc_names_are_stable_between_runs() -> None:
    sites = [s for s in sites_of(CALLS) if s.syscall == "readlink"]
    assert [s.args for s in sites] == [(("filename", "/proc/self/exe"),), (("filename", "/proc/<pid>/exe"),)]
    assert [s.path for s in sites] == ["/proc/[0-9]*/exe", "/proc/[0-9]*/exe"]
    assert [s.occurrence for s in sites] == [1, 2]
    assert stable("/proc/1234", 1234) == "/proc/self" and stable("/proc/12x", 1) == "/proc/12x"


def test_escaped_paths_match_only_themselves() -> None:
    for path, other in [("/a/b*c", "/a/bZc"), ("/a/[x]", "/a/x"), ("/a/q?", "/a/q!"), ("/a\\b", "/a/b")]:
        pattern = compile_fnmatch(escape_glob(path))
        assert pattern.match(path) and pattern.match(path + "/below")
        assert not pattern.match(other)


def test_failable_calls_have_tables_and_can_be_failed() -> None:
    names = failable()
    assert "openat" in names and "write" in names
    assert not names & set(NEVER_FAIL)
    assert names <= set(ERRNOS)
    assert failable(expand_set("%memory")) == frozenset({"mmap", "mremap", "brk", "mprotect", "mlock", "madvise"})


def test_shards_partition_the_sites_by_loop_group() -> None:
    sites = sites_of(CALLS)
    shards = [[s for s in sites if shard_of(s, 3) == i] for i in range(3)]
    assert sorted(map(Site.key, [s for shard in shards for s in shard])) == sorted(map(Site.key, sites))
    for shard in shards:  # a group's occurrences all go to one shard
        groups = {s.group for s in shard}
        assert all(shard_of(s, 3) == shards.index(shard) for s in sites if s.group in groups)
    assert [shard_of(s, 3) for s in sites] == [shard_of(s, 3) for s in sites_of(CALLS)]


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0", "-1/2", "1/2/3", ""])
def test_bad_shards_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid shard"):
        parse_shard(text)


def test_errnos_first_all_or_a_set() -> None:
    assert choose_errnos("openat", "first") == (errno.ENOENT,)
    assert choose_errnos("openat", "all") == ERRNOS["openat"]
    assert choose_errnos("write", frozenset({errno.EIO, errno.ENOENT})) == (errno.EIO,)
    site = Site("/bin/p", "write", (), 1)
    assert [(t.errno, t.lasting) for t in trials_for([site], "first")] == [(errno.ENOSPC, False), (errno.ENOSPC, True)]


def loop(count: int) -> list[Trial]:
    return [Trial(Site("/bin/p", "write", (), n), errno.ENOSPC, False) for n in range(1, count + 1)]


def test_a_loop_is_folded_after_k_identical_outcomes() -> None:
    campaign = Campaign(loop(10), fold=3)
    first = campaign.wave()
    assert [t.site.occurrence for t in first] == [1, 2, 3]
    assert campaign.wave() == []  # nothing more until the wave's outcomes are known
    for trial in first:
        campaign.record(trial, IGNORED)
    assert campaign.wave() == []
    assert campaign.folded_total() == 7 and campaign.left_out() == 0


def test_a_loop_goes_on_while_outcomes_differ() -> None:
    campaign = Campaign(loop(7), fold=3)
    outcomes = {1: HANDLED, 2: IGNORED, 3: IGNORED, 4: IGNORED, 5: IGNORED, 6: IGNORED, 7: IGNORED}
    ran = []
    while wave := campaign.wave():
        for trial in wave:
            ran.append(trial.site.occurrence)
            campaign.record(trial, outcomes[trial.site.occurrence])
    assert ran == [1, 2, 3, 4, 5, 6]  # 4, 5, 6 were identical after a different 1: 7 folded
    assert campaign.folded_total() == 1
    assert Campaign(loop(7), fold=0).wave() == loop(7)


def test_max_runs_is_deterministic_and_counts_what_is_left() -> None:
    trials = loop(2) + [Trial(Site("/bin/p", "openat", (("filename", f"/f{n}"),), 1, f"/f{n}"), errno.ENOENT, True)
                        for n in range(5)]
    picked = []
    for _ in range(2):
        campaign = Campaign(trials, fold=3, max_runs=4)
        wave = campaign.wave()
        for trial in wave:
            campaign.record(trial, HANDLED)
        assert campaign.wave() == []
        picked.append(wave)
        assert campaign.left_out() == 3
    assert picked[0] == picked[1] == trials[:4]


def result(status: int | None, output: str = "same", stderr: bytes = b"") -> RunResult:
    return RunResult(status, output, stderr)


@pytest.mark.parametrize(
    ("run", "reference", "outcome"),
    [
        (result(139), result(0), CRASHED),
        (result(134, "other"), result(0), CRASHED),
        (result(141), result(141), UNAFFECTED),  # died of SIGPIPE as the recorded run did
        (result(None), result(0), HUNG),
        (result(0, "other"), result(0), IGNORED),
        (result(1, "other", b"prog: read error\n"), result(0), HANDLED),
        (result(1, "same"), result(0), HANDLED),
        (result(0), result(0), UNAFFECTED),
        (result(1), result(1), UNAFFECTED),
        (result(2), result(1), HANDLED),
    ],
)
def test_classification(run: RunResult, reference: RunResult, outcome: str) -> None:
    assert classify(run, reference) == outcome


def test_exit_is_a_status_a_signal_or_a_timeout() -> None:
    assert result(139).exit(5) == {"signal": "SIGSEGV"}
    assert result(3).exit(5) == {"status": 3}
    assert result(None).exit(5.0) == {"timeout": 5.0}


def test_the_stats_line_is_taken_out_of_stderr() -> None:
    text = (b"prog: oops\nsystrace: 12 calls reached systrace, 1 faults injected, peak RSS 100 KiB\n"
            b"systrace: routed by system call: openat 11, execve 1\n")
    assert split_stats(text) == (b"prog: oops\n", 1)
    assert split_stats(b"prog: only this\n") == (b"prog: only this\n", None)


def campaign_of(command: list[str], shard=None) -> dict:
    return {"command": command, "cwd": "/tmp", "stdin": "/dev/null", "reset": None, "selected": "openat,write",
            "errnos": "first", "fold": 3, "timeout": 5.0, "shard": shard, "output_stable": True, "recorded": {}}


def findings_for(trials_outcomes: list[tuple[Trial, str]], command: list[str]) -> list[dict]:
    out = []
    for trial, outcome in trials_outcomes:
        status = {CRASHED: 139, HUNG: None, IGNORED: 0, HANDLED: 1, UNAFFECTED: 0}[outcome]
        finding = reports.finding_of(trial, outcome, RunResult(status, "x", b"prog: <oops> & more\n", 0.1, 1),
                                     command, 5.0)
        finding["confirmed"] = outcome in (CRASHED, HUNG, IGNORED)
        out.append(finding)
    return out


SITE_A = Site("/bin/prog", "openat", (("filename", "/etc/a b"),), 1, "/etc/a b")
SITE_W = Site("/bin/prog", "write", (), 2)
TRIALS = [(Trial(SITE_A, errno.ENOENT, False), HANDLED), (Trial(SITE_A, errno.ENOENT, True), CRASHED),
          (Trial(SITE_W, errno.ENOSPC, False), IGNORED), (Trial(SITE_W, errno.ENOSPC, True), UNAFFECTED)]
STATS = {"sites": 2, "runs": 4, "folded": 0, "left_out": 0, "confirmations": 2, "seconds": 1.0}


def test_findings_have_the_issue_fields_and_a_reproducer() -> None:
    command = ["prog", "--flag"]
    report = reports.build(campaign_of(command), findings_for(TRIALS, command), STATS)
    first = report["findings"][0]
    for field in ("outcome", "binary", "syscall", "args", "errno", "occurrence", "lasting", "exit", "reproducer",
                  "confirmed", "flaky", "stderr_tail"):
        assert field in first
    assert [f["outcome"] for f in report["findings"]] == [CRASHED, IGNORED, HANDLED, UNAFFECTED]
    assert first["reproducer"] == ["systrace", "--permit-all", "--inject", "openat:error=ENOENT:when=1+:path=/etc/a b",
                                   "--", "prog", "--flag"]
    assert first["exit"] == {"signal": "SIGSEGV"}
    assert report["summary"] == {CRASHED: 1, HUNG: 0, IGNORED: 1, HANDLED: 1, UNAFFECTED: 1}
    assert report["by_syscall"]["write"][IGNORED] == 1
    assert reports.exit_status(report) == 1
    quiet = reports.build(campaign_of(command), findings_for([TRIALS[0], TRIALS[3]], command), STATS)
    assert reports.exit_status(quiet) == 0
    assert "never reached" not in reports.summary_text(report)
    report["stats"]["not_reached"] = 2
    text = reports.summary_text(report)
    assert "2 trials never reached their call" in text
    assert "crashed    openat" in text and "systrace --permit-all --inject 'openat:error=ENOENT:when=1+:path=/etc/a b'" in text


def test_merged_shards_equal_the_whole(tmp_path) -> None:
    command = ["prog"]
    whole = reports.build(campaign_of(command), findings_for(TRIALS, command), STATS)
    halves = [findings_for(TRIALS[:2], command), findings_for(TRIALS[2:], command)]
    for number, half in enumerate(halves, 1):
        stats = {**STATS, "runs": 2, "sites": 1, "seconds": 0.5}
        reports.write(str(tmp_path / f"s{number}"), reports.build(campaign_of(command, [number, 2]), half, stats))
    merged = reports.merge([(str(tmp_path / f"s{n}"), reports.load(str(tmp_path / f"s{n}"))) for n in (2, 1)])
    assert merged["findings"] == whole["findings"]
    assert merged["summary"] == whole["summary"] and merged["stats"]["runs"] == 4
    assert merged["missing_shards"] == [] and merged["merged"] == [1, 2]


def test_merge_refuses_what_does_not_belong_together(tmp_path) -> None:
    one = reports.build(campaign_of(["prog"], [1, 2]), [], STATS)
    other = reports.build(campaign_of(["other"], [2, 2]), [], STATS)
    with pytest.raises(reports.ReportError, match="not the same campaign"):
        reports.merge([("a", one), ("b", other)])
    with pytest.raises(reports.ReportError, match="given twice"):
        reports.merge([("a", one), ("b", one)])
    three = reports.build(campaign_of(["prog"], [2, 3]), [], STATS)
    with pytest.raises(reports.ReportError, match="does not belong"):
        reports.merge([("a", one), ("b", three)])
    assert reports.merge([("a", one)])["missing_shards"] == [2]
    (tmp_path / "findings.json").write_text("{not json")
    with pytest.raises(reports.ReportError, match="not a findings report"):
        reports.load(str(tmp_path))
    with pytest.raises(reports.ReportError, match="No such file"):
        reports.load(str(tmp_path / "missing"))


class Rows(HTMLParser):
    """The text of each row of table#findings."""

    def __init__(self) -> None:
        super().__init__()
        self.table = None
        self.rows: list[list[str]] = []
        self.external: list[str] = []

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        if tag == "table":
            self.table = attrs.get("id")
        if tag in ("script", "img", "link", "iframe") and (attrs.get("src") or attrs.get("href")):
            self.external.append(tag)
        if self.table == "findings" and tag == "tr" and "data-outcome" in attrs:
            self.rows.append([attrs["data-outcome"]])

    def handle_data(self, data) -> None:
        if self.table == "findings" and self.rows and data.strip():
            self.rows[-1].append(data.strip())

    def handle_endtag(self, tag) -> None:
        if tag == "table":
            self.table = None


def test_the_page_lists_findings_first_escaped_and_self_contained() -> None:
    command = ["prog"]
    page = render(reports.build(campaign_of(command), findings_for(TRIALS, command), STATS))
    parser = Rows()
    parser.feed(page)
    assert [row[0] for row in parser.rows] == [CRASHED, IGNORED]
    assert "prog: <oops> & more" not in page and "prog: &lt;oops&gt; &amp; more" in page
    assert "systrace --permit-all --inject &#x27;openat:error=ENOENT:when=1+:path=/etc/a b&#x27; -- prog" in page
    assert not parser.external and "http" not in page
    assert 'id="chart"' in page and page.count('<tr data-syscall=') == 2


def test_progress_line_counts_by_outcome() -> None:
    text = line(3, 12, {CRASHED: 1, HANDLED: 2})
    assert text.startswith("[######..................] 3/12 runs")
    assert all(outcome in text for outcome in OUTCOMES) and "crashed 1" in text and "hung 0" in text

    class Stream:
        written = ""

        def write(self, text: str) -> None:
            self.written += text

        def flush(self) -> None:
            pass

    off, on = Stream(), Stream()
    Progress(off, enabled=False).show(1, 2, {})
    progress = Progress(on, enabled=True)
    progress.show(1, 2, {})
    progress.close()
    assert off.written == "" and "1/2 runs" in on.written and on.written.endswith("\r\x1b[K")


def test_report_is_json_with_one_object_per_trial(tmp_path) -> None:
    command = ["prog"]
    reports.write(str(tmp_path), reports.build(campaign_of(command), findings_for(TRIALS, command), STATS))
    data = json.loads((tmp_path / "findings.json").read_text())
    assert len(data["findings"]) == 4 and (tmp_path / "index.html").exists()


def test_brk_is_left_out_unless_named_and_errnos_are_parsed() -> None:
    from systrace.explore.cli import UsageError, _selected, parse_errnos

    assert "brk" not in _selected(None, None) and "mmap" in _selected(None, None)
    assert _selected("brk,mmap", None) == frozenset({"brk", "mmap"})
    assert _selected("%memory", "mmap") == frozenset({"mremap", "brk", "mprotect", "mlock", "madvise"})
    assert parse_errnos("enoent,EIO") == frozenset({errno.ENOENT, errno.EIO})
    assert parse_errnos("all") == "all"
    with pytest.raises(UsageError, match="unknown errno 'ENOPE'"):
        parse_errnos("ENOENT,ENOPE")
