"""The cgroup files that reach systrace, and the pid allocation files, are refused
whatever the policy: under --permit-all, with a policy that plainly permits openat (the
kernel would open without asking), and with --supervisors (replicas decide opens). The
filter sends every write open to systrace (decide/protected.route_write_opens), which
checks its path and carries it out on the path checked."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import TIMEOUT, Runner
from test_supervisor_integrity import _cgroup_mounts, _cgroup_script, _compile, _frozen, _remove_cgroups, _thaw, _wait_for

from systrace.kernel.syscalls_x86_64 import SYSCALLS

SH = os.path.realpath("/bin/sh")


def _plain_permits(path: Path, routed_by_path: bool, binary: str = SH) -> Path:
    """Every call of `binary` plainly permitted (openat too), or openat by its path with
    --supervisors (so that replicas decide the opens)."""
    lines = [f"Policy: {binary}, Emulation: native"]
    lines += [f"\tnative-{name}: permit" for name in SYSCALLS if name != "openat" or not routed_by_path]
    if routed_by_path:
        lines.append('\tnative-openat: filename sub "/" then permit')
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o644)
    return path


def _modes(shared_dir: Path) -> dict[str, list[str]]:
    return {
        "permit-all": ["--permit-all"],
        "plain-permit": ["-U", "-f", str(_plain_permits(shared_dir / "cg-plain", False)), "-a"],
        "supervisors": ["-U", "-f", str(_plain_permits(shared_dir / "cg-replicas", True)), "-a", "--supervisors", "2"],
    }


@pytest.fixture
def cgroups():
    v2, v1 = _cgroup_mounts()
    if v2 is None or os.geteuid() != 0:
        pytest.skip("needs root and a cgroup2 mount")
    name = f"systrace-anypolicy-{os.getpid()}"
    a, b = v2 / name, v2 / f"{name}-other"
    f = v1 / name if v1 is not None else None
    made = [p for p in (a, b, f) if p is not None]
    for path in made:
        path.mkdir()
    try:
        yield a, b, f
    finally:
        _thaw(a, f)
        _remove_cgroups(made)


def _native(a: Path, b: Path, f: Path | None) -> dict[str, bool]:
    victims = [subprocess.Popen(["sleep", "1000"], stdout=subprocess.DEVNULL) for _ in range(2)]
    try:
        for victim in victims:
            (a / "cgroup.procs").write_text(str(victim.pid))
            if f is not None:
                (f / "tasks").write_text(str(victim.pid))
        out = subprocess.run([SH, "-c", _cgroup_script(a, b, f, str(victims[1].pid))], capture_output=True,
                             timeout=TIMEOUT).stdout.decode()
        native = {word: status == "0" for word, status in (line.split() for line in out.splitlines())}
        assert _frozen(a, f)
        _thaw(a, f)
        assert f"/{b.name}" in Path(f"/proc/{victims[1].pid}/cgroup").read_text()  # moved
        victims[0].wait(timeout=TIMEOUT)
        assert victims[0].returncode == -signal.SIGKILL  # cgroup.kill
        return native
    finally:
        for victim in victims:
            victim.kill()
            victim.wait()


@pytest.mark.parametrize("mode", ["permit-all", "plain-permit", "supervisors"])
def test_cgroup_writes_are_refused_whatever_the_policy(shared_dir: Path, root_runner: Runner, cgroups,
                                                        mode: str) -> None:
    a, b, f = cgroups
    native = _native(a, b, f)
    assert native == dict.fromkeys(native, True) and len(native) == (4 if f is not None else 3)
    enter = f"echo $$ > {a}/cgroup.procs; " + (f"echo $$ > {f}/tasks; " if f is not None else "")
    script = _cgroup_script(a, b, f, "$PPID")
    argv = root_runner.argv(*_modes(shared_dir)[mode], SH, "-c", script)
    proc = subprocess.Popen(["sh", "-c", enter + 'exec "$@"', "sh", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=root_runner.env)
    froze = False
    _wait_for(lambda: proc.poll() is not None or _frozen(a, f), "systrace to end")
    if proc.poll() is None:  # frozen: it got through; thaw it to finish
        froze = True
        _thaw(a, f)
    out, err = proc.communicate(timeout=TIMEOUT)
    traced = {word: status == "0" for word, status in (line.split() for line in out.decode().splitlines())}
    got = sorted(word for word, through in traced.items() if through)
    print(f"cgroups, {mode}: natively {sum(native.values())}/{len(native)} writes took effect; under systrace "
          f"{len(got)}/{len(traced)} {got}, systrace frozen: {froze}, status {proc.returncode}")
    assert set(traced) == set(native), (out, err)
    assert got == [] and not froze and proc.returncode == 0, (out, err)


@pytest.mark.parametrize("mode", ["permit-all", "plain-permit", "supervisors"])
def test_pid_allocation_writes_are_refused_whatever_the_policy(shared_dir: Path, root_runner: Runner,
                                                               mode: str) -> None:
    """ns_last_pid chooses the next pid (it aims a reuse at a helper), pid_max makes pids
    wrap sooner. Natively root writes both (each given its current value back)."""
    files = ["/proc/sys/kernel/ns_last_pid", "/proc/sys/kernel/pid_max"]
    script = "; ".join(f"echo {Path(path).read_text().strip()} > {path}; echo {Path(path).name} $?" for path in files)
    native = subprocess.run([SH, "-c", script], capture_output=True, timeout=TIMEOUT).stdout.decode().split()
    result = root_runner(*_modes(shared_dir)[mode], SH, "-c", script)
    traced = result.stdout.decode().split()
    print(f"pid allocation, {mode}: natively {native}, under systrace {traced}")
    assert native == ["ns_last_pid", "0", "pid_max", "0"]
    assert traced[0::2] == ["ns_last_pid", "pid_max"] and "0" not in traced[1::2], (traced, result.stderr)
    assert result.stderr.count(b"whatever the policy says") == 2, result.stderr


@pytest.mark.parametrize("mode", ["permit-all", "plain-permit"])
def test_a_write_open_swapped_after_the_check_opens_what_was_checked(shared_dir: Path, root_runner: Runner,
                                                                     mode: str) -> None:
    """A second thread flips the path between an allowed file and ns_last_pid while the
    other opens it for writing. Natively the forbidden file is opened; continued after a
    check it would be too (the kernel reads the path again); systrace opens the path it
    checked, so each open gets the allowed file or a refusal."""
    swap = _compile("write_swap", shared_dir)
    allowed = root_runner.writable(shared_dir / "write-swap-allowed")
    argv = [str(allowed), "/proc/sys/kernel/ns_last_pid", "2000"]
    for _ in range(5):  # a loaded machine may let the open win every round: the harness must be shown to work
        native = subprocess.run([swap, *argv], capture_output=True, timeout=TIMEOUT).stdout.decode().split()
        if int(native[1]) > 0:
            break
    flags = _modes(shared_dir)[mode]
    if mode == "plain-permit":
        flags = ["-U", "-f", str(_plain_permits(shared_dir / "cg-swap", False, swap)), "-a"]
    result = root_runner(*flags, swap, *argv)
    traced = result.stdout.decode().split()
    print(f"write open swapped, {mode}: natively {native}, under systrace {traced}")
    assert int(native[1]) > 0, native  # natively the swap reaches the forbidden file
    assert traced[:2] == ["escapes", "0"] and int(traced[3]) > 0, (traced, result.stderr)  # some saw it: refused


def test_a_delegated_cgroup_is_protected_for_the_unprivileged_user(user_runner: Runner, test_user) -> None:
    """A cgroup delegated to the user (its directory and files theirs) holds the user's
    systrace: natively the user freezes and kills a victim in it; under --permit-all
    neither write is taken (systrace routes write opens when it finds such a cgroup)."""
    v2, _ = _cgroup_mounts()
    if v2 is None or os.geteuid() != 0:
        pytest.skip("needs root (to delegate) and a cgroup2 mount")
    a = v2 / f"systrace-delegated-{os.getpid()}"
    a.mkdir()
    script = f"echo 1 > {a}/cgroup.freeze; echo freeze $?; echo 1 > {a}/cgroup.kill; echo kill $?"
    try:
        for path in (a, a / "cgroup.procs", a / "cgroup.freeze", a / "cgroup.kill"):
            os.chown(path, test_user.pw_uid, test_user.pw_gid)
        victim = subprocess.Popen(["sleep", "1000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            (a / "cgroup.procs").write_text(str(victim.pid))
            native = user_runner.native(SH, "-c", script).stdout.decode().split()  # from outside the cgroup
            frozen = "frozen 1" in (a / "cgroup.events").read_text()
            victim.wait(timeout=TIMEOUT)
        finally:
            victim.kill()
            victim.wait()
        (a / "cgroup.freeze").write_text("0")
        assert native == ["freeze", "0", "kill", "0"] and victim.returncode == -signal.SIGKILL, native

        argv = user_runner.argv("--permit-all", SH, "-c", script)
        proc = subprocess.Popen(["sh", "-c", f'echo $$ > {a}/cgroup.procs; exec "$@"', "sh", *argv],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=user_runner.env,
                                cwd=user_runner.cwd)
        _wait_for(lambda: proc.poll() is not None or "frozen 1" in (a / "cgroup.events").read_text(),
                  "systrace to end")
        froze = proc.poll() is None
        (a / "cgroup.freeze").write_text("0")
        out, err = proc.communicate(timeout=TIMEOUT)
        traced = out.decode().split()
        print(f"delegated cgroup, user: natively {native} (victim frozen: {frozen}, killed), "
              f"under systrace {traced}, systrace frozen: {froze}, status {proc.returncode}")
        assert traced == ["freeze", "2", "kill", "2"] and not froze and proc.returncode == 0, (traced, err)
    finally:
        (a / "cgroup.freeze").write_text("0")
        for pid in (a / "cgroup.procs").read_text().split():
            try:
                (v2 / "cgroup.procs").write_text(pid)
            except OSError:
                pass
        a.rmdir()


NEW_FILE_SCRIPT = """
import errno, os, sys
kinds, targets, scratch = sys.argv[1].split(","), sys.argv[2:-1], sys.argv[-1]
for path in targets:  # the files no policy may change, opened as a new file only
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600))
        print(os.path.basename(path), "opened")
    except OSError as error:
        print(os.path.basename(path), errno.errorcode[error.errno])
