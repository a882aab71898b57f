"""Which policies a command can reach: its binary's, then those of every binary its
permitted exec rules can run, transitively. The kernel plan (policy/compile.py) needs to
agree only with these: a policy directory full of unrelated policies must not take calls
out of the fast path. Pure: the store lookup and the path resolution are passed in."""

from __future__ import annotations

from . import ast

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:  # (collections.abc imports collections: start-up time)
    from collections.abc import Callable

EXEC_CALLS = ("execve", "execveat")


def reachable(start: ast.Policy, everything: Callable[[], list[ast.Policy]], find: Callable[[str], ast.Policy | None],
              binary_of: Callable[[str], str]) -> list[ast.Policy]:
    """`find(path)` is the policy that applies to a binary; `binary_of(path)` the binary an
    exec of `path` runs (symlinks resolved, a #! script's interpreter). A permitted exec
    rule whose target is not a fixed name (no filename test, a pattern, `or`, `not`) can
    reach any binary: then every policy counts (`everything()`: asked for only then, the
    store parses each file only when asked)."""
    found = {id(start): start}
    queue = [start]
    while queue:
        policy = queue.pop()
        for rule in policy.rules:
            if rule.syscall not in EXEC_CALLS or rule.action.verdict != "permit":
                continue
            targets = exec_targets(rule.expr)
            if targets is None:
                return everything()
            for target in targets:
                reached = find(binary_of(target))
                if reached is not None and id(reached) not in found:
                    found[id(reached)] = reached
                    queue.append(reached)
    return list(found.values())


def exec_targets(expr: ast.Expr | None) -> set[str] | None:
    """The filenames an exec rule can permit, or None when it is not limited to fixed names."""
    if isinstance(expr, ast.Symbol):
        if expr.name == "filename" and expr.op == "eq" and expr.index in (None, 0) and "$" not in expr.value:
            return {expr.value}
        return None
    if isinstance(expr, ast.BinOp):
        left, right = exec_targets(expr.left), exec_targets(expr.right)
        if expr.op == "and":  # both must hold: either side's names bound it
            if left is None:
                return right
            return left if right is None else left & right
        if left is None or right is None:  # `or`: either side may permit
            return None
        return left | right
    return None
