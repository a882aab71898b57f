"""Fault injection: random (-r), targeted (--inject/--fault), reproducible (issue: faults)."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import ROOT, base_env, run, systrace_argv

from systrace.faults.plan import RandomFaults, RuleFaults, parse_fault_log
from systrace.faults.spec import SpecError, expand_set, parse_inject, parse_when
from systrace.faults.tables import ERRNOS, NEVER_FAIL
from systrace.policy.store import file_name

PERMIT = ["--permit-all"]


def systrace(*args: str, **kwargs):
    kwargs.setdefault("env", base_env(PATH="/usr/bin:/bin"))
    return run(systrace_argv() + list(args), **kwargs)


def results(stdout: bytes) -> dict[int, str]:
    out = {}
    for line in stdout.decode().splitlines():
        number, _, what = line.partition(" ")
        if number.isdigit():
            out[int(number)] = what
    return out


# -- pure -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "fires"),
    [("3", {3}), ("2..5", {2, 3, 4, 5}), ("4+", {4, 5, 6, 7, 8, 9, 10}), ("2+3", {2, 5, 8}), ("2..7+2", {2, 4, 6})],
)
def test_when_expressions(text: str, fires: set[int]) -> None:
    when = parse_when(text)
    assert {n for n in range(1, 11) if when.fires(n)} == fires


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("opn:error=ENOENT", "invalid system call 'opn'"),
        ("openat:error=EBOGUS", "invalid error code 'EBOGUS'"),
        ("openat:when=0", "invalid when= expression '0'"),
        ("openat:when=5..2", "invalid when= expression '5..2'"),
        ("openat:when=x", "invalid when= expression 'x'"),
        ("openat:color=red", "invalid inject argument 'color=red'"),
        ("openat:error=EIO:retval=1", "error= and retval= are mutually exclusive"),
        ("openat:signal=SIGNOPE", "invalid signal 'SIGNOPE'"),
        ("openat", "inject needs error=, retval= or signal="),
        ("openat:error=EIO:error=EIO", "error= given twice"),
        ("openat:error=EIO:path=", "empty path= pattern"),
        ("openat:retval=18446744073709551615",
         "retval=18446744073709551615 is out of range for openat, which returns an int (0..2147483647)"),
        ("openat:retval=2147483648", "retval=2147483648 is out of range for openat, which returns an int (0..2147483647)"),
        ("read:retval=9223372036854775808",
         "retval=9223372036854775808 is out of range for read, which returns a long (0..9223372036854775807)"),
        ("mmap:retval=0xfffffffffffff000",
         "retval=18446744073709547520 is out of range for mmap, which returns an address (0..18446744073709547519)"),
        ("read,openat:retval=2147483648", "retval=2147483648 is out of range for openat, which returns an int (0..2147483647)"),
        ("openat:retval=-1", "invalid retval '-1': a return value is 0 or more (a failure is error=)"),
        ("openat:retval=x", "invalid retval 'x'"),
    ],
)
def test_invalid_specs(spec: str, message: str) -> None:
    with pytest.raises(SpecError, match=f"^{re.escape(message)}$"):
        parse_inject(spec)


def test_retval_at_the_edge_of_its_type_is_accepted() -> None:
    assert parse_inject("openat:retval=2147483647").retval == 2**31 - 1
    assert parse_inject("lseek:retval=9223372036854775807").retval == 2**63 - 1
    assert parse_inject("mmap:retval=0xffffffffffffe000").retval == 2**64 - 8192


def test_sets_classes_aliases_negation() -> None:
    assert {"openat", "newfstatat", "unlinkat"} <= expand_set("%file")
    assert expand_set("fsread") >= {"openat", "statx"}
    assert "openat" not in expand_set("!openat") and "read" in expand_set("!openat")
    assert expand_set("network") >= {"connect", "socket"}
    assert parse_inject("open,openat", default_error=errno.ENOSYS).error == errno.ENOSYS


def test_random_faults_are_a_function_of_seed_binary_syscall_and_index() -> None:
    plan = RandomFaults(30, seed=42)
    first = [plan.decide("/bin/x", "openat", n) for n in range(1, 200)]
    assert first == [RandomFaults(30, seed=42).decide("/bin/x", "openat", n) for n in range(1, 200)]
    assert first != [RandomFaults(30, seed=43).decide("/bin/x", "openat", n) for n in range(1, 200)]
    failed = [n for n, fault in enumerate(first, start=1) if fault]
    assert 30 < len(failed) < 90  # about 30%
    # golden values: the same seed must keep failing the same calls across versions
    assert failed[:8] == GOLDEN_SEED_42
    assert all(plan.decide("/bin/x", name, n) is None for name in NEVER_FAIL for n in range(1, 2000))


GOLDEN_SEED_42 = [3, 5, 6, 8, 10, 16, 17, 18]  # keyed on the binary's name since issue 14


def test_random_faults_do_not_depend_on_where_the_binary_lives() -> None:
    plan = RandomFaults(30, seed=7)
    here = [plan.decide("/tmp/a/crashy", "openat", n) for n in range(1, 100)]
    assert here == [plan.decide("/home/u/src/crashy", "openat", n) for n in range(1, 100)]
    assert here != [plan.decide("/tmp/a/other", "openat", n) for n in range(1, 100)]


def test_injected_errnos_come_from_the_tables() -> None:
    plan = RandomFaults(100, seed=1)
    for name, table in ERRNOS.items():
        for n in range(1, 50):
            fault = plan.decide("/bin/x", name, n)
            assert fault is not None and fault.error in table


def test_rules_count_per_rule_and_select_by_path() -> None:
    rules = RuleFaults([parse_inject("openat:error=EACCES:when=2:path=/etc/*"), parse_inject("openat:error=ENOENT:when=3")])
    counts: dict[int, int] = {}
    seen = [rules.decide("openat", counts, lambda glob, p=p: p.startswith("/etc/")) for p in
            ("/etc/a", "/usr/b", "/usr/c", "/etc/d", "/usr/e")]
    assert [f.error if f else None for f in seen] == [None, None, errno.ENOENT, errno.EACCES, None]


def test_fault_log_parses_text_and_json() -> None:
    text = ("systrace: fault[ENOENT] user: root, prog: /bin/cat, pid: 5(1)[4], policy: /bin/cat, filters: 0, "
            "syscall: linux-openat(257), filename: /x, oflags: ro, mode: 0, call: 7\nunrelated line\n")
    record = json.dumps({"event": "fault", "binary": "/bin/ls", "syscall": "read", "call": 3, "errno": 5})
    assert parse_fault_log(text + record + "\n") == {("/bin/cat", "openat", 7): 2, ("/bin/ls", "read", 3): 5}


# -- on real programs ---------------------------------------------------------------------
def test_when_and_path_against_a_program_that_counts(cbin) -> None:
    result = systrace(*PERMIT, "--inject", "openat:error=EACCES:when=2..7+2:path=/etc/hostname",
                      "--inject", "openat:error=ENOENT:when=9:path=/etc/hostname", cbin("faultcount"), "10")
    got = results(result.stdout)
    assert {n for n, what in got.items() if what != "ok"} == {2, 4, 6, 9}
    assert got[2] == got[4] == got[6] == "EACCES" and got[9] == "ENOENT"


def test_fault_defaults_to_enosys_and_retval(cbin, tmp_path: Path) -> None:
    got = results(systrace(*PERMIT, "--fault", "openat:when=1:path=/etc/hostname", cbin("faultcount"), "2").stdout)
    assert got == {1: "ENOSYS", 2: "ok"}
    script = "import os; fd = os.open('/etc/hostname', os.O_RDONLY); print(os.lseek(fd, 0, 0))"
    result = systrace(*PERMIT, "--inject", "lseek:retval=7", shutil.which("python3", path="/usr/bin"), "-c", script)
    assert result.stdout == b"7\n"
    big = 2**63 - 1  # the largest off_t: reaches the program intact
    result = systrace(*PERMIT, "--inject", f"lseek:retval={big}", shutil.which("python3", path="/usr/bin"), "-c", script)
    assert result.stdout == f"{big}\n".encode() and b"internal error" not in result.stderr


def test_signal_injection(tmp_path: Path) -> None:
    script = ("import os, signal; signal.signal(signal.SIGUSR1, lambda *a: print('signalled'));"
              "fd = os.open('/etc/hostname', os.O_RDONLY); print('opened', fd >= 0)")
    result = systrace(*PERMIT, "--inject", "openat:signal=SIGUSR1:path=/etc/hostname",
                      shutil.which("python3", path="/usr/bin"), "-c", script)
    assert result.stdout == b"signalled\nopened True\n"


def test_never_fail_calls_over_ten_thousand(cbin, tmp_path: Path) -> None:
    """Every call fails that may (its 10 opens of /etc/hostname), none that cannot (10,000)."""
    log = tmp_path / "log"
    never = ",".join(["getpid", "gettid", "umask", "getuid"])
    result = systrace(*PERMIT, "--json-log", "-E", str(log), "-r", "100", "--eligible", f"{never},getrandom",
                      "--inject", "openat:error=EIO:path=/etc/hostname", cbin("faultcount"), "10")
    assert result.stdout.endswith(b"never-fail failures: 0\n")
    assert set(results(result.stdout).values()) == {"EIO"}
    assert systrace(*PERMIT, "--inject", "umask:error=EIO", "true").stderr.endswith(b"are never failed (README: Fault injection)\n")
    assert b"none of these calls is ever failed" in systrace(*PERMIT, "-r", "100", "--eligible", never, "true").stderr


def test_injected_errnos_are_valid_for_their_calls(tmp_path: Path) -> None:
    log = tmp_path / "log"
    for seed in range(1, 6):
        systrace(*PERMIT, "--json-log", "-E", str(log), "-r", "30", "--eligible", "%file,%desc,%memory", "--seed", str(seed),
                 "cat", "/etc/passwd", "/etc/hostname")
    faults = [json.loads(line) for line in log.read_text().splitlines() if '"event": "fault"' in line]
    assert len(faults) > 5
    for fault in faults:
        assert fault["syscall"] not in NEVER_FAIL
        assert fault["errno"] in ERRNOS[fault["syscall"]], fault


def test_same_seed_same_faults_and_replay(tmp_path: Path) -> None:
    crashy = tmp_path / "crashy"
    run(["gcc", "-o", str(crashy), str(ROOT / "examples" / "crashy.c")])
    for seed in range(1, 30):  # the first seed that fails something (20% of ~20 opens: almost any)
        runs = {}
        for name in ("a", "b"):
            log = tmp_path / f"{name}.log"
            log.unlink(missing_ok=True)
            runs[name] = systrace(*PERMIT, "-E", str(log), "-r", "20", "--eligible", "openat", "--seed", str(seed), str(crashy))
        faults = {name: parse_fault_log((tmp_path / f"{name}.log").read_text()) for name in runs}
        if faults["a"]:
            break
    assert faults["a"] and faults["a"] == faults["b"]
    assert runs["a"].returncode == runs["b"].returncode
    replayed = systrace(*PERMIT, "-E", str(tmp_path / "c.log"), "--replay", str(tmp_path / "a.log"), str(crashy))
    assert parse_fault_log((tmp_path / "c.log").read_text()) == faults["a"]
    assert replayed.returncode == runs["a"].returncode
    assert (replayed.stdout, replayed.returncode) == (runs["a"].stdout, runs["a"].returncode)


def test_crash_in_error_handling_is_found(tmp_path: Path) -> None:
    """The README walkthrough: some seed crashes crashy.c in its unchecked fopen path."""
    crashy = tmp_path / "crashy"
    run(["gcc", "-o", str(crashy), str(ROOT / "examples" / "crashy.c")])
    codes = {systrace(*PERMIT, "-r", "20", "--eligible", "openat", "--seed", str(seed), str(crashy)).returncode
             for seed in range(1, 9)}
    assert 128 + 11 in codes and 0 in codes


def test_learning_never_learns_a_failed_call_and_grows_with_faults(tmp_path: Path) -> None:
    directory = tmp_path / "policies"
    cat = os.path.realpath(shutil.which("cat", path="/usr/bin:/bin"))
    policy = directory / file_name(cat)
    assert systrace("-d", str(directory), "-A", "cat", "/etc/hostname").returncode == 0
    plain = policy.read_text()
    policy.unlink()
    result = systrace("-d", str(directory), "-A", "--inject", "openat:error=EACCES:path=/etc/hostname", "cat", "/etc/hostname")
    assert result.returncode == 1 and b"Permission denied" in result.stderr
    faulted = policy.read_text()
    assert 'filename eq "/etc/hostname"' not in faulted  # the failed call did not run: not learned
    assert set(faulted.splitlines()) - set(plain.splitlines())  # the error path's calls were learned


def test_faults_with_enforce(tmp_path: Path, syslog_socket) -> None:
    directory = tmp_path / "policies"
    assert systrace("-d", str(directory), "-A", "cat", "/etc/hostname", env=dict(syslog_socket.env, PATH="/usr/bin:/bin")).returncode == 0
    result = systrace("-d", str(directory), "-a", "--inject", "openat:error=EIO:path=/etc/hostname", "cat", "/etc/hostname",
                      env=dict(syslog_socket.env, PATH="/usr/bin:/bin"))
    assert result.returncode == 1 and result.stderr == b"cat: /etc/hostname: Input/output error\n"
    assert [line for line in syslog_socket.received() if b"fault[EIO]" in line]  # logged to syslog


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-r", "101"], b"percentage out of range (0-100): '101'"),
        (["-r", "x"], b"invalid percentage 'x'"),
        (["--seed", "3"], b"--seed and --eligible go with -r"),
        (["--inject", "opn:error=EIO"], b"systrace: --inject=opn:error=EIO: invalid system call 'opn'\n"),
        (["--fault", "openat:when=0"], b"systrace: --fault=openat:when=0: invalid when= expression '0'\n"),
        (["--inject", "close:error=EIO"], b"are never failed"),
        (["--inject", "openat:retval=18446744073709551615"],
         b"systrace: --inject=openat:retval=18446744073709551615: retval=18446744073709551615 is out of range for "
         b"openat, which returns an int (0..2147483647)\n"),
        (["-r", "5", "--eligible", "nope"], b"--eligible=nope: invalid system call 'nope'"),
        (["--replay", "/nonexistent.log"], b"systrace: /nonexistent.log: No such file or directory\n"),
    ],
)
def test_bad_fault_options(args: list[str], message: bytes) -> None:
    result = systrace(*PERMIT, *args, "true")
    assert result.returncode == 2
    assert message in result.stderr and b"Traceback" not in result.stderr


def test_only_eligible_calls_are_routed() -> None:
    from systrace.cli import build_parser
    from systrace.kernel import abi
    from systrace.kernel.syscalls_x86_64 import SYSCALLS
    from systrace.log import Log
    from systrace.wiring import build

    options = build_parser().parse_args(["--permit-all", "-r", "5", "--eligible", "openat,read", "true"])
    _, plan = build(options, Log([]), explicit_log=False)
    assert plan.action_of(SYSCALLS["openat"]) == plan.action_of(SYSCALLS["read"]) == abi.RET_USER_NOTIF
    assert plan.action_of(SYSCALLS["write"]) == plan.action_of(SYSCALLS["mmap"]) == abi.RET_ALLOW
    assert plan.action_of(SYSCALLS["execve"]) == abi.RET_USER_NOTIF  # always


def test_faults_with_a_frontend(tmp_path: Path, syslog_socket) -> None:
    frontend = tmp_path / "yes.sh"
    frontend.write_text("#!/bin/sh\nwhile read -r q; do echo permit; read -r reply; done\n")
    frontend.chmod(0o755)
    result = systrace("-d", str(tmp_path / "p"), "-g", str(frontend), "--inject", "openat:error=EACCES:path=/etc/hostname",
                      "cat", "/etc/hostname", env=dict(syslog_socket.env, PATH="/usr/bin:/bin"))
    assert result.returncode == 1 and result.stderr == b"cat: /etc/hostname: Permission denied\n"


# -- brk fails the kernel's way (issue 14 item 1) -------------------------------------------
def test_break_worked_out_from_proc() -> None:
    from systrace.decide.breaks import current_break

    start = 0x5000
    assert current_break(start, None, None) == start  # no [heap] mapping: the break never moved
    assert current_break(start, 0x8000, 0x7064) == 0x7064  # the last request succeeded: exact
    assert current_break(start, 0x8000, 0x9064) == 0x8000  # it failed: the page-aligned end
    assert current_break(start, 0x8000, 0) == 0x8000  # brk(0) is a query, never the break
    assert current_break(start, 0x8000, None) == 0x8000


def brk_lines(stdout: bytes) -> list[str]:
    return stdout.decode().splitlines()


@pytest.mark.parametrize("when", ["3", "4", "5", "6", "3+"])
def test_refused_brk_returns_the_break_unchanged(cbin, when: str) -> None:
    """Calls 1 and 2 are the loader's brk(0); 3..6 are the program's sbrk(8292) calls,
    which leave the break inside a page: sbrk must fail with ENOMEM and the break stay
    exactly where it was (before: sbrk got 0xfffffffffffffff4 as the new break)."""
    result = systrace(*PERMIT, "--inject", f"brk:error=ENOMEM:when={when}", cbin("brkcheck"), "sbrk")
    lines = brk_lines(result.stdout)
    failed = {int(line.split()[1]) for line in lines if "failed" in line}
    expected = {1, 2, 3, 4} if when == "3+" else {int(when) - 2}
    assert result.returncode == 0 and failed == expected, lines
    assert all(line.endswith(("ok", "failed ENOMEM unchanged")) for line in lines), lines


def test_random_brk_faults_fail_malloc_cleanly(cbin) -> None:
    """-r 1 --eligible brk crashed 4 of 5 seeds; now every seed's malloc copes (glibc
    falls back to mmap, or a NULL is counted), and the data it got is intact."""
    native = run([cbin("brkcheck"), "malloc", "20000"])
    assert native.stdout == b"malloc: 0 of 20000 NULL, data ok\n"
    faulted = 0
    for seed in range(1, 6):
        log_lines = systrace(*PERMIT, "-e", "-r", "5", "--eligible", "brk", "--seed", str(seed),
                             cbin("brkcheck"), "malloc", "20000")
        assert log_lines.returncode == 0, (seed, log_lines.stdout, log_lines.stderr[-500:])
        assert log_lines.stdout.endswith(b" of 20000 NULL, data ok\n")
        faulted += log_lines.stderr.count(b"fault[ENOMEM]")
    assert faulted > 0  # the faults did happen


def test_policy_denying_brk_in_enforce_mode(cbin, tmp_path: Path) -> None:
    """A plain `brk: deny` would be compiled into the kernel as -EPERM: it is routed to
    systrace instead, which answers with the break."""
    from systrace.kernel import abi
    from systrace.kernel.filter import FilterPlan
    from systrace.kernel.syscalls_x86_64 import SYSCALLS
    from systrace.wiring import route_refused_breaks

    plan = FilterPlan(default=abi.RET_ALLOW, actions={SYSCALLS["brk"]: abi.ret_errno(errno.ENOMEM)})
    route_refused_breaks(plan)
    assert plan.action_of(SYSCALLS["brk"]) == abi.RET_USER_NOTIF
    directory = tmp_path / "policies"
    binary = cbin("brkcheck")
    assert systrace("-d", str(directory), "-A", binary, "sbrk").returncode == 0
    policy = directory / file_name(binary)
    text = "".join(line for line in policy.read_text().splitlines(True) if "native-brk" not in line)
    policy.write_text(text + "\tnative-brk: deny[enomem]\n")
    result = systrace("-d", str(directory), "-a", binary, "sbrk")
    assert result.stdout.decode().splitlines() == [f"sbrk {n} failed ENOMEM unchanged" for n in (1, 2, 3, 4)]
    assert result.returncode == 0


def test_refused_brk_as_the_unprivileged_user(cbin, runner) -> None:
    """The break is worked out from /proc, which the user's own processes can read."""
    result = runner(*PERMIT, "--inject", "brk:error=ENOMEM:when=4", cbin("brkcheck"), "sbrk")
    assert result.stdout.decode().splitlines() == ["sbrk 1 ok", "sbrk 2 failed ENOMEM unchanged", "sbrk 3 ok", "sbrk 4 ok"]
    assert result.returncode == 0


def test_fault_log_reads_fields_a_value_cannot_forge() -> None:
    """A text fault line whose values look like fields (a file named `x, syscall:
    linux-read(0), call: 9`, written escaped by the log) is replayed on its own call."""
    from systrace.frontend.question import question_args, question_head

    binary = "/tmp/odd, pid: 1(1)[1], dir/cat"
    line = ("systrace: fault[EACCES] user: root, prog: "
            + question_head(binary, 5, 1, 4, binary, 0, "linux", "openat", 257)
            + question_args((("filename", "/x, syscall: linux-read(0), call: 9"), ("oflags", "ro")), 3)
            + ", call: 7")
    assert parse_fault_log(line + "\n") == {(binary, "openat", 7): errno.EACCES}
