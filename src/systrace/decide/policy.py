"""Deciding by the binary's policy: rules for the real syscall name first, then rules for
its alias; the first rule that matches wins. No match passes the call on to the mode's
fallback (learn, enforce, ask)."""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat

from ..call import syscall_name
from ..facts import HELD, ROWS, SELF, STRINGS_CARRIED_OUT, STRINGS_READ_AGAIN
from ..kernel import procfs
from ..kernel.emulate_path import EMULATED as EMULATED_PATH_CALLS
from ..kernel.emulate_view import other_mount_view
from ..kernel.handed_procfs import OWN_ENTRY
from ..policy import ast, errnos
from ..policy.compiled import CompiledPolicy
from ..policy.store import StoredPolicy
from ..processes import PerProcess
from ..record import replace
from ..translate.translator import Translated
from . import (
    DENY,
    EMULATE_HANDLE,
    EMULATE_MOUNT,
    EMULATE_OPEN,
    EMULATE_PATH,
    EMULATE_SEND,
    EMULATE_SOCKET,
    EMULATE_STRING,
    KILL,
    PASSES,
    PERMIT,
    Decision,
)

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from ..call import Call
    from ..policy.store import Store

EXEC_NAMES = ("execve", "execveat")
OPEN_FAMILY = ("open", "openat", "openat2", "creat")
SEND_CALLS = ("sendto", "sendmsg", "sendmmsg")
SYMLINKS = ("symlink", "symlinkat")


# Opened descriptors that escape the paths a policy names (a mount, a file handle, another
# process's descriptor; bpf: a tracing program reads the memory of any process it fires
# in, systrace's too, past the Landlock domain): refused unless a rule of the binary's
# policy names the call.
REFUSED_UNLESS_NAMED = frozenset(("open_tree", "open_tree_attr", "open_by_handle_at", "name_to_handle_at", "fsopen", "fsmount",
                        "move_mount", "fspick", "mount_setattr", "pidfd_getfd", "bpf"))

# Calls decided on memory that the kernel reads again once the call is continued (a second
# thread may change it meanwhile) and that systrace does not carry out itself: refused
# when the permitting rule looks at one of those arguments (SECURITY.md, "Path calls"):
# fsopen's file system type, fsconfig's key and value (a string, or a path as filename)
RACED_IF_CONTINUED: dict[str, tuple[str, ...]] = {"fsopen": ("fstype",), "fsconfig": ("key", "value", "filename")}

def effect_of(call: Call, translated: Translated, rule: ast.Rule) -> str:
    """How a permit by `rule` is carried out. A rule that decides on the tracee's memory
    (a path, an address) is carried out by systrace on what was checked, so that nothing
    the tracee changes afterwards counts: opens (not O_PATH, which ADDFD cannot pass:
    SECURITY.md), connect/bind, sends with a destination, and every path call of
    kernel/emulate_path.py."""
    if call.name in OPEN_FAMILY:
        if _depends_on(rule, "filename") and not translated.open_flags & os.O_PATH:
            return EMULATE_OPEN
        return ""
    if call.name in ("connect", "bind"):
        return EMULATE_SOCKET if translated.sockaddr_raw is not None and _depends_on(rule, "sockaddr") else ""
    if call.name in SEND_CALLS:  # without a destination (a connected socket): continued
        return EMULATE_SEND if translated.send_names and _depends_on(rule, "sockaddr") else ""
    if call.name == "open_by_handle_at":
        return EMULATE_HANDLE if _depends_on(rule, "handle") else ""
    if call.name in EMULATED_PATH_CALLS and translated.fd_form:
        # the descriptor form. A NULL path (utimensat(fd, NULL)) is a register: continued.
        # A "" read from memory the kernel reads again once continued, and a second thread
        # may have put a path there: carried out on the descriptor, unless the rule permits
        # whatever the call names (no test)
        return EMULATE_PATH if translated.fd_form_read and rule.expr is not None else ""
    if call.name in EMULATED_PATH_CALLS and (_depends_on(rule, "filename") or call.name in SYMLINKS
                                             and _depends_on(rule, "target")):
        return EMULATE_PATH  # (a symlink's target: the copy the check read, never read again)
    if call.name in MOUNT_CALLS and any(_depends_on(rule, name) for name in MOUNT_STRINGS):
        return EMULATE_MOUNT  # a helper makes it on what was checked, or it is refused
    if call.name == "bpf" and call.args[0] & 0xFFFFFFFF in BPF_OBJ_CMDS and _depends_on(rule, "filename"):
        return EMULATE_MOUNT  # pinned or got by the same helper on the path checked
    if call.name == "fsopen" and _depends_on(rule, "fstype") or call.name == "fsconfig" \
            and call.args[1] & 0xFFFFFFFF in FSCONFIG_STRINGS and (_depends_on(rule, "key") or _depends_on(rule, "value")):
        return EMULATE_MOUNT  # made by the same helper with the strings checked (the rest: refused, RACED_IF_CONTINUED)
    if call.name in STRINGS_CARRIED_OUT and _depends_on_string(call.name, rule):
        return EMULATE_STRING
    return ""


