"""Descriptor entries in /proc (issue 11 items 1 and 2, the magic links themselves).

- A call that does not follow the final /proc/self/fd/N (lstat, readlink, newfstatat or
  faccessat2 with AT_SYMLINK_NOFOLLOW, utimensat, fchownat, lgetxattr, llistxattr,
  unlink, rename...) is learned by what the descriptor names (`/proc/self/fd/<pipe:>`),
  never by its number: the policy replays when the numbers differ next run.
- A path call or an open through ANOTHER process's /proc/PID/fd/N (a pipe, a socket)
  behaves as natively: the kernel checks the caller's ptrace access, as the tracee; a
  caller without it fails as natively."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import Runner

# N descriptors opened (dup) first: the numbers of the pipe and the socket shift with N
OWN_ENTRIES = r"""
import errno, os, socket, sys
for _ in range(int(sys.argv[1])):
    os.dup(0)
r, w = os.pipe()
pair = socket.socketpair()
efd = os.eventfd(0)
memfd = os.memfd_create("jit")


def attempt(call):
    try:
        result = call()
        return "ok" if result is None else str(result)
    except OSError as error:
        return errno.errorcode[error.errno]


for kind, fd in (("pipe", r), ("socket", pair[0].fileno()), ("eventfd", efd), ("memfd", memfd)):
    for path in (f"/proc/self/fd/{fd}", f"/dev/fd/{fd}", f"/proc/thread-self/fd/{fd}"):
        out = [
            attempt(lambda: os.readlink(path).split("[")[0]),
            attempt(lambda: oct(os.lstat(path).st_mode)[:4]),
            attempt(lambda: oct(os.stat(path, follow_symlinks=False).st_mode)[:4]),
            attempt(lambda: os.access(path, os.R_OK, follow_symlinks=False)),
            attempt(lambda: os.utime(path, (0, 0), follow_symlinks=False)),
            attempt(lambda: os.chown(path, -1, -1, follow_symlinks=False)),
            attempt(lambda: os.getxattr(path, "user.x", follow_symlinks=False)),
            attempt(lambda: len(os.listxattr(path, follow_symlinks=False))),
            attempt(lambda: os.close(os.open(path, os.O_PATH | os.O_NOFOLLOW))),
            attempt(lambda: os.open(path, os.O_RDONLY | os.O_NOFOLLOW)),
            attempt(lambda: os.unlink(path)),
            attempt(lambda: os.rmdir(path)),
            attempt(lambda: os.rename(path, path)),
        ]
        print(kind, path.split("/")[2], *out)
for path in ("/dev/stdin", "/dev/stdout"):
    print(path, attempt(lambda: os.readlink(path)), attempt(lambda: oct(os.lstat(path).st_mode)[:4]))
