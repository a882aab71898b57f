"""A rule that can never match (a test of an argument the call does not have, which the
parser warns about) changes nothing the kernel decides: on the real kernel, lseek stays
in the filter with the rule in a reachable policy, and the rule does not apply."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import run, systrace

from systrace.policy.store import file_name

COUNT = "200"


def test_a_never_matching_lseek_rule_does_not_route_lseek(cbin, tmp_path: Path) -> None:
    binary = cbin("byname")
    policies = tmp_path / "policies"
    assert systrace("-d", str(policies), "-A", binary, "seek", COUNT).returncode == 0
    own = policies / file_name(binary)
    header, _, body = own.read_text().partition("\n")
    assert "\tnative-lseek: permit\n" in body
    # a reachable policy whose lseek rules start with one that never matches
    own.write_text(f'{header}\n\tnative-execve: filename eq "/usr/bin/true" then permit\n{body}')
    (policies / "true").write_text('Policy: /usr/bin/true, Emulation: native\n'
                                   '\tnative-lseek: fd eq "3" then deny[enoent]\n\tnative-lseek: permit\n')
    assert run([binary, "seek", COUNT]).stdout == f"seek 1: ok {COUNT}\n".encode()
    enforced = systrace("-d", str(policies), "-a", "--stats", binary, "seek", COUNT)
    assert enforced.stdout == f"seek 1: ok {COUNT}\n".encode(), enforced
    assert b"never matches" in enforced.stderr  # still warned
    routed = re.search(rb"routed by system call: (.*)", enforced.stderr)
    assert routed is not None, enforced.stderr
    assert b"lseek" not in routed.group(1), enforced.stderr  # decided in the kernel
    # the same rule on the loop's own policy: the loop is not denied either
    own.write_text(own.read_text().replace("\tnative-lseek: permit\n",
                                           '\tnative-lseek: fd eq "3" then deny[enoent]\n\tnative-lseek: permit\n'))
    enforced = systrace("-d", str(policies), "-a", "--stats", binary, "seek", COUNT)
    assert enforced.stdout == f"seek 1: ok {COUNT}\n".encode(), enforced
    assert b"lseek" not in re.search(rb"routed by system call: (.*)", enforced.stderr).group(1)  # type: ignore[union-attr]
