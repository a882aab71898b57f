"""Policy files: where they live, loading, looking one up by binary, and writing learned
rules back safely.

- A binary's policy file is named after its path: non-alphanumerics become '_' and
  leading ones are dropped (/usr/bin/cat -> usr_bin_cat), as the original did.
- Looked up in the user directory (~/.systrace, or -d DIR), then /etc/systrace, then in
  -f files; `Policy: */name` in a -f file matches any binary called `name`.
- Trusted only when owned by the user or root and writable by nobody else (policy/trust);
  everything in a policy directory is opened through the directory's descriptor without
  following symbolic links, the lock file included.
- Files in a policy directory that are not policies (no `Policy:` header first: a log, a
  README; editor backups, rescued rules) are ignored, with one warning.
- A directory's files are read (and trusted) at start-up, but a file is parsed only when
  one of its policies is used (`find`): a directory of unrelated policies costs their
  reading and their header lines only. A file that does not parse when it is first used
  mid-run gives `broken` policies (decide/policy.py denies every call of theirs); at
  start-up the caller refuses it (wiring.py). Files with templates, and -f files, are
  parsed at once.
- Writes take an exclusive flock on DIR/.lock, re-read the file, append the new rules
  that are not there yet (hand-written rules, comments and order are kept), and replace
  it atomically (write, fsync, rename). A file that does not parse is never overwritten.
  Rules that cannot be written at the end are kept in a file beside the policy, or in
  $TMPDIR (`rescue`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat

from . import ast, trust
from .errors import PolicyError, printable
from .parse import Parser

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from . import printer
else:  # only a run that writes or learns rules prints them (start-up time)
    from ..lazy import lazy

    printer = lazy("systrace.policy.printer")

SYSTEM_DIR = "/etc/systrace"  # paths are plain strings: importing pathlib costs start-up time
LOCK = ".lock"
UNSAVED = ".unsaved"  # suffix of rescued rules (ignored when loading: not merged silently)
# names editors, package managers and systrace itself leave beside a file (_not_policy_name)
_LEFT_BESIDE = frozenset(("swp", "swo", "swx", "bak", "orig", "rej", "tmp", "old", "save", "unsaved"))
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK  # NONBLOCK: a FIFO must not stall us
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def _not_policy_name(name: str) -> bool:
    """What `(~|\\.(swp|swo|swx|bak|orig|rej|tmp|old|save|dpkg-[a-z]+|rpm[a-z]+|unsaved(-\\w+)?))$|^#.*#$`
    finds in the name (without re: start-up time; `$` also before a newline ending it)."""
    text = name[:-1] if name.endswith("\n") else name
    if text.endswith("~") or len(text) >= 2 and text[0] == "#" == text[-1] and "\n" not in text:
        return True
    if "." not in text:
        return False
    suffix = text[text.rindex(".") + 1:]
    if suffix in _LEFT_BESIDE:
        return True
    for prefix, word in (("dpkg-", _lowercase), ("rpm", _lowercase), ("unsaved-", _word)):
        if suffix.startswith(prefix) and word(suffix[len(prefix):]):
            return True
    return False


def _lowercase(text: str) -> bool:  # [a-z]+
    return text.isascii() and text.isalpha() and text.islower()


def _word(text: str) -> bool:  # \w+
    return text != "" and all(char.isalnum() or char == "_" for char in text)


def file_name(binary: str) -> str:
    return "".join(char if char.isascii() and char.isalnum() else "_" for char in binary).lstrip("_")


def looks_like_policy(text: str) -> bool:
    """Its first line that is not blank or a comment is a `Policy:` or `Template:` header.
    (Line by line, not text.split: a learned policy of 500 KB is read for its first line.)"""
    start, length = 0, len(text)
    while start <= length:
        end = text.find("\n", start)
        end = length if end < 0 else end
        line = text[start:end].strip()
        if line and not line.startswith("#"):
            return line.startswith(("Policy:", "Template:"))
        start = end + 1
    return False


class StoredPolicy:
    def __init__(self, policy: ast.Policy, path: str | None, writable: bool, broken: PolicyError | None = None):
        self.policy = policy
        # why its file does not parse (its policy is then empty and never written): parsed
        # late, mid-run; every call of the binary is denied
        self.broken = broken
        self.path = path  # the file it lives in (None: new, not written yet)
        self.writable = writable
        self.added: list[ast.Rule] = []  # learned since loading, to be written
        # every rule's text, so that adding a rule is not a scan of them all (learning);
        # valid while the policy has `rule_texts_at` lines
        self.rule_texts: set[str] = set()
        self.rule_texts_at = -1
        self.failure: str | None = None  # why the last write failed
        self.placed: dict[str, str] = {}  # an added rule's text -> the rule it must precede


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
        self.warnings: list[str] = []  # for the caller to print once, before the run
        # a binary name -> the directory file whose policy for it is used, read but not
        # parsed yet (a name is in by_name or here, never both)
        self.unparsed: dict[str, _Unparsed] = {}
        self.read_files = 0  # policy files read at start-up, and of them
        self.parsed_files = 0  # parsed (--stats, tests: unrelated ones are not)
        self.late: list[str] = []  # warnings and errors of files parsed mid-run, for the end of the run

    def searched(self) -> str:
        """Where policies are looked up, for messages."""
        places = [d for d in (self.user_dir, self.system_dir) if d is not None]
        places.extend(self.extra_files)
        return ", ".join(places)

    # -- loading -------------------------------------------------------------------
    def load(self) -> None:
        """Read every policy systrace could apply; raises PolicyError on the first bad or
        untrusted one."""
        ignored: list[str] = []
        for directory, writable in ((self.user_dir, True), (self.system_dir, False)):
            if directory is not None:
                self._load_directory(directory, writable, ignored)
        for extra in self.extra_files:
            self._load_extra(extra)
        if ignored:
            what = "files that are not policies" if len(ignored) > 1 else "a file that is not a policy"
            self.warnings.append(printable(f"ignoring {what} in the policy directory: " + ", ".join(ignored)))
        self.warnings.extend(str(warning) for warning in self.parser.warnings)
        self.parser.warnings.clear()

    def _load_directory(self, directory: str, writable: bool, ignored: list[str]) -> None:
        dir_fd = _open_directory(directory)
        if dir_fd is None:
            return
        try:
            for name in sorted(os.listdir(dir_fd)):
                if name.startswith("."):  # the lock, systrace's temporary files
                    continue
                path = os.path.join(directory, name)
                if name == "templates":
                    self._load_templates(dir_fd, path)
                    continue
                if _not_policy_name(name):
                    ignored.append(path)
                    continue
                text = _read_at(dir_fd, name, path)
                if text is None or not looks_like_policy(text):
                    ignored.append(path)
                    continue
                self._index(path, text, writable)
        except OSError as error:
            raise PolicyError(f"cannot read policy directory: {error.strerror}", directory) from None
        finally:
            os.close(dir_fd)

    def _load_templates(self, parent_fd: int, path: str) -> None:
        try:
            dir_fd = os.open("templates", _DIRECTORY | os.O_NOFOLLOW, dir_fd=parent_fd)
        except OSError as error:
            if error.errno in (errno.ELOOP, errno.ENOTDIR):
                raise PolicyError("is not a directory (a link is not followed); refusing it", path) from None
            raise PolicyError(f"cannot open: {error.strerror}", path) from None
        try:
            trust.check(os.fstat(dir_fd), path, "template directory")
            for name in sorted(os.listdir(dir_fd)):
                entry = os.path.join(path, name)
                if name.startswith(".") or _not_policy_name(name):
                    continue
                text = _read_at(dir_fd, name, entry)
                if text is not None:
                    self.read_files += 1
                    self.templates.extend(p for p in self._parse_text(entry, text).policies if p.template)
        finally:
            os.close(dir_fd)

    def _load_extra(self, path: str) -> None:
        """A -f file: followed if a link (the user named it), checked as it is opened."""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as error:
            raise PolicyError(f"cannot read policy file: {error.strerror}", path) from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise PolicyError("cannot read policy file: not a regular file", path)
        with os.fdopen(fd, encoding="utf-8", errors="surrogateescape") as handle:
            trust.check(info, path, "policy file")
            directory = os.path.dirname(os.path.realpath(path))
            trust.check(os.stat(directory), directory, "directory of a policy file", sticky_ok=True)
            trust.check_ancestors(directory)
            try:
                text = handle.read()
            except OSError as error:
                raise PolicyError(f"cannot read policy file: {error.strerror}", path) from None
        self.read_files += 1
        self._register(self._parse_text(path, text), path, writable=False, from_directory=False)

    def _parse_text(self, path: str, text: str, to_use: bool = True) -> ast.PolicyFile:
        self.parser.source = path
        self.parsed_files += to_use
        return self.parser.parse_file(text)

    def _index(self, path: str, text: str, writable: bool) -> None:
        """A directory file, by its headers only (parsed when used: `find`); one with
        templates at once (-t offers them from the start)."""
        self.read_files += 1
        self.parser.source = path
        headers = self.parser.headers(text)
        if any(header.template for header in headers):
            self._register(self._parse_text(path, text), path, writable, from_directory=True)
            return
        entry = _Unparsed(path, text, writable and len(headers) == 1)
        for header in headers:
            if self._claim(header.name, header.line, path, from_directory=True):
                self.unparsed[header.name] = entry
                entry.names.append(header.name)

    def _claim(self, name: str, line: int, path: str, from_directory: bool) -> bool:
        """Is `name` (a policy of `path`, its header on `line`) the one used for its
        binary? No when one came first: said when that is a mistake (-f after the
        directories, or two files of one directory: the first wins)."""
        first = self.by_name.get(name)
        first_path, first_line = (first.path, first.policy.line) if first is not None else (None, 0)
        if first is None and name in self.unparsed:
            first_path = self.unparsed[name].path
            first_line = next(h.line for h in self.unparsed[name].headers(self.parser) if h.name == name)
        if first_path is None:
            return True
        if not from_directory or os.path.dirname(first_path) == os.path.dirname(path):
            self._not_used(name, path, line, first_path, first_line)
        return False

    def _not_used(self, name: str, path: str, line: int, first_path: str | None, first_line: int) -> None:
        self.warnings.append(printable(
            f"{path}:{line}:1: warning: the policy for '{name}' is not used: "
            f"{first_path}:{first_line} has one for the same binary and comes first"))

    def _register(self, policy_file: ast.PolicyFile, path: str, writable: bool, from_directory: bool) -> None:
        single = sum(not p.template for p in policy_file.policies) == 1  # only such files are written back
        for policy in policy_file.policies:
            if policy.template:
                self.templates.append(policy)
                continue
            stored = StoredPolicy(policy, path, writable and single)
            if not from_directory and policy.name.startswith("*/"):
                first = self.by_basename.setdefault(policy.name[2:], stored)
                if first is not stored:  # two -f files: the first wins
                    self._not_used(policy.name, path, policy.line, first.path, first.policy.line)
            elif self._claim(policy.name, policy.line, path, from_directory):
                self.by_name[policy.name] = stored

    def _parse_late(self, entry: _Unparsed) -> None:
        """Parse a file read at start-up, for its policies the store uses: broken ones
        (raised by the caller at start-up, denied mid-run) when it does not parse."""
        names = entry.names
        try:
            policies = self._parse_text(entry.path, entry.text).policies
        except PolicyError as error:
            for name in names:
                self.by_name[name] = StoredPolicy(ast.Policy(name, "native"), entry.path, False, broken=error)
                del self.unparsed[name]
            self.late.append(f"{error.one_line()} (parsed when first used, mid-run: the calls of its binary are denied)")
            return
        finally:
            self.late.extend(str(warning) for warning in self.parser.warnings)
            self.parser.warnings.clear()
        for policy in policies:
            if policy.name in names:
                self.by_name[policy.name] = StoredPolicy(policy, entry.path, entry.writable)
                del self.unparsed[policy.name]
        entry.text = ""  # (every name it had is parsed now)

    # -- lookup ----------------------------------------------------------------------
    def find(self, binary: str) -> StoredPolicy | None:
        """The policy for a binary, its file parsed now if not yet; never raises (a file
        that does not parse gives a `broken` policy)."""
        found = self.by_name.get(binary)
        if found is None:
            entry = self.unparsed.get(binary)
            if entry is not None:
                self._parse_late(entry)
                return self.by_name.get(binary)
            found = self.by_basename.get(os.path.basename(binary))
        return found

    def create(self, binary: str) -> StoredPolicy:
        """A new, empty policy for a binary (learning); written to the user directory."""
        stored = StoredPolicy(ast.Policy(binary, "native"), None, self.user_dir is not None)
        self.by_name[binary] = stored
        return stored

    def all(self) -> list[StoredPolicy]:
        """Every policy, each file parsed (at start-up: raises PolicyError for one that
        does not parse, as it always did)."""
        while self.unparsed:
            self._parse_late(next(iter(self.unparsed.values())))
        self.warnings.extend(self.late)  # (at start-up: printed before the run)
        self.late.clear()
        for stored in self.by_name.values():
            if stored.broken is not None:
                raise stored.broken
        return self.parsed()

    def parsed(self) -> list[StoredPolicy]:
        """The policies parsed so far (those a run can have learned rules for)."""
        seen: dict[int, StoredPolicy] = {}
        for stored in [*self.by_name.values(), *self.by_basename.values()]:
            seen[id(stored)] = stored
        return list(seen.values())

    def require(self, binary: str) -> StoredPolicy | None:
        """At start-up: `find`, raising PolicyError if its file does not parse, its
        warnings given before the run."""
        found = self.find(binary)
        self.warnings.extend(self.late)
        self.late.clear()
        if found is not None and found.broken is not None:
            raise found.broken
        return found

    # -- writing -------------------------------------------------------------------
    def check_writable(self) -> None:
        """Before learning: the user directory exists (made 0700 if not, in a directory that
        exists), is trusted, and a file can be created in it. Raises PolicyError saying
        why not."""
        directory = self.user_dir
        if directory is None:
            return
        parent = os.path.dirname(os.path.normpath(directory)) or "."
        if not os.path.lexists(directory) and not os.path.isdir(parent):
            # only the directory itself is made: a typo in -d, or a HOME that is not there,
            # must not become a new tree of directories nobody asked for
            raise PolicyError(f"cannot write learned policies here: {parent} does not exist (systrace makes "
                              "the policy directory, not the directories above it)", directory)
        try:
            os.mkdir(directory, mode=0o700)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise PolicyError("cannot write learned policies here: not a directory", directory) from None
        except OSError as error:
            raise PolicyError(f"cannot write learned policies here: {error.strerror}", directory) from None
        dir_fd = _open_directory(directory)
        assert dir_fd is not None
        probe = f".probe.{os.getpid()}"
        try:
            try:
                os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                                 dir_fd=dir_fd))
                os.unlink(probe, dir_fd=dir_fd)
            except OSError as error:
                raise PolicyError(f"cannot write learned policies here: {error.strerror}", directory) from None
            os.close(_open_lock(dir_fd, directory))
        finally:
            os.close(dir_fd)

    def add_rule(self, stored: StoredPolicy, rule: ast.Rule, before: ast.Rule | None = None) -> bool:
        """Append a rule (or put it just before `before`, so it is evaluated first) unless
        an identical one is there; True if added."""
        text = printer.rule_text(rule)
        if stored.rule_texts_at != len(stored.policy.lines):  # changed by other means since
            stored.rule_texts = {printer.rule_text(existing) for existing in stored.policy.rules}
        if text in stored.rule_texts:
            stored.rule_texts_at = len(stored.policy.lines)
            return False
        stored.rule_texts.add(text)
        lines = stored.policy.lines
        position = next((i for i, line in enumerate(lines) if line is before), None) if before is not None else None
        if position is None or before is None:
            lines.append(rule)
        else:
            lines.insert(position, rule)
            stored.placed[text] = printer.rule_text(before)  # `before`, now after it
        stored.rule_texts_at = len(lines)
        stored.added.append(rule)
        return True

    def save(self) -> list[str]:
        """Write every policy with new rules. Returns error messages (nothing raised):
        a policy that cannot be written keeps its rules for the next attempt."""
        errors = []
        for stored in self._unsaved():
            try:
                self._save_one(stored)
                stored.failure = None
            except (OSError, PolicyError) as error:
                stored.failure = (f"{error.filename or self.user_dir}: {error.strerror}" if isinstance(error, OSError)
                                  else str(error))
                errors.append(stored.failure)
        return errors

    def _unsaved(self) -> list[StoredPolicy]:
        if self.user_dir is None:
            return []
        return [stored for stored in self.parsed() if stored.added and stored.writable]

    def rescue(self) -> tuple[list[str], bool]:
        """At the end, for each policy whose rules could not be written (the write failed,
        or the policy came from /etc/systrace, a -f file or a file of several policies):
        keep the whole policy in a file beside it, else in $TMPDIR. Returns one message per policy and
        whether anything is lost (not even a rescue file could be written)."""
        messages, lost = [], False
        read_only = [s for s in self.parsed() if s.added and not s.writable and self.user_dir is not None]
        for stored in self._unsaved() + read_only:
            import tempfile  # only on this failure path (start-up time: every run ends here)

            name = file_name(stored.policy.name)
            text = printer.policy_text(stored.policy)
            kept = None
            for directory in (self.user_dir, tempfile.gettempdir()):
                try:
                    fd, kept = tempfile.mkstemp(prefix=f"{name}.", suffix=UNSAVED, dir=directory)
                    with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
                        handle.write(text)
                    break
                except OSError:
                    if kept is not None:
                        os.unlink(kept)
                    kept = None
            reason = stored.failure or (f"it was read from {stored.path}, which is not systrace's to write"
                                        if not stored.writable else "not written")
            if kept is None:
                lost = True
                messages.append(f"{len(stored.added)} learned rules for {stored.policy.name} are lost: "
                                f"{reason}, and neither {self.user_dir} nor {tempfile.gettempdir()} is writable")
            else:
                messages.append(f"learned rules for {stored.policy.name} kept in {kept} "
                                f"(the policy could not be written: {reason})")
        return [printable(message) for message in messages], lost

    def _save_one(self, stored: StoredPolicy) -> None:
        directory = self.user_dir
        assert directory is not None
        try:
            os.mkdir(directory, mode=0o700)  # (removed since the start: made again, not its parents)
        except FileExistsError:
            pass
        name = os.path.basename(stored.path) if stored.path else file_name(stored.policy.name)
        path = os.path.join(directory, name)
        dir_fd = _open_directory(directory)
        assert dir_fd is not None
        lock_fd = -1
        try:
            lock_fd = _open_lock(dir_fd, directory)
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            text = _read_at(dir_fd, name, path, missing_ok=True)
            if text is not None:
                current = self._parse_text(path, text, to_use=False)  # raises if broken: never overwrite it
                self.parser.warnings.clear()
                target = next((p for p in current.policies if p.name == stored.policy.name), None)
                if target is None:
                    target = ast.Policy(stored.policy.name, stored.policy.emulation)
                    current.policies.append(target)
            else:
                current = ast.PolicyFile()
                target = ast.Policy(stored.policy.name, stored.policy.emulation)
                current.policies.append(target)
            present = {printer.rule_text(rule) for rule in target.rules}
            for rule in stored.added:
                if isinstance(rule, ast.Comment):  # the base's heading (decide/base.py)
                    if rule not in target.lines:
                        target.lines.append(rule)
                    continue
                text = printer.rule_text(rule)
                if text not in present:
                    _place(target.lines, rule, stored.placed.get(text))
                    present.add(text)
            _atomic_write_at(dir_fd, name, path, printer.file_text(current))
            stored.path = path
            stored.added.clear()
            stored.placed.clear()
        finally:
            if lock_fd >= 0:
                os.close(lock_fd)
            os.close(dir_fd)


class _Unparsed:
    """A policy file of a directory, read and trusted, not parsed yet."""

    __slots__ = ("path", "text", "writable", "names")

    def __init__(self, path: str, text: str, writable: bool):
        self.path = path
        self.text = text
        self.writable = writable  # (a file of one policy only is written back)
        self.names: list[str] = []  # its policies that are the ones used for their binaries

    def headers(self, parser: Parser) -> list[ast.Policy]:
        parser.source = self.path
        return parser.headers(self.text)


def _open_directory(directory: str) -> int | None:
    """A trusted policy directory's descriptor; None if it does not exist."""
    try:
        dir_fd = os.open(directory, _DIRECTORY)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise PolicyError("not a directory", directory) from None
    except OSError as error:
        raise PolicyError(f"cannot read policy directory: {error.strerror}", directory) from None
    try:
        trust.check(os.fstat(dir_fd), directory, "policy directory")
        trust.check_ancestors(directory)
    except BaseException:
        os.close(dir_fd)
        raise
    return dir_fd