def _depends_on_string(name: str, rule: ast.Rule) -> bool:
    """Does the rule look at a string of `name`'s that the kernel reads again
    (facts/__init__.py)?"""
    return any(_depends_on(rule, argument) for argument in STRINGS_READ_AGAIN.get(name, ()))


# The calls that need CAP_SYS_ADMIN or CAP_SYS_PACCT (quotactl: for most commands) and
# read paths and strings from the caller's memory (kernel/emulate_mount.py carries the
# first six, quotactl and mount_setattr out;
# uselib and the rest of the new mount API are refused when a rule decides on what they
# read: effects.py), and
# the arguments of theirs read from memory that a rule may decide on
BPF_OBJ_CMDS = (6, 7)  # BPF_OBJ_PIN, BPF_OBJ_GET
FSCONFIG_STRINGS = (0, 1)  # FSCONFIG_SET_FLAG, FSCONFIG_SET_STRING: a key and a string only
MOUNT_CALLS = frozenset(("mount", "umount2", "pivot_root", "swapon", "swapoff", "acct", "uselib", "open_tree",
                         "open_tree_attr", "move_mount", "fspick", "mount_setattr", "quotactl"))
MOUNT_STRINGS = ("filename", "source", "fstype", "fd", "fdname")  # (a descriptor form's "" may be rewritten)
# the calls effect_of may carry out (by the rule that permits, or by one before it)
CARRIED_OUT_CALLS = frozenset((*OPEN_FAMILY, "connect", "bind", *SEND_CALLS, "open_by_handle_at", *EMULATED_PATH_CALLS,
                               *MOUNT_CALLS, *STRINGS_CARRIED_OUT, "bpf", "fsopen", "fsconfig"))


_DESCRIPTOR_ARGS = ("fd", "fdname")  # all a stat call in its descriptor form is translated to


def _never_descriptor(expr: ast.Expr | None) -> bool:
    """Is `expr` false for every call in the descriptor form (it tests, without `not`,
    only arguments that form does not have: a missing argument is false)?"""
    if isinstance(expr, ast.Symbol):
        return expr.name not in _DESCRIPTOR_ARGS
    if isinstance(expr, ast.BinOp):
        if expr.op == "and":
            return _never_descriptor(expr.left) or _never_descriptor(expr.right)
        return _never_descriptor(expr.left) and _never_descriptor(expr.right)
    return False


def _every_descriptor(expr: ast.Expr | None) -> bool:
    """Is `expr` true for every call in the descriptor form (no test, `fd match "*"`)?"""
    if expr is None or isinstance(expr, ast.TrueExpr):
        return True
    if isinstance(expr, ast.Symbol):
        return expr.name == "fd" and not expr.index and expr.op == "match" and expr.value == "*"
    if isinstance(expr, ast.BinOp):
        if expr.op == "and":
            return _every_descriptor(expr.left) and _every_descriptor(expr.right)
        return _every_descriptor(expr.left) or _every_descriptor(expr.right)
    return False


def _indices(expr: ast.Expr | None, name: str) -> set[int]:
    """The indices ([n], none meaning 0) at which `expr` looks at the argument `name`."""
    if isinstance(expr, ast.Symbol):
        return {expr.index or 0} if expr.name == name else set()
    if isinstance(expr, ast.Not):
        return _indices(expr.expr, name)
    if isinstance(expr, ast.BinOp):
        return _indices(expr.left, name) | _indices(expr.right, name)
    return set()


_DEPENDS: dict[tuple[int, str], tuple[ast.Rule, bool]] = {}  # (id(rule), name) -> (the rule, kept alive; answer)


