"""A tracee's own per-namespace sysctls and /dev/net/tun work as natively.

The kernel resolves `/proc/sys/net/*` by its opener's network namespace, the IPC
sysctls by its IPC namespace, `/proc/sys/user/*` by its user namespace, and makes a tun
interface in its opener's network namespace. Carried out by systrace they were the
host's, so they were refused (EACCES: the escape of test_namespaced_sysctl.py closed
that way); now a helper that joins the tracee's namespaces carries them out
(kernel/opener_namespaces.py). Each case runs natively, under --permit-all, -A and -a
(learned from the -A run), as root (`unshare -n`, `-i`, `-Ur`) and as the user
(`unshare -Urn`, `-Uri`, `-Ur`): the output must be the native one, and the host's
value (or interface list) must not change."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from conftest import Runner

SYSCTL, IP = "/usr/sbin/sysctl", "/usr/sbin/ip"
TUN_NAME = f"st{os.getpid() % 100000}t"  # (other test runs may make their own)


def _host_tun() -> bool:
    return subprocess.run([IP, "link", "show", TUN_NAME], capture_output=True, timeout=30).returncode == 0


def _entry(path: str):
    return lambda: Path(path).read_text().strip()


# name -> (unshare flags as root, as the user, the script, what the host shows)
CASES = {
    "net-sysctl": ("-n", "-Urn",
                   f"{SYSCTL} -w net.ipv4.ip_forward=1 && cat /proc/sys/net/ipv4/ip_forward",
                   _entry("/proc/sys/net/ipv4/ip_forward")),
    "ipc-sysctl": ("-i", "-Uri",
                   f"{SYSCTL} -w kernel.msgmax=12345 && cat /proc/sys/kernel/msgmax && "
                   "echo 777 > /proc/sys/fs/mqueue/msg_max && cat /proc/sys/fs/mqueue/msg_max",
                   lambda: (_entry("/proc/sys/kernel/msgmax")(), _entry("/proc/sys/fs/mqueue/msg_max")())),
    "user-sysctl": ("-Ur", "-Ur",
                    "echo 77 > /proc/sys/user/max_user_namespaces && cat /proc/sys/user/max_user_namespaces",
                    _entry("/proc/sys/user/max_user_namespaces")),
    # in a mount namespace of its own too: the helper joins that as well (kernel/open_as.py
    # in_own_view; -A and -a refuse calls there without a permit[mountns] rule, so only
    # --permit-all, where as root every write open is that helper's)
    "net-sysctl-own-mounts": ("-mn", "-Urmn",
                              f"{SYSCTL} -w net.ipv4.ip_forward=1 && cat /proc/sys/net/ipv4/ip_forward",
                              _entry("/proc/sys/net/ipv4/ip_forward")),
    "tun-own-mounts": ("-mn", "-Urmn",
                       f"{IP} tuntap add dev {TUN_NAME} mode tun && {IP} -o link show {TUN_NAME} | cut -d' ' -f2",
                       _host_tun),
    "tun": ("-n", "-Urn",
            f"{IP} tuntap add dev {TUN_NAME} mode tun && {IP} -o link show {TUN_NAME} | cut -d' ' -f2",
            _host_tun),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_own_namespace_entries_work_as_natively(runner: Runner, shared_dir: Path, case: str) -> None:
    root_flags, user_flags, script, host = CASES[case]
    argv = ["unshare", root_flags if runner.name == "root" else user_flags, "sh", "-c", script]
    before = host()
    native = runner.native(*argv)
    assert native.returncode == 0 and native.stdout, native
    assert host() == before, "natively the host's value changed"
    policies = runner.policy_dir(shared_dir / f"own-ns-{case}-{runner.name}")
    alike, reached = 0, 0
    modes = {"--permit-all": ["--permit-all"], "-A": ["-A", "-d", str(policies)], "-a": ["-a", "-d", str(policies)]}
    if case.endswith("own-mounts"):
        modes = {"--permit-all": ["--permit-all"]}
    for mode, args in modes.items():
        result = runner(*args, *argv)
        assert b"Traceback" not in result.stderr, result.stderr
        alike += result.stdout == native.stdout and result.returncode == 0
        reached += host() != before
        assert (result.returncode, result.stdout) == (0, native.stdout), (mode, result.stdout, result.stderr[-2000:])
    print(f"{runner.name} {case}: as natively under {alike}/{len(modes)}, the host's changed under {reached}/{len(modes)}")
    assert reached == 0
