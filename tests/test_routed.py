"""Route fewer calls (issue 16 item 3): calls that act only on the process or on
descriptors it holds are decided in the kernel whenever every policy the command can
reach permits them, which the learned policies' base makes them do; the supervisor
would decide them the same way; only calls that reach outside are routed."""

from __future__ import annotations

import errno
from pathlib import Path

from conftest import base_env, run, systrace
from test_plan_agreement import supervisor_verdict
from test_reach import _routed

from systrace.baseline import apply_baseline
from systrace.decide.base import BASE_COMMENT, base_rules
from systrace.facts import HELD, OUTSIDE, ROWS, SELF
from systrace.facts.args import IntArg
from systrace.kernel import abi, bpf
from systrace.kernel.filter import compile_plan
from systrace.kernel.syscalls_x86_64 import SYSCALLS
from systrace.policy.compile import kernel_plan
from systrace.policy.printer import rule_text
from systrace.wiring import make_parser

F_GETFL, F_SETOWN = 3, 8
CLEAN = base_env(PATH="/usr/bin:/bin")


def _learned_like(*bodies: list[str]):
    """Policies as learning writes them: the base first, then what each run used."""
    base = "".join(f"\t{rule_text(rule)}\n" for rule in base_rules())
    text = "".join(f"Policy: /bin/p{i}, Emulation: native\n\t{BASE_COMMENT.text}\n{base}" +
                   "".join(f"\t{line}\n" for line in body) for i, body in enumerate(bodies))
    return make_parser().parse_file(text).policies


def _in_kernel(program, name: str, args: tuple[int, ...] = (0,) * 6) -> int:
    return bpf.run(program, bpf.seccomp_data(SYSCALLS[name], args=args))


def test_calls_on_the_process_and_its_descriptors_are_decided_in_the_kernel_as_the_policies_would() -> None:
    policies = _learned_like(['native-fsread: filename eq "/etc/hostname" then permit'],
                             ['native-fcntl: fd eq "3" and cmd eq "F_SETOWN" then permit',
                              'native-mprotect: prot eq "PROT_READ|PROT_EXEC" then permit'])
    plan = kernel_plan(policies)
    apply_baseline(plan)
    program = compile_plan(plan)
    checked = 0
    for name, row in ROWS.items():
        if row.reach not in (SELF, HELD) or row.base is not None or row.route != "routed" or row.invalidates:
            continue
        assert _in_kernel(program, name) == abi.RET_ALLOW, name
        if all(isinstance(spec, IntArg) for spec in row.args):  # the supervisor can decide it without a tracee
            for policy in policies:
                assert supervisor_verdict(policy, name, (0,) * 6) == abi.RET_ALLOW, (name, policy.name)
            checked += 1
    assert checked > 100
    # a base rule with a filter compiles to the filter's argument tests: fcntl is decided in
    # the kernel except for the commands that reach another process (F_SETOWN)
    getfl, setown = (3, F_GETFL, 0, 0, 0, 0), (3, F_SETOWN, 0, 0, 0, 0)
    assert _in_kernel(program, "fcntl", getfl) == abi.RET_ALLOW
    assert _in_kernel(program, "fcntl", setown) == abi.RET_USER_NOTIF
    assert supervisor_verdict(policies[0], "fcntl", setown) == abi.ret_errno(errno.EPERM)
    assert supervisor_verdict(policies[1], "fcntl", setown) == abi.RET_ALLOW
    # and a path call is the supervisor's: its policies disagree
    assert _in_kernel(program, "openat") == abi.RET_USER_NOTIF


def test_under_learned_policies_only_calls_reaching_outside_are_routed(tmp_path: Path) -> None:
    """A pipeline of three binaries, learned then enforced: what reaches the supervisor
    is what names something outside the process (paths, execs, other processes)."""
    policies = str(tmp_path / "policies")
    script = "cat /etc/hostname /etc/passwd | wc -c; ls / >/dev/null"
    native = run(["sh", "-c", script], env=CLEAN)
    assert systrace("-d", policies, "-A", "sh", "-c", script, env=CLEAN).returncode == 0
    enforced = systrace("-d", policies, "-a", "--stats", "sh", "-c", script, env=CLEAN)
    assert (enforced.returncode, enforced.stdout) == (0, native.stdout), enforced
    routed = _routed(enforced.stderr)
    assert routed and sum(routed.values()) < 200, routed
    for name in routed:
        assert ROWS[name].reach == OUTSIDE, (name, routed)
    assert not {"read", "write", "close", "fstat", "mmap", "mprotect", "getdents64", "lseek"} & set(routed)


