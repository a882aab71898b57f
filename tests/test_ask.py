"""Asking a person (-t, through a pseudo-terminal) or a program (-g) (issue: asking)."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select
import shutil
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import ROOT, TIMEOUT, base_env, run, systrace_argv

from systrace.frontend.protocol import parse_answer
from systrace.policy.store import file_name

CLEAN_PATH = "/usr/bin:/bin"
CAT = os.path.realpath(shutil.which("cat", path=CLEAN_PATH))
WRAPPER = str(ROOT / "examples" / "fault-wrapper.sh")


def env(**extra: str) -> dict[str, str]:
    return base_env(PATH=CLEAN_PATH, **extra)


# -- the protocol (pure) ---------------------------------------------------------------
def test_answers_parse() -> None:
    assert parse_answer("permit").kind == "permit" and not parse_answer("permit").now
    assert parse_answer("permit-now").now
    deny = parse_answer("deny-now[ENOBUFS]")
    assert (deny.kind, deny.now, deny.errno_name) == ("deny", True, "ENOBUFS") and deny.errno == 105
    assert parse_answer("deny[enoent]").errno == 2
    assert parse_answer("deny[bogus]").text == "Unknown error code: bogus"
    assert parse_answer("permit[enoent]").kind == "invalid"
    assert parse_answer('filename eq "/x" then permit').kind == "filter"
    assert parse_answer("template 3").number == 3
    for word in ("detach", "kill", "review", "templates"):
        assert parse_answer(word).kind == word
    for garbage in ("", "yes please", "permit now", "templat 1"):
        assert parse_answer(garbage).kind == "invalid"


# -- a policy that lacks one rule ------------------------------------------------------
@pytest.fixture
def cat_policy(tmp_path: Path) -> Path:
    """A learned policy for cat without its /etc/hostname rule: one question remains."""
    directory = tmp_path / "policies"
    result = run(systrace_argv() + ["-d", str(directory), "-A", "cat", "/etc/hostname"], env=env())
    assert result.returncode == 0
    path = directory / file_name(CAT)
    text = path.read_text()
    path.write_text(text.replace('\tnative-fsread: filename eq "/etc/hostname" then permit\n', ""))
    return directory


def frontend(tmp_path: Path, body: str) -> str:
    """A frontend program: python code with `ask()` (the next question) and `say(line)`;
    it records the conversation in talk.log."""
    script = tmp_path / "frontend.py"
    script.write_text(textwrap.dedent("""\
        import sys, time
        log = open(sys.argv[1], "a", buffering=1)
        def ask():
            line = sys.stdin.readline()
            log.write("Q " + line)
            return line
        def say(text):
            log.write("A " + text + "\\n")
            sys.stdout.write(text + "\\n"); sys.stdout.flush()
        def reply():
            line = sys.stdin.readline(); log.write("R " + line); return line.strip()
        """) + textwrap.dedent(body))
    return f"{sys.executable} {script} {tmp_path / 'talk.log'}"


def test_wrapper_from_the_original_discussion(tmp_path: Path) -> None:
    directory = tmp_path / "policies"
    log = tmp_path / "log"
    argv = systrace_argv() + ["-d", str(directory), "-E", str(log), "-g", WRAPPER, "cat", "/etc/hostname"]
    always = run(argv, env=env(BRK_FAIL_PERCENT="100"))
    denied = [line for line in log.read_text().splitlines() if "deny" in line]
    assert denied and all("syscall: linux-brk(12)" in line and line.startswith("systrace: deny[enobufs]") for line in denied)
    text = (directory / file_name(CAT)).read_text()
    # each permanent answer is as broad as its question: the call with the arguments shown
    assert '\tnative-fsread: filename eq "/etc/hostname" then permit\n' in text
    assert "\tnative-fsread: permit\n" not in text
    assert "brk" not in text  # only ever answered for this call
    log.unlink()
    never = run(argv, env=env(BRK_FAIL_PERCENT="0"))
    assert never.returncode == 0 and never.stdout == run(["cat", "/etc/hostname"]).stdout
    assert "deny" not in log.read_text()
    assert always.returncode in (0, 1)  # cat copes (or reports) when brk fails


@pytest.mark.parametrize("percent", ["1", "50", "100"])
def test_wrapper_makes_malloc_fail_cleanly(tmp_path: Path, cbin, percent: str) -> None:
    """The wrapper's `deny-now[enobufs]` for brk is answered the kernel's way (the break,
    unchanged): malloc copes (glibc falls back to mmap or returns NULL, which the program
    counts), where it used to end in SIGSEGV 19 runs of 20."""
    binary = cbin("brkcheck")
    log = tmp_path / "log"
    argv = systrace_argv() + ["-d", str(tmp_path / "p"), "-E", str(log), "-g", WRAPPER, binary]
    result = run(argv + ["malloc", "20000"], env=env(BRK_FAIL_PERCENT=percent))
    assert result.returncode == 0 and result.stdout.endswith(b" of 20000 NULL, data ok\n"), result
    if percent == "100":
        assert "deny[enobufs]" in log.read_text()
        result = run(argv + ["sbrk"], env=env(BRK_FAIL_PERCENT=percent))
        assert result.stdout.decode().splitlines() == [f"sbrk {n} failed ENOMEM unchanged" for n in (1, 2, 3, 4)]


def test_garbage_gets_wrong_and_a_new_chance(tmp_path: Path, cat_policy: Path) -> None:
    spec = frontend(tmp_path, """
        q = ask()
        say("whatever")
        assert reply() == "Syntax error." and reply() == "WRONG"
        say("deny[ebogus]")
        assert reply() == "Unknown error code: ebogus" and reply() == "WRONG"
        say('filename eq "/nope" then permit')
        assert reply() == "Filter unmatched." and reply() == "WRONG"
        say('filename eq "/etc/hostname" then permit')
        assert reply() == "OKAY"
        while ask():
            say("deny-now")
            reply()
    """)
    result = run(systrace_argv() + ["-d", str(cat_policy), "-g", spec, "cat", "/etc/hostname"], env=env())
    talk = (tmp_path / "talk.log").read_text()
    assert talk.startswith(f"Q {CAT}, pid: ")
    assert ", syscall: linux-fsread(257), filename: /etc/hostname\n" in talk.splitlines(True)[0]
    assert result.returncode == 0 and result.stdout == run(["cat", "/etc/hostname"]).stdout
    policy = (cat_policy / file_name(CAT)).read_text()
    assert '\tnative-fsread: filename eq "/nope" then permit\n' in policy  # kept, as the original did
    assert '\tnative-fsread: filename eq "/etc/hostname" then permit\n' in policy


def test_slow_frontend_is_waited_for(tmp_path: Path, cat_policy: Path) -> None:
    spec = frontend(tmp_path, """
        ask()
        time.sleep(1.5)
        say("permit-now")
        reply()
    """)
    start = time.monotonic()
    result = run(systrace_argv() + ["-d", str(cat_policy), "-g", spec, "cat", "/etc/hostname"], env=env())
    assert time.monotonic() - start >= 1.5
    assert result.returncode == 0 and result.stdout == run(["cat", "/etc/hostname"]).stdout


def test_frontend_that_ignores_eof_is_ended_with_the_run(tmp_path: Path, cat_policy: Path) -> None:
    """A frontend left running after the command is done would linger forever: systrace
    ends it (SIGTERM) and waits for it before exiting."""
    spec = frontend(tmp_path, """
        import os
        open(sys.argv[1] + ".pid", "w").write(str(os.getpid()))
        ask()
        say("permit-now")
        reply()
        while True:  # ignores EOF on its input
            sys.stdin.readline()
            time.sleep(0.05)
    """)
    result = run(systrace_argv() + ["-d", str(cat_policy), "-g", spec, "cat", "/etc/hostname"], env=env())
    assert result.returncode == 0 and result.stdout == run(["cat", "/etc/hostname"]).stdout
    pid = int((tmp_path / "talk.log.pid").read_text())
    assert not Path(f"/proc/{pid}").exists()  # ended and reaped by systrace itself


def test_frontend_dying_is_restarted_once(tmp_path: Path, cat_policy: Path) -> None:
    marker = tmp_path / "died-once"
    spec = frontend(tmp_path, f"""
        import os
        ask()
        if not os.path.exists({str(marker)!r}):
            open({str(marker)!r}, "w").close()
            sys.exit(0)  # dies mid-question
        open({str(marker)!r}, "w").write(" ".join(map(str, sorted(os.sched_getaffinity(0)))))
        say("permit-now")
        reply()
    """)
    log = tmp_path / "log"
    result = run(systrace_argv() + ["-d", str(cat_policy), "-E", str(log), "-g", spec, "cat", "/etc/hostname"], env=env())
    assert result.returncode == 0 and result.stdout == run(["cat", "/etc/hostname"]).stdout
    assert "frontend gone (EOF on policy input request); restarting it" in log.read_text()
    # restarted while systrace keeps to one CPU, the frontend still gets every CPU
    assert marker.read_text() == " ".join(map(str, sorted(os.sched_getaffinity(0))))


def test_frontend_dying_twice_fails_closed(tmp_path: Path, cat_policy: Path) -> None:
    spec = frontend(tmp_path, """
        ask()
        sys.exit(0)
    """)
    log = tmp_path / "log"
    result = run(systrace_argv() + ["-d", str(cat_policy), "-E", str(log), "-g", spec, "cat", "/etc/hostname"], env=env())
    text = log.read_text()
    assert result.returncode == 1 and result.stdout == b""
    assert result.stderr == b"cat: /etc/hostname: Operation not permitted\n"
    assert "denying every question from now on" in text
    assert re.search(r"deny user: \w+, prog: .*filename: /etc/hostname.* \(no frontend to ask\)", text)


def test_missing_frontend_program(tmp_path: Path) -> None:
    result = run(systrace_argv() + ["-d", str(tmp_path), "-g", "/nonexistent/frontend", "true"], env=env())
    assert result.returncode == 2
    assert result.stderr == b"systrace: /nonexistent/frontend: No such file or directory\n"


def test_no_terminal_and_no_mode() -> None:
    result = run(["setsid", "-w", *systrace_argv(), "true"], env=env())
    assert result.returncode == 2
    assert result.stderr.startswith(b"systrace: no terminal to ask on: choose a mode: -a (enforce a policy), -A (learn one)")
    result = run(["setsid", "-w", *systrace_argv(), "-t", "true"], env=env())
    assert result.returncode == 2 and b"(-t needs a terminal)" in result.stderr


@pytest.mark.parametrize("args", [["-t", "-a"], ["-g", "x", "-A"], ["-t", "-g", "x"], ["--permit-all", "-t"]])
def test_conflicting_asking_modes(args: list[str]) -> None:
    result = run(systrace_argv() + [*args, "true"], env=env())
    assert result.returncode == 2 and b"usage:" in result.stderr and b"Traceback" not in result.stderr


# -- text mode, as a person would use it -------------------------------------------------
def converse(argv: list[str], answers: list[str], out: Path, default: str = "deny-now",
             triggers: dict[bytes, bytes] | None = None, signal_at_prompt: int = 0) -> tuple[str, int]:
    """Run argv on a new pseudo-terminal (its controlling terminal); answer each
    'Answer: ' prompt with the next answer (an answer of "\x03" is typed alone: Ctrl-C).
    `triggers`: type VALUE once KEY appears in the output. `signal_at_prompt`: send
    that signal to systrace at the first prompt instead of answering. The command's
    stdout goes to `out`."""
    pid, master = pty.fork()
    if pid == 0:  # child: the pty is stdin/stdout/stderr and the controlling terminal
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 1)
        os.execve(argv[0], argv, env())
    transcript = b""
    pending = list(answers)
    waiting = dict(triggers or {})
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if not ready:
            continue
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child side closed
            break
        if not chunk:
            break
        transcript += chunk
        for key in [key for key in waiting if key in transcript]:
            os.write(master, waiting.pop(key))
        if transcript.endswith(b"Answer: "):
            if signal_at_prompt:
                os.kill(pid, signal_at_prompt)
                signal_at_prompt = 0
                continue
            answer = pending.pop(0) if pending else default
            os.write(master, answer.encode() + (b"" if answer == "\x03" else b"\n"))
    else:  # the safety net: a run that hangs fails the test instead of hanging it
        os.kill(pid, signal.SIGKILL)
    _, status = os.waitpid(pid, 0)
    os.close(master)
    code = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    return transcript.decode("utf-8", "replace").replace("\r\n", "\n"), code


def text_mode(cat_policy: Path, tmp_path: Path, answers: list[str]) -> tuple[str, int, bytes, str]:
    out = tmp_path / "stdout"
    transcript, code = converse(systrace_argv() + ["-d", str(cat_policy), "-t", "cat", "/etc/hostname"], answers, out)
    return transcript, code, out.read_bytes(), (cat_policy / file_name(CAT)).read_text()


HOSTNAME = Path("/etc/hostname").read_bytes()


def test_text_mode_permit(cat_policy: Path, tmp_path: Path) -> None:
    transcript, code, out, policy = text_mode(cat_policy, tmp_path, ["permit"])
    assert re.search(rf"{re.escape(CAT)}, pid: \d+\(\d+\)\[\d+\], policy: {re.escape(CAT)}, filters: \d+, "
                     r"syscall: linux-fsread\(257\), filename: /etc/hostname\nAnswer: permit\nOKAY\n", transcript), transcript
    assert (code, out) == (0, HOSTNAME)
    assert '\tnative-fsread: filename eq "/etc/hostname" then permit\n' in policy  # as broad as the question
    assert "\tnative-fsread: permit\n" not in policy


def test_text_mode_deny_with_errno(cat_policy: Path, tmp_path: Path) -> None:
    transcript, code, out, policy = text_mode(cat_policy, tmp_path, ["deny[enoent]"])
    assert code == 1 and out == b""
    # cat's message is written in parts: its locale lookups are asked about in between
    assert re.search(r"cat: /etc/hostname.*: No such file or directory\n", transcript, re.S), transcript
    assert '\tnative-fsread: filename eq "/etc/hostname" then deny[enoent]\n' in policy


def test_text_mode_filter_expression(cat_policy: Path, tmp_path: Path) -> None:
    transcript, code, out, policy = text_mode(cat_policy, tmp_path, ['filename eq "/etc/passwd" then permit',
                                                                      'filename match "/etc" then permit'])
    assert "Filter unmatched.\nWRONG\nAnswer: " in transcript
    assert (code, out) == (0, HOSTNAME)
    assert '\tnative-fsread: filename match "/etc" then permit\n' in policy


def test_text_mode_review_then_permit_now(cat_policy: Path, tmp_path: Path) -> None:
    transcript, code, out, policy = text_mode(cat_policy, tmp_path, ["review", "permit-now"])
    assert "native-brk: permit\n" in transcript and "WRONG\nAnswer: permit-now\nOKAY" in transcript
    assert (code, out) == (0, HOSTNAME)
    assert "native-fsread: permit\n" not in policy  # -now answers are not recorded


def test_text_mode_kill(cat_policy: Path, tmp_path: Path) -> None:
    transcript, code, out, _ = text_mode(cat_policy, tmp_path, ["kill"])
    assert code == 128 + signal.SIGKILL and out == b""


def test_tracee_keeps_its_own_stdin(cat_policy: Path, tmp_path: Path) -> None:
    """Questions go to /dev/tty: the command still reads its own stdin."""
    out = tmp_path / "stdout"
    script = f"echo from-stdin | {' '.join(systrace_argv())} -d {cat_policy} -t cat /etc/hostname -"
    transcript, code = converse(["/bin/sh", "-c", script], ["permit"] * 30, out)
    assert (code, out.read_bytes()) == (0, HOSTNAME + b"from-stdin\n"), transcript


def test_real_name_is_asked_when_the_policy_has_rules_for_it(cat_policy: Path, tmp_path: Path) -> None:
    path = cat_policy / file_name(CAT)
    path.write_text(path.read_text() + '\tnative-openat: filename eq "/nothing" then permit\n')
    transcript, code, out, policy = text_mode(cat_policy, tmp_path, ["permit"])
    assert re.search(r"syscall: linux-openat\(257\), filename: /etc/hostname, oflags: ro, mode: 0\nAnswer: ", transcript)
    assert (code, out) == (0, HOSTNAME)
    assert '\tnative-openat: filename eq "/etc/hostname" and oflags eq "ro" and mode eq "0" then permit\n' in policy


# -- a permanent answer is exactly as broad as its question (issue 14 item 5) -------------------
def test_permit_to_an_ask_rule_permits_only_what_was_asked(tmp_path: Path, cat_policy: Path) -> None:
    """`permit` to `filename sub "hostname" then ask` used to append a plain
    `native-fsread: permit` after the ask rule: /etc/shadow became readable and
    /etc/hostname was still asked about. Now the answer is a rule for the asked file, put
    before the ask rule."""
    path = cat_policy / file_name(CAT)
    head, _, rest = path.read_text().partition("\n")
    path.write_text(f'{head}\n\tnative-fsread: filename sub "hostname" then ask\n{rest}')
    secret = tmp_path / "secret"  # /etc/shadow's stand-in: no rule names it
    secret.write_text("the secret\n")
    spec = frontend(tmp_path, """
        while True:
            q = ask()
            if not q:
                break
            say("permit" if "filename: /etc/hostname" in q else "deny-now")
            reply()
    """)
    hostname = "/etc/hostname"
    result = run(systrace_argv() + ["-d", str(cat_policy), "-E", str(tmp_path / "log"), "-g", spec,
                                    "cat", hostname, hostname, str(secret)], env=env())
    questions = [line for line in (tmp_path / "talk.log").read_text().splitlines() if line.startswith("Q ")]
    assert sum("filename: /etc/hostname" in q for q in questions) == 1  # answered once for good
    assert result.stdout == HOSTNAME * 2 and b"secret: Operation not permitted" in result.stderr
    policy = path.read_text()
    assert "\tnative-fsread: permit\n" not in policy
    exact = '\tnative-fsread: filename eq "/etc/hostname" then permit\n'
    assert policy.index(exact) < policy.index('\tnative-fsread: filename sub "hostname" then ask\n')
    # enforced: the asked file is readable, the other one is not
    enforced = run(systrace_argv() + ["-d", str(cat_policy), "-E", str(tmp_path / "log"), "-a", "cat", hostname, str(secret)],
                   env=env())
    assert enforced.stdout == HOSTNAME
    assert enforced.stderr == f"cat: {secret}: Permission denied\n".encode()  # the table's errno for file access
    native = run(["cat", hostname, str(secret)], env=env())
    assert native.stdout == HOSTNAME + b"the secret\n"  # natively both are read


def test_deny_to_an_ask_rule_is_remembered_for_that_file_only(tmp_path: Path, cat_policy: Path) -> None:
    path = cat_policy / file_name(CAT)
    head, _, rest = path.read_text().partition("\n")
    path.write_text(f'{head}\n\tnative-fsread: filename sub "host" then ask\n{rest}')
    spec = frontend(tmp_path, """
        while True:
            q = ask()
            if not q:
                break
            say("deny[enoent]" if "filename: /etc/hostname" in q else "permit-now")
            reply()
    """)
    result = run(systrace_argv() + ["-d", str(cat_policy), "-E", str(tmp_path / "log"), "-g", spec,
                                    "cat", "/etc/hostname", "/etc/hosts"], env=env())
    assert result.stdout == Path("/etc/hosts").read_bytes()
    assert result.stderr == b"cat: /etc/hostname: No such file or directory\n"
    policy = path.read_text()
    denied = '\tnative-fsread: filename eq "/etc/hostname" then deny[enoent]\n'
    assert policy.index(denied) < policy.index('\tnative-fsread: filename sub "host" then ask\n')


# -- -t owns the terminal while a question waits (issue 14 item 6) ------------------------------
@pytest.fixture
def ttyshare_policy(tmp_path: Path, cbin) -> tuple[Path, str]:
    """A learned policy for ttyshare.c without its rule for /etc/hostname."""
    binary = cbin("ttyshare")
    directory = tmp_path / "policies"
    result = run(systrace_argv() + ["-d", str(directory), "-A", binary, "/etc/hostname"], input=b"end\n", env=env())
    assert result.returncode == 0, result
    path = directory / file_name(binary)
    text = path.read_text()
    rule = '\tnative-fsread: filename eq "/etc/hostname" then permit\n'
    assert rule in text
    path.write_text(text.replace(rule, ""))
    return directory, binary


def test_text_mode_owns_the_terminal_while_asking(tmp_path: Path, ttyshare_policy: tuple[Path, str]) -> None:
    """ttyshare's child reads the terminal while its parent's open of /etc/hostname is
    asked about. The answer went to the child ("child got: permit-now") or was split
    between the two; now the question has the terminal to itself, and the child reads
    what is typed for it once the question is settled."""
    directory, binary = ttyshare_policy
    out = tmp_path / "stdout"
    transcript, code = converse(systrace_argv() + ["-d", str(directory), "-t", binary, "/etc/hostname"], [], out,
                                default="permit-now", triggers={b"parent waits": b"hello\nend\n"})
    assert "Syntax error." not in transcript and "WRONG" not in transcript, transcript
    assert re.search(r"filename: /etc/hostname\nAnswer: permit-now\nOKAY\n", transcript), transcript
    assert out.read_bytes() == HOSTNAME + b"child got: hello\nchild got: end\n", transcript
    assert code == 0


def test_ctrl_c_at_answer_ends_the_run(cat_policy: Path, tmp_path: Path) -> None:
    out = tmp_path / "stdout"
    start = time.monotonic()
    transcript, code = converse(systrace_argv() + ["-d", str(cat_policy), "-t", "cat", "/etc/hostname"], ["\x03"], out)
    assert code == 130, transcript
    assert transcript.rstrip().endswith("systrace: interrupted at a question (Ctrl-C): the command was killed")
    assert out.read_bytes() == b""  # cat never got its file
    assert time.monotonic() - start < TIMEOUT / 2  # did not wait for another line


def test_sigterm_while_a_text_question_waits(cat_policy: Path, tmp_path: Path) -> None:
    """SIGTERM to systrace at `Answer:` is passed on to the command (README "Signals")
    and the question is abandoned: cat dies of it, and systrace exits with its status."""
    out = tmp_path / "stdout"
    log = tmp_path / "log"
    argv = systrace_argv() + ["-d", str(cat_policy), "-E", str(log), "-t", "cat", "/etc/hostname"]
    transcript, code = converse(argv, [], out, signal_at_prompt=signal.SIGTERM)
    assert code == 128 + signal.SIGTERM, transcript
    assert "(SIGTERM: question abandoned, denied)" in transcript
    assert "(question abandoned: systrace got SIGTERM)" in log.read_text()


# -- frontends that never answer, or never stop answering (issue 12) ------------------------------
def test_frontend_that_never_answers_times_out(tmp_path: Path, cat_policy: Path) -> None:
    spec = frontend(tmp_path, """
        while ask():
            pass  # reads every question, answers none
    """)
    log = tmp_path / "log"
    argv = systrace_argv() + ["-d", str(cat_policy), "-E", str(log), "--answer-timeout", "0.5", "-g", spec]
    result = run(argv + ["cat", "/etc/hostname"], env=env())
    assert result.returncode == 1 and result.stderr == b"cat: /etc/hostname: Operation not permitted\n"
    text = log.read_text()
    assert re.search(r"deny user: \w+, prog: .*filename: /etc/hostname \(no answer within 0.5 s\)", text), text
    assert "frontend no answer within 0.5 s; restarting it" in text


def test_frontend_endless_line_is_a_protocol_error(tmp_path: Path, cat_policy: Path) -> None:
    """A frontend that answers with an endless line (no newline) grew systrace without
    limit (4.8 GB in 16 s); now 64 KiB without a newline is a protocol error."""
    spec = frontend(tmp_path, """
        import os
        ask()
        chunk = b"x" * 65536
        try:
            while True:
                sys.stdout.buffer.write(chunk)
        except OSError:  # systrace hung up on it
            os._exit(0)
    """)
    log = tmp_path / "log"
    argv = systrace_argv() + ["-d", str(cat_policy), "-E", str(log), "--stats", "-g", spec, "cat", "/etc/hostname"]
    result = run(argv, env=env())
    assert result.returncode == 1 and b"cat: /etc/hostname: Operation not permitted\n" in result.stderr
    assert "(frontend protocol error: an answer longer than 65536 bytes)" in log.read_text()
    peak = int(re.search(rb"peak RSS (\d+) KiB", result.stderr).group(1))
    assert peak < 200 * 1024  # bounded: the line is not kept


def test_sigterm_while_a_frontend_question_waits(tmp_path: Path, cat_policy: Path) -> None:
    import subprocess

    fifo = tmp_path / "asked"
    os.mkfifo(fifo)
    spec = frontend(tmp_path, f"""
        ask()
        open({str(fifo)!r}, "w").write("asked\\n")
        while ask():  # never answers
            pass
    """)
    log = tmp_path / "log"
    argv = systrace_argv() + ["-d", str(cat_policy), "-E", str(log), "-g", spec, "cat", "/etc/hostname"]
    process = subprocess.Popen(argv, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    with open(fifo) as asked:  # the question is waiting
        assert asked.read() == "asked\n"
    process.send_signal(signal.SIGTERM)
    _, _ = process.communicate(timeout=TIMEOUT)
    assert process.returncode == 128 + signal.SIGTERM  # cat got the SIGTERM and died of it
    assert "(question abandoned: systrace got SIGTERM)" in log.read_text()


@pytest.mark.parametrize(("value", "message"), [("0", b"the answer timeout must be more than 0 seconds: '0'"),
                                                ("soon", b"invalid number of seconds 'soon'")])
def test_bad_answer_timeout(value: str, message: bytes) -> None:
    result = run(systrace_argv() + ["--answer-timeout", value, "-g", "x", "true"], env=env())
    assert result.returncode == 2 and message in result.stderr and b"Traceback" not in result.stderr
    result = run(systrace_argv() + ["--answer-timeout", "5", "-a", "true"], env=env())
    assert result.returncode == 2 and b"--answer-timeout goes with -t or -g" in result.stderr


def test_ctrl_z_stops_the_job_and_fg_continues_it(tmp_path: Path) -> None:
    """With the command in its own process group, Ctrl-Z stops the command; systrace
    then stops too (so a shell sees its job stop) and, continued, continues the command."""
    directory = tmp_path / "policies"
    assert run(systrace_argv() + ["-d", str(directory), "-A", "cat"], input=b"x\n", env=env()).returncode == 0
    argv = systrace_argv() + ["-d", str(directory), "-t", "cat"]
    pid, master = pty.fork()
    if pid == 0:
        os.execve(argv[0], argv, env())

    def read_until(token: bytes) -> bytes:
        out = b""
        deadline = time.monotonic() + TIMEOUT
        while token not in out and time.monotonic() < deadline:
            if select.select([master], [], [], 1)[0]:
                try:
                    out += os.read(master, 4096)
                except OSError:
                    break
        return out

    try:
        os.write(master, b"one\n")
        assert b"one\r\none\r\n" in read_until(b"one\r\none\r\n")
        os.write(master, b"\x1a")  # Ctrl-Z
        _, status = os.waitpid(pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status)
        os.kill(pid, signal.SIGCONT)  # what `fg` does, the terminal still being systrace's group's
        os.write(master, b"two\n")
        assert b"two\r\ntwo\r\n" in read_until(b"two\r\ntwo\r\n")
        os.write(master, b"\x04")
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(master)
