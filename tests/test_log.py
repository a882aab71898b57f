"""Logging: sinks that fail or stall never stop supervision (issue 12 items 4, 5), records
cannot be forged (12.6), no syslog means stderr (14.7), logged calls are translated
whoever decides them (14.13) and JSON records are documented (14.14)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

from conftest import ROOT, TIMEOUT, base_env, run, systrace_argv

from systrace.decide import DENY, PERMIT, Chain, Decision
from systrace.translate.filename import NONEXISTENT

MISSING_SYSLOG = {"SYSTRACE_SYSLOG_SOCKET": "/nonexistent/log"}
SCRIPT = "cat /etc/hostname; ls /nonexistent-h6 2>/dev/null; head -c 3 /etc/passwd; echo; exit 3"


def _native(script: str) -> subprocess.CompletedProcess:
    return run(["sh", "-c", script])


# -- failing sinks (12.5) ------------------------------------------------------------
def test_stderr_a_closed_pipe_with_e(syslog_socket) -> None:
    """`-e` with stderr a pipe nobody reads: the command still gets real answers (not
    ENOSYS), keeps its status, and the records go on to the next sink (syslog)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        traced = subprocess.run(systrace_argv() + ["--permit-all", "-e", "sh", "-c", SCRIPT], stdout=subprocess.PIPE,
                                stderr=write_end, env=syslog_socket.env, timeout=TIMEOUT)
    finally:
        os.close(write_end)
    native = _native(SCRIPT)
    assert traced.stdout == native.stdout and traced.returncode == native.returncode == 3
    received = syslog_socket.received()
    notes = [line for line in received if b"log to stderr failed: Broken pipe; logging to syslog" in line]
    assert len(notes) == 1, received[:3]
    # the record that failed follows the note (later ones may be dropped, and counted,
    # when this stand-in daemon is slower than a real one: its queue holds 10)
    assert received.index(notes[0]) + 1 < len(received) and b"prog: " in received[received.index(notes[0]) + 1]


def test_log_file_on_a_full_disk() -> None:
    """`-E /dev/full`: one warning, then the records on stderr; no traceback; the command's
    output and status are kept."""
    traced = run(systrace_argv() + ["--permit-all", "-E", "/dev/full", "sh", "-c", SCRIPT])
    native = _native(SCRIPT)
    assert traced.stdout == native.stdout and traced.returncode == native.returncode
    lines = traced.stderr.decode().splitlines()
    assert lines[0] == "systrace: log to /dev/full failed: No space left on device; logging to stderr from now on"
    assert sum("failed" in line for line in lines) == 1
    assert "Traceback" not in traced.stderr.decode()
    assert any("prog: /usr/bin/cat" in line for line in lines[1:])


def test_a_failed_log_file_beside_stderr_writes_each_record_once() -> None:
    """`-E /dev/full -e`: stderr took the record the file failed on, so it is not given it
    again (found in a new user's trial: the first record was printed twice)."""
    traced = run(systrace_argv() + ["--permit-all", "-E", "/dev/full", "-e", "sh", "-c", SCRIPT])
    native = _native(SCRIPT)
    assert traced.stdout == native.stdout and traced.returncode == native.returncode
    plain = run(systrace_argv() + ["--permit-all", "-e", "sh", "-c", SCRIPT])  # the same records, to stderr only
    records = [line for line in traced.stderr.decode().splitlines() if "prog: " in line]
    assert len(records) == len([line for line in plain.stderr.decode().splitlines() if "prog: " in line]) > 0
    assert records[0] != records[1]
    assert sum("log to /dev/full failed" in line for line in traced.stderr.decode().splitlines()) == 1


