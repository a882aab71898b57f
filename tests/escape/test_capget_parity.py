"""capget is made by systrace for the tracee (kernel/capget_for.py): its answers, the
version written back and the sets copied are the kernel's, for every header form."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Runner

CASES = r'''
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
for version, pid, with_data in ((0x20080522, 0, True), (0x19980330, 0, True), (0x20071026, 0, True),
                                (0x12345678, 0, True), (0x20080522, 0, False), (0x12345678, 0, False),
                                (0x20080522, -5, True), (0x20080522, 999999, True), (0x20080522, 1, True)):
    header = (ctypes.c_uint32 * 2)(version, pid & 0xffffffff)
    data = (ctypes.c_uint32 * 6)(*([0xAAAAAAAA] * 6))
    result = libc.syscall(125, header, data if with_data else None)
    print(result, ctypes.get_errno() if result < 0 else 0, hex(header[0]), [hex(word) for word in data])
print("unreadable", libc.syscall(125, ctypes.c_void_p(8), None), ctypes.get_errno())
'''


@pytest.mark.parametrize("who", ["root", "user"])
def test_capget_answers_as_the_kernel(request, shared_dir: Path, who: str) -> None:
    runner: Runner = request.getfixturevalue(f"{who}_runner")
    script = shared_dir / "capget_cases.py"
    script.write_text(CASES)
    script.chmod(0o644)
    native = runner.native(runner.python, str(script))
    under = runner("--permit-all", runner.python, str(script))
    assert native.returncode == 0 and native.stdout.count(b"\n") == 10, native.stderr
    assert (under.returncode, under.stdout) == (0, native.stdout), under.stderr