def _learning_program(*texts: str):
    from test_kernel_plan import policies

    from systrace.wiring import learning_plan

    plan = learning_plan(policies(*texts) if texts else [])
    apply_baseline(plan)
    return plan, compile_plan(plan)


def test_while_learning_what_every_policy_and_the_base_permit_is_decided_in_the_kernel() -> None:
    """-A (issue 16 item 3): a call is learned only where no rule permits it, and every
    policy learning creates starts from the base; so what the store's policies and the
    base all permit alike stays in the kernel, and nothing else does."""
    from systrace.decide.generalise import NOTED_CALLS

    _, fresh = _learning_program()  # an empty policy directory: the base alone
    for name, row in ROWS.items():
        if row.reach in (SELF, HELD) and row.base is None and row.route == "routed" and not row.invalidates:
            assert _in_kernel(fresh, name) == abi.RET_ALLOW, name
    assert _in_kernel(fresh, "fcntl", (3, F_GETFL, 0, 0, 0, 0)) == abi.RET_ALLOW
    assert _in_kernel(fresh, "fcntl", (3, F_SETOWN, 0, 0, 0, 0)) == abi.RET_USER_NOTIF  # not the base's
    for name in ("openat", "newfstatat", "execve", "sync", "unlink", "socket", "connect"):
        assert _in_kernel(fresh, name) == abi.RET_USER_NOTIF, name
    base = "".join(f"{rule_text(rule).removeprefix('native-')}\n" for rule in base_rules())
    noted = "".join(f"{name}: permit\n" for name in sorted(NOTED_CALLS) if name in SYSCALLS)
    _, program = _learning_program(base + "sync: permit\n" + noted, base + "sync: permit\nread: deny[eperm]\n" + noted,
                                   "brk: permit\nsync: permit\n" + noted)
    assert _in_kernel(program, "brk") == abi.RET_ALLOW  # every policy and the base
    assert _in_kernel(program, "sync") == abi.RET_USER_NOTIF  # not the base's: a new policy learns it
    assert _in_kernel(program, "read") == abi.RET_USER_NOTIF  # one denies it
    assert _in_kernel(program, "write") == abi.RET_USER_NOTIF  # one has no rule: learned there
    for name in NOTED_CALLS:  # what learning notes as made up always reaches it
        if name in SYSCALLS:
            assert _in_kernel(program, name) == abi.RET_USER_NOTIF, name


def test_learning_routes_only_what_it_may_learn_and_learns_what_routing_everything_did(tmp_path: Path) -> None:
    """A fresh -A routes no call on the process or its descriptors; what it learns replays
    under -a; a second -A learns nothing and routes what -a routes."""
    policies = tmp_path / "policies"
    script = "cat /etc/hostname /etc/passwd | wc -c; ls / >/dev/null"
    native = run(["sh", "-c", script], env=CLEAN)
    fresh = systrace("-d", str(policies), "-A", "--stats", "sh", "-c", script, env=CLEAN)
    assert (fresh.returncode, fresh.stdout) == (0, native.stdout), fresh
    routed = _routed(fresh.stderr)
    assert routed and not {"read", "write", "close", "fstat", "mmap", "mprotect", "getdents64", "lseek", "brk"} & set(routed)
    learned = {path.name: path.read_text() for path in policies.iterdir() if not path.name.startswith(".")}
    assert {"usr_bin_cat", "usr_bin_wc", "usr_bin_ls"} <= set(learned), sorted(learned)
    for text in learned.values():
        assert BASE_COMMENT.text in text and "native-fsread: filename eq " in text
    enforced = systrace("-d", str(policies), "-a", "--stats", "sh", "-c", script, env=CLEAN)
    assert (enforced.returncode, enforced.stdout) == (0, native.stdout), enforced
    again = systrace("-d", str(policies), "-A", "--stats", "sh", "-c", script, env=CLEAN)
    assert (again.returncode, again.stdout) == (0, native.stdout), again
    assert {path.name: path.read_text() for path in policies.iterdir() if not path.name.startswith(".")} == learned
    assert sum(_routed(again.stderr).values()) <= sum(_routed(enforced.stderr).values()) + 5
