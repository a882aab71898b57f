"""The kernel plan follows the policies a command can reach through its exec rules."""

from __future__ import annotations

import re
from pathlib import Path

from conftest import systrace

from systrace.policy.reach import exec_targets, reachable
from systrace.wiring import make_parser


def _policies(text: str):
    return {p.name: p for p in make_parser().parse_file(text).policies}


def _expr(rule: str):
    return make_parser().parse_file(f"Policy: /p, Emulation: native\n\tnative-execve: {rule}\n").policies[0].rules[0].expr


def test_exec_targets_are_the_fixed_names_a_rule_can_permit() -> None:
    assert exec_targets(_expr('filename eq "/bin/a" then permit')) == {"/bin/a"}
    assert exec_targets(_expr('filename eq "/bin/a" and argv eq "a -x" then permit')) == {"/bin/a"}
    assert exec_targets(_expr('filename eq "/bin/a" or filename eq "/bin/b" then permit')) == {"/bin/a", "/bin/b"}
    # anything that is not a fixed name may reach any binary
    assert exec_targets(_expr("permit")) is None
    assert exec_targets(_expr('filename match "/bin/*" then permit')) is None
    assert exec_targets(_expr('argv eq "a" then permit')) is None
    assert exec_targets(_expr('filename eq "/bin/a" or argv eq "b" then permit')) is None
    assert exec_targets(_expr('filename neq "/bin/a" then permit')) is None
    assert exec_targets(_expr('filename eq "$HOME/a" then permit')) is None


TREE = """Policy: /bin/start, Emulation: native
\tnative-execve: filename eq "/bin/mid" then permit
\tnative-execve: filename eq "/bin/denied" then deny
Policy: /bin/mid, Emulation: native
\tnative-execve: filename eq "/bin/leaf" then permit
Policy: /bin/leaf, Emulation: native
\tnative-getpid: permit
Policy: /bin/denied, Emulation: native
Policy: /bin/unrelated, Emulation: native
"""


def test_reachable_follows_permitted_execs_transitively() -> None:
    policies = _policies(TREE)
    found = reachable(policies["/bin/start"], lambda: list(policies.values()), policies.get, lambda path: path)
    assert sorted(p.name for p in found) == ["/bin/leaf", "/bin/mid", "/bin/start"]


def test_an_open_exec_rule_reaches_every_policy() -> None:
    policies = _policies(TREE + "Policy: /bin/open, Emulation: native\n\tnative-execve: permit\n")
    found = reachable(policies["/bin/open"], lambda: list(policies.values()), policies.get, lambda path: path)
    assert len(found) == len(policies)


def _routed(stderr: bytes) -> dict[str, int]:
    line = re.search(rb"routed by system call: (.*)", stderr)
    return {} if line is None else {name: int(n) for name, n in (i.split(" ") for i in line.group(1).decode().split(", "))}


def test_unrelated_policies_do_not_route_calls(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    learned = systrace("-d", str(policies), "-A", "cat", "/etc/hostname")
    assert learned.returncode == 0, learned.stderr
    alone = systrace("-d", str(policies), "-a", "--stats", "-e", "cat", "/etc/hostname")
    assert alone.returncode == 0, alone.stderr
    # a policy for another binary that permits nothing disagrees with cat's on every call
    (policies / "usr_bin_unrelated").write_text("Policy: /usr/bin/unrelated, Emulation: native\n")
    (policies / "usr_bin_unrelated").chmod(0o600)
    crowded = systrace("-d", str(policies), "-a", "--stats", "-e", "cat", "/etc/hostname")
    assert crowded.returncode == 0, crowded.stderr
    assert crowded.stdout == alone.stdout
    assert sum(_routed(crowded.stderr).values()) == sum(_routed(alone.stderr).values())
