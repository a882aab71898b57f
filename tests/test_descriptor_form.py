"""glibc's fstat, newfstatat(fd, "", AT_EMPTY_PATH), and statx in that form: never
continued (the kernel would read the "" again), carried out by systrace on the descriptor
(kernel/emulate_fstat.py), by name when the policy permits every descriptor
(Chain.by_descriptor), through the stages otherwise. In process, on this process's own
descriptors and memory (the fake listener's calls come from this process)."""

from __future__ import annotations

import ctypes
import errno
import os
import struct
from pathlib import Path

import pytest
from test_pipeline_in_process import OPEN, Parts

from systrace.decide import PASSES, PERMIT
from systrace.decide.modes import Enforce
from systrace.decide.uffd import UffdGuard
from systrace.kernel.emulate_fstat import AT_EMPTY_PATH, STATX, descriptor_form, stat_descriptor
from systrace.kernel.syscalls_x86_64 import SYSCALLS

NEWFSTATAT = SYSCALLS["newfstatat"]
BASE = '\tnative-newfstatat: fd match "*" then permit\n\tnative-statx: fd match "*" then permit\n'


@pytest.fixture(autouse=True)
def closed_afterwards():
    yield
    while OPEN:
        OPEN.pop().close()


def enforcing(tmp_path: Path, rules: str) -> Parts:
    return Parts(lambda p: [UffdGuard(p.store), p.policy_decider(require_policy=True), Enforce()], tmp_path, rules)


class Memory:
    """A path string and a result buffer in this process (the 'tracee')."""

    def __init__(self, path: bytes):
        self.path = ctypes.create_string_buffer(path, 4096)
        self.out = ctypes.create_string_buffer(256)

    def args(self, fd: int, flags: int = AT_EMPTY_PATH) -> tuple[int, ...]:
        return (fd, ctypes.addressof(self.path), ctypes.addressof(self.out), flags, 0, 0)

    def ino(self) -> int:  # struct stat: st_dev, st_ino first
        return struct.unpack_from("=QQ", self.out.raw)[1]


def fstat_call(parts: Parts, memory: Memory, fd: int) -> tuple[str, int]:
    notif = parts.listener.push(NEWFSTATAT, args=memory.args(fd))
    (answer,) = parts.serve()
    assert answer[1] == notif.id
    return answer[0], answer[2]


def test_the_descriptor_form_is_stat_made_by_systrace_on_the_descriptor(tmp_path: Path) -> None:
    target = tmp_path / "held"
    target.write_text("x")
    fd = os.open(target, os.O_RDONLY)
    try:
        parts = enforcing(tmp_path, BASE)
        memory = Memory(b"")
        answers = [fstat_call(parts, memory, fd) for _ in range(3)]
        assert answers == [("succeed", 0)] * 3  # never "allow" (CONTINUE)
        assert memory.ino() == os.fstat(fd).st_ino
        # the first made the process known, through the stages; the others by name
        assert parts.supervisor.carried.get("emulate-fstat") == 2
        assert parts.supervisor.carried.get("emulate-path") == 1
    finally:
        os.close(fd)


