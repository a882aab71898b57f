"""An O_TMPFILE open permitted by a rule on its directory is emulated like any open: the
file the kernel made is named "DIR/#INODE (deleted)", which the check that the open
landed on the checked path must accept (before: refused with EACCES, so glibc's and
Python's tmpfile() fell back or failed where natively they work)."""

from __future__ import annotations

import sys
from pathlib import Path

from conftest import run, systrace

PROGRAM = """
import os, sys
fd = os.open(sys.argv[1], os.O_TMPFILE | os.O_RDWR, 0o600)
os.write(fd, b"data")
os.lseek(fd, 0, 0)
print("tmpfile", os.read(fd, 4).decode(), os.fstat(fd).st_nlink)
try:
    os.open(sys.argv[2], os.O_TMPFILE | os.O_RDWR, 0o600)
except OSError as error:
    print("missing directory", error.errno)
"""


def test_an_unnamed_file_in_a_checked_directory_is_opened_as_natively(tmp_path: Path) -> None:
    directory, missing = tmp_path / "dir", tmp_path / "missing"
    directory.mkdir()
    command = [sys.executable, "-S", "-c", PROGRAM, str(directory), str(missing)]
    native = run(command)
    assert native.stdout == b"tmpfile data 0\nmissing directory 2\n", native
    policies = tmp_path / "policies"
    learned = systrace("-d", str(policies), "-A", *command)
    enforced = systrace("-d", str(policies), "-a", *command)
    assert learned.stdout == native.stdout, learned.stderr
    assert enforced.stdout == native.stdout, enforced.stderr
    assert b"Traceback" not in enforced.stderr and b"not the checked" not in enforced.stderr