def test_every_sink_failing_is_counted_not_fatal() -> None:
    """-E /dev/full, stderr closed and no syslog: nothing can be logged; the run is the
    same as without systrace."""
    env = base_env(**MISSING_SYSLOG)
    traced = subprocess.run(systrace_argv() + ["--permit-all", "-E", "/dev/full", "sh", "-c", SCRIPT],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, timeout=TIMEOUT,
                            preexec_fn=lambda: os.close(2))
    native = _native(SCRIPT)
    assert traced.stdout == native.stdout and traced.returncode == native.returncode


# -- a stalled sink (12.4) -------------------------------------------------------------
def test_terminal_stopped_by_the_command() -> None:
    """The command stops output on systrace's terminal (TCOOFF) and makes 10000 logged
    calls: it runs to completion; the records that did not fit in systrace's buffer are
    counted and reported at exit. Before, systrace's write waited for the terminal and
    with it every supervised call."""
    master, slave = os.openpty()
    script = ("import os, termios; termios.tcflow(2, termios.TCOOFF); [os.stat('/') for _ in range(10000)]; "
              "termios.tcflow(2, termios.TCOON); print('done')")
    chunks: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain)
    reader.start()
    try:
        traced = subprocess.run(systrace_argv() + ["--permit-all", "-e", sys.executable, "-c", script],
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, env=base_env(),
                                timeout=TIMEOUT)
    finally:
        os.close(slave)
        reader.join(timeout=TIMEOUT)
        os.close(master)
    assert traced.returncode == 0 and traced.stdout == b"done\n"
    output = b"".join(chunks).decode()
    lost = re.search(r"systrace: (\d+) log records could not be written", output)
    assert lost is not None, output[-500:]
    logged = output.count("linux-newfstatat")
    assert 0 < int(lost.group(1)) and logged + int(lost.group(1)) >= 10000


# -- no syslog (14.7a) -----------------------------------------------------------------
def _cat_policy(tmp_path: Path) -> Path:
    """A policy learned for `cat /etc/hostname`: reading /etc/passwd is denied by it."""
    policies = tmp_path / "policies"
    learned = run(systrace_argv() + ["-d", str(policies), "-A", "cat", "/etc/hostname"], env=base_env(**MISSING_SYSLOG))
    assert learned.returncode == 0, learned.stderr
    return policies


def test_no_syslog_socket_falls_back_to_stderr(tmp_path: Path) -> None:
    """With no syslog daemon a denial under -a is not silent: one warning, then the record."""
    policies = _cat_policy(tmp_path)
    result = run(systrace_argv() + ["-d", str(policies), "-a", "cat", "/etc/passwd"], env=base_env(**MISSING_SYSLOG))
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert lines[0] == "systrace: no syslog at /nonexistent/log (No such file or directory): logging to stderr"
    assert sum("no syslog" in line for line in lines) == 1
    assert any(re.match(r"systrace: deny(\[\w+\])? user: ", line) and "filename: /etc/passwd" in line for line in lines)


def test_syslog_gets_the_records_when_there_is_one(tmp_path: Path, syslog_socket) -> None:
    policies = _cat_policy(tmp_path)
    result = run(systrace_argv() + ["-d", str(policies), "-a", "cat", "/etc/passwd"], env=syslog_socket.env)
    assert result.returncode == 1 and result.stderr == b"cat: /etc/passwd: Permission denied\n"
    received = syslog_socket.received()
    assert any(re.match(rb"<85>\w{3} [ \d]\d \d\d:\d\d:\d\d systrace\[\d+\]: deny(\[\w+\])? user: ", line) for line in received)


def test_a_run_that_logs_nothing_stays_silent() -> None:
    result = run(systrace_argv() + ["--permit-all", "cat", "/etc/hostname"], env=base_env(**MISSING_SYSLOG))
    assert result.returncode == 0 and result.stderr == b""


# -- forged records (12.6) -----------------------------------------------------------
FORGED = "/tmp/x\nsystrace: permit user: root, prog: /bin/true, forged"


