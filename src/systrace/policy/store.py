"""Policy files: where they live, loading, looking one up by binary, and writing learned
rules back safely.

- A binary's policy file is named after its path: non-alphanumerics become '_' and
  leading ones are dropped (/usr/bin/cat -> usr_bin_cat), as the original did.
- Looked up in the user directory (~/.systrace, or -d DIR), then /etc/systrace, then in
  -f files; `Policy: */name` in a -f file matches any binary called `name`.
- Writes take an exclusive flock on DIR/.lock, re-read the file, append the new rules
  that are not there yet (hand-written rules, comments and order are kept), and replace
  it atomically (write, fsync, rename). A file that does not parse is never overwritten.
"""

from __future__ import annotations

import fcntl
import os
import re

from . import ast
from .errors import PolicyError
from .parse import Parser
from .printer import file_text, rule_text

SYSTEM_DIR = "/etc/systrace"  # paths are plain strings: importing pathlib costs start-up time


def file_name(binary: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", binary).lstrip("_")


class StoredPolicy:
    def __init__(self, policy: ast.Policy, path: str | None, writable: bool):
        self.policy = policy
        self.path = path  # the file it lives in (None: new, not written yet)
        self.writable = writable
        self.added: list[ast.Rule] = []  # learned since loading, to be written
        # every rule's text, so that adding a rule is not a scan of them all (learning);
        # valid while the policy has `rule_texts_at` lines
        self.rule_texts: set[str] = set()
        self.rule_texts_at = -1


class Store:
    def __init__(self, parser: Parser, user_dir: os.PathLike | str | None, extra_files: list[os.PathLike | str],
                 use_user: bool = True, system_dir: os.PathLike | str = SYSTEM_DIR):
        self.parser = parser
        self.user_dir = os.fspath(user_dir) if use_user and user_dir is not None else None
        self.system_dir = os.fspath(system_dir)
        self.extra_files = [os.fspath(f) for f in extra_files]
        self.by_name: dict[str, StoredPolicy] = {}
        self.by_basename: dict[str, StoredPolicy] = {}
        self.templates: list[ast.Policy] = []

    # -- loading -------------------------------------------------------------------
    def load(self) -> None:
        """Read every policy systrace could apply; raises PolicyError on the first bad one."""
        for directory, writable in ((self.user_dir, True), (self.system_dir, False)):
            if directory is None or not os.path.isdir(directory):
                continue
            try:
                names = sorted(os.listdir(directory))
            except OSError as error:
                raise PolicyError(f"cannot read policy directory: {error.strerror}", directory) from None
            for name in names:
                entry = os.path.join(directory, name)
                if name.startswith(".") or not os.path.isfile(entry):
                    continue
                self._load_file(entry, writable)
            templates = os.path.join(directory, "templates")
            if os.path.isdir(templates):
                for name in sorted(os.listdir(templates)):
                    entry = os.path.join(templates, name)
                    if os.path.isfile(entry):
                        self.templates.extend(p for p in self._parse(entry).policies if p.template)
        for extra in self.extra_files:
            self._load_file(extra, writable=False, basename_patterns=True)

    def _parse(self, path: str) -> ast.PolicyFile:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as handle:
                text = handle.read()
        except OSError as error:
            raise PolicyError(f"cannot read policy file: {error.strerror}", path) from None
        self.parser.source = path
        return self.parser.parse_file(text)

    def _load_file(self, path: str, writable: bool, basename_patterns: bool = False) -> None:
        policies = self._parse(path).policies
        single = sum(not p.template for p in policies) == 1  # only such files are written back
        for policy in policies:
            if policy.template:
                self.templates.append(policy)
                continue
            stored = StoredPolicy(policy, path, writable and single)
            if basename_patterns and policy.name.startswith("*/"):
                self.by_basename.setdefault(policy.name[2:], stored)
            else:
                self.by_name.setdefault(policy.name, stored)

    # -- lookup ----------------------------------------------------------------------
    def find(self, binary: str) -> StoredPolicy | None:
        found = self.by_name.get(binary)
        if found is None:
            found = self.by_basename.get(os.path.basename(binary))
        return found

    def create(self, binary: str) -> StoredPolicy:
        """A new, empty policy for a binary (learning); written to the user directory."""
        stored = StoredPolicy(ast.Policy(binary, "native"), None, self.user_dir is not None)
        self.by_name[binary] = stored
        return stored

    def all(self) -> list[StoredPolicy]:
        seen: dict[int, StoredPolicy] = {}
        for stored in [*self.by_name.values(), *self.by_basename.values()]:
            seen[id(stored)] = stored
        return list(seen.values())

    # -- writing -------------------------------------------------------------------
    def add_rule(self, stored: StoredPolicy, rule: ast.Rule) -> bool:
        """Append a rule unless an identical one is there; True if added."""
        text = rule_text(rule)
        if stored.rule_texts_at != len(stored.policy.lines):  # changed by other means since
            stored.rule_texts = {rule_text(existing) for existing in stored.policy.rules}
        if text in stored.rule_texts:
            stored.rule_texts_at = len(stored.policy.lines)
            return False
        stored.rule_texts.add(text)
        stored.policy.lines.append(rule)
        stored.rule_texts_at = len(stored.policy.lines)
        stored.added.append(rule)
        return True

    def save(self) -> list[str]:
        """Write every policy with new rules. Returns error messages (nothing raised):
        a policy that cannot be written keeps its rules for the next attempt."""
        errors = []
        for stored in self.all():
            if not stored.added or not stored.writable or self.user_dir is None:
                continue
            try:
                self._save_one(stored)
            except (OSError, PolicyError) as error:
                errors.append(str(error))
        return errors

    def _save_one(self, stored: StoredPolicy) -> None:
        directory = self.user_dir
        assert directory is not None
        os.makedirs(directory, mode=0o700, exist_ok=True)
        path = stored.path or os.path.join(directory, file_name(stored.policy.name))
        lock_fd = os.open(os.path.join(directory, ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            if os.path.exists(path):
                current = self._parse(path)  # raises if broken: never overwrite it
                target = next((p for p in current.policies if p.name == stored.policy.name), None)
                if target is None:
                    target = ast.Policy(stored.policy.name, stored.policy.emulation)
                    current.policies.append(target)
            else:
                current = ast.PolicyFile()
                target = ast.Policy(stored.policy.name, stored.policy.emulation)
                current.policies.append(target)
            present = {rule_text(rule) for rule in target.rules}
            for rule in stored.added:
                if rule_text(rule) not in present:
                    target.lines.append(rule)
                    present.add(rule_text(rule))
            _atomic_write(path, file_text(current))
            stored.path = path
            stored.added.clear()
        finally:
            os.close(lock_fd)


def _atomic_write(path: str, text: str) -> None:
    import tempfile  # only when a policy is written (start-up time)

    fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
