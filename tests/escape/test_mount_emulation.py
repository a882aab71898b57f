"""The mount-family calls decided on their path are carried out by a helper on what was
checked (kernel/emulate_mount.py): a thread swapping the path after the check changes
nothing, natively it mounts, unmounts, pivots, swaps or accounts on the other name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROUNDS = int(os.environ.get("SYSTRACE_MOUNT_RACE_ROUNDS", "1000"))  # each one a helper under systrace
THREADING = ["mmap", "mprotect", "munmap", "clone", "clone3", "madvise", "rseq", "set_robust_list", "futex", "exit",
             "brk", "write", "wait4", "exit_group"]
CALLS = ["mount", "umount2", "pivot_root", "swapon", "swapoff", "acct", "mount_setattr"]

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the mount-family calls need root")


@pytest.fixture(scope="module")
def race_binary(tmp_path_factory) -> str:
    out = tmp_path_factory.mktemp("race") / "mount_race"
    subprocess.run(["gcc", "-O1", "-pthread", "-o", str(out), str(HERE / "mount_race.c")], check=True, timeout=120)
    return str(out)


def swap_file(path: Path) -> None:
    path.write_bytes(bytes(1 << 20))
    path.chmod(0o600)
    subprocess.run(["mkswap", str(path)], check=True, capture_output=True, timeout=60)


def arrange(directory: Path, call: str) -> None:
    """DIR/a makes the call fail (mount_race.c), DIR/s makes it succeed."""
    directory.mkdir(parents=True)
    allowed, secret = directory / "a", directory / "s"
    if call == "mount":
        allowed.write_text("")
        secret.mkdir()
    elif call in ("umount2", "pivot_root", "mount_setattr"):
        allowed.mkdir()
        secret.mkdir()
        if call in ("umount2", "mount_setattr"):
            subprocess.run(["mount", "-t", "tmpfs", "none", str(secret)], check=True, timeout=60)
    elif call in ("swapon", "swapoff"):
        allowed.write_bytes(bytes(1 << 20))
        allowed.chmod(0o600)
        swap_file(secret)
        if call == "swapoff":
            subprocess.run(["swapon", str(secret)], check=True, timeout=60)
    else:
        allowed.mkdir()
        secret.write_text("")


def clean(directory: Path, call: str) -> None:
    secret = directory / "s"
    if call in ("mount", "umount2", "mount_setattr"):
        subprocess.run(["umount", "-l", str(secret)], capture_output=True, timeout=60)
    elif call in ("swapon", "swapoff"):
        subprocess.run(["swapoff", str(secret)], capture_output=True, timeout=60)
    elif call == "acct":
        subprocess.run([sys.executable, "-c", "import ctypes; ctypes.CDLL(None).acct(None)"], timeout=60)


def counts(result: subprocess.CompletedProcess) -> tuple[int, int, int]:
    words = result.stdout.decode().split()
    assert len(words) == 6, (result.stdout, result.stderr[-2000:])
    return int(words[1]), int(words[3]), int(words[5])


def native_escapes(runner, race_binary: str, directory: Path, call: str, *mode: str) -> int:
    """Escapes of the race run natively, tried again (up to five times) when a loaded
    machine let the checking thread win every round."""
    rounds = {"pivot_root": "2000", "swapon": "2000", "swapoff": "5000"}.get(call, "20000")  # (each escape undone)
    for _ in range(5):
        escapes = counts(runner.native(race_binary, call, str(directory), rounds, *mode, timeout=300))[0]
        if escapes:
            return escapes
    return 0


def rule(call: str, directory: Path) -> str:
    """The rule permitting the call on DIR/a only."""
    allowed = f'"{directory}/a"'
    if call == "pivot_root":
        return f"\tnative-pivot_root: filename eq {allowed} and filename[1] eq {allowed} then permit\n"
    return f"\tnative-{call}: filename eq {allowed} then permit\n"


# pivot_root's child (and with "userns" everything) is in a mount namespace of its own:
# path rules are refused there without a permit[mountns] rule
MOUNT_VIEWS = '\tnative-mount: filename eq "/nonexistent/mountns" then permit[mountns]\n'


def first_policy(runner, policies: Path, binary: str, rules: str = "") -> Path:
    """The policy file of `binary`, holding the permit[mountns] rule and `rules`, for -A
    to add to."""
    policy = policies / binary.strip("/").replace("/", "_")
    policy.write_text(f"Policy: {binary}, Emulation: native\n" + MOUNT_VIEWS + rules)
    os.chown(policy, runner.uid, -1)
    return policy


def race_policy(runner, race_binary: str, tmp_path: Path, call: str, directory: Path, *mode: str) -> Path:
    """A policy learned from one call on DIR/a, its rule for the call replaced by one on
    DIR/a's name (plain permits for the calls a success would undo with)."""
    policies = runner.policy_dir(tmp_path / "policies")
    policy = first_policy(runner, policies, race_binary)
    learned = runner.writable(tmp_path / "learned")
    learn = runner("-d", str(policies), "-A", "--add-base", "-E", str(learned), race_binary, call, str(directory), "0",
                   *mode)
    assert learn.returncode == 0, (learn.stderr, learned.read_text()[-3000:])
    # the learned rules on DIR's names go (pivot_root's child mounts a tmpfs on DIR/s: a
    # plain permit below); "/" made private and the permit[mountns] rule stay
    kept = [line for line in policy.read_text().splitlines(keepends=True)
            if not ((f"native-{call}:" in line or "native-mount:" in line) and str(directory) in line)]
    assert f'"{directory}/s"' not in "".join(kept)
    undo = {"mount": "umount2", "umount2": "mount", "swapon": "swapoff", "swapoff": "swapon", "acct": "acct"}.get(call)
    extra = [f"\tnative-{name}: permit\n" for name in THREADING]
    if call == "pivot_root" or mode:  # the private namespaces and their tmpfs
        extra += ["\tnative-unshare: permit\n", "\tnative-fork: permit\n"]
    if call == "pivot_root" or call == "umount2" and mode:  # (DIR/s mounted by the program)
        extra.append("\tnative-mount: permit\n")
    if undo and undo != call:
        extra.append(f"\tnative-{undo}: permit\n")
    policy.write_text("".join(kept) + rule(call, directory) + "".join(extra))
    return policies


