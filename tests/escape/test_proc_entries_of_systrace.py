"""What a process of the run may see of systrace in /proc (SECURITY.md "Out of reach":
/proc). Every entry of /proc/<systrace>/ and /proc/<systrace>/task/<tid>/, by class:

- a write open (the only way to act through /proc: oom_score_adj, autogroup,
  coredump_filter, clear_refs, timerslack_ns, the maps...) always reaches systrace
  (decide/protected.py) and is refused with ENOENT, as for a process gone;
- any open or path call that reaches systrace gets ENOENT too (under -A here);
- an open the kernel decides (a policy that plainly permits openat, here --permit-all)
  reads only entries of HARMLESS (what ps and top show of any process); the ptrace-mode
  ones (fd and ns links, mem, io, syscall, stack, personality, timers; as the user also
  environ, maps, auxv...) are refused by the command's Landlock domain, as for every
  process outside the run. As root a few memory-layout entries, environ and auxv read
  (mm_access lets CAP_PERFMON/CAP_SYS_ADMIN through): environ and auxv are empty
  (kernel/own_entries.py; test_systrace_environ.py), and systrace's memory cannot be
  written anyway."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from conftest import TIMEOUT, Runner

PROBE = r'''
import errno, json, os, sys
target = os.getppid() if sys.argv[1] == "parent" else int(sys.argv[1])
def attempt(path, flags):
    try:
        fd = os.open(path, flags | os.O_NONBLOCK)
    except OSError as error:
        return errno.errorcode[error.errno]
    try:
        if flags == os.O_RDONLY:
            os.listdir(fd) if os.path.isdir(path) else os.read(fd, 1)
            return "ok"
        try:  # what it holds now (a change of nothing), else a 0
            with open(path, "rb") as current:
                value = current.read(64).split(b"\n")[0] + b"\n"
        except OSError:
            value = b"0\n"
        os.write(fd, value if value.strip() else b"0\n")
        return "ok"
    except OSError as error:
        return ("read-" if flags == os.O_RDONLY else "write-") + errno.errorcode[error.errno]
    finally:
        os.close(fd)
entries = {}
given = json.load(open(sys.argv[2])) if len(sys.argv) > 2 else None  # (when the listing is refused)
for index, base in enumerate((f"/proc/{target}", f"/proc/{target}/task/{target}")):
    names = given[index] if given else sorted(os.listdir(base))
    for name in list(names) if not given else []:
        if name in ("fd", "fdinfo", "ns", "attr", "map_files"):
            try:
                names += [f"{name}/{sub}" for sub in sorted(os.listdir(f"{base}/{name}"))[:3]]
            except OSError:
                pass
    for name in names:
        path = f"{base}/{name}"
        key = path.replace(f"/{target}", "/T", 2)
        # not written: directories, and the links (a write goes to the file they name)
        skip = name in ("fd", "fdinfo", "ns", "attr", "map_files", "task", "net", "cwd", "root", "exe") \
            or name.startswith(("fd/", "ns/", "map_files/")) or os.path.isdir(path)
        entries[key] = [attempt(path, os.O_RDONLY), "-" if skip else attempt(path, os.O_WRONLY)]
    listed = (listed if index else []) + [names]
shown = {}
for name in ("environ", "auxv"):
    if entries.get(f"/proc/T/{name}", [""])[0] == "ok":
        with open(f"/proc/{target}/{name}", "rb") as theirs:
            shown[name] = theirs.read().hex()
listing = f"/proc/{target}"
try:
    os.listdir(listing)
    listing = "ok"
except OSError as error:
    listing = errno.errorcode[error.errno]
print(json.dumps({"entries": entries, "shown": shown, "names": listed, "listing": listing}))
'''
_ID = "what ps and top show of any process: ids, state, limits, scheduling, accounting, labels"
_LAYOUT = "root: systrace's memory layout; its memory cannot be written (mem, process_vm_writev, ptrace refused)"
_NAMES = "a listing: names only, each link refused"
HARMLESS = {
    **dict.fromkeys(["status", "stat", "statm", "cmdline", "comm", "limits", "cgroup", "cpuset", "sched", "schedstat",
                     "wchan", "oom_adj", "oom_score", "oom_score_adj", "autogroup", "loginuid", "sessionid",
                     "arch_status", "coredump_filter", "timerslack_ns", "ksm_stat", "ksm_merging_pages", "uid_map",
                     "gid_map", "projid_map", "setgroups", "timens_offsets", "children", "io"], _ID),
    **dict.fromkeys(["maps", "smaps", "smaps_rollup", "numa_maps"], _LAYOUT),
    **dict.fromkeys(["environ", "auxv"], "root: shown empty (kernel/own_entries.py; checked)"),
    **dict.fromkeys(["mountinfo", "mounts", "mountstats", "net"], "the mount and network namespace the command shares"),
    **dict.fromkeys(["fd", "fdinfo", "ns", "map_files", "task", "attr"], _NAMES),
}


def _probe(argv: list[str], runner: Runner) -> dict:
    result = subprocess.run(argv, capture_output=True, env=runner.env, cwd=runner.cwd, timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _entry(key: str) -> str:
    return key.split("/T/", 1)[-1].split("/T/")[-1].split("/")[0]


@pytest.mark.parametrize("who", ["root", "user"])
def test_systrace_s_proc_entries_by_class(request, shared_dir: Path, who: str) -> None:
    runner: Runner = request.getfixturevalue(f"{who}_runner")
    probe = shared_dir / "proc_entries_probe.py"
    probe.write_text(PROBE)
    probe.chmod(0o644)
    victim = subprocess.Popen(runner.native_argv("sh", "-c", "echo ready; exec sleep 1000"), stdout=subprocess.PIPE)
    try:
        assert victim.stdout.readline() == b"ready\n"
        native = _probe(runner.native_argv(runner.python, str(probe), str(victim.pid)), runner)["entries"]
    finally:
        victim.kill()
        victim.wait()
        victim.stdout.close()
    continued = _probe(runner.argv("--permit-all", runner.python, str(probe), "parent"), runner)
    names = shared_dir / f"proc-entries-names-{who}.json"
    names.write_text(json.dumps(continued["names"]))
    names.chmod(0o644)
    policies = runner.policy_dir(shared_dir / f"proc-entries-policies-{who}")
    routed_run = _probe(runner.argv("-d", str(policies), "-A", runner.python, str(probe), "parent", str(names)), runner)
    routed = routed_run["entries"]
    entries = continued["entries"]

    written_natively = sorted(key for key, (_, write) in native.items() if write == "ok")
    written = sorted(key for key, (_, write) in entries.items() if write == "ok")
    read_natively = sorted(key for key, (read, _) in native.items() if read == "ok")
    read = sorted(key for key, (read, _) in entries.items() if read == "ok")
    print(f"{who}: natively {len(written_natively)} entries of a victim open for writing, {len(read_natively)} "
          f"read; of systrace's under --permit-all {len(written)} for writing, {len(read)} read "
          f"({sorted({_entry(key) for key in read})}); routed (-A): "
          f"{sum(r == 'ok' for r, _ in routed.values())} read, errnos {sorted({r for r, _ in routed.values()})}")
    assert len(written_natively) >= 4  # oom_score_adj, oom_adj, coredump_filter, sched...
    assert written == []
    # refused by systrace as for no process when write opens reach it (root); else by the
    # kernel: the entry is root's (systrace is not dumpable), or the write itself fails
    assert {write for _, write in entries.values()} <= ({"ENOENT", "-"} if who == "root" else
                                                         {"EACCES", "write-EACCES", "write-EPERM", "write-EINVAL", "-"})
    assert sorted({_entry(key) for key in read} - set(HARMLESS)) == []
    assert continued["shown"] == ({"environ": "", "auxv": "00" * 16} if who == "root" else {})
    assert continued["listing"] == "ok" and routed_run["listing"] == "ENOENT"
    assert {read for read, _ in routed.values()} == {"ENOENT"}
    assert {write for _, write in routed.values()} <= {"ENOENT", "-"}