def _depends_on(rule: ast.Rule, name: str) -> bool:
    """Does the rule's decision depend on the argument `name` (filename, sockaddr)? Asked
    for every permitted call: answered once per rule (rules are immutable)."""
    cached = _DEPENDS.get((id(rule), name))
    if cached is not None and cached[0] is rule:
        return cached[1]
    answer = _walk_depends(rule, name)
    if len(_DEPENDS) >= 65536:
        _DEPENDS.clear()
    _DEPENDS[(id(rule), name)] = (rule, answer)
    return answer


def _walk_depends(rule: ast.Rule, name: str) -> bool:
    def walk(expr: ast.Expr | None) -> bool:
        if isinstance(expr, ast.Symbol):
            return expr.name == name
        if isinstance(expr, ast.Not):
            return walk(expr.expr)
        if isinstance(expr, ast.BinOp):
            return walk(expr.left) or walk(expr.right)
        return False

    return walk(rule.expr)


class ExecExpectation:
    """What a process may run after the execve calls systrace permitted: the target of one
    of them, or still `before` (its binary then) when they failed. `pending` maps each
    thread with an exec in flight to its target; the next call of that thread (an exec
    too: a PATH search) with `before` still running means its exec failed, and it leaves
    nothing behind: the native error, and no kill."""

    __slots__ = ("before", "pending")

    def __init__(self, before: str) -> None:
        self.before = before
        self.pending: dict[int, str] = {}


