"""Write opens that systrace used to check on their path and then continue (the kernel
read the path again: a second thread swapping it in between opened anything): a user
namespace's map files (`/proc/PID/uid_map`, `gid_map`, `setgroups`), opens in another
mount namespace, and `O_PATH` opens. Each is now made by a helper that becomes the
tracee and checked on what it opened, or (O_PATH) writes nothing and its reopen for
writing is checked (SECURITY.md "What is protected"). Each swap test counts the opens
of the forbidden file natively and under systrace; the honest opens still work."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import TIMEOUT, Runner
from test_supervisor_integrity import _cgroup_mounts, _compile, _frozen, _remove_cgroups, _thaw

FORBIDDEN = "/proc/sys/kernel/ns_last_pid"  # refused for writing whatever the policy (root)
UNSHARE = shutil.which("unshare") or "unshare"
SETPRIV = shutil.which("setpriv") or "setpriv"


def _swap(argv: list[str], runner: Runner | None, *options: str) -> list[str]:
    """write_swap's "escapes N refused R rounds T", natively (runner None) or traced."""
    if runner is None:
        out = subprocess.run(argv, capture_output=True, timeout=TIMEOUT).stdout
    else:
        result = runner(*options, "-E", "/dev/null", *argv)
        out = result.stdout
        assert b"Traceback" not in result.stderr, result.stderr
    return out.decode().split()


def _native_escapes(argv: list[str]) -> list[str]:
    for _ in range(5):  # a loaded machine may let one side win every round: the harness must be shown to work
        native = _swap(argv, None)
        if len(native) == 6 and int(native[1]) > 0:
            break
    return native


@pytest.mark.parametrize("case", ["uid_map", "other-mount-namespace", "o_path"])
def test_a_write_open_swapped_after_the_check_is_not_continued(shared_dir: Path, root_runner: Runner, case: str) -> None:
    """A second thread flips the path between a file the open may have and ns_last_pid
    (refused for writing whatever the policy), 2000 opens, under --permit-all (every
    write open reaches systrace as root). uid_map: systrace used to continue it (a
    write to it is judged by its opener); now a helper with the tracee's credentials
    reopens the inode checked. Another mount namespace: used to be continued; now a
    helper opens in the tracee's view and what it opened is checked. O_PATH: continued
    (ADDFD cannot pass it), but the descriptor writes nothing, and its reopen for
    writing through /proc/self/fd is a write open itself, checked on the file it names."""
    swap = _compile("write_swap", shared_dir)
    allowed = str(root_runner.writable(shared_dir / "fallback-allowed"))
    argv = {"uid_map": [swap, "/proc/self/uid_map", FORBIDDEN, "2000"],
            "other-mount-namespace": [UNSHARE, "-m", swap, allowed, FORBIDDEN, "2000"],
            "o_path": [swap, allowed, FORBIDDEN, "2000", "opath"]}[case]
    native = _native_escapes(argv)
    traced = _swap(argv, root_runner, "--permit-all")
    print(f"write open swapped, {case}: natively {native}, under systrace {traced}")
    assert int(native[1]) > 0, native  # natively the swap reaches the forbidden file
    assert traced[:2] == ["escapes", "0"] and int(traced[3]) > 0, traced  # some opens saw it: refused


def test_honest_map_and_mount_namespace_opens_still_work(root_runner: Runner, shared_dir: Path) -> None:
    """A user namespace made by root, and by a tracee that dropped to nobody (it may map
    only its own uid: mapping root is refused to it as natively, which an open made by
    systrace would have let through); a file written and read in a mount namespace of
    its own."""
    made = str(root_runner.writable(shared_dir / "fallback-honest"))
    nobody = [SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups"]
    cases = {
        "root map": [UNSHARE, "-U", "-r", "sh", "-c", "id -u; cat /proc/self/uid_map"],
        "nobody map": [*nobody, UNSHARE, "-U", "-r", "sh", "-c", "id -u; cat /proc/self/gid_map"],
        "nobody maps root": [*nobody, UNSHARE, "-U", "sh", "-c", 'echo "0 0 1" > /proc/self/uid_map; echo status $?'],
        "mount namespace": [UNSHARE, "-m", "sh", "-c", f"echo hello > {made}; cat {made}; echo x >> /proc/self/fd/1"],
    }
    for name, argv in cases.items():
        native = subprocess.run(argv, capture_output=True, timeout=TIMEOUT)
        traced = root_runner("--permit-all", "-E", "/dev/null", *argv)
        print(f"{name}: natively {native.stdout!r} {native.returncode}, under systrace {traced.stdout!r} "
              f"{traced.returncode}")
        assert (traced.stdout, traced.returncode) == (native.stdout, native.returncode), (name, traced.stderr)
        assert b"Traceback" not in traced.stderr
    assert subprocess.run(cases["nobody maps root"], capture_output=True).stdout == b"status 1\n"


def test_a_cgroup_file_opened_in_another_mount_namespace_is_refused(root_runner: Runner) -> None:
    """A root tracee in a mount namespace of its own mounts cgroup2 where systrace's
    mount table does not see it and writes cgroup.freeze there: natively the victim
    cgroup freezes; under --permit-all the open is refused (what the helper opened is
    a cgroup file), the victim runs on."""
    v2, _ = _cgroup_mounts()
    if v2 is None:
        pytest.skip("needs a cgroup2 mount")
    victim_cgroup = v2 / f"systrace-fallback-{os.getpid()}"
    victim_cgroup.mkdir()
    victim = subprocess.Popen(["sleep", "1000"])
    try:
        (victim_cgroup / "cgroup.procs").write_text(str(victim.pid))
        relative = victim_cgroup.relative_to(v2)
        script = (f"m=$(mktemp -d); mount -t cgroup2 none $m && echo 1 > $m/{relative}/cgroup.freeze; "
                  f"echo status $?; umount $m; rmdir $m")
        argv = [UNSHARE, "-m", "--propagation", "private", "sh", "-c", script]
        native = subprocess.run(argv, capture_output=True, timeout=TIMEOUT)
        natively_frozen = "frozen 1" in (victim_cgroup / "cgroup.events").read_text() or \
            (victim_cgroup / "cgroup.freeze").read_text().strip() == "1"
        _thaw(victim_cgroup, None)
        traced = root_runner("--permit-all", *argv)
        traced_frozen = (victim_cgroup / "cgroup.freeze").read_text().strip() == "1" or _frozen(victim_cgroup, None)
    finally:
        _thaw(victim_cgroup, None)
        victim.kill()
        victim.wait()
        _remove_cgroups([victim_cgroup])
    print(f"cgroup.freeze from another mount namespace: natively {native.stdout!r} frozen {natively_frozen}; "
          f"under systrace {traced.stdout!r} frozen {traced_frozen}")
    assert native.stdout == b"status 0\n" and natively_frozen
    assert traced.stdout == b"status 2\n" and not traced_frozen, traced.stderr  # sh's status for a failed redirection
    assert b"cgroup.freeze: Permission denied" in traced.stderr
    assert b"a cgroup file opened for writing in another mount namespace" in traced.stderr
