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
from test_supervisor_integrity import _cgroup_mounts, _compile, _remove_cgroups

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


CGROUP_WRITES = ("own", "ancestor", "other", "move", "new hierarchy")


def test_a_cgroup_file_opened_in_another_mount_namespace_is_checked_exactly(root_runner: Runner) -> None:
    """systrace (and so the command) runs in a cgroup `base/inner` of the cgroup2
    hierarchy; a root tracee in a mount namespace of its own mounts cgroup2 where
    systrace's mount table does not see it and writes: `cgroup.freeze` of its own cgroup
    (systrace's), of the ancestor `base`, of another cgroup (`other`, a victim's), a
    victim's pid into `other/cgroup.procs`, and `cgroup.clone_children` of a v1 hierarchy
    it makes there. Natively, from outside those cgroups, each of the five takes effect.
    Under --permit-all the helper opens each in the tracee's view and checks what it
    opened: the other cgroup's freeze works as natively (before: refused, as every cgroup
    file in another mount namespace was); systrace's cgroup, its ancestor, the move and
    the hierarchy systrace's table does not show are refused, nothing of systrace's
    frozen, and the run ends."""
    v2, _ = _cgroup_mounts()
    if v2 is None:
        pytest.skip("needs a cgroup2 mount")
    base = v2 / f"systrace-view-{os.getpid()}"
    inner, other = base / "inner", v2 / f"systrace-view-other-{os.getpid()}"
    made = [base, inner, other]
    for path in made:
        path.mkdir()
    victims = [subprocess.Popen(["sleep", "1000"]) for _ in range(3)]
    try:
        (inner / "cgroup.procs").write_text(str(victims[0].pid))
        (other / "cgroup.procs").write_text(str(victims[1].pid))
        relative = lambda path: path.relative_to(v2)  # noqa: E731 - as the private mount shows it
        script = (f"m=$(mktemp -d); mount -t cgroup2 none $m || exit 9; "
                  f"echo 1 > $m/{relative(inner)}/cgroup.freeze; echo own $?; "
                  f"echo 1 > $m/{relative(base)}/cgroup.freeze; echo ancestor $?; "
                  f"echo 1 > $m/{relative(other)}/cgroup.freeze; echo other $?; "
                  f"echo {victims[2].pid} > $m/{relative(other)}/cgroup.procs; echo move $?; "
                  f"h=$(mktemp -d); mount -t cgroup -o none,name=systrace-view-{os.getpid()} none $h || exit 9; "
                  f"echo 1 > $h/cgroup.clone_children; echo new hierarchy $?; "
                  f"echo 0 > $h/cgroup.clone_children; umount $h; rmdir $h; umount $m; rmdir $m")
        argv = [UNSHARE, "-m", "--propagation", "private", "sh", "-c", script]

        def effects() -> list[bool]:
            return [(inner / "cgroup.freeze").read_text().strip() == "1",
                    (base / "cgroup.freeze").read_text().strip() == "1",
                    (other / "cgroup.freeze").read_text().strip() == "1",
                    str(victims[2].pid) in (other / "cgroup.procs").read_text().split()]

        def reset() -> None:
            for path in made:
                (path / "cgroup.freeze").write_text("0")
            (v2 / "cgroup.procs").write_text(str(victims[2].pid))

        native = subprocess.run(argv, capture_output=True, timeout=TIMEOUT)
        natively = effects()
        reset()
        in_inner = ["sh", "-c", f'echo $$ > {inner}/cgroup.procs && exec "$@"', "sh"]  # systrace in `inner`
        traced = subprocess.run([*in_inner, *root_runner.argv("--permit-all", *argv)], capture_output=True,
                                env=root_runner.env, timeout=TIMEOUT)
        under_systrace = effects()
        reset()
    finally:
        for path in made:
            (path / "cgroup.freeze").write_text("0")
        for victim in victims:
            victim.kill()
            victim.wait()
        _remove_cgroups(made)
    native_lines = native.stdout.decode().splitlines()
    traced_lines = traced.stdout.decode().splitlines()
    print(f"cgroup writes from another mount namespace: natively {native_lines} (took effect: {natively}); "
          f"under systrace {traced_lines} (took effect: {under_systrace}), exit {traced.returncode}")
    assert native_lines == [f"{name} 0" for name in CGROUP_WRITES] and all(natively), native.stderr
    assert traced_lines == ["own 2", "ancestor 2", "other 0", "move 2", "new hierarchy 2"], traced.stderr
    assert under_systrace == [False, False, True, False]
    assert traced.returncode == 0 and b"Traceback" not in traced.stderr
    for reason in (b"a cgroup that holds systrace", b"moves processes between cgroups",
                   b"a hierarchy systrace's mount table does not show"):
        assert reason in traced.stderr, traced.stderr
