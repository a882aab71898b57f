"""systrace's own /proc entries through a proc file system mounted somewhere else than
/proc (kernel/handed_procfs.py, SECURITY.md "Out of reach"). Translation refuses
/proc/<systrace> by its path; a bind mount of /proc (a chroot's /proc, a build root's)
names the same entries by another path, and an emulated open is systrace's own open:
before the fix, `<mount>/<systrace>/mem` opened read-write for the tracee was systrace's
memory, and a write open of its oom_score_adj let the tracee choose who the OOM killer
takes first. The attack, natively and under systrace, counts what opened: the tracee's
parent's entries (natively its parent is pytest; under systrace, systrace itself)."""

from __future__ import annotations

import json
import os
import sys

import pytest
from conftest import base_env, run, systrace_argv

PROBE = r'''
import json, os, sys
base, target = sys.argv[1], os.getppid()
opened = {}
for name, flags in (("mem", os.O_RDWR), (f"task/{target}/mem", os.O_RDWR), ("oom_score_adj", os.O_WRONLY),
                    ("coredump_filter", os.O_WRONLY), ("timerslack_ns", os.O_WRONLY), ("clear_refs", os.O_WRONLY)):
    try:
        os.close(os.open(f"{base}/{target}/{name}", flags))
        opened[name] = True
    except OSError:
        opened[name] = False
with open(f"{base}/self/status") as own:  # its own entries, through the same mount: as natively
    name = own.readline().split()[1]
print(json.dumps({"opened": opened, "own": name}))
'''

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="a bind mount of /proc needs root (in its own mount namespace)")


def _in_own_mount_namespace(tmp_path, *command: str) -> dict[str, object]:
    """`command` run in a mount namespace of its own where /proc is bind-mounted at
    tmp_path/proc too (nothing outside the test sees it)."""
    mount = tmp_path / "proc"
    mount.mkdir()
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    shell = 'mount --bind /proc "$0" && exec "$@"'
    result = run(["unshare", "-m", "--propagation", "private", "sh", "-c", shell, str(mount), *command,
                  "/usr/bin/python3", str(script), str(mount)], env=base_env())
    assert result.returncode == 0, result.stderr[-1500:]
    return json.loads(result.stdout.decode().strip().splitlines()[-1])


@ROOT_ONLY
def test_a_bind_mount_of_proc_opens_systraces_own_entries_natively_but_never_under_systrace(tmp_path) -> None:
    (tmp_path / "native").mkdir()
    native = _in_own_mount_namespace(tmp_path / "native")
    assert sum(native["opened"].values()) == 6 and native["own"] == "python3"  # the attack works natively
    for mode in (["--permit-all"], ["-d", str(tmp_path / "learned"), "-A"]):
        where = tmp_path / mode[-1].strip("-")
        where.mkdir()
        traced = _in_own_mount_namespace(where, *systrace_argv(sys.executable), *mode)
        assert sum(traced["opened"].values()) == 0, (mode, traced)  # none of systrace's, in either mode
        assert traced["own"] == "python3"  # its own entries through that mount, as natively


def test_a_proc_path_names_systrace_by_any_numeric_component() -> None:
    from systrace.kernel.handed_procfs import names_systrace

    def ours(pid: int) -> bool:
        return pid == 4242

    assert names_systrace(b"/srv/root/proc/4242/mem", ours)
    assert names_systrace(b"/elsewhere/77/task/4242/mem", ours)
    assert not names_systrace(b"/elsewhere/42420/mem", ours)
    assert names_systrace(b"/elsewhere/04242/mem", ours)  # (a link never shows it so: refused all the same)
    assert not names_systrace(b"/proc/sys/kernel/pid_max", ours)
