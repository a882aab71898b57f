"""The exec check finds the binary an exec runs (decide/policy.py binary_run_by: the
file, or the interpreter its `#!` line names) in the tracee's own view: a chrooted
tracee, or one in a mount namespace of its own, names its paths there, and the kernel
looks both the script and its interpreter up there. Read in systrace's view the script
was another file or none (refused: ENOENT), or its `#!` named another interpreter (the
process then killed at its first call: not the binary checked); now the policy of the
interpreter that really runs (named as systrace sees it, as /proc/TID/exe names it)
applies."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import TIMEOUT, Runner

from systrace.kernel.syscalls_x86_64 import SYSCALLS

INTERPRETER = r"""
#include <stdio.h>
int main(int argc, char **argv) { printf("interpreter ran: %s\n", argc > 1 ? argv[1] : "-"); return 0; }
"""


def _permit_all(binary: str, execve: str = "") -> str:
    """A policy permitting every call of `binary`; `execve`, when given, the exec rule
    (on the filename: the exec check then expects the binary it found)."""
    lines = [f"Policy: {binary}, Emulation: native"]
    lines += [f"\tnative-{name}: permit" for name in SYSCALLS if not (execve and name == "execve")]
    if execve:
        lines.append(f"\tnative-execve: {execve}")
    return "\n".join(lines) + "\n\n"


@pytest.fixture
def jail(tmp_path: Path) -> Path:
    """A directory with a static interpreter at bin/sh and opt/interp, and two scripts:
    `script` (#!/bin/sh: outside the jail that is the system's shell) and `script2`
    (#!/mnt/opt/interp: nothing outside)."""
    if os.geteuid() != 0:
        pytest.skip("chroot and mount need root")
    root = tmp_path / "jail"
    (root / "bin").mkdir(parents=True)
    (root / "opt").mkdir()
    source = tmp_path / "interpreter.c"
    source.write_text(INTERPRETER)
    subprocess.run(["gcc", "-static", "-O1", "-o", str(root / "opt" / "interp"), str(source)], check=True,
                   timeout=TIMEOUT)
    shutil.copy2(root / "opt" / "interp", root / "bin" / "sh")
    (root / "script").write_text("#!/bin/sh\n")
    (root / "script2").write_text("#!/mnt/opt/interp\n")
    for path in root.rglob("*"):
        path.chmod(0o755)
    return root


def _run(root_runner: Runner, policy: Path, argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(root_runner.argv("-U", "-f", str(policy), "-a", *argv), capture_output=True,
                          env=root_runner.env, timeout=TIMEOUT)


def test_a_chrooted_script_runs_the_interpreter_of_its_own_root(jail: Path, root_runner: Runner,
                                                                tmp_path: Path) -> None:
    """`chroot JAIL /script`, whose `#!/bin/sh` is JAIL/bin/sh (a static interpreter), not
    the system's shell: natively it runs; under -a with chroot's exec rule on the filename
    and a policy for JAIL/bin/sh it runs as natively (before: /script was looked up in
    systrace's view, which has none: refused, ENOENT)."""
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    argv = [chroot, str(jail), "/script"]
    native = subprocess.run(argv, capture_output=True, timeout=TIMEOUT)
    assert native.stdout == b"interpreter ran: /script\n", native
    policy = tmp_path / "policy"
    policy.write_text(_permit_all(os.path.realpath(chroot), 'filename eq "/script" then permit')
                      + _permit_all(str(jail / "bin" / "sh")))
    traced = _run(root_runner, policy, argv)
    print(f"chrooted script: natively {native.stdout!r}; under -a exit {traced.returncode}, {traced.stdout!r}")
    assert b"Traceback" not in traced.stderr, traced.stderr
    assert (traced.returncode, traced.stdout) == (0, native.stdout), traced.stderr


def test_a_script_in_an_own_mount_namespace_runs_the_interpreter_there(jail: Path, root_runner: Runner,
                                                                       tmp_path: Path) -> None:
    """The tracee bind-mounts JAIL at /mnt in a mount namespace of its own and runs
    /mnt/script2 (#!/mnt/opt/interp): both exist only in its view. Natively it runs;
    under -a it runs as natively, with the policy of /mnt/opt/interp (as systrace names
    the file, and /proc/TID/exe) (before: refused, ENOENT)."""
    sh = os.path.realpath("/bin/sh")
    argv = ["unshare", "-m", "--propagation", "private", sh, "-c", f"mount --bind {jail} /mnt && exec /mnt/script2"]
    native = subprocess.run(argv, capture_output=True, timeout=TIMEOUT)
    assert native.stdout == b"interpreter ran: /mnt/script2\n", native
    policy = tmp_path / "policy"
    policy.write_text(_permit_all(os.path.realpath(shutil.which("unshare") or "unshare"))
                      + _permit_all(os.path.realpath("/usr/bin/mount")) + _permit_all(sh)
                      .replace("\tnative-execve: permit\n", '\tnative-execve: filename eq "/mnt/script2" then permit[mountns]\n'
                               '\tnative-execve: filename eq "/usr/bin/mount" then permit[mountns]\n')
                      + _permit_all("/mnt/opt/interp"))
    traced = _run(root_runner, policy, argv)
    print(f"script in an own mount namespace: natively {native.stdout!r}; under -a exit {traced.returncode}, "
          f"{traced.stdout!r}")
    assert b"Traceback" not in traced.stderr, traced.stderr
    assert (traced.returncode, traced.stdout) == (0, native.stdout), traced.stderr