def test_a_value_cannot_start_a_log_line(tmp_path: Path) -> None:
    log = tmp_path / "log"
    script = f"import os\ntry: os.execv({FORGED!r}, ['x'])\nexcept OSError as e: print(e.errno)"
    result = run(systrace_argv() + ["--permit-all", "-E", str(log), sys.executable, "-c", script])
    assert result.returncode == 0 and result.stdout == b"2\n"  # ENOENT, as natively
    lines = log.read_text().splitlines()
    assert all(line.startswith("systrace: ") for line in lines)
    assert not [line for line in lines if "forged" in line and not line.startswith("systrace: permit user: root, prog: /")]
    # (and its ", " cannot add a field either: test_a_value_cannot_add_a_field_to_a_text_record)
    assert sum("/tmp/x\\nsystrace: permit user: root,\\x20prog: /bin/true,\\x20forged" in line for line in lines) == 1


def test_json_records_carry_the_raw_value(tmp_path: Path) -> None:
    log = tmp_path / "log"
    script = f"import os\ntry: os.execv({FORGED!r}, ['x'])\nexcept OSError: pass"
    result = run(systrace_argv() + ["--permit-all", "--json-log", "-E", str(log), sys.executable, "-c", script])
    assert result.returncode == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    execs = [r for r in records if r.get("syscall") == "execve" and r["args"] and FORGED in r["args"][0]["value"]]
    # raw: the path as the tracee gave it, after the marker of a name that does not exist
    assert len(execs) == 1 and execs[0]["args"][0] == {"name": "filename", "value": NONEXISTENT + FORGED}


def test_reasons_are_escaped() -> None:
    """A reason quotes tracee data (a path): escaped like every value."""
    from systrace.call import Call
    from systrace.decide import DENY, Chain, Decision
    from systrace.kernel.notify import Notification
    from systrace.log import FdSink, Log
    from systrace.session import Session

    read_end, write_end = os.pipe()
    session = Session(log=Log([FdSink(write_end, "test", False, owned=True)]), chain=Chain([]))
    call = Call(Notification(1, os.getpid(), 0, 59, 0xC000003E, 0, (0,) * 6), os.getpid(), os.getppid(), "/bin/x\ny")
    call.translated, call.reason = (("filename", "/a\nb"),), "no policy for /tmp/x\nsystrace: permit forged"
    session.log_decision(call, Decision(DENY, log=True, source="test"))
    session.log.close()
    with os.fdopen(read_end, "rb") as handle:
        text = handle.read().decode()
    assert text.count("\n") == 1
    assert "prog: /bin/x\\ny," in text and "filename: /a\\nb" in text
    assert text.endswith("(no policy for /tmp/x\\nsystrace: permit forged)\n")


# -- translation whoever decides (14.13) -------------------------------------------------
def test_permit_all_logs_translated_arguments() -> None:
    result = run(systrace_argv() + ["--permit-all", "-e", "cat", "/etc/hostname"])
    assert result.returncode == 0
    opens = [line for line in result.stderr.decode().splitlines() if "linux-openat(257)" in line]
    assert any(line.endswith("filename: /etc/hostname, oflags: ro, mode: 0") for line in opens), opens
    assert not [line for line in opens if "args:" in line]