def _place(lines: list, rule: ast.Rule, before: str | None) -> None:
    """Before the rule whose text is `before` (an answered `ask` rule), else at the end."""
    if before is not None:
        for i, line in enumerate(lines):
            if isinstance(line, ast.Rule) and printer.rule_text(line) == before:
                lines.insert(i, rule)
                return
    lines.append(rule)


def _open_lock(dir_fd: int, directory: str) -> int:
    path = os.path.join(directory, LOCK)
    try:
        fd = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, 0o600,
                     dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise PolicyError("is a symbolic link (never followed in a policy directory); refusing it", path) from None
        raise PolicyError(f"cannot open the lock file: {error.strerror}", path) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise PolicyError("the lock file is not a regular file; refusing it", path)
    return fd


def _read_at(dir_fd: int, name: str, path: str, missing_ok: bool = False) -> str | None:
    """The text of a regular, trusted file in a policy directory, never through a link;
    None for something else (a FIFO, a directory) or, with `missing_ok`, no file."""
    try:
        fd = os.open(name, _READ, dir_fd=dir_fd)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise PolicyError("cannot read policy file: No such file or directory", path) from None
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise PolicyError("is a symbolic link (never followed in a policy directory); refusing it", path) from None
        if error.errno == errno.EISDIR:
            return None
        raise PolicyError(f"cannot read policy file: {error.strerror}", path) from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        return None
    with os.fdopen(fd, encoding="utf-8", errors="surrogateescape") as handle:
        head = handle.read(65536)
        if not looks_like_policy(head):
            return head  # not a policy: the caller ignores it (or fails to parse it), whoever wrote it
        trust.check(info, path, "policy file")
        try:
            return head + handle.read()
        except OSError as error:
            raise PolicyError(f"cannot read policy file: {error.strerror}", path) from None


def _atomic_write_at(dir_fd: int, name: str, path: str, text: str) -> None:
    temporary = f".{name}.{os.getpid()}.{os.urandom(4).hex()}"
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                     dir_fd=dir_fd)
    except OSError as error:
        raise OSError(error.errno, error.strerror, path) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError as error:
        os.unlink(temporary, dir_fd=dir_fd)
        raise OSError(error.errno, error.strerror, path) from None
    except BaseException:
        os.unlink(temporary, dir_fd=dir_fd)
        raise