class PolicyDecider:
    reads_arguments_of = None  # every call: a rule may test any argument (translate/stage.py)

    def __init__(self, store: Store, expand, inherit: bool = False,
                 require_policy: bool = False, create_missing: bool = False):
        self.store = store
        self.expand = expand
        self.inherit = inherit  # -i: after execve a process keeps its parent's policy
        self.require_policy = require_policy  # -a: a binary without a policy may not run
        self.create_missing = create_missing  # -A: start an empty policy for a new binary
        # Per process, and only while it lives (processes.PerProcess: a recycled tgid finds nothing)
        self.inherited = PerProcess()  # tgid -> the StoredPolicy kept across exec
        self.detached = PerProcess()
        self.expected_exe = PerProcess()  # tgid -> ExecExpectation: the binaries its permitted execve checked
        self.detaching = PerProcess()  # tgid -> binary of its permit[detach] exec, until it runs
        # what keeps_state_for tests, for every call decided by name: `in` on each, no call
        self._held = (self.detached.held, self.expected_exe.held, self.inherited.held, self.detaching.held)
        self._compiled: dict[int, CompiledPolicy] = {}
        self._decisions: dict[object, Decision] = {}  # by action
        self._carried: dict[tuple[int, str], tuple[Decision, Decision]] = {}  # (id(decision), effect) -> it, carried
        self._mountns: dict[int, tuple[int, bool]] = {}  # id(policy) -> (version, permits other mount views)
        # (id(policy), its lines, call, alias, id(rule)) -> (the rule, the policy, the rules with a
        # condition before it): _earlier_effect
        self._earlier: dict[tuple, tuple[ast.Rule, ast.Policy, tuple[ast.Rule, ...]]] = {}
        # the rule a repeated path call matched (first_match), by the identity of its
        # translation's argument list, which the path cache keeps for that exact call
        self._matched: dict[int, tuple[list[tuple[str, str]], CompiledPolicy, int, int, int, ast.Rule | None]] = {}

    def by_name(self, exe: str, nr: int) -> Decision | str | None:
        """What `decide` answers for every call `nr` of `exe`, whatever its arguments, in a
        process this decider keeps no state for (`keeps_state_for`): only for calls on the
        process itself or on descriptors it holds (facts `reach`), which no check of
        decide's looks at (no path, address or exec, no alias), when the policy's first
        rule for the call is a plain one (no test, no user or group, no flag); PASSES when
        no rule names it. None: it depends on the call."""
        name = syscall_name(nr)
        row = ROWS.get(name)
        if row is None or row.reach not in (SELF, HELD) or row.alias is not None or row.emulated \
                or name in EXEC_NAMES or name in REFUSED_UNLESS_NAMED:
            return None
        stored = self.store.find(exe)
        if stored is None:
            return None if self.require_policy else PASSES  # -a: killed (logged)
        if stored.broken is not None:
            return None  # (decide denies each call, logged)
        rules = stored.policy.rules_for(name)
        if not rules:
            return PASSES
        rule = rules[0]
        action = rule.action
        if rule.expr is not None or action.predicate is not None or action.flag is not None \
                or action.elevate is not None or action.verdict == "ask":
            return None
        return self.decision_of_action(action)

    def by_descriptor(self, exe: str, nr: int) -> Decision | str | None:
        """What `decide` answers for every call `nr` (newfstatat, statx) of `exe` in its
        descriptor form ("" with AT_EMPTY_PATH: arguments fd and fdname only, no alias),
        in a process this decider keeps no state for, as by_name: the first rule that can
        match that form must match all of it (`fd match "*"`, the base's) and be plain;
        PASSES when none can. None: it depends on the call."""
        stored = self.store.find(exe)
        if stored is None:
            return None if self.require_policy else PASSES
        if stored.broken is not None:
            return None
        for rule in stored.policy.rules_for(syscall_name(nr)):
            if _never_descriptor(rule.expr):
                continue  # (a rule on the filename: the descriptor form has none)
            action = rule.action
            if not _every_descriptor(rule.expr) or action.predicate is not None or action.flag is not None \
                    or action.elevate is not None or action.verdict == "ask":
                return None
            return self.decision_of_action(action)
        return PASSES

    def keeps_state_for(self, tgid: int, ppid: int) -> bool:
        """Might decide() find something kept for this process (or, for a detach, its parent)?"""
        detached, expected, inherited, detaching = self._held
        return tgid in detached or ppid in detached or tgid in expected or tgid in inherited or tgid in detaching

    def policy_for(self, call: Call) -> StoredPolicy | None:
        # PerProcess holds values of any type: this one holds policies
        inherited = self.inherited.get(call.tgid) if self.inherited else None
        stored = inherited if isinstance(inherited, StoredPolicy) else self.store.find(call.exe)
        if stored is None and self.create_missing:
            stored = self.store.create(call.exe)
        return stored

    def decide(self, call: Call) -> Decision | None:
        if (self.detached or self.detaching) and (call.tgid in self.detached or self._detached_now(call)):
            return Decision(PERMIT, source="detached")
        expected = self.expected_exe.get(call.tgid) if self.expected_exe else None  # (empty: no lookup)
        if expected is not None:
            mismatch = self.check_identity(call, expected)  # type: ignore[arg-type]
            if mismatch is not None:
                return mismatch
        stored = self.policy_for(call)
        translated = call.require_translation()
        if translated.reaches_systrace:  # /proc/PID of systrace or a helper ("outside the run" by name)
            call.reason = OWN_ENTRY
            # ENOENT: as for a process gone meanwhile (the pid answers ESRCH: SECURITY.md)
            return Decision(DENY, errno.ENOENT, log=True, source="protect")
        if translated.native_error:  # it fails whatever is decided: the kernel's own error, not a denial
            return Decision(DENY, translated.native_error, source="native")
        if stored is not None and stored.broken is not None:  # fail closed: no rule of it can be known
            call.reason = f"its policy does not parse: {stored.broken.one_line()}"
            return Decision(DENY, errno.EACCES, log=True, source="broken-policy")
        if call.name in REFUSED_UNLESS_NAMED and (stored is None or not stored.policy.rules_for(call.name)):
            call.reason = "a descriptor beyond the paths a policy names: refused unless a rule names the call"
            return Decision(DENY, errno.EPERM, log=True, source="protect")
        if stored is None:
            call.filters = 0
            if self.require_policy:  # it got past the exec check (e.g. the file was swapped)
                call.reason = f"no policy for {call.exe}"
                return Decision(KILL, log=True, source="no-policy")
            return None
        call.policy = stored
        compiled = self.compiled(stored.policy)
        call.filters = compiled.rule_count
        if self.inherit and call.name in EXEC_NAMES:
            # -i: whatever decides this exec, the new image keeps this policy (a refused
            # exec leaves the process running this binary under it anyway)
            self.inherited.set(call.tgid, stored)
        rule = self.first_match(stored.policy, call, translated, compiled)
        if rule is None:
            return None
        return self.apply(call, stored, rule)

    def apply(self, call: Call, stored: StoredPolicy, rule: ast.Rule, decision: Decision | None = None) -> Decision | None:
        """The one path by which a rule permits, whether it comes from a policy file, a
        template or a frontend's answer: the rule's decision (or `decision`, an answer's),
        then, for a permit, how it is carried out (emulation), the mount view, and the
        exec check."""
        call.rule = rule
        if decision is None:
            decision = self.decision_of(rule, call)
        if decision is None or decision.verdict != PERMIT:
            return decision
        translated = call.require_translation()
        effect = effect_of(call, translated, rule)
        decided_by = rule
        if not effect and call.name in CARRIED_OUT_CALLS:
            earlier = self._earlier_effect(stored.policy, call, translated, rule)
            if earlier is not None:  # a rule before it looked at what the kernel would read again
                effect, decided_by = earlier
        named_in_a_view = _depends_on(decided_by, "filename") or (translated.sockaddr_path is not None
                                                                   and _depends_on(decided_by, "sockaddr"))
        if named_in_a_view and other_mount_view(call.tid) and not self.permits_mount_views(stored.policy):
            call.reason = "in another mount namespace than the check (no permit[mountns] rule)"
            return Decision(DENY, errno.EACCES, log=True, source="mount-view")
        if not effect and call.name in STRINGS_READ_AGAIN and self._looked_at(
                stored.policy, call, translated, rule, STRINGS_READ_AGAIN[call.name]) is not None:
            if call.name not in STRINGS_CARRIED_OUT:
                from ..kernel.emulate_strings import kernel_lacks  # (rare: not at start-up)

                if kernel_lacks(call.name):  # it fails whatever it reads: the kernel's own error
                    return Decision(DENY, errno.ENOSYS, source="native")
                strings = " or ".join(STRINGS_READ_AGAIN[call.name])
                call.reason = f"decided on its {strings}, which the kernel would read again: refused"
                return Decision(DENY, errno.EACCES, log=True, source="protect")
            effect = EMULATE_STRING  # (an earlier rule on the string did not match)
        if effect:
            decision = self._with_effect(decision, effect)
        elif call.name in RACED_IF_CONTINUED:
            raced = self._looked_at(stored.policy, call, translated, rule, RACED_IF_CONTINUED[call.name])
            if raced is not None:
                call.reason = f"decided on its {raced}, which the kernel would read again: refused"
                return Decision(DENY, errno.EACCES, log=True, source="protect")
        if call.name in EXEC_NAMES:
            return self.check_exec(call, translated, rule, decision, stored)
        return decision

    def _earlier_effect(self, policy: ast.Policy, call: Call, translated: Translated,
                        rule: ast.Rule) -> tuple[str, ast.Rule] | None:
        """The effect, and the rule, of the first rule before `rule` (in first_match's
        order: the call's own rules, then its alias's) that would carry the call out: it
        did not match what the check read, so that decided too (`deny: filename eq
        "/secret"` before a plain `permit`: a path swapped after the check passes the
        deny, and the kernel would read the swapped one). None: nothing before it did.
        The rules with a condition before each rule are kept per policy version."""
        for earlier in self._rules_before(policy, call, translated, rule):
            effect = effect_of(call, translated, earlier)
            if effect:
                return effect, earlier
        return None

    def _looked_at(self, policy: ast.Policy, call: Call, translated: Translated, rule: ast.Rule,
                   names: tuple[str, ...]) -> str | None:
        """The first of `names` (arguments the kernel reads again once the call is
        continued) that `rule` or a rule tried before it looks at: that rule decided too
        (`deny: description eq "x"` before a plain permit: a string swapped after the
        check passes that deny). None: no rule up to `rule` looked at any."""
        looked = (*self._rules_before(policy, call, translated, rule), rule)
        for name in names:
            if any(_depends_on(each, name) for each in looked):
                return name
        return None

    def _rules_before(self, policy: ast.Policy, call: Call, translated: Translated,
                      rule: ast.Rule) -> tuple[ast.Rule, ...]:
        """The rules with a condition that first_match tried before `rule` (all of them
        when `rule` is not the policy's: an answer's), kept per policy version."""
        key = (id(policy), len(policy.lines), call.name, translated.alias, id(rule))
        cached = self._earlier.get(key)
        if cached is None or cached[0] is not rule or cached[1] is not policy:
            before: list[ast.Rule] = []
            for earlier in policy.rules_for(call.name) + (policy.rules_for(translated.alias) if translated.alias else []):
                if earlier is rule:
                    break
                if earlier.expr is not None:
                    before.append(earlier)
            if len(self._earlier) >= 4096:
                self._earlier.clear()
            cached = self._earlier[key] = (rule, policy, tuple(before))
        return cached[2]

    def _detached_now(self, call: Call) -> bool:
        """A permit[detach] exec takes effect once the process runs the new binary (a
        failed exec detaches nothing); a child of a detached process is detached too."""
        target = self.detaching.pop(call.tgid, None)
        if (target is not None and call.exe == target) or (call.ppid in self.detached and call.ppid > 1):
            self.detached.add(call.tgid)
            self.expected_exe.pop(call.tgid, None)
            return True
        return False

    def permits_mount_views(self, policy: ast.Policy) -> bool:
        """Does the policy explicitly let its program act in a mount namespace of its own
        (a `permit[mountns]` rule, whatever its call)?"""
        cached = self._mountns.get(id(policy))
        if cached is None or cached[0] != len(policy.lines):
            cached = (len(policy.lines), any(rule.action.flag == "mountns" for rule in policy.rules))
            self._mountns[id(policy)] = cached
        return cached[1]

    def holds(self, tgid: int) -> bool:
        """Is anything kept for this process (replicas.py: only this decider may decide it)?"""
        return any(tgid in state for state in (self.inherited, self.detached, self.detaching, self.expected_exe))

    def close(self) -> None:
        for state in (self.inherited, self.detached, self.detaching, self.expected_exe):
            state.close()

    def check_identity(self, call: Call, expected: ExecExpectation) -> Decision | None:
        """The binary a process runs after an exec systrace permitted is one it checked:
        /proc/TID/exe (which PR_SET_MM, refused in the kernel, could have rewritten) is
        only compared with that. Anything else ran because the path was swapped after the
        check: the process is killed."""
        exe = call.exe
        if exe != expected.before and exe in expected.pending.values():
            self.expected_exe.discard(call.tgid)  # the exec succeeded
        elif exe == expected.before:
            if expected.pending.pop(call.tid, None) is not None and not expected.pending:
                self.expected_exe.discard(call.tgid)  # that thread's exec returned: it failed
        else:
            self.expected_exe.discard(call.tgid)
            checked = ", ".join(sorted(set(expected.pending.values())))
            call.reason = f"executed {exe}, but {checked} was checked"
            return Decision(KILL, log=True, source="exec-mismatch")
        return None

    def first_match(self, policy: ast.Policy, call: Call, translated: Translated,
                    compiled: CompiledPolicy | None = None) -> ast.Rule | None:
        if compiled is None:
            compiled = self.compiled(policy)
        if not translated.shared or compiled.named_predicates:
            return self._first_match(call, translated, compiled)
        # A translation from the path cache (translate/path_cache.py): the same argument
        # list means the same call, arguments and alias; with the same rules (compiled,
        # version) and ids, the same rule matches (predicates name ids by number only).
        args = translated.args
        memo = self._matched.get(id(args))
        if memo is not None and memo[0] is args and memo[1] is compiled and memo[2] == compiled.version \
                and memo[3] == call.uid and memo[4] == call.gid:
            return memo[5]
        rule = self._first_match(call, translated, compiled)
        if len(self._matched) >= 4096:
            self._matched.clear()
        self._matched[id(args)] = (args, compiled, compiled.version, call.uid, call.gid, rule)
        return rule

    def _first_match(self, call: Call, translated: Translated, compiled: CompiledPolicy) -> ast.Rule | None:
        def predicate_ok(predicate: ast.Predicate) -> bool:
            return predicate_holds(predicate, call)

        rule = compiled.first_match(call.name, translated.by_name(), predicate_ok)
        if rule is None and translated.alias:
            alias_args = translated.alias_args()
            rule = compiled.first_match(translated.alias, alias_args, predicate_ok)
            names = alias_args.get("filename", [])
            if rule is not None and rule.action.verdict == "permit" and len(names) > 1:
                # rename/link through fswrite change two names: a rule that looks at one
                # name permits that one only; each other name must be permitted on its own
                named = _indices(rule.expr, "filename")
                uncovered = {index for index in range(len(names)) if index not in named}
                for index in sorted(uncovered):
                    other = compiled.first_match(translated.alias, {"filename": [names[index]]}, predicate_ok)
                    if other is None or other.action.verdict != "permit":
                        # Not permitted on its own: then only a rule that looks at every
                        # name may decide (a learned rule names both; an earlier rule
                        # learned for one of the names, say a temporary file's open,
                        # must not hide it).
                        both = compiled.first_match(translated.alias, alias_args, predicate_ok,
                                                    accept=lambda r: uncovered <= _indices(r.expr, "filename"))
                        return both if both is not None else other
        return rule

    def compiled(self, policy: ast.Policy) -> CompiledPolicy:
        """Compiled once per policy; rules added since (learning) are compiled on their own."""
        compiled = self._compiled.get(id(policy))
        if compiled is None or compiled.policy is not policy or not compiled.catch_up():
            compiled = CompiledPolicy(policy, self.expand)
            self._compiled[id(policy)] = compiled
        return compiled

    def decision_of(self, rule: ast.Rule, call: Call) -> Decision | None:
        action = rule.action
        if action.verdict == "ask":
            call.ask = True  # `ask`: the mode's fallback decides (enforce denies)
            return None
        return self.decision_of_action(action)

    def decision_of_action(self, action: ast.Action) -> Decision:
        decision = self._decisions.get(action)  # decisions are immutable: one per action
        if decision is None:
            if action.verdict == "permit":
                decision = Decision(PERMIT, log=action.log, source="policy")
            elif action.verdict == "deny":
                code = errnos.lookup(action.errno) if action.errno else errno.EPERM
                decision = Decision(DENY, code or errno.EPERM, log=action.log, source="policy")
            else:
                decision = Decision(KILL, log=True, source="policy")
            self._decisions[action] = decision
        return decision

    def _with_effect(self, decision: Decision, effect: str) -> Decision:
        key = (id(decision), effect)  # by identity (hashing a Decision costs more), the decision kept alive
        carried = self._carried.get(key)
        if carried is None or carried[0] is not decision:
            if len(self._carried) >= 4096:
                self._carried.clear()
            carried = self._carried[key] = (decision, replace(decision, effect=effect))
        return carried[1]

    def check_exec(self, call: Call, translated: Translated, rule: ast.Rule, decision: Decision,
                   stored: StoredPolicy) -> Decision:
        flag = rule.action.flag
        if flag == "detach":  # honoured with or without a policy for the target
            target = exec_target(translated, call.tid)
            if target is not None:
                self.detaching.set(call.tgid, target)
            return decision
        if self.inherit or flag == "inherit":
            self.inherited.set(call.tgid, stored)
            return decision
        self.inherited.pop(call.tgid, None)
        target = exec_target(translated, call.tid)
        reached = self.store.find(target) if target is not None else None
        if reached is not None and reached.broken is not None:  # (whatever the mode: none of its calls would pass)
            call.reason = f"the policy of {target} does not parse: {reached.broken.one_line()}"
            return Decision(DENY, errno.EACCES, log=True, source="broken-policy")
        if self.require_policy and target is not None and reached is None:
            names = translated.by_name().get("filename", [])
            # by name only: a descriptor (execveat AT_EMPTY_PATH, a memfd) is what it is
            # (a chrooted thread's or another mount namespace's path is its own: only its target is ours)
            own_view = translated.open_root in (None, "/") and not other_mount_view(call.tid)
            named = names and not names[0].startswith("/<")
            native = ((own_view and _exec_error(names[0])) or _exec_error(target)) if named else 0
            if native:  # it could not run anyway: the error the kernel would give, nothing logged
                return Decision(DENY, native, source="exec-native")
            call.reason = f"no policy for {target}"
            return Decision(DENY, errno.EACCES, log=True, source="no-policy")
        if target is not None and (_depends_on(rule, "filename") or any(
                _depends_on(earlier, "filename") for earlier in self._rules_before(stored.policy, call, translated, rule))):
            # checked again at the new image's first call (also when a rule before this
            # one looked at the name: a deny of it passed by a swap)
            self.expect_exec(call, target)
        return decision

    def expect_exec(self, call: Call, target: str) -> None:
        expected = self.expected_exe.get(call.tgid)
        if not isinstance(expected, ExecExpectation):
            expected = ExecExpectation(call.exe)
            self.expected_exe.set(call.tgid, expected)
        expected.pending[call.tid] = target