shapes = {"excl": os.O_WRONLY | os.O_CREAT | os.O_EXCL, "tmpfile": os.O_RDWR | os.O_TMPFILE}
for flags in [shapes[kind] for kind in kinds]:
    for i in range(100):  # new files, as tar -x makes them
        name = os.path.join(scratch, str(i))
        os.close(os.open(scratch if flags & os.O_TMPFILE == os.O_TMPFILE else name, flags, 0o600))
        if not flags & os.O_TMPFILE == os.O_TMPFILE:
            os.unlink(name)
print("made", 100 * len(kinds))
"""


@pytest.mark.parametrize("mode", ["permit-all", "plain-permit", "supervisors"])
def test_an_open_that_can_only_make_a_new_file_stays_in_the_kernel(shared_dir: Path, root_runner: Runner, cgroups,
                                                                   mode: str) -> None:
    """O_CREAT|O_EXCL (EEXIST on any existing name, a symlink too) and O_TMPFILE (a file
    with no name) never open an existing file, and the files systrace protects exist
    already, on file systems where open creates nothing: so the filter leaves such opens to
    the kernel (decide/protected.py). Natively and under systrace, in systrace's own
    cgroup, cgroup.freeze, cgroup.kill, cgroup.procs and ns_last_pid give EEXIST (nothing
    frozen, killed or moved); the 200 new files are made with none of these opens routed
    (with --supervisors, whose policy routes openat by its path, the same answers)."""
    a, _, _ = cgroups
    scratch = shared_dir / f"new-files-{mode}"
    scratch.mkdir(exist_ok=True)
    targets = [str(a / "cgroup.freeze"), str(a / "cgroup.kill"), str(a / "cgroup.procs"), "/proc/sys/kernel/ns_last_pid"]
    python = os.path.realpath(root_runner.python)
    # (an emulated O_TMPFILE open is refused, EACCES: the file it made is not at the checked
    # path; with --supervisors openat is emulated by its path rule, so O_TMPFILE is left out)
    kinds = "excl" if mode == "supervisors" else "excl,tmpfile"
    argv_tail = [python, "-c", NEW_FILE_SCRIPT, kinds, *targets, str(scratch)]
    native = subprocess.run(argv_tail, capture_output=True, timeout=TIMEOUT).stdout.decode().splitlines()
    flags = {"permit-all": ["--permit-all"],
             "plain-permit": ["-U", "-f", str(_plain_permits(shared_dir / "cg-new-files", False, python)), "-a"],
             "supervisors": ["-U", "-f", str(_plain_permits(shared_dir / "cg-new-files-r", True, python)), "-a",
                             "--supervisors", "2"]}[mode]
    argv = root_runner.argv(*flags, "--stats", *argv_tail)
    proc = subprocess.Popen(["sh", "-c", f'echo $$ > {a}/cgroup.procs; exec "$@"', "sh", *argv],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=root_runner.env)
    _wait_for(lambda: proc.poll() is not None or _frozen(a, None), "systrace to end")
    froze = proc.poll() is None
    if froze:
        _thaw(a, None)
    out, err = proc.communicate(timeout=TIMEOUT)
    traced = out.decode().splitlines()
    routed = re.search(rb"routed by system call: (.*)", err)
    routed_opens = re.search(rb"\bopenat (\d+)", routed.group(1)) if routed else None
    print(f"new-file opens, {mode}: natively {native}, under systrace {traced}, frozen {froze}, "
          f"openat routed {routed_opens.group(1).decode() if routed_opens else 0}")
    made = f"made {100 * len(kinds.split(','))}"
    assert native == [f"{Path(t).name} EEXIST" for t in targets] + [made], native
    assert not froze and proc.returncode == 0, (traced, err)
    if mode == "supervisors":  # openat routed by its path rule, the main process or a replica decides: refused
        assert traced == [f"{Path(t).name} EACCES" for t in targets] + [made], (traced, err)
        return
    assert traced == native, (traced, err)
    assert routed is not None and routed_opens is None, err  # none of the 204 opens reached systrace
