"""A /proc/sys entry the kernel resolves in its opener's namespace (network, IPC), written
by a tracee from a namespace of its own (SECURITY.md "What is protected"). Natively the
value lands in that namespace; a write open systrace carried out itself landed in
systrace's, the host's (root: 1 of 1 in --permit-all, -A and -a before the fix). Then such
an open was refused (EACCES); now a helper that joins the caller's namespaces of that kind
carries it out (kernel/opener_namespaces.py): the value lands in the tracee's namespace,
as natively, and never in the host's."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Runner
from test_supervisor_integrity import _compile

HOST_ENTRY = {"net": Path("/proc/sys/net/ipv4/tcp_fin_timeout"), "ipc": Path("/proc/sys/kernel/msgmax")}


# (as the user an IPC namespace's sysctls are not writable natively either: nothing to show)
@pytest.mark.parametrize(("who", "kind"), [("root", "net"), ("root", "ipc"), ("user", "net")])
def test_a_sysctl_of_the_tracee_s_own_namespace_never_reaches_the_host(request, shared_dir: Path, tmp_path: Path,
                                                                       who: str, kind: str) -> None:
    runner: Runner = request.getfixturevalue(f"{who}_runner")
    binary = _compile("ns_sysctl", shared_dir)
    entry = HOST_ENTRY[kind]
    host = entry.read_text().strip()
    value = str(int(host) + 7)
    reached = {}
    try:
        native = runner.native(binary, kind, value)
        assert native.stdout == f"wrote {value}, reads {value}\n".encode(), native  # it works in its own namespace
        reached["native"] = entry.read_text().strip() != host
        policies = runner.policy_dir(shared_dir / f"ns-sysctl-policies-{who}-{kind}")  # (the user reaches it)
        runs = {"--permit-all": ["--permit-all"], "-A": ["-A", "-d", str(policies)], "-a": ["-a", "-d", str(policies)]}
        for mode, args in runs.items():
            result = runner(*args, binary, kind, value)
            assert b"Traceback" not in result.stderr, result.stderr
            reached[mode] = entry.read_text().strip() != host
            if reached[mode] and os.geteuid() == 0:
                entry.write_text(host)
            # carried out by a helper in the tracee's namespaces (kernel/opener_namespaces.py),
            # or continued to the kernel (a write open the user's --permit-all does not
            # route): in its own namespace, as natively
            assert result.stdout == native.stdout, (mode, result.stdout, result.stderr)
        print(f"{who} {kind}: the host's {entry} changed natively {int(reached['native'])}/1, "
              f"under systrace {sum(reached[m] for m in runs)}/{len(runs)}")
        assert not any(reached.values()), reached
    finally:
        if os.geteuid() == 0 and entry.read_text().strip() != host:
            entry.write_text(host)


@pytest.fixture
def host_segment() -> Iterator[str]:
    """A shared memory segment of the host's IPC namespace (its id)."""
    made = subprocess.run(["ipcmk", "-M", "4096"], capture_output=True, text=True, timeout=30)
    if made.returncode != 0:
        pytest.skip(f"ipcmk: {made.stderr}")
    segment = made.stdout.split()[-1]
    yield segment
    subprocess.run(["ipcrm", "-m", segment], capture_output=True, timeout=30)


def _listing_natively(runner: Runner, shared_dir: Path) -> tuple[str, subprocess.CompletedProcess]:
    binary = _compile("ns_sysctl", shared_dir)
    native = runner.native(binary, "sysvipc")
    assert native.stdout == b"lines 1\n", native  # only the header: its namespace has no segment
    return binary, native