@pytest.mark.parametrize("call", CALLS)
def test_a_mount_family_path_swapped_after_the_check(root_runner, race_binary: str, tmp_path: Path, call: str) -> None:
    """Root in systrace's mount namespace (pivot_root: in a child's private one)."""
    native_dir = tmp_path / "native"
    arrange(native_dir, call)
    try:
        native = native_escapes(root_runner, race_binary, native_dir, call)
        assert native > 0  # natively the swap reaches DIR/s
    finally:
        clean(native_dir, call)

    directory = tmp_path / "dir"
    arrange(directory, call)
    try:
        escapes, denied, total, log = enforced_race(root_runner, race_binary, tmp_path, call, directory)
    finally:
        clean(directory, call)
    check_race(call, native, escapes, denied, total, log)


@pytest.mark.parametrize("call", ["mount", "umount2", "pivot_root"])
def test_a_mount_family_path_swapped_in_an_own_user_namespace(user_runner, race_binary: str, shared_dir: Path,
                                                              call: str) -> None:
    """The unprivileged user in a user + mount namespace of its own (umount2's DIR/s
    mounted there): the calls the kernel allows there."""
    work = Path(tempfile.mkdtemp(dir=shared_dir))
    work.chmod(0o755)
    binary = str(shutil.copy(race_binary, work / "mount_race"))
    for place in ("native", "dir"):
        (work / place / "s").mkdir(parents=True)
        if call == "mount":
            (work / place / "a").write_text("")
        else:
            (work / place / "a").mkdir()
        for path in [work / place, *(work / place).iterdir()]:
            os.chown(path, user_runner.uid, -1)
    native = native_escapes(user_runner, binary, work / "native", call, "userns")
    assert native > 0
    escapes, denied, total, log = enforced_race(user_runner, binary, work, call, work / "dir", "userns")
    check_race(call, native, escapes, denied, total, log)


