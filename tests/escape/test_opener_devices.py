"""Devices whose open is resolved by their opener (kernel/opener_devices.py): `/dev/tty`
is the opener's controlling terminal, `/dev/net/tun` is bound to the opener's network
namespace. Opened by systrace (every write open as root, even under --permit-all; any
open a rule decides on its path) they were systrace's. Found by the red team: a process
that left the session got the user's terminal (natively ENXIO), and a tun interface made
in a network namespace of the tracee's own appeared in the host's (root, 3/3 modes)."""

from __future__ import annotations

import os
import select
import shutil
import time
from pathlib import Path

import pytest
from conftest import TIMEOUT, Runner
from on_pty import fork_on_pty
from test_supervisor_integrity import _compile

from systrace.kernel.syscalls_x86_64 import SYSCALLS


def _modes(runner: Runner, shared_dir: Path, name: str) -> dict[str, list[str]]:
    """--permit-all, -A (learned from the same run: harmless natively), then -a with it."""
    policies = runner.policy_dir(shared_dir / f"opener-devices-{name}-{runner.name}")
    return {"--permit-all": ["--permit-all"], "-A": ["-A", "-d", str(policies)], "-a": ["-a", "-d", str(policies)]}


@pytest.mark.skipif(not os.path.exists("/dev/net/tun"), reason="no /dev/net/tun")
def test_a_tun_device_made_in_an_own_network_namespace_stays_there(runner: Runner, shared_dir: Path) -> None:
    binary = _compile("tun_netns", shared_dir)
    native = runner.native(binary)
    assert native.stdout == b"own=1 host=0\n", native  # natively: in its own namespace only
    outputs = {mode: runner(*args, binary) for mode, args in _modes(runner, shared_dir, "tun").items()}
    for mode, result in outputs.items():
        assert b"Traceback" not in result.stderr, (mode, result.stderr)
        # opened by a helper in the tracee's network namespace (kernel/opener_namespaces.py),
        # or continued to the kernel (the user's write opens under --permit-all): as natively
        assert result.stdout == native.stdout, (mode, result.stdout, result.stderr)
    reached = [mode for mode, result in outputs.items() if b"host=1" in result.stdout]
    print(f"{runner.name}: the interface in the host's namespace natively 0/1, under systrace {len(reached)}/3")
    assert reached == []


def _on_pty(argv: list[str], env: dict[str, str]) -> bytes:
    """argv's output, run as the session leader of a new pseudo-terminal (so systrace,
    or the native parent, has it as controlling terminal)."""
    pid, master = fork_on_pty(argv, env)
    out = b""
    try:
        deadline = time.monotonic() + TIMEOUT  # a safety net: the end of output decides
        while time.monotonic() < deadline and select.select([master], [], [], TIMEOUT)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every process of the terminal is gone
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.waitpid(pid, 0)
        os.close(master)
    return out.replace(b"\r\n", b"\n")


@pytest.mark.parametrize("view", ["same", "mountns"])  # mountns: opened by a helper in its view (kernel/open_as.py)
def test_dev_tty_after_leaving_the_session_is_enxio_as_natively(runner: Runner, shared_dir: Path, view: str) -> None:
    binary = _compile("devtty", shared_dir)
    attack = ["setsid"] + (["mountns"] if view == "mountns" else [])
    native = _on_pty(runner.native_argv(binary, *attack), runner.env)
    assert native == b"open ENXIO\n", native  # natively: no controlling terminal, no /dev/tty
    modes = _modes(runner, shared_dir, f"tty-{view}")
    # the harmless run it learns from keeps its terminal: /dev/tty is the session's
    learned = _on_pty(runner.argv(*modes["-A"], binary), runner.env)
    assert b"open ok" in learned, learned
    got = {mode: _on_pty(runner.argv(*args, binary, *attack), runner.env) for mode, args in modes.items()}
    for mode, out in got.items():
        assert b"Traceback" not in out, (mode, out)
    reached = [mode for mode, out in got.items() if b"open ok" in out]
    print(f"{runner.name} {view}: /dev/tty opened after setsid natively 0/1, under systrace {len(reached)}/3")
    assert reached == [], got
    # and without leaving the session, the same learned policy still opens it
    again = _on_pty(runner.argv(*modes["-a"], binary), runner.env)
    assert b"open ok" in again, again



def test_a_fuse_mount_in_an_own_user_namespace_works_as_natively(runner: Runner, shared_dir: Path) -> None:
    """A `/dev/fuse` descriptor mounts only in its opener's user namespace (fs/fuse/inode.c
    fuse_fill_super: else EINVAL). A server in a user + mount namespace of its own opens
    it and mounts (the watchdog's tests do so). Opened by systrace (under -a, an open a
    rule decides on its path) the mount failed with EINVAL (before: 1/2 modes mounted,
    root and user); opened by a helper in the tracee's user namespace it mounts, as
    natively. (-A refuses path calls in another mount namespace: not run.)"""
    server = _compile("fuse_noread", shared_dir)
    work = shared_dir / f"fuse-userns-{runner.name}"
    work.mkdir(mode=0o755, exist_ok=True)
    fifo = work / "mounted"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo, 0o666)
    os.chown(fifo, runner.uid, -1)
    script = (f"{server} /mnt >{fifo} & server=$!; read line <{fifo}; echo $line; "
              "[ -e /mnt/file ] && echo served; kill $server")
    unshare, sh = shutil.which("unshare") or "unshare", os.path.realpath("/bin/sh")
    argv = [unshare, "-Urm", "--propagation", "private", sh, "-c", script]
    policies = runner.policy_dir(work / "policies")
    policy = policies / "policy"
    text = ""
    for binary in (os.path.realpath(unshare), sh, server):  # opens decided on their path, in its mount namespace
        text += f"Policy: {binary}, Emulation: native\n"
        text += "".join(f"\tnative-{name}: permit\n" for name in SYSCALLS if name != "openat")
        text += '\tnative-openat: filename sub "/" then permit[mountns]\n\n'
    policy.write_text(text)
    os.chown(policy, runner.uid, -1)
    native = runner.native(*argv)
    assert native.stdout == b"mounted\nserved\n", native
    outputs = {mode: runner(*args, *argv) for mode, args in
               {"--permit-all": ["--permit-all"], "-a": ["-U", "-f", str(policy), "-a"]}.items()}
    for mode, result in outputs.items():
        assert b"Traceback" not in result.stderr, (mode, result.stderr)
    mounted = [mode for mode, result in outputs.items() if result.stdout == native.stdout]
    print(f"{runner.name}: FUSE mounted in an own user namespace natively 1/1, under systrace {len(mounted)}/2 "
          f"({', '.join(mounted)})")
    assert mounted == list(outputs), {mode: result.stderr[-600:] for mode, result in outputs.items()}
