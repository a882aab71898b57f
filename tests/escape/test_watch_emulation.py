"""inotify_add_watch, fanotify_mark, file_getattr/file_setattr, statfs and
name_to_handle_at decided on their path are carried out by systrace on what was checked
(kernel/emulate_watch.py, emulate_path.py): a second thread swapping the path after the
check gets the watch, the mark, the attributes, the figures or the handle of the file it
swapped in natively, never under systrace; open_by_handle_at decided on its handle opens
with the handle checked (kernel/emulate_handle.py); quotactl decided on its block device
is carried out by a helper on the device checked (kernel/emulate_mount.py). Normal use gives the same results and
errnos natively and under systrace, as root, as the user, and as another user than
systrace's (root systrace, a tracee that became nobody)."""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import Runner

HERE = Path(__file__).resolve().parent
ROUNDS = int(os.environ.get("SYSTRACE_RACE_ROUNDS", "2000"))
FAMILIES = ["inotify", "fanotify", "fileattr", "statfs", "handle", "quota", "quotaon", "byhandle"]
THREADING = ["mmap", "mprotect", "munmap", "clone", "clone3", "madvise", "rseq", "set_robust_list", "futex", "exit",
             "brk", "write"]
NOBODY = 65534


@pytest.fixture(scope="module")
def binaries(shared_dir: Path) -> dict[str, str]:
    built = {}
    for name in ("watch_race", "watch_parity", "quota_cases", "fs_cases", "bpf_cases"):
        out = shared_dir / name
        subprocess.run(["gcc", "-O1", "-pthread", "-o", str(out), str(HERE / f"{name}.c")], check=True, timeout=120)
        out.chmod(0o755)
        built[name] = str(out)
    return built


def fresh(shared_dir: Path, name: str, uid: int) -> Path:
    """An empty directory of `uid` that every user can reach."""
    directory = shared_dir / name
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    os.chown(directory, uid, uid)
    return directory


def counts(result: subprocess.CompletedProcess) -> tuple[int, int, int]:
    words = result.stdout.decode().split()
    assert len(words) == 6, (result.stdout, result.stderr[-2000:])
    return int(words[1]), int(words[3]), int(words[5])


def root_device() -> str:
    """The block device of the root file system (skips when it has none)."""
    st_dev = os.stat("/").st_dev
    try:
        uevent = Path(f"/sys/dev/block/{os.major(st_dev)}:{os.minor(st_dev)}/uevent").read_text()
    except OSError:
        pytest.skip("the root file system is not on a block device")
    name = next((line.split("=", 1)[1] for line in uevent.splitlines() if line.startswith("DEVNAME=")), "")
    if not name or not os.path.exists(f"/dev/{name}"):
        pytest.skip("the root file system's device has no /dev node")
    return f"/dev/{name}"


def arrange_race(directory: Path, uid: int, family: str) -> None:
    """DIR/s (the name the policy does not permit) exists, DIR/a (the permitted one) does
    not; quota: DIR/s leads to a block device; byhandle: both exist (their handles flip)."""
    secret = directory / "s"
    if family == "quota":
        secret.symlink_to(root_device())
        return
    if family == "quotaon":  # (a quota file looked up on a file system without quotas: EINVAL)
        (directory / "dev").symlink_to(root_device())
    secret.write_text("SECRET\n")
    os.chown(secret, uid, uid)
    if family == "byhandle":
        (directory / "a").write_text("a\n")


class FileHandle(ctypes.Structure):
    _fields_ = [("handle_bytes", ctypes.c_uint32), ("handle_type", ctypes.c_int), ("f_handle", ctypes.c_ubyte * 128)]


def handle_of(path: Path) -> str:
    """A file's handle as the policy sees it (translate/translator._handle): TYPE:HEX."""
    libc = ctypes.CDLL(None, use_errno=True)
    handle, mount_id = FileHandle(128, 0), ctypes.c_int()
    if libc.name_to_handle_at(-100, os.fsencode(path), ctypes.byref(handle), ctypes.byref(mount_id), 0):
        raise OSError(ctypes.get_errno(), "name_to_handle_at")
    return f"{handle.handle_type}:{bytes(handle.f_handle[:handle.handle_bytes]).hex()}"


def rules_beyond_learning(directory: Path, family: str) -> str:
    """The rules -A cannot learn (the calls are refused unless a rule names them)."""
    if family == "handle":
        return f'\tnative-name_to_handle_at: filename eq "{directory}/a" then permit\n'
    if family == "byhandle":
        return (f'\tnative-open_by_handle_at: handle eq "{handle_of(directory / "a")}" then permit\n'
                "\tnative-name_to_handle_at: permit\n")
    return ""


def native_escapes(runner: Runner, binary: str, directory: Path, family: str) -> int:
    """Escapes of the race run natively, tried again (up to five times 20,000 rounds) when a
    loaded machine let the checking thread win every round."""
    for _ in range(5):
        escapes = counts(runner.native(binary, family, str(directory), "20000"))[0]
        if escapes:
            return escapes
    return 0


