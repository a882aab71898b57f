"""A rule that looks at the path and does not match decides the call too: a policy that
denies DIR/secret by name before a plain permit (`fsread: filename eq "DIR/secret" then
deny`, `fsread: permit`) was continued when the plain permit matched, so a second thread
swapping DIR/allowed for DIR/secret after the check passed the deny and the kernel read
the secret (escape.c path-swap: 103 of 3,000 under -a before). Now the call is carried
out on what was checked, as a permit on the path would be (decide/policy.py
`_earlier_effect`), for every call systrace carries out: opens, path calls, connect and
bind, sends, mount-family and string calls."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Runner
from test_supervisor_integrity import _compile

HERE = Path(__file__).resolve().parent
THREADING = ["mmap", "mprotect", "munmap", "clone", "clone3", "madvise", "rseq", "set_robust_list", "futex", "exit",
             "brk", "pread64"]
ROUNDS = 3000


@pytest.fixture
def escape_binary(shared_dir: Path) -> str:
    return _compile("escape", shared_dir)  # (where the user reaches it)


def counts(result: subprocess.CompletedProcess) -> tuple[int, int, int]:
    words = result.stdout.decode().split()
    assert len(words) == 6, (result.stdout, result.stderr[-2000:])
    return int(words[1]), int(words[3]), int(words[5])


def test_a_deny_on_the_path_before_a_plain_permit_is_not_passed_by_a_swap(runner: Runner, escape_binary: str,
                                                                          shared_dir: Path) -> None:
    work = shared_dir / f"earlier-rule-{runner.name}"
    directory = work / "dir"
    (directory / "sub").mkdir(parents=True)
    (directory / "allowed").write_text("allowed\n")
    (directory / "secret").write_text("SECRET\n")
    for path in (work, directory, directory / "sub"):
        path.chmod(0o755)
        os.chown(path, runner.uid, -1)
    for name in ("allowed", "secret"):
        os.chown(directory / name, runner.uid, -1)
    native = runner.native(escape_binary, "path-swap", str(directory), "20000", timeout=300)
    assert native.returncode == 0 and counts(native)[0] > 0, native  # natively the swap reads the secret
    policies = runner.policy_dir(work / "policies")
    learned = runner("-d", str(policies), "-A", escape_binary, "plain", str(directory))
    assert learned.returncode == 0, learned.stderr[-2000:]
    policy = next(path for path in policies.iterdir() if not path.name.startswith("."))
    head, _, rules = policy.read_text().partition("\n")
    first = f'\tnative-fsread: filename eq "{directory}/secret" then deny\n\tnative-fsread: permit\n'
    policy.write_text(head + "\n" + first + rules + "".join(f"\tnative-{name}: permit\n" for name in THREADING))
    log = runner.writable(work / "log")
    result = runner("-d", str(policies), "-a", "-E", str(log), escape_binary, "path-swap", str(directory), str(ROUNDS),
                    timeout=600)
    assert result.returncode == 0, (result.stderr[-2000:], log.read_text()[-2000:])
    escapes, denied, total = counts(result)
    print(f"{runner.name}: natively {counts(native)[0]}/20000 read the secret; under -a {escapes}/{total}, "
          f"{denied} denied by the deny rule")
    assert (escapes, total) == (0, ROUNDS), log.read_text()[-3000:]
    assert denied > 0  # the race did present the secret to the check


def test_the_first_rule_that_would_carry_the_call_out_decides_how() -> None:
    """Pure: a plain permit after a rule on the path carries the call out; a plain
    permit first (nothing before it looked) continues it."""
    from systrace.call import Call
    from systrace.decide.policy import PolicyDecider
    from systrace.kernel.notify import Notification
    from systrace.kernel.syscalls_x86_64 import SYSCALLS
    from systrace.policy import ast
    from systrace.policy.store import StoredPolicy
    from systrace.translate.translator import Translated
    from systrace.wiring import make_parser

    parser = make_parser()

    def effect(texts: list[str]) -> str:
        rules = [parser.parse_rule(text, syscall="fsread") for text in texts]
        call = Call(Notification(1, os.getpid(), 0, SYSCALLS["openat"], 0xC000003E, 0, (0,) * 6), os.getpid(),
                    os.getppid(), sys.executable)
        call.translation = Translated(alias="fsread")
        decider = PolicyDecider.__new__(PolicyDecider)
        decider._decisions, decider._carried, decider._mountns, decider._earlier = {}, {}, {}, {}
        policy = ast.Policy("/bin/true", "native", [ast.Rule("native", "fsread", r.expr, r.action) for r in rules])
        decision = decider.apply(call, StoredPolicy(policy, None, False), policy.rules[-1])
        assert decision is not None
        return decision.effect

    assert effect(['filename eq "/secret" then deny', "permit"]) == "emulate-open"
    assert effect(["permit"]) == ""


def test_an_exec_denied_by_name_before_a_plain_permit_is_checked(tmp_path: Path) -> None:
    """execve cannot be carried out: what it ran is compared at the new image's first
    call with what was checked, and that comparison was made only when the permitting
    rule looked at the name. A deny of /usr/bin/false before a plain permit let a swap
    run false (exec_swap.c); now the binary run is compared too, and a mismatch killed."""
    binary = tmp_path / "exec_swap"
    subprocess.run(["gcc", "-O1", "-pthread", "-o", str(binary), str(HERE / "exec_swap.c")], check=True, timeout=120)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(HERE.parent.parent / "src"), "LANG": "C.UTF-8", "HOME": "/root"}
    policies = tmp_path / "policies"
    for argv in ([str(binary), "learn", "3"], ["/usr/bin/true"], ["/usr/bin/false"]):
        learn = subprocess.run([sys.executable, "-m", "systrace", "-d", str(policies), "-A", *argv], capture_output=True,
                               env=env, timeout=120)
        assert learn.returncode in (0, 1), learn.stderr
    policy = next(policies.glob("*exec_swap"))
    head, _, rules = policy.read_text().partition("\n")
    rules = "".join(line for line in rules.splitlines(keepends=True) if "native-execve:" not in line)
    first = '\tnative-execve: filename eq "/usr/bin/false" then deny\n\tnative-execve: permit\n'
    policy.write_text(head + "\n" + first + rules + "".join(f"\tnative-{name}: permit\n" for name in THREADING))
    result = subprocess.run([sys.executable, "-m", "systrace", "-d", str(policies), "-a", str(binary), "race", "150"],
                            capture_output=True, env=env, timeout=600)
    words = result.stdout.decode().split()
    assert len(words) == 8, (result.stdout, result.stderr[-2000:])
    ended = dict(zip(words[::2], map(int, words[1::2]), strict=True))
    print(f"exec denied by name before a plain permit: {ended}")
    assert ended["false"] == 0, ended  # no escape
    assert ended["refused"] + ended["killed"] > 0, ended  # the race was there
