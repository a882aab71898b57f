"""strace's fault syntax, accepted as it is, plus what its users have asked for:

    SET[:error=ERRNO|:retval=N][:signal=SIG][:when=EXPR][:path=GLOB]

SET is a comma list of system calls, aliases (fsread, fswrite), classes (%file,
%network, %memory, %process, %desc, or without the %), `all`, each optionally negated
with `!`. when=N (only call N), a..b, a+ (a and every later one), a+s (a, a+s, a+2s...),
a..b+s; calls are counted per process and per rule (a rule with path= counts only the
calls it selects). --fault defaults to error=ENOSYS, as strace does.
"""

from __future__ import annotations

import re
import signal

from ..kernel.syscalls_x86_64 import SYSCALLS
from ..policy import errnos
from ..record import record
from ..translate import aliases
from .tables import CLASSES, fd_forms_of

MAX_COUNT = 65535  # as strace

# What retval= may be, by the call's return type (the kernel returns a long, but a libc
# that declares `int` keeps only the low 32 bits, so 2**32 "succeeds" as fd 0). Addresses
# reach up to the -errno range, which is an error, not a value (use error=).
INT_MAX = 2**31 - 1
LONG_MAX = 2**63 - 1
ADDRESS_MAX = 2**64 - 4096 - 1
ADDRESS_RETURNS = frozenset(("mmap", "mremap", "brk", "shmat"))
LONG_RETURNS = frozenset((  # ssize_t, off_t, long, time_t, clock_t
    "read", "write", "pread64", "pwrite64", "readv", "writev", "preadv", "pwritev", "preadv2", "pwritev2",
    "lseek", "sendfile", "splice", "tee", "vmsplice", "copy_file_range", "recvfrom", "sendto", "recvmsg",
    "sendmsg", "process_vm_readv", "process_vm_writev", "getrandom", "readlink", "readlinkat", "getxattr",
    "lgetxattr", "fgetxattr", "listxattr", "llistxattr", "flistxattr", "getcwd", "getdents", "getdents64",
    "times", "time", "ptrace", "keyctl", "mq_timedreceive", "msgrcv", "lookup_dcookie",
))


class SpecError(ValueError):
    pass


@record
class When:
    first: int = 1
    last: int | None = None  # None: no end
    step: int = 0  # 0: only `first` (when last is None), or every call of the range (step 1)

    def fires(self, n: int) -> bool:
        if n < self.first or (self.last is not None and n > self.last):
            return False
        if self.step == 0:
            return self.last is not None or n == self.first
        return (n - self.first) % self.step == 0


ALWAYS = When(1, None, 1)


@record
class InjectRule:
    syscalls: frozenset[str]
    error: int | None = None
    retval: int | None = None
    signal: int | None = None
    when: When = ALWAYS
    path: str | None = None
    text: str = ""


def expand_set(text: str) -> frozenset[str]:
    """A syscall set: names, aliases, classes, all; `!` negates the whole set."""
    negate = text.startswith("!")
    body = text[1:] if negate else text
    if not body:
        raise SpecError("empty system call set")
    names: set[str] = set()
    for item in body.split(","):
        item = item.strip()
        if item == "all":
            names |= set(SYSCALLS) | fd_forms_of(set(SYSCALLS))
        elif item.lstrip("%") in CLASSES and (item.startswith("%") or item not in SYSCALLS):
            names |= set(CLASSES[item.lstrip("%")])
        elif item in aliases.ALIASES:
            names |= set(aliases.members(item))
        elif item in SYSCALLS:
            names |= {item} | fd_forms_of({item})  # a call named selects its descriptor form too
        elif item in fd_forms_of(set(SYSCALLS)):
            names.add(item)  # NAME/fd: the descriptor form alone (newfstatat/fd: fstat by another name)
        else:
            raise SpecError(f"invalid system call '{item}'")
    return frozenset((set(SYSCALLS) | fd_forms_of(set(SYSCALLS))) - names if negate else names)


def parse_when(text: str) -> When:
    match = re.fullmatch(r"(\d+)(?:(\.\.)(\d+))?(?:(\+)(\d+)?)?", text)
    if not match:
        raise SpecError(f"invalid when= expression '{text}'")
    first = int(match.group(1))
    last = int(match.group(3)) if match.group(3) else None
    plus, step_text = match.group(4), match.group(5)
    if not 1 <= first <= MAX_COUNT or (last is not None and not first <= last <= MAX_COUNT):
        raise SpecError(f"invalid when= expression '{text}'")
    if plus:
        step = int(step_text) if step_text else 1
        if not 1 <= step <= MAX_COUNT:
            raise SpecError(f"invalid when= expression '{text}'")
        return When(first, last, step)
    if last is not None:
        return When(first, last, 1)
    return When(first, None, 0)


def parse_inject(text: str, default_error: int | None = None) -> InjectRule:
    if not text:
        raise SpecError("empty inject expression")
    set_text, *options = text.split(":")
    syscalls = expand_set(set_text)
    fields: dict[str, str] = {}
    for option in options:
        key, sep, value = option.partition("=")
        if not sep or key not in ("error", "retval", "signal", "when", "path"):
            raise SpecError(f"invalid inject argument '{option}'")
        if key in fields:
            raise SpecError(f"{key}= given twice")
        fields[key] = value
    error = retval = sig = None
    if "error" in fields:
        code = fields["error"]
        error = int(code) if code.isdigit() else errnos.lookup(code)
        if error is None or not 0 < error < 4096:
            raise SpecError(f"invalid error code '{code}'")
    if "retval" in fields:
        if error is not None:
            raise SpecError("error= and retval= are mutually exclusive")
        try:
            retval = int(fields["retval"], 0)
        except ValueError:
            raise SpecError(f"invalid retval '{fields['retval']}'") from None
        check_retval(retval, syscalls)
    if "signal" in fields:
        sig = _signal(fields["signal"])
    when = parse_when(fields["when"]) if "when" in fields else ALWAYS
    if error is None and retval is None and sig is None:
        if default_error is None:
            raise SpecError("inject needs error=, retval= or signal=")
        error = default_error
    path = fields.get("path")
    if path is not None and not path:
        raise SpecError("empty path= pattern")
    return InjectRule(syscalls, error, retval, sig, when, path, text)


def return_range(syscall: str) -> tuple[int, str]:
    """The largest value `syscall` can return, and its type's name."""
    if syscall in ADDRESS_RETURNS:
        return ADDRESS_MAX, "an address"
    if syscall in LONG_RETURNS:
        return LONG_MAX, "a long"
    return INT_MAX, "an int"


def check_retval(value: int, syscalls: frozenset[str]) -> None:
    if value < 0:
        raise SpecError(f"invalid retval '{value}': a return value is 0 or more (a failure is error=)")
    for name in sorted(syscalls, key=lambda name: return_range(name)[0]):
        largest, kind = return_range(name)
        if value > largest:
            raise SpecError(f"retval={value} is out of range for {name}, which returns {kind} (0..{largest})")
        break  # the narrowest type holds it: so do all the others


def _signal(text: str) -> int:
    name = text.upper()
    if text.isdigit():
        number = int(text)
    else:
        try:
            number = int(signal.Signals[name if name.startswith("SIG") else "SIG" + name])
        except (KeyError, ValueError):
            raise SpecError(f"invalid signal '{text}'") from None
    if not 0 < number < signal.NSIG:
        raise SpecError(f"invalid signal '{text}'")
    return number