# -- JSON records, documented (14.14) ---------------------------------------------------
def _documented_fields() -> dict[str, set[str]]:
    """README's table of JSON fields: `| `field` | events | meaning |` rows."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### JSON records", 1)[1].split("\n#", 1)[0]
    fields: dict[str, set[str]] = {}
    for match in re.finditer(r"^\| `(\w+)` \| ([^|]+) \|", section, re.M):
        fields.setdefault(match.group(1), set()).update(event.strip(" `") for event in match.group(2).split(","))
    return fields


def test_every_json_field_is_documented(tmp_path: Path) -> None:
    """A real run with decisions, denials, faults and a failed sink: every field of every
    record is in README's table, for that kind of record."""
    log = tmp_path / "log"
    policies = tmp_path / "policies"
    assert run(systrace_argv() + ["-d", str(policies), "-A", "cat", "/etc/hostname"]).returncode == 0
    # -r 0 logs the random-fault setup record; the one injected fault must not stop cat
    # (with -r 100 the loader's own read of libc fails and cat never runs)
    result = run(systrace_argv() + ["-d", str(policies), "-a", "--json-log", "-E", str(log), "-r", "0",
                                    "--eligible", "read", "--inject", "read:error=EIO:when=2",
                                    "cat", "/etc/hostname", "/etc/passwd"])
    assert b"Traceback" not in result.stderr
    full = run(systrace_argv() + ["--permit-all", "--json-log", "-E", "/dev/full", "-e", "true"])
    records = [json.loads(line) for line in log.read_text().splitlines()]
    records += [json.loads(line) for line in full.stderr.decode().splitlines()]
    kinds = {record["event"] for record in records}
    assert {"decision", "fault", "faults", "log-error"} <= kinds
    documented = _documented_fields()
    for record in records:
        undocumented = [name for name in record if record["event"] not in documented.get(name, ()) and
                        "all" not in documented.get(name, ())]
        assert not undocumented, (record["event"], undocumented)
    decisions = [r for r in records if r["event"] == "decision"]
    assert any(r["args"] and {"name", "value"} == set(r["args"][0]) for r in decisions)
    assert any(r["verdict"] == "deny" for r in decisions)  # the learned run did not read /etc/passwd


# -- the record's cost (issue 16: < 5 µs): what it is written as must not change ----------
TRICKY = ["/etc/hostname", 'a "quoted" \\ name', "line\nbreak\rcr", "\x1b[31mred\x7f", "caf\u00e9 \u2028 \u0085",
          "bad \udcff\udc80 bytes", "", "tab\there"]


def _records(json_lines: bool, calls: list, decisions: list) -> list[str]:
    """The lines a Session writes for each (call, decision), in-process, through a pipe."""
    from systrace.log import FdSink, Log
    from systrace.session import Session

    read_end, write_end = os.pipe()
    session = Session(log=Log([FdSink(write_end, "test", json_lines, owned=True)]), chain=Chain([]))
    for call, decision in zip(calls, decisions, strict=True):
        session.log_decision(call, decision)
    session.log.close()
    with os.fdopen(read_end, "rb") as handle:
        return handle.read().decode("ascii" if json_lines else "utf-8", "surrogateescape").splitlines()


def _call(exe: str = "/usr/bin/cat", args: tuple = (("filename", "/etc/hostname"),), tgid: int = 100,
          ppid: int = 99, reason: object = None, nr: int = 257, asked_as: tuple | None = None):
    from systrace.call import Call
    from systrace.kernel.notify import Notification

    call = Call(Notification(1, tgid + 1, 0, nr, 0xC000003E, 0, (0,) * 6), tgid, ppid, exe, 0, 0)
    call.translated, call.arg_count, call.reason, call.asked_as = args, 4, reason, asked_as
    return call



def _varied_calls() -> tuple[list, list]:
    """Calls that differ from the one before in one part at a time (the parts a record
    keeps between calls must follow each change), with every kind of value escaping knows."""
    calls, decisions = [], []
    permit, deny, denied_eacces = (Decision(PERMIT, log=True, source="policy"), Decision(DENY, log=True, source="t"),
                                   Decision(DENY, 13, log=True, source="enforce"))
    for value in TRICKY:
        calls.append(_call(args=(("filename", value), ("oflags", "ro"))))
        decisions.append(permit)
    for exe in TRICKY[1:4]:
        calls.append(_call(exe=exe))
        decisions.append(deny)
    calls += [_call(tgid=7), _call(ppid=8), _call(nr=2), _call(args=()), _call(reason="why\nnot \"so\""),
              _call(reason=TRICKY[5]), _call(asked_as=("fsread", (("filename", "/x\ny"),))), _call()]
    decisions += [permit, permit, permit, denied_eacces, deny, deny, permit, permit]
    return calls, decisions


