"""openat2's RESOLVE_* flags are kept when systrace opens for the tracee
(kernel/resolve_flags.py). Before, an emulated openat2 ignored them: a program that
confined its own lookups with RESOLVE_BENEATH, NO_SYMLINKS or NO_XDEV got the file it
had excluded, RESOLVE_IN_ROOT got the file of the same name in the real root, and a
struct open_how the kernel refuses (a mode without O_CREAT, unknown flags, BENEATH with
IN_ROOT, a later version's fields) was opened: 18 of the 27 lines below differed from
natively, as root."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import Runner

from systrace.kernel.syscalls_x86_64 import SYSCALLS

PROBE = r'''
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
jail = sys.argv[1]
flags = {"beneath": 0x08, "in_root": 0x10, "no_symlinks": 0x04, "no_xdev": 0x01, "none": 0, "bogus": 0x1000}
d = os.open(jail, os.O_PATH | os.O_DIRECTORY)
cases = [("beneath", "../jail/etc/hostname"), ("beneath", "/etc/hostname"), ("beneath", "etc/hostname"),
         ("in_root", "/etc/hostname"), ("in_root", "link"), ("no_symlinks", "link"),
         ("no_symlinks", "etc/hostname"), ("no_xdev", "/proc/self/status"), ("none", "etc/hostname"),
         ("beneath", "new"), ("bogus", "etc/hostname")]
for name, path in cases:
    for mode, wr in (("r", os.O_RDONLY), ("w", os.O_WRONLY | os.O_CREAT)):
        how = struct.pack("=QQQ", wr | os.O_CLOEXEC, 0o644 if mode == "w" else 0, flags[name])
        fd = libc.syscall(437, d, path.encode(), how, 24)
        if fd < 0:
            print(name, path, mode, "error", os.strerror(ctypes.get_errno()))
        else:
            print(name, path, mode, os.readlink(f"/proc/self/fd/{fd}").replace(jail, "JAIL"))
            os.close(fd)
for name, how in (("mode without O_CREAT", struct.pack("=QQQ", os.O_RDONLY, 0o644, 0)),
                  ("unknown flag", struct.pack("=QQQ", os.O_RDONLY | 1 << 40, 0, 0)),
                  ("beneath and in_root", struct.pack("=QQQ", os.O_RDONLY, 0, 0x18)),
                  ("a later version", struct.pack("=QQQQ", os.O_RDONLY, 0, 0, 1)),
                  ("a later version, zeroed", struct.pack("=QQQQ", os.O_RDONLY, 0, 0, 0))):
    fd = libc.syscall(437, d, b"etc/hostname", how, len(how))
    print(name, "error " + os.strerror(ctypes.get_errno()) if fd < 0 else "opened")
'''


def _jail(shared_dir: Path, name: str) -> Path:
    jail = shared_dir / name / "jail"
    (jail / "etc").mkdir(parents=True, exist_ok=True)
    for path in (jail.parent, jail, jail / "etc"):
        path.chmod(0o777)
    (jail / "etc" / "hostname").write_text("jailed\n")
    (jail / "etc" / "hostname").chmod(0o666)
    (jail / "new").unlink(missing_ok=True)
    link = jail / "link"
    if not link.is_symlink():
        link.symlink_to("/etc/hostname")
    return jail


def _policy(python: str, path: Path) -> Path:
    """Every call permitted, openat2 by its path (so it is checked and emulated)."""
    lines = [f"Policy: {os.path.realpath(python)}, Emulation: native"]
    lines += [f"\tnative-{name}: permit" for name in SYSCALLS if name != "openat2"]
    lines.append('\tnative-openat2: filename sub "/" then permit')
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o644)
    return path


def test_openat2_resolve_flags_are_kept(runner: Runner, shared_dir: Path) -> None:
    jail = _jail(shared_dir, f"resolve-{runner.name}")
    native = runner.native(runner.python, "-c", PROBE, str(jail)).stdout.decode().splitlines()
    (jail / "new").unlink(missing_ok=True)
    policy = _policy(runner.python, shared_dir / f"resolve-policy-{runner.name}")
    result = runner("-U", "-f", str(policy), "-a", runner.python, "-c", PROBE, str(jail))
    traced = result.stdout.decode().splitlines()
    print(f"{runner.name}:\n  natively {native}\n  under systrace {traced}")
    assert b"Traceback" not in result.stderr, result.stderr
    assert len(native) == len(traced) == 27, (native, traced, result.stderr)
    for before, after in zip(native, traced, strict=True):
        if before.startswith("in_root /etc/hostname") or before.startswith("in_root link"):
            # the check resolved it in the real root: another file than the one opened natively
            assert after.endswith("error Permission denied"), after
        else:
            assert after == before
    assert "beneath /etc/hostname r error Invalid cross-device link" in native
    assert "no_symlinks link r error Too many levels of symbolic links" in native
    assert "mode without O_CREAT error Invalid argument" in native and "a later version, zeroed opened" in native