def _exec_error(target: str) -> int:
    """The errno an execve of `target` fails with before running anything (0: it may run):
    a missing file or directory, a file that is not a regular executable one, a file some
    process holds open for writing (only on this path: an exec with no policy)."""
    try:
        status = os.stat(target)
    except OSError as error:
        return error.errno or errno.ENOENT
    if not stat.S_ISREG(status.st_mode) or not os.access(target, os.X_OK):
        return errno.EACCES
    if procfs.open_for_writing(os.path.realpath(target), status.st_dev, status.st_ino):
        return errno.ETXTBSY  # being written: the kernel refuses to run it
    return 0


def exec_target(translated: Translated, tid: int) -> str | None:
    """The binary an execve will run: the file, or the interpreter of a #! script. An
    execveat of a descriptor (AT_EMPTY_PATH) runs whatever the descriptor is, a memfd
    included (`/memfd:NAME (deleted)`: no policy names it). A thread chrooted or in
    another mount namespace names its paths in its own view: they are looked up there."""
    args = translated.by_name()
    names = args.get("filename", [])
    if not names and args.get("fd"):
        try:
            return os.readlink(f"/proc/{tid}/fd/{args['fd'][0]}")
        except OSError:
            return "<unknown descriptor>"
    if not names or names[0].startswith("/<"):
        return None
    if translated.open_root not in (None, "/") or other_mount_view(tid):
        return binary_run_by(names[0], tid)
    return binary_run_by(names[0])