def test_a_path_instead_of_the_empty_string_is_checked_as_a_path(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s")
    parts = enforcing(tmp_path, BASE)
    memory = Memory(b"")
    assert fstat_call(parts, memory, 0)[0] == "succeed"  # known now: the next is decided by name
    memory.path.value = os.fsencode(secret)
    assert fstat_call(parts, memory, 0) == ("fail", errno.EACCES)  # no rule permits the path: enforce's denial
    assert memory.ino() != secret.stat().st_ino


def test_a_descriptor_it_does_not_hold_is_ebadf_and_a_bad_buffer_efault(tmp_path: Path) -> None:
    parts = enforcing(tmp_path, BASE)
    memory = Memory(b"")
    assert fstat_call(parts, memory, 0)[0] == "succeed"
    assert fstat_call(parts, memory, 999) == ("fail", errno.EBADF)
    notif = parts.listener.push(NEWFSTATAT, args=(0, ctypes.addressof(memory.path), 8, AT_EMPTY_PATH, 0, 0))
    assert parts.serve() == [("fail", notif.id, errno.EFAULT)]


def test_a_rule_on_what_the_descriptor_names_goes_through_the_stages(tmp_path: Path) -> None:
    held = tmp_path / "held"
    held.write_text("x")
    fd = os.open(held, os.O_RDONLY)
    try:
        parts = enforcing(tmp_path, f'\tnative-newfstatat: fdname eq "{held}" then permit\n')
        memory = Memory(b"")
        assert [fstat_call(parts, memory, fd) for _ in range(2)] == [("succeed", 0)] * 2  # emulated, not continued
        assert fstat_call(parts, memory, 0) == ("fail", errno.EACCES)  # /dev/null or a pipe: not that file
        assert "emulate-fstat" not in parts.supervisor.carried
        assert parts.supervisor.carried.get("emulate-path") == 2
    finally:
        os.close(fd)


@pytest.mark.parametrize(("rules", "expected"), [
    (BASE, PERMIT),
    ('\tnative-newfstatat: filename eq "/x" then permit\n' + BASE, PERMIT),  # cannot match the form: passed over
    ('\tnative-newfstatat: filename eq "/x" and fd eq "3" then deny\n' + BASE, PERMIT),
    ('\tnative-newfstatat: fdname eq "/x" then permit\n' + BASE, None),  # depends on the descriptor
    ('\tnative-newfstatat: not filename eq "/x" then permit\n' + BASE, None),  # true for the form: not by name
    ('\tnative-newfstatat: fd match "*" then permit[inherit]\n', None),  # a flag
    ("\tnative-newfstatat: deny[enoent]\n", "deny"),
    ("\tnative-getpid: permit\n", PASSES),
])
def test_what_the_policy_answers_for_every_descriptor(tmp_path: Path, rules: str, expected: object) -> None:
    parts = enforcing(tmp_path, rules)
    decider = parts.session.chain.deciders[1]
    from test_pipeline_in_process import SELF_EXE

    answer = decider.by_descriptor(SELF_EXE, NEWFSTATAT)
    if expected in (None, PASSES):
        assert answer is expected
    else:
        assert answer.verdict == expected


def test_the_forms_recognised() -> None:
    assert descriptor_form(NEWFSTATAT, (3, 0x1000, 0x2000, AT_EMPTY_PATH, 0, 0)) == (3, 0x1000, AT_EMPTY_PATH, 0, 0x2000)
    assert descriptor_form(NEWFSTATAT, (3, 0x1000, 0x2000, 0x100, 0, 0)) is None  # no AT_EMPTY_PATH: a path call
    assert descriptor_form(NEWFSTATAT, (3, 0x1000, 0x2000, AT_EMPTY_PATH | 0x1, 0, 0)) is None  # EINVAL: the stages
    assert descriptor_form(NEWFSTATAT, (3, 0, 0x2000, AT_EMPTY_PATH, 0, 0)) is None  # NULL: the stages
    assert descriptor_form(STATX, (0xFFFFFF9C, 0x1000, AT_EMPTY_PATH, 0x7FF, 0x2000, 0)) == (-100, 0x1000,
                                                                                               AT_EMPTY_PATH, 0x7FF,
                                                                                               0x2000)
    assert descriptor_form(STATX, (0xFFFFFFFE, 0x1000, AT_EMPTY_PATH, 0x7FF, 0x2000, 0)) is None  # -2: EBADF natively


def test_stat_descriptor_gives_what_fstat_gives(tmp_path: Path) -> None:
    read, write = os.pipe()
    target = tmp_path / "gone"
    target.write_text("x")
    deleted = os.open(target, os.O_RDONLY)
    target.unlink()
    opath = os.open(tmp_path, os.O_PATH)
    try:
        for fd in (read, deleted, opath):
            got = stat_descriptor(os.getpid(), NEWFSTATAT, fd, AT_EMPTY_PATH, 0)
            native = os.fstat(fd)
            assert struct.unpack_from("=QQ", got) == (native.st_dev, native.st_ino)
        cwd = stat_descriptor(os.getpid(), NEWFSTATAT, -100, AT_EMPTY_PATH, 0)
        assert struct.unpack_from("=QQ", cwd)[1] == os.stat(".").st_ino
        with pytest.raises(OSError) as bad:
            stat_descriptor(os.getpid(), STATX, 9999, AT_EMPTY_PATH, 0x7FF)
        assert bad.value.errno == errno.EBADF
    finally:
        for fd in (read, write, deleted, opath):
            os.close(fd)