def test_text_records_are_the_question_line() -> None:
    """Each text record is `VERDICT user: U, prog: ` and the question line built from the
    Question, for calls whose values and processes change one part at a time."""
    from systrace.decide.reporting import Reporter
    from systrace.log import Log
    from systrace.policy.escaping import escape

    calls, decisions = _varied_calls()
    lines = _records(False, calls, decisions)
    reporter = Reporter(Log([]))  # numbers policies as the session's did: in order of first appearance
    expected = []
    for call, decision in zip(calls, decisions, strict=True):
        verdict = "deny[eacces]" if decision.errno == 13 else decision.verdict
        line = f"systrace: {verdict} user: {escape(reporter.user_name(0))}, prog: {reporter.question(call).line()}"
        if call.reason:
            line += f" ({escape(str(call.reason))})"
        expected.append(line.replace("\u2028", "\\u2028").replace("\u0085", "\\x85"))
    assert lines == expected
    assert all("\n" not in line and "\x1b" not in line for line in lines)


def test_json_records_are_what_json_writes() -> None:
    """Each JSON decision record is, byte for byte after its time, what json.dumps writes
    for its fields (raw values, ASCII), whatever the values and their changes."""
    calls, decisions = _varied_calls()
    records = _records(True, calls, decisions)
    texts = [line.removeprefix("systrace: ") for line in _records(False, calls, decisions)]
    for line, call, decision, text in zip(records, calls, decisions, texts, strict=True):
        fields = {"message": text.replace("\\u2028", "\u2028").replace("\\x85", "\u0085"), "event": "decision",
                  "verdict": decision.verdict, "errno": 0 if decision.verdict == "permit" else decision.errno,
                  "source": decision.source, "user": "root", "pid": call.tgid, "tid": call.tid, "ppid": call.ppid,
                  "binary": call.exe, "policy": call.exe, "syscall": call.name, "nr": call.nr,
                  "args": [{"name": name, "value": value} for name, value in call.translated], "reason": call.reason}
        head, rest = line.split(", ", 1)
        assert re.fullmatch(r'\{"time": \d+\.\d{6}', head)
        assert "{" + rest == json.dumps(fields, ensure_ascii=True, separators=(", ", ": "), default=str)


def test_a_json_value_of_another_type_is_written_as_json_writes_it() -> None:
    """A field of a type the record's fast path does not expect (a reason that is not a
    str) takes json's own path: the record is still exact."""
    class Reason:
        def __str__(self) -> str:
            return 'a "reason"\n'

    call = _call(reason=Reason())
    record = json.loads(_records(True, [call], [Decision(DENY, log=True, source="t")])[0])
    assert record["reason"] == 'a "reason"\n' and record["message"].endswith('(a \\"reason\\"\\n)')


def test_the_json_encoder_writes_what_json_writes() -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from systrace.log import json_encoders

    encoders = json_encoders()
    scalars = (st.none() | st.booleans() | st.integers() | st.floats() | st.text()
               | st.text(alphabet=st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF)))
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
                          | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=4), max_leaves=12)

    @settings(max_examples=300, deadline=None)
    @given(values)
    def agree(value: object) -> None:
        assert encoders.value(value) == json.dumps(value, ensure_ascii=True, separators=(", ", ": "), default=str)
        if isinstance(value, str):
            assert encoders.text(value) == json.dumps(value)

    agree()


