"""The mount tables are polled once per call (kernel/mounts.py MountTable.expire, called
by the loop at each notification: effects.Effects.new_call), and a mount made between two
calls is seen by the second. Each test runs in a mount namespace of its own (unshare -m,
private propagation): nothing it mounts is seen outside, nothing is left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from conftest import SRC, TIMEOUT, base_env

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                                reason="needs root and unshare(1)")

PRIVATE = ["unshare", "-m", "--propagation", "private"]

TABLE_PROBE = """
import os, subprocess, sys, tempfile
sys.path.insert(0, sys.argv[1])
from systrace.kernel.mounts import MountTable
table = MountTable()
point = tempfile.mkdtemp()
before = table.mounts()
subprocess.run(["mount", "-t", "tmpfs", "none", point], check=True)
questions = [table.mounts() for _ in range(5)]  # the same call: not polled again
same_call = all(point not in [p for p, _, _ in q] for q in questions) and table.reads == 1
table.expire()  # the next call
seen = point in [p for p, kind, _ in table.mounts() if kind == "tmpfs"] and table.reads == 2
table.expire()  # nothing changed since: polled, not read
unchanged = table.mounts() and table.reads == 2
subprocess.run(["umount", point], check=True)
print(same_call, seen, unchanged)
"""


def test_a_table_is_polled_once_per_call_and_a_mount_is_seen_by_the_next() -> None:
    result = subprocess.run([*PRIVATE, sys.executable, "-c", TABLE_PROBE, str(SRC)], capture_output=True, text=True,
                            timeout=TIMEOUT)
    assert result.stdout.split() == ["True", "True", "True"], result.stderr


# A root tracee mounts cgroup2 where systrace has never seen it, then writes a file of its
# own cgroup there (the value it holds: harmless natively), after a write open systrace
# checked against its mount table as it was before. The write reaches systrace's
# cgroup: refused whatever the policy (supervisor.protected_path), which finds cgroup
# mounts in systrace's table. Were the table not polled again at the call after the
# mount, the write would be carried out.
CGROUP_WRITE = (
    'echo > /dev/null; '  # a write open: systrace reads its mount table (before the mount)
    'm=$(mktemp -d) && mount -t cgroup2 none "$m" || exit 9; '
    'f="$m$(cut -d: -f3 /proc/self/cgroup | head -n1)/cgroup.max.depth"; '
    'v=$(cat "$f"); echo "$v" > "$f"; echo "write=$?"; umount "$m"; rmdir "$m"'
)


def test_a_cgroup_mount_made_by_the_command_is_seen_by_its_next_call() -> None:
    if not any(line.split()[2] == "cgroup2" for line in open("/proc/self/mounts")):
        pytest.skip("no cgroup2 on this machine")
    native = subprocess.run([*PRIVATE, "/bin/sh", "-c", CGROUP_WRITE], capture_output=True, text=True, timeout=TIMEOUT)
    assert "write=0" in native.stdout, native.stderr  # natively the write is done
    traced = subprocess.run([*PRIVATE, sys.executable, "-m", "systrace", "--permit-all", "/bin/sh", "-c", CGROUP_WRITE],
                            capture_output=True, text=True, timeout=TIMEOUT, env=base_env())
    assert "write=" in traced.stdout and "write=0" not in traced.stdout, (traced.stdout, traced.stderr)
    assert "cgroup.max.depth: Permission denied" in traced.stderr  # refused: EACCES


def test_a_thread_s_new_mount_namespace_is_read_at_its_next_call() -> None:
    """MountViews reads a thread's mount namespace once per call: after it unshares one
    (its next call comes after), the next call looks at that namespace's table."""
    from systrace.kernel.mounts import MountViews

    child = subprocess.Popen(["/bin/sh", "-c", 'read x; exec unshare -m --propagation private /bin/sh -c "read y"'],
                             stdin=subprocess.PIPE)
    views = MountViews()
    try:
        before = os.stat(f"/proc/{child.pid}/ns/mnt").st_ino
        assert views.servable(child.pid, b"/root") is not None
        assert child.stdin is not None
        child.stdin.write(b"go\n")
        child.stdin.flush()
        while os.stat(f"/proc/{child.pid}/ns/mnt").st_ino == before:  # the unshare, then its exec
            assert child.poll() is None
        assert views.servable(child.pid, b"/root") is not None
        assert len(views._tables) == 1  # the same call: not read again
        views.expire()  # its next call
        assert views.servable(child.pid, b"/root") is not None
        assert len(views._tables) == 2  # the new namespace's table
    finally:
        views.close()
        child.kill()
        child.wait()