def enforced_race(runner, race_binary: str, work: Path, call: str, directory: Path,
                  *mode: str) -> tuple[int, int, int, Path]:
    policies = race_policy(runner, race_binary, work, call, directory, *mode)
    log = runner.writable(work / "log")
    result = runner("-d", str(policies), "-a", "-E", str(log), race_binary, call, str(directory), str(ROUNDS), *mode,
                    timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    return (*counts(result), log)


def check_race(call: str, native: int, escapes: int, denied: int, total: int, log: Path) -> None:
    print(f"{call}: natively {native} escapes; under -a {escapes} of {total}, {denied} refused")
    assert (escapes, total) == (0, ROUNDS), log.read_text()[-3000:]
    assert denied > 0  # the race did present DIR/s to the check
    assert "internal error" not in log.read_text()


def arrange_cases(directory: Path, swap: bool) -> None:
    """What mount_cases.c expects in DIR."""
    for name in ("m", "b", "nr/old"):
        (directory / name).mkdir(parents=True)
    for name in ("b/marker", "f", "acct", "sw"):
        (directory / name).write_text("")
    if swap:
        swap_file(directory / "sw")


def parity(runner, cases: str, directory: Path, tmp_path: Path, *mode: str) -> None:
    """Natively, learning (-A) and enforcing the learned policy (-a, the path rules
    emulated): the same lines. The policy learned names every path (no plain permit)."""
    native = runner.native(cases, str(directory), *mode)
    assert native.returncode == 0, native.stderr
    policies = runner.policy_dir(tmp_path / "policies")
    # learning does not learn mount_setattr (a rule must name it: SECURITY.md): named here
    policy = first_policy(runner, policies, cases, f'\tnative-mount_setattr: filename match "{directory}/*" then permit\n')
    learned = runner("-d", str(policies), "-A", "--add-base", cases, str(directory), *mode)
    assert learned.stdout == native.stdout, learned.stderr[-3000:]
    text = policy.read_text()
    for call in ("mount", "umount2", "pivot_root"):
        rules = [line for line in text.splitlines() if f"native-{call}:" in line]
        assert len(rules) > 1 and all("filename eq" in line or "filename re" in line for line in rules), text[-3000:]
    log = runner.writable(tmp_path / "log")
    enforced = runner("-d", str(policies), "-a", "-E", str(log), cases, str(directory), *mode)
    assert enforced.stdout == native.stdout, (enforced.stderr[-2000:], log.read_text()[-3000:])
    assert "internal error" not in log.read_text()


def test_honest_mount_family_calls_as_natively_as_root(root_runner, tmp_path: Path) -> None:
    """Root in systrace's mount namespace: mount (a data string, a bind source absolute
    and relative, a remount), umount2, pivot_root (in a child's private namespace),
    swapon/swapoff, acct, and EPERM without CAP_SYS_ADMIN: the kernel's results and errnos."""
    cases = tmp_path / "mount_cases"
    subprocess.run(["gcc", "-O1", "-o", str(cases), str(HERE / "mount_cases.c")], check=True, timeout=120)
    directory = tmp_path / "dir"
    arrange_cases(directory, swap=True)
    try:
        parity(root_runner, str(cases), directory, tmp_path)
    finally:
        for mounted in (directory / "m", directory / "nr"):
            subprocess.run(["umount", "-R", "-l", str(mounted)], capture_output=True, timeout=60)
        subprocess.run(["swapoff", str(directory / "sw")], capture_output=True, timeout=60)


def test_honest_mount_family_calls_in_an_own_user_namespace(user_runner, shared_dir: Path, tmp_path: Path) -> None:
    """The unprivileged user in a user + mount namespace of its own (unshare -Urm):
    mount of tmpfs (sized) and binds, umount2, pivot_root work as natively; swapon,
    swapoff and acct get EPERM there, as natively."""
    cases = shared_dir / "mount_cases"
    if not cases.exists():
        subprocess.run(["gcc", "-O1", "-o", str(cases), str(HERE / "mount_cases.c")], check=True, timeout=120)
    work = Path(tempfile.mkdtemp(dir=shared_dir))
    work.chmod(0o755)
    directory = work / "dir"
    arrange_cases(directory, swap=False)
    for path in [directory, *directory.rglob("*")]:
        os.chown(path, user_runner.uid, -1)
    parity(user_runner, str(cases), directory, work, "userns")


@pytest.mark.parametrize("text, effect", [
    ('native-mount: filename eq "/mnt/a" then permit', "emulate-mount"),
    ('native-mount: source eq "/srv" and flags eq "0x1000" then permit', "emulate-mount"),
    ('native-mount: fstype eq "tmpfs" then permit', "emulate-mount"),
    ('native-acct: filename eq "<null>" then permit', "emulate-mount"),
    ('native-mount: flags eq "0x0" then permit', ""),  # registers only: the kernel reads nothing again
    ("native-mount: permit", ""),  # every path anyway: continued
    ('native-umount2: permit', ""),
    ('native-move_mount: filename[1] eq "/mnt/a" then permit', "emulate-mount"),  # (then refused: effects.py)
])
def test_which_rules_carry_a_mount_family_call_out(text: str, effect: str) -> None:
    """Pure: a permit that depends on what the call reads from memory is carried out by
    a helper; one on registers only, or plain, is continued."""
    from systrace.call import Call
    from systrace.decide.policy import effect_of
    from systrace.kernel.notify import Notification
    from systrace.kernel.syscalls_x86_64 import SYSCALLS
    from systrace.translate.translator import Translated
    from systrace.wiring import make_parser

    head, body = text.split(": ", 1)
    name = head.split("-", 1)[1]
    rule = make_parser().parse_rule(body, syscall=name)
    call = Call(Notification(1, os.getpid(), 0, SYSCALLS[name], 0xC000003E, 0, (0,) * 6), os.getpid(), os.getppid(),
                "/bin/true")
    assert effect_of(call, Translated(), rule) == effect
