"""An identity switch that fails half-way (kernel/emulate_identity.py) leaves nothing of
the tracee's on systrace's thread (found by the red team): before, apply() raised after
setgroups and setresgid had taken effect, and run() never undid them (its try starts
after apply): the next emulation compared the tracee's identity with systrace's cached
one and made no switch, with the last tracee's gid, groups and umask."""

from __future__ import annotations

import json
import os

import pytest

from systrace.kernel import emulate_identity
from systrace.kernel.emulate_identity import EmulationError, Identity


@pytest.mark.skipif(os.geteuid() != 0, reason="switching identities needs root")
def test_a_switch_that_fails_half_way_is_undone() -> None:
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # in a child: its credentials are its own
        os.close(read)
        real_sys = emulate_identity._sys

        def failing(number: int, *args: object) -> None:
            if number == emulate_identity.SYS_setresuid and args[1] == 4321:
                raise OSError(11, "refused for the test")
            real_sys(number, *args)

        emulate_identity._sys = failing
        before = (os.getegid(), sorted(os.getgroups()), os.umask(0o022))
        os.umask(before[2])
        identity = Identity(4321, 4321, 4321, 4321, (77,), 0, 0o077)
        try:
            identity.run(lambda: None, creating=True)
            outcome = "ran"
        except EmulationError as error:
            outcome = f"refused {error.errno}"
        umask = os.umask(0)
        after = (os.getegid(), sorted(os.getgroups()), umask)
        os.write(write, json.dumps([outcome, before, after]).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as reader:
        outcome, before, after = json.loads(reader.read())
    os.waitpid(child, 0)
    assert outcome == "refused 13"
    assert after == before  # not (4321, [77], 0o077)