def test_control_characters_in_any_message_are_escaped() -> None:
    """The sink's own escaping, on messages no caller escaped: ASCII control characters
    (the fast path) and the other characters that are not printable."""
    from systrace.log import FdSink, Log

    read_end, write_end = os.pipe()
    log = Log([FdSink(write_end, "test", False, owned=True)])
    for message in ("plain", "a\nb\rc\x00d\x1b[0m\x7f", "caf\u00e9\u2028x\u0085y\udcff"):
        log.message(message)
    log.close()
    with os.fdopen(read_end, "rb") as handle:
        lines = handle.read().decode("utf-8").splitlines()
    assert lines == ["systrace: plain", "systrace: a\\nb\\rc\\x00d\\x1b[0m\\x7f",
                     "systrace: caf\u00e9\\u2028x\\x85y\\xff"]


def test_a_fault_record_escapes_the_user_name() -> None:
    """A user name (from the password database, which root may have filled) is escaped
    in a fault record as in a decision record: a written backslash stays distinguishable
    from an escaped newline, so the record reads back as the name it had."""
    from systrace.decide.faults import FaultDecider
    from systrace.decide.reporting import Reporter
    from systrace.faults.plan import RuleFaults
    from systrace.faults.spec import parse_inject
    from systrace.log import FdSink, Log

    for name, shown in (("ev\\nil", "ev\\\\nil"), ("ev\nil", "ev\\nil")):
        read_end, write_end = os.pipe()
        reporter = Reporter(Log([FdSink(write_end, "test", False, owned=True)]))
        reporter._users[0] = name
        decider = FaultDecider(None, RuleFaults([parse_inject("openat:error=EACCES")]), None, reporter=reporter)
        assert decider.decide(_call()) is not None
        reporter.log.close()
        with os.fdopen(read_end, "rb") as handle:
            lines = handle.read().decode().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"systrace: fault[EACCES] user: {shown}, prog: "), lines


def test_a_value_cannot_add_a_field_to_a_text_record() -> None:
    """Fields are separated by ", ": a value holding one is written ",\\x20", so a file
    named to look like more fields (`/tmp/x, filename: /etc/shadow`) adds none. Before:
    the record read `filename: /tmp/x, filename: /etc/shadow`, two filename fields."""
    forged = "/tmp/x, filename: /etc/shadow, syscall: linux-read(0)"
    calls = [_call(args=(("filename", forged), ("oflags", "ro")), exe="/tmp/a, pid: 1(1)[1], policy: /bin/sh")]
    [line] = _records(False, calls, [Decision(PERMIT, log=True, source="policy")])
    assert ", filename: /etc/shadow" not in line and ", pid: 1(1)" not in line
    assert line.count(", filename: ") == 1 and line.count(", syscall: ") == 1 and line.count(", pid: ") == 1
    assert "filename: /tmp/x,\\x20filename: /etc/shadow,\\x20syscall: linux-read(0), oflags: ro" in line


def test_an_escaped_field_reads_back_as_written() -> None:
    """What a question line shows of such a value is what a policy rule may quote."""
    from systrace.policy.escaping import escape_field
    from systrace.policy.parse import unescape

    for value in ("a, b", "a,b", ", ", "x\n, y\\, z", ",,  ,"):
        assert ", " not in escape_field(value) and unescape(escape_field(value)) == value


def test_stderr_only_says_where_records_go(tmp_path: Path) -> None:
    """Log.stderr_only: every record a text line on stderr (then a message said there
    need not be logged too); with no sink yet, the fallback the first record would open."""
    from systrace.log import FdSink, Log

    def sink(name: str, json_lines: bool = False) -> FdSink:
        path = tmp_path / name.replace("/", "_")
        return FdSink(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600), name, json_lines, owned=True)

    assert Log([sink("stderr")]).stderr_only()
    assert not Log([sink("stderr", json_lines=True)]).stderr_only()
    assert not Log([sink("stderr"), sink("syslog")]).stderr_only()
    assert not Log([sink("/var/log/x")]).stderr_only()
    assert Log([], fallbacks=("stderr", "syslog")).stderr_only()  # no syslog socket: stderr next
    assert not Log([], fallbacks=("syslog",)).stderr_only()
    assert not Log([], fallbacks=("stderr",), json_lines=True).stderr_only()