def test_the_host_s_ipc_objects_are_not_listed_to_a_tracee_in_its_own_ipc_namespace(runner: Runner, shared_dir: Path,
                                                                                       host_segment: str) -> None:
    """/proc/sysvipc/shm lists the opener's IPC namespace's segments: opened by systrace
    (a rule on its path, learned from this very run) it listed the host's (1/1 under -a)."""
    binary, native = _listing_natively(runner, shared_dir)
    policies = runner.policy_dir(shared_dir / f"ns-sysvipc-policies-{runner.name}")
    listed = {}
    for mode in (["--permit-all"], ["-A", "-d", str(policies)], ["-a", "-d", str(policies)]):
        result = runner(*mode, binary, "sysvipc")
        assert result.stdout == native.stdout, (mode, result)  # its namespace's: none
        listed[mode[0]] = result.stdout != native.stdout and result.stdout.startswith(b"lines ")
    print(f"{runner.name}: the host's segments listed natively 0/1, under systrace {sum(listed.values())}/3")
    assert not any(listed.values())


def test_a_replica_does_not_list_the_host_s_ipc_objects(runner: Runner, shared_dir: Path, host_segment: str) -> None:
    """As above under `-a --supervisors 2`, every eligible call handed to a replica
    (SYSTRACE_TEST_REPLICAS_SERVE_ALL; a program with several threads opening at once
    gets the same): the replica decides opens itself, and it carried the permitted open
    out in systrace's IPC namespace, listing the host's segments (found by the red team:
    3/3 as root and as the user). Now it hands such an open to the main process, whose
    helper joins the tracee's namespace."""
    binary, native = _listing_natively(runner, shared_dir)
    policies = runner.policy_dir(shared_dir / f"ns-sysvipc-replica-policies-{runner.name}")
    learned = runner("-A", "-d", str(policies), binary, "sysvipc")
    assert learned.stdout == native.stdout, learned
    replicas = Runner(runner.name, runner.prefix, runner.python,
                      {**runner.env, "SYSTRACE_TEST_REPLICAS_SERVE_ALL": "1"}, runner.cwd)
    listed = 0
    for _ in range(3):
        result = replicas("-a", "--supervisors", "2", "-d", str(policies), binary, "sysvipc")
        assert result.stdout.startswith(b"lines "), result
        listed += result.stdout != native.stdout
    print(f"{runner.name}: the host's segments listed natively 0/1, under -a --supervisors 2 {listed}/3")
    assert listed == 0


def test_the_tracee_s_own_sysctl_in_systrace_s_namespace_is_carried_out(shared_dir: Path, root_runner: Runner,
                                                                         tmp_path: Path) -> None:
    """Not in a namespace of its own, the same entry is opened as before (the refusal is
    only for a caller in another namespace of that kind): a read under `-a`."""
    policies = root_runner.policy_dir(tmp_path / "policies")
    argv = ["sh", "-c", f"cat {HOST_ENTRY['net']}"]
    assert root_runner("-A", "-d", str(policies), *argv).returncode == 0
    result = root_runner("-a", "-d", str(policies), *argv)
    assert result.returncode == 0 and result.stdout == HOST_ENTRY["net"].read_bytes(), result


def test_which_entries_are_resolved_in_the_opener_s_namespace() -> None:
    from systrace.decide.protected import namespaced_sysctl
    points = ["/proc", "/tmp/other-proc"]
    assert namespaced_sysctl("/proc/sys/net/ipv4/tcp_fin_timeout", points) == "net"
    assert namespaced_sysctl("/proc/sys/net", points) == "net"
    assert namespaced_sysctl("/tmp/other-proc/sys/net/core/somaxconn", points) == "net"
    assert namespaced_sysctl("/proc/sys/kernel/msgmax", points) == "ipc"
    assert namespaced_sysctl("/proc/sys/kernel/sem", points) == "ipc"
    assert namespaced_sysctl("/proc/sys/fs/mqueue/msg_max", points) == "ipc"
    assert namespaced_sysctl("/proc/sys/user/max_user_namespaces", points) == "user"
    assert namespaced_sysctl("/proc/sysvipc/shm", points) == "ipc"
    for other in ("/proc/sys/kernel/hostname", "/proc/sys/vm/swappiness", "/proc/sys/network", "/procx/sys/net/a",
                  "/etc/sys/net/x", "/proc/self/net/dev", "/proc/sysvipcx", "/proc/sys"):
        assert namespaced_sysctl(other, points) is None, other