@pytest.mark.parametrize("family", FAMILIES)
def test_watch_path_swapped_during_the_check(runner: Runner, binaries: dict[str, str], shared_dir: Path,
                                             family: str) -> None:
    if family == "byhandle" and runner.name == "user":
        pytest.skip("open_by_handle_at needs CAP_DAC_READ_SEARCH: natively EPERM")
    if family == "quotaon" and runner.name == "user":
        pytest.skip("Q_QUOTAON needs CAP_SYS_ADMIN: natively EPERM whatever the quota file")
    race = binaries["watch_race"]
    native_dir = fresh(shared_dir, f"watch-native-{runner.name}-{family}", runner.uid)
    arrange_race(native_dir, runner.uid, family)
    native = native_escapes(runner, race, native_dir, family)
    assert native > 0  # natively the swap reaches DIR/s

    directory = fresh(shared_dir, f"watch-{runner.name}-{family}", runner.uid)
    arrange_race(directory, runner.uid, family)
    policies = runner.policy_dir(shared_dir / f"watch-policies-{runner.name}-{family}")
    learn = runner("-d", str(policies), "-A", race, family, str(directory), "0")
    assert learn.returncode == 0, learn.stderr
    policy = next(policies.glob("*watch_race"))
    assert f'"{directory}/s"' not in policy.read_text()
    policy.write_text(policy.read_text() + "".join(f"\tnative-{name}: permit\n" for name in THREADING)
                      + rules_beyond_learning(directory, family))
    log = runner.writable(shared_dir / f"watch-log-{runner.name}-{family}")
    result = runner("-d", str(policies), "-a", "-E", str(log), race, family, str(directory), str(ROUNDS), timeout=900)
    escapes, denied, total = counts(result)
    print(f"{family} as {runner.name}: natively {native}/20,000 through; under -a {escapes}/{total} ({denied} refused)")
    assert (escapes, total) == (0, ROUNDS), log.read_text()[-3000:]
    assert denied > 0  # the race did present DIR/s to the check
    assert "internal error" not in log.read_text()
    if family in ("quota", "quotaon"):  # carried out on the paths checked (missing: ENOENT), not refused
        assert denied < ROUNDS and "which the kernel would read again: refused" not in log.read_text(), log.read_text()[-3000:]


def arrange_parity(directory: Path, uid: int) -> None:
    """f a file, d a directory, l -> f, u unreadable (mode 000), all of `uid`; r of root."""
    for name in ("f", "u"):
        (directory / name).write_text(f"{name}\n")
    (directory / "d").mkdir()
    (directory / "l").symlink_to("f")
    (directory / "r").write_text("r\n")
    for name in ("f", "u", "d"):
        os.chown(directory / name, uid, uid)
    (directory / "u").chmod(0)


@pytest.mark.parametrize("who", ["root", "user", "root-as-nobody"])
def test_watch_parity(request, binaries: dict[str, str], shared_dir: Path, who: str) -> None:
    """Every case of watch_parity.c (events arriving, IN_DONT_FOLLOW and FAN_MARK_DONT_FOLLOW
    on a link, ENOENT, EACCES, ENOTDIR with IN_ONLYDIR, EINVAL, EBADF, EFAULT, E2BIG, EPERM)
    gives the same line natively and under a policy learned from it, enforced."""
    runner: Runner = request.getfixturevalue("user_runner" if who == "user" else "root_runner")
    uid = NOBODY if who == "root-as-nobody" else runner.uid
    extra = ["drop"] if who == "root-as-nobody" else []
    program = binaries["watch_parity"]
    native_dir = fresh(shared_dir, f"watch-parity-native-{who}", uid)
    arrange_parity(native_dir, uid)
    native = runner.native(program, str(native_dir), *extra)
    assert native.returncode == 0, native.stderr
    lines = native.stdout.decode().splitlines()
    assert "inotify event: arrived" in lines and "fanotify event: arrived" in lines
    assert "inotify link itself: own watch" in lines and "getattr larger: ok, tail zeroed, beyond untouched" in lines
    if uid:
        assert {"inotify unreadable: EACCES", "fanotify unreadable: EACCES", "setattr not owned: EPERM"} <= set(lines)

    directory = fresh(shared_dir, f"watch-parity-{who}", uid)
    arrange_parity(directory, uid)
    policies = runner.policy_dir(shared_dir / f"watch-parity-policies-{who}")
    learn = runner("-d", str(policies), "-A", program, str(directory), *extra)
    assert learn.returncode == 0, learn.stderr
    policy_file = next(policies.glob("*watch_parity"))
    policy = policy_file.read_text()
    assert "native-inotify_add_watch: filename " in policy and "native-fanotify_mark: filename " in policy
    policy_file.write_text(policy + f'\tnative-name_to_handle_at: filename match "{directory}/*" or '
                                    f'fdname match "{directory}/*" then permit\n'
                                    '\tnative-open_by_handle_at: handle match "*" then permit\n')
    log = runner.writable(shared_dir / f"watch-parity-log-{who}")
    enforced = runner("-d", str(policies), "-a", "-E", str(log), program, str(directory), *extra)
    assert enforced.returncode == 0, enforced.stderr
    assert enforced.stdout.decode().splitlines() == lines, log.read_text()[-3000:]
    assert "internal error" not in log.read_text() and "deny" not in log.read_text()