def binary_run_by(path: str, tid: int | None = None) -> str:
    """The binary an exec of `path` runs: symlinks resolved, and for a #! script its
    interpreter (nested interpreters followed a few levels). With `tid`, `path` and the
    interpreters are that thread's, looked up below its root in its mount namespace
    (/proc/TID/root), as the kernel does for its exec; the binary is named as systrace
    sees it, as /proc/TID/exe names it once it runs (a chrooted tracee's script whose
    `#!` names /opt/interp runs JAIL/opt/interp, whatever /opt/interp is outside)."""
    root = -1
    if tid is not None:
        try:
            root = os.open(f"/proc/{tid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return path  # gone: named as given, which no policy names in systrace's view
    try:
        for _ in range(4):  # nested interpreters
            try:
                head, real = _head_of(path, root)
            except OSError:
                return path
            if head is None or not head.startswith(b"#!"):  # (not a regular file: the kernel refuses to run it)
                return real
            interpreter = head[2:].split(b"\n", 1)[0].strip().split(maxsplit=1)
            if not interpreter:
                return path
            path = os.fsdecode(interpreter[0])
    finally:
        if root >= 0:
            os.close(root)
    return os.path.realpath(path) if tid is None else path  # (the kernel refuses more: ELOOP)


def _head_of(path: str, root: int = -1) -> tuple[bytes | None, str]:
    """The first bytes of a regular file (None: not one), read without waiting for
    anything the tracee controls: a FIFO is never opened (that waits for a writer), nor
    a device, and a file another process holds a lease on raises (its open would wait up
    to lease-break-time); and the file's path with every symlink resolved, as the
    descriptor opened names it (one readlink, not a realpath's lstat per component).
    With `root` (a tracee's /proc/TID/root), `path` is looked up below it."""
    if root >= 0:
        from ..kernel.emulate import RESOLVE_IN_ROOT, openat2

        probe = openat2(root, os.fsencode(path), os.O_PATH | os.O_CLOEXEC, 0, RESOLVE_IN_ROOT)
    else:
        probe = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        real = os.readlink(f"/proc/self/fd/{probe}")
        if root < 0 and (not real.startswith("/") or real.endswith(" (deleted)")):
            real = os.path.realpath(path)  # (unlinked since, or outside our root: as before)
        if not stat.S_ISREG(os.fstat(probe).st_mode):
            return None, real
        fd = os.open(f"/proc/self/fd/{probe}", os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    finally:
        os.close(probe)
    try:
        return os.read(fd, 256), real
    finally:
        os.close(fd)


def predicate_holds(predicate: ast.Predicate, call: Call) -> bool:
    if predicate.kind == "user":
        actual, wanted = call.uid, _id_of(predicate.value, pwd.getpwnam, "pw_uid")
    else:
        actual, wanted = call.gid, _id_of(predicate.value, grp.getgrnam, "gr_gid")
    if wanted is None:  # no such user or group here: nobody is it (the parser warned)
        return predicate.op == "!="
    return {"=": actual == wanted, "!=": actual != wanted, "<": actual < wanted, ">": actual > wanted}[predicate.op]


def _id_of(value: str, lookup, field_name: str) -> int | None:
    if value.isdigit():
        return int(value)
    try:
        return getattr(lookup(value), field_name)
    except KeyError:
        return None