"""


@pytest.fixture
def scratch(shared_dir: Path, request) -> Path:
    path = shared_dir / f"magic-{request.node.name}".replace("[", "-").replace("]", "")
    path.mkdir(exist_ok=True)
    path.chmod(0o755)
    return path


def _script(scratch: Path, name: str, text: str) -> str:
    script = scratch / name
    script.write_text(text)
    script.chmod(0o644)
    return str(script)


def test_own_descriptor_entries_replay_with_other_numbers(runner: Runner, scratch: Path) -> None:
    """Learned with the pipe on fd 3, enforced with it on fd 8 (and so on): the output
    is the native one each time and nothing is denied (before: the rule said
    `/proc/self/fd/3`, and fd 8 was EACCES under -a). The interpreter is named by its
    path (runner.python): root's `python3` on PATH was a pyenv shim, a tree of bash
    scripts (pyenv exec) whose calls the learned policy had to cover too; an exec it
    makes that the learning run did not (exit 126, seen under load as root only, the
    user's PATH has no shim) is no part of what this test is about."""
    script = _script(scratch, "entries.py", OWN_ENTRIES)
    policies = runner.policy_dir(scratch / "policies")
    native = runner.native(runner.python, script, "0", input=b"")
    assert native.returncode == 0 and native.stdout.count(b"\n") == 14, native
    learned = runner("-d", str(policies), "-A", runner.python, script, "0", input=b"")
    assert (learned.returncode, learned.stdout) == (0, native.stdout), learned
    text = "".join(path.read_text() for path in policies.iterdir())
    assert re.search(r"/proc/self/fd/[0-9]", text) is None and "/proc/thread-self/fd/<pipe:>" in text, text
    assert "/proc/self/fd/<socket:>" in text and "/proc/self/fd/<anon_inode:[eventfd]>" in text, text
    relearned = runner("-d", str(policies), "-A", runner.python, script, "0", input=b"")
    assert relearned.stdout == native.stdout
    assert "".join(path.read_text() for path in policies.iterdir()) == text  # nothing added
    for shift in ("5", "9"):
        shifted = runner.native(runner.python, script, shift, input=b"")
        enforced = runner("-d", str(policies), "-a", "-e", runner.python, script, shift, input=b"")
        assert (enforced.returncode, enforced.stdout) == (0, shifted.stdout), enforced
        assert b"deny" not in enforced.stderr, enforced.stderr[-2000:]


# A child of the run holds a pipe (10 read end, 11 write end) and a socket (12); the
# parent stats, lstats, reads the links and opens them through /proc/CHILD/fd/N, after
# dropping to another user (otheruser) or with the child non-dumpable (nondumpable).
OTHER_ENTRIES = r"""
import ctypes, errno, os, socket, stat, sys
mode = sys.argv[1]
ready_r, ready_w = os.pipe()
done_r, done_w = os.pipe()
pid = os.fork()
if pid == 0:
    if mode == "nondumpable":
        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE
    a, b = os.pipe()
    os.dup2(a, 10)
    os.dup2(b, 11)
    held = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    os.dup2(held.fileno(), 12)
    os.write(ready_w, b"x")
    os.read(done_r, 1)
    os.set_blocking(10, False)
    try:
        print("the child read", os.read(10, 100))
    except BlockingIOError:
        print("the child read nothing")
    sys.stdout.flush()
    os._exit(0)
os.close(ready_w)  # (a child that failed ends the wait)
os.read(ready_r, 1)
if mode == "otheruser":
    os.setgid(65534)
    os.setuid(65534)
out = []
for n, flags in ((10, os.O_RDONLY | os.O_NONBLOCK), (11, os.O_WRONLY), (12, os.O_RDONLY)):
    path = f"/proc/{pid}/fd/{n}"
    for label, call in (("stat", lambda: stat.S_IFMT(os.stat(path).st_mode)), ("lstat", lambda: os.lstat(path) and 0),
                        ("readlink", lambda: os.readlink(path).split("[")[0]), ("open", lambda: os.open(path, flags))):
        try:
            result = call()
            if label == "open":
                if n == 11:
                    os.write(result, b"through")
                os.close(result)
                result = "ok"
            out.append(f"{n}:{label}={result}")
        except OSError as error:
            out.append(f"{n}:{label}={errno.errorcode[error.errno]}")
print(*out, flush=True)
os.write(done_w, b"x")
os.waitpid(pid, 0)
"""


@pytest.mark.parametrize("mode", ["same", "nondumpable", "otheruser"])
def test_another_process_s_descriptors_as_natively(runner: Runner, scratch: Path, mode: str) -> None:
    """With ptrace access (same user; root whatever the child's dumpable flag) every call
    works as natively and the write reaches the child's pipe (before: ENOENT for stat and
    open, EACCES for the open of a file); without it (the user and a non-dumpable child,
    root dropped to nobody) every call fails with EACCES, as natively, under -A and under
    the policy -A learned."""
    if mode == "otheruser" and runner.uid != 0:
        pytest.skip("only root can drop to another user")
    script = _script(scratch, "other.py", OTHER_ENTRIES)
    policies = runner.policy_dir(scratch / "policies")
    native = runner.native(runner.python, script, mode)
    assert native.returncode == 0, native
    reachable = mode == "same" or mode == "nondumpable" and runner.uid == 0
    assert (b"the child read b'through'" in native.stdout) == reachable, native
    assert native.stdout.count(b"=EACCES") == (0 if reachable else 12), native
    for flag in ("-A", "-a"):
        traced = runner("-d", str(policies), flag, "-e", runner.python, script, mode)
        assert (traced.returncode, traced.stdout) == (0, native.stdout), (flag, traced)
        # (a systrace that cannot read the entry either denies the call it cannot name:
        # EACCES, the native errno)
        assert b"deny" not in traced.stderr or not reachable and runner.uid != 0, traced.stderr[-2000:]
    text = "".join(path.read_text() for path in policies.iterdir())
    if reachable:
        assert re.search(r'fsread: filename eq "/proc/<descendant: [^>]*>/fd/<pipe:>"', text), text
        assert '/fd/<socket:>"' in text and not re.search(r"/proc/[0-9]", text), text


def test_every_call_that_does_not_follow_replays_with_other_numbers(runner: Runner, cbin, scratch: Path) -> None:
    """Raw system calls (tests/c/fdentry.c): lstat, readlink, readlinkat, newfstatat and
    statx with AT_SYMLINK_NOFOLLOW, faccessat2, lchown, fchownat, utimensat, lgetxattr,
    llistxattr, name_to_handle_at (without AT_SYMLINK_FOLLOW), unlink, rmdir, rename,
    O_NOFOLLOW: learned on fd 3, enforced on fd 7 and 12, each with the native result.
    name_to_handle_at is refused unless a rule names it (SECURITY.md): only its name is
    checked here."""
    binary = cbin("fdentry")
    policies = runner.policy_dir(scratch / "policies")
    learned = runner("-d", str(policies), "-A", "-e", binary, "0")
    assert learned.returncode == 0, learned
    assert b"name_to_handle_at(303), filename: /proc/self/fd/<pipe:>" in learned.stderr, learned.stderr[-2000:]
    text = "".join(path.read_text() for path in policies.iterdir())
    assert re.search(r"/proc/self/fd/[0-9]", text) is None and '"/proc/self/fd/<pipe:>"' in text, text
    for shift in ("0", "4", "9"):
        native = runner.native(binary, shift)
        enforced = runner("-d", str(policies), "-a", binary, shift)
        same = [line for line in native.stdout.splitlines() if not line.startswith(b"name_to_handle_at")]
        assert [line for line in enforced.stdout.splitlines() if not line.startswith(b"name_to_handle_at")] == same, \
            (native.stdout, enforced)
        assert len(same) == 15 and b"unlink=EPERM" in same and b"open_nofollow=ELOOP" in same, native.stdout
