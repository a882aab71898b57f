"""Argument translation: formats, aliases and path resolution for the tracee (pure logic
on a fake tracee; paths are resolved in a real directory tree)."""

from __future__ import annotations

import errno
import os
import socket
import struct
from pathlib import Path

import pytest

from systrace.decide.modes import exact_expr
from systrace.frontend.question import escape
from systrace.kernel.memory import MemoryError_
from systrace.kernel.syscalls_x86_64 import SYSCALLS
from systrace.policy.match import UNREADABLE, evaluate
from systrace.policy.parse import Parser
from systrace.policy.printer import expr_text
from systrace.translate import aliases, formats
from systrace.translate.filename import AT_FDCWD, Unresolvable, _parts, _plain, resolve, walk
from systrace.translate.table import TRANSLATORS
from systrace.translate.translator import translate


class FakeTracee:
    """Memory is a dict of address -> bytes; cwd and fds are given."""

    def __init__(self, cwd: Path, fds: dict[int, str] | None = None, tgid: int = 4242):
        self.tid = tgid
        self.tgid = tgid
        self._cwd = cwd
        self._fds = fds or {}
        self.memory: dict[int, bytes] = {}
        self._next = 0x10000
        self.pins: dict[int, int | None] = {}
        self.reaches_systrace = False
        self.started: dict[int, int] = {}

    def put(self, data: bytes) -> int:
        address = self._next
        self.memory[address] = data
        self._next += 0x1000
        return address

    def read(self, address: int, size: int) -> bytes:
        base = address & ~0xFFF  # blocks are 0x1000 apart: an address inside one reads from it
        offset = address - base
        if base not in self.memory or len(self.memory[base]) < offset + size:
            raise MemoryError_(errno.EFAULT, "unmapped")
        return self.memory[base][offset : offset + size]

    def string(self, address: int, limit: int = 4096) -> bytes:
        if address not in self.memory:
            raise MemoryError_(errno.EFAULT, "unmapped")
        return self.memory[address].split(b"\0", 1)[0]

    def pointers(self, address: int, limit: int = 4096) -> list[int]:
        data = self.memory[address]
        out = []
        for i in range(0, len(data), 8):
            word = int.from_bytes(data[i : i + 8], "little")
            if not word:
                break
            out.append(word)
        return out

    def cwd(self) -> bytes:
        return os.fsencode(self._cwd)

    def fd_path(self, fd: int) -> bytes:
        if fd not in self._fds:
            raise OSError(errno.EBADF, "bad fd")
        return os.fsencode(self._fds[fd])

    def root(self) -> bytes:
        return b"/"

    # processes: pid -> (tgid, ppid, exe, supervised); 7 is outside the run, 8 a child
    # of ours, 9 a grandchild, 10 another supervised process, 4243 one of our threads
    processes = {7: (7, 1, "/usr/bin/other", False), 8: (8, 4242, "/usr/bin/sleep", True),
                 9: (9, 8, "/usr/bin/cat", True), 10: (10, 3, "/usr/bin/make", True), 4243: (4242, 1, "", True)}

    def exe_of(self, pid: int) -> str | None:
        entry = self.processes.get(pid)
        return entry[2] if entry else None

    def tgid_of(self, tid: int) -> int | None:
        return self.tgid if tid == self.tgid else self.processes.get(tid, (None,))[0]

    def ppid_of(self, pid: int) -> int | None:
        entry = self.processes.get(pid)
        return entry[1] if entry else None

    def pgid_of(self, pid: int) -> int | None:
        return 4242 if pid == self.tgid else pid

    def supervised(self, pid: int) -> bool:
        entry = self.processes.get(pid)
        return bool(entry and entry[3])

    def pidfd_pid(self, fd: int) -> int | None:
        return {5: 8, 6: 7}.get(fd)

    def start_time(self, pid: int) -> int | None:
        return self.started.get(pid, 100) if pid in self.processes or pid == self.tgid else None

    def namespace_ids(self) -> tuple[int, int] | None:
        return None  # in systrace's pid namespace

    def of_systrace(self, pid: int) -> bool:
        return pid == 7 and self.systrace_is_7

    systrace_is_7 = False


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "dir" / "sub").mkdir(parents=True)
    (tmp_path / "dir" / "file").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "dir" / "file")
    (tmp_path / "rel").symlink_to("dir/sub")
    (tmp_path / "loop").symlink_to("loop")
    return tmp_path


def test_relative_paths_use_the_tracees_cwd(tree: Path) -> None:
    tracee = FakeTracee(tree / "dir")
    assert resolve(tracee, b"file") == str(tree / "dir" / "file")
    assert resolve(tracee, b"sub/../file") == str(tree / "dir" / "file")
    assert resolve(tracee, b"../../../../../..") == "/"


def test_dirfd_is_read_through_the_tracee(tree: Path) -> None:
    tracee = FakeTracee(Path("/"), fds={5: str(tree / "dir")})
    assert resolve(tracee, b"file", dirfd=5) == str(tree / "dir" / "file")
    assert resolve(tracee, b"file", dirfd=AT_FDCWD) == "/file"
    assert resolve(tracee, b"file", dirfd=9).startswith("/<non-existent filename>: file")


def test_symlinks_followed_or_not(tree: Path) -> None:
    tracee = FakeTracee(tree)
    assert resolve(tracee, b"link") == str(tree / "dir" / "file")
    assert resolve(tracee, b"link", follow=False) == str(tree / "link")
    assert resolve(tracee, b"rel/../file") == str(tree / "dir" / "file")  # .. after a symlink
    assert resolve(tracee, b"loop") == "/<non-existent filename>: loop"


def test_missing_files(tree: Path) -> None:
    tracee = FakeTracee(tree)
    assert resolve(tracee, b"dir/new-file") == str(tree / "dir" / "new-file")  # to be created
    # absolute and resolved as far as it exists (`rel` is a symlink to dir/sub), marked missing
    assert resolve(tracee, b"nodir/x") == f"/<non-existent filename>: {tree}/nodir/x"
    assert resolve(tracee, b"dir/file/x") == f"/<non-existent filename>: {tree}/dir/file/x"
    assert resolve(tracee, b"rel/nodir/./a/../b") == f"/<non-existent filename>: {tree}/dir/sub/nodir/b"
    assert resolve(FakeTracee(tree / "dir"), b"nodir/x") == f"/<non-existent filename>: {tree}/dir/nodir/x"


@pytest.mark.parametrize("path", [b"dir/file", b"dir//file", b"/dir/file", b"dir/sub/", b"link", b"rel/../file",
                                  b"dir/./file", b"dir/new-file", b"nodir/x", b"loop", b"dir/file/x", b"."])
@pytest.mark.parametrize("follow", [True, False])
def test_one_call_fast_path_agrees_with_the_walk(tree: Path, path: bytes, follow: bool) -> None:
    """The RESOLVE_NO_SYMLINKS shortcut answers only when it means what the walk finds."""
    tracee = FakeTracee(tree)
    base = os.fsencode(tree)
    if path.startswith(b"/"):
        path, base = base + path, b"/"
    plain = _plain(base, path)
    try:
        walked = walk(b"", _parts(base), path, follow, tracee)
    except Unresolvable:
        walked = None
    if plain is not None:
        assert plain == walked
    if path in (b"link", b"rel/../file", b"dir/./file", b"loop", b"dir/new-file", b"nodir/x"):
        assert plain is None  # a symlink, a dot, or a missing name: the walk decides


def test_proc_self_means_the_tracee(tree: Path) -> None:
    tracee = FakeTracee(tree, tgid=1)  # pid 1 exists on every machine, and is not us
    # the caller's own entries keep the names that mean "me" in every run
    assert resolve(tracee, b"/proc/self/cwd", follow=False) == "/proc/self/cwd"
    assert resolve(tracee, b"/proc/1/cwd", follow=False) == "/proc/self/cwd"
    assert resolve(tracee, b"/proc/thread-self", follow=False) == "/proc/thread-self"
    assert resolve(tracee, b"/proc/self/task/1/comm") == "/proc/thread-self/comm"
    assert resolve(tracee, b"/proc/self/status") == "/proc/self/status"
    other = FakeTracee(tree, tgid=os.getpid())  # another process's entry: by relation, never its number
    assert resolve(tracee, f"/proc/{os.getpid()}/status".encode()) == "/proc/<outside the run>/status"
    assert resolve(other, b"/proc/1/status") == "/proc/<outside the run>/status"


def test_another_process_in_proc_is_named_by_its_relation() -> None:
    """/proc/PID and /proc/PID/task/TID of another pid: the relations pid arguments get
    (translate/pids.py), so a learned rule means the same process next run."""
    from systrace.translate.filename import stable_name

    tracee = FakeTracee(Path("/"), tgid=4242)  # the fake process table: 7 outside, 8 a child...
    assert stable_name(b"/proc/8/stat", tracee) == "/proc/<descendant: /usr/bin/sleep>/stat"
    assert stable_name(b"/proc/9/environ", tracee) == "/proc/<descendant: /usr/bin/cat>/environ"
    assert stable_name(b"/proc/10/cmdline", tracee) == "/proc/<supervised: /usr/bin/make>/cmdline"
    assert stable_name(b"/proc/7/mem", tracee) == "/proc/<outside the run>/mem"
    assert stable_name(b"/proc/7", tracee) == "/proc/<outside the run>"
    assert stable_name(b"/proc/4243/status", tracee) == "/proc/<own thread>/status"
    assert stable_name(b"/proc/4242/task/4243/stat", tracee) == "/proc/self/task/<own thread>/stat"
    assert stable_name(b"/proc/4242/task/4242/stat", tracee) == "/proc/thread-self/stat"
    assert stable_name(b"/proc/8/task/8/stat", tracee) == "/proc/<descendant: /usr/bin/sleep>/task/" \
                                                         "<descendant: /usr/bin/sleep>/stat"
    # a pid that is no process: outside the run (its entries do not exist for anyone)
    assert stable_name(b"/proc/31337/stat", tracee) == "/proc/<outside the run>/stat"
    # what is not a pid keeps its name
    for path in (b"/proc/sys/kernel/pid_max", b"/proc/007/stat", b"/proc/uptime", b"/proc/self/stat"):
        assert stable_name(path, tracee) == os.fsdecode(path)


def test_anonymous_objects_are_named_by_kind() -> None:
    from systrace.translate.filename import object_name

    assert object_name("pipe:[58731]") == "pipe:"
    assert object_name("socket:[12]") == "socket:"
    assert object_name("anon_inode:[eventfd]") == "anon_inode:[eventfd]"
    assert object_name("/memfd:jit (deleted)") == "memfd:jit"
    assert object_name("/tmp/x") == "/tmp/x"
    # a real pipe, through /dev/stdin as a shell passes one: the same name every run
    names = set()
    for _ in range(2):
        read_end, write_end = os.pipe()
        try:
            tracee = FakeTracee(Path("/"), tgid=os.getpid())
            tracee.tid = os.getpid()
            path = tracee.put(f"/proc/self/fd/{read_end}\0".encode())
            names.add(translate("openat", (AT_FDCWD, path, 0, 0, 0, 0), tracee).args[0])
        finally:
            os.close(read_end)
            os.close(write_end)
    assert names == {("filename", "pipe:")}


def test_names_that_are_not_utf8_or_hold_newlines_round_trip(tree: Path) -> None:
    for raw in (b"bad\xff\xfename", b'new\nline "quoted" \\ back', b"\x01ctl"):
        (tree / os.fsdecode(raw)).write_text("")
        name = resolve(FakeTracee(tree), raw)
        assert os.fsencode(name) == os.fsencode(str(tree)) + b"/" + raw
        expr = exact_expr([("filename", name)])
        text = expr_text(expr)
        assert "\n" not in text and "\xff" not in text
        parsed = Parser().parse_expr(text)
        assert parsed == expr
        assert evaluate(parsed, {"filename": [name]})


def test_openat_translation_and_alias(tree: Path) -> None:
    tracee = FakeTracee(tree)
    path = tracee.put(b"dir/file\0")
    result = translate("openat", (AT_FDCWD & 0xFFFFFFFF, path, os.O_RDONLY, 0, 0, 0), tracee)
    assert result.args == [("filename", str(tree / "dir" / "file")), ("oflags", "ro"), ("mode", "0")]
    assert result.alias == "fsread"
    result = translate("openat", (AT_FDCWD, path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, 0, 0), tracee)
    assert result.alias == "fswrite" and ("oflags", "woct") in result.args and ("mode", "0644") in result.args
    assert translate("openat", (AT_FDCWD, path, 0, 0, 0, 0), tracee, use_aliases=False).alias is None


def test_fd_operations_name_no_file_and_have_no_alias(tree: Path) -> None:
    tracee = FakeTracee(tree, fds={1: "pipe:[123]"})
    empty = tracee.put(b"\0")
    result = translate("newfstatat", (1, empty, 0, 0x1000, 0, 0), tracee)
    assert result.args == [("fd", "1"), ("fdname", "pipe:")]
    assert result.alias is None and result.fd_form


def test_unreadable_path() -> None:
    result = translate("openat", (AT_FDCWD, 0xDEAD000, 0, 0, 0, 0), FakeTracee(Path("/")))
    assert result.args[0] == ("filename", "<unreadable>")


def test_execve_argv_and_rename_two_files(tree: Path) -> None:
    tracee = FakeTracee(tree)
    words = [tracee.put(w + b"\0") for w in (b"ls", b"-l", b"dir")]
    argv = tracee.put(b"".join(struct.pack("<Q", w) for w in words) + bytes(8))
    result = translate("execve", (tracee.put(b"/bin/ls\0"), argv, 0, 0, 0, 0), tracee)
    assert ("argv", "ls -l dir") in result.args
    result = translate("rename", (tracee.put(b"dir/file\0"), tracee.put(b"dir/moved\0"), 0, 0, 0, 0), tracee)
    assert [v for n, v in result.args if n == "filename"] == [str(tree / "dir" / "file"), str(tree / "dir" / "moved")]
    assert result.alias == "fswrite"
    rule = exact_expr(result.alias_list)
    assert 'filename[1] eq' in expr_text(rule)


def test_seteuid_alias_gets_the_effective_id() -> None:
    result = translate("setresuid", (0xFFFFFFFF, 70, 0xFFFFFFFF, 0, 0, 0), FakeTracee(Path("/")))
    assert result.alias == "seteuid" and ("uid", "70") in result.alias_list
    assert translate("setresuid", (5, 0xFFFFFFFF, 5, 0, 0, 0), FakeTracee(Path("/"))).alias is None


def test_sockaddr_formats() -> None:
    v4 = struct.pack("<H", socket.AF_INET) + struct.pack(">H", 53) + socket.inet_aton("10.0.0.1") + bytes(8)
    v6 = struct.pack("<H", socket.AF_INET6) + struct.pack(">H", 443) + bytes(4) + socket.inet_pton(socket.AF_INET6, "::1") + bytes(4)
    assert formats.sockaddr(v4) == "inet-[10.0.0.1]:53"
    assert formats.sockaddr(v6) == "inet6-[::1]:443"
    assert formats.sockaddr(struct.pack("<H", socket.AF_UNIX) + b"/dev/log\0") == "/dev/log"
    assert formats.sockaddr(struct.pack("<H", socket.AF_UNIX) + b"\0hidden") == "@hidden"
    assert formats.sockaddr(struct.pack("<H", socket.AF_UNIX)) == "unix-unnamed"
    assert formats.sockaddr(struct.pack("<H", 38) + bytes(14)) == "family(38)"


def test_integer_formats() -> None:
    assert formats.prot(0) == "PROT_NONE" and formats.prot(5) == "PROT_READ|PROT_EXEC"
    assert formats.prot((1 << 32) | 1) == "PROT_READ"  # the kernel ignores the upper half
    assert formats.oflags(os.O_RDWR | os.O_APPEND) == "rwa"
    assert formats.signame(15) == "SIGTERM" and formats.signame(0) == "SIG0"
    assert formats.signame(35).startswith("SIGRTMIN")
    assert formats.socktype(socket.SOCK_STREAM | socket.SOCK_CLOEXEC) == "SOCK_STREAM|SOCK_CLOEXEC"
    assert formats.sockdom(socket.AF_INET6) == "AF_INET6"
    assert formats.fcntl_cmd(1030) == "F_DUPFD_CLOEXEC"
    assert formats.decimal(0xFFFFFF9C) == "-100"


def test_kill_pidname() -> None:
    tracee = FakeTracee(Path("/"), tgid=4242)
    assert translate("kill", (0, 15, 0, 0, 0, 0), tracee).args == [("pidname", "<own process group>"), ("signame", "SIGTERM")]
    assert translate("kill", (0xFFFFFFFF, 9, 0, 0, 0, 0), tracee).args[0] == ("pidname", "<every process: -1>")
    assert translate("kill", (4242, 9, 0, 0, 0, 0), tracee).args[0] == ("pidname", "<own process>")


def test_pids_are_named_by_their_relation_to_the_caller() -> None:
    tracee = FakeTracee(Path("/"), tgid=4242)

    def name(syscall: str, *raw: int) -> list[str]:
        return [v for n, v in translate(syscall, (*raw, 0, 0, 0, 0)[:6], tracee).args if n == "pidname"]

    assert name("kill", 7, 9) == ["<outside the run>"]
    assert name("kill", 8, 9) == ["<descendant: /usr/bin/sleep>"]
    assert name("kill", 9, 9) == ["<descendant: /usr/bin/cat>"]
    assert name("kill", 10, 9) == ["<supervised: /usr/bin/make>"]
    assert name("kill", 99999, 9) == ["<no such process>"]
    assert name("kill", -4242 & 0xFFFFFFFF, 9) == ["<own process group>"]
    assert name("kill", -8 & 0xFFFFFFFF, 9) == ["<process group of descendant: /usr/bin/sleep>"]
    assert name("tgkill", 4242, 4243, 6) == ["<own process>", "<own thread>"]
    assert name("tgkill", 4242, 4242, 6) == ["<own process>", "<own thread>"]
    assert name("tkill", 4243, 6) == ["<own thread>"]
    assert name("prlimit64", 0, 7) == ["<own process>"]
    assert name("prlimit64", 7, 0) == ["<outside the run>"]
    assert name("ptrace", 16, 8) == ["<descendant: /usr/bin/sleep>"]
    assert name("pidfd_send_signal", 5, 9) == ["<descendant: /usr/bin/sleep>"]
    assert name("pidfd_send_signal", 6, 9) == ["<outside the run>"]
    # the number never appears
    for syscall, pid in (("kill", 7), ("kill", 8), ("kill", 10), ("ptrace", 7)):
        raw = (16, pid) if syscall == "ptrace" else (pid, 9)
        assert str(pid) not in "".join(name(syscall, *raw))


def test_alias_table_covers_modern_syscalls() -> None:
    for name in ("openat2", "newfstatat", "statx", "faccessat2", "readlinkat", "unlinkat", "mkdirat", "renameat2",
                 "linkat", "symlinkat", "fchmodat2", "utimensat", "mknodat"):
        assert name in SYSCALLS and name in TRANSLATORS
        assert name in aliases.members("fsread") + aliases.members("fswrite")
    for name in TRANSLATORS:
        assert name in SYSCALLS, name


def test_escape_round_trip_for_question_lines() -> None:
    assert escape('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


def test_unreadable_values_fail_every_comparison_closed() -> None:
    from systrace.call import Call
    from systrace.decide.modes import learned_rule
    from systrace.policy.compiled import CompiledPolicy
    from systrace.policy.match import UNREADABLE

    parser = Parser()
    args = {"argv": [UNREADABLE], "filename": ["/bin/sh"]}
    for text in ('argv neq "x"', 'argv nsub "evil"', 'not argv sub "evil"', 'not argv eq "<unreadable>"',
                 'argv eq "<unreadable>"', 'argv match "*"', 'argv re "."', 'not (argv eq "a" and filename eq "/bin/sh")',
                 'argv nsub "evil" or filename eq "/x"', 'not (argv sub "a" or argv nsub "a")'):
        assert not evaluate(parser.parse_expr(text), args), text
    # what does not depend on the value still decides
    assert evaluate(parser.parse_expr('filename eq "/bin/sh" or argv eq "x"'), args)
    assert not evaluate(parser.parse_expr('filename eq "/x" and argv neq "x"'), args)
    assert evaluate(parser.parse_expr('not (argv eq "a" and filename eq "/x")'), args)
    # a real "<unreadable>" string is an ordinary value
    assert evaluate(parser.parse_expr('argv eq "<unreadable>"'), {"argv": ["<unreadable>"]})
    policy = parser.parse_file('Policy: /bin/sh, Emulation: native\n\tnative-execve: argv eq "<unreadable>" then permit\n')
    compiled = CompiledPolicy(policy.policies[0], lambda text: text)
    assert compiled.first_match("execve", {"argv": [UNREADABLE]}, lambda p: True) is None
    assert compiled.first_match("execve", {"argv": ["<unreadable>"]}, lambda p: True) is not None

    class Notif:
        nr, pid, args = SYSCALLS["execve"], 1, (0,) * 6

    call = Call(Notif(), 1, 0, "/bin/sh")  # type: ignore[arg-type]
    call.translated = (("filename", "/bin/true"), ("argv", UNREADABLE))
    assert learned_rule(call, use_aliases=True) is None  # learning writes no rule on it


def test_ioctl_requests_by_name_and_every_path_argument_translated(tree: Path) -> None:
    tracee = FakeTracee(tree, fds={0: "/dev/pts/3"})
    assert translate("ioctl", (0, 0x5412, 0, 0, 0, 0), tracee).args == [
        ("fd", "0"), ("fdname", "/dev/pts/3"), ("request", "TIOCSTI")]
    assert formats.ioctl_request(0x541B) == "FIONREAD" and formats.ioctl_request(0xDEAD) == "0xdead"
    a, b = tracee.put(b"dir/file\0"), tracee.put(b"dir/other\0")
    for syscall, raw in (("symlink", (a, b)), ("renameat2", (AT_FDCWD, a, AT_FDCWD, b, 2)), ("pivot_root", (a, b)),
                         ("move_mount", (AT_FDCWD, a, AT_FDCWD, b, 0)), ("mount", (a, b, a, 0, 0)),
                         ("chroot", (a,)), ("acct", (a,)), ("swapon", (a, 0)), ("umount2", (a, 0)),
                         ("fchmodat2", (AT_FDCWD, a, 0o644, 0)), ("setxattrat", (AT_FDCWD, a, 0, 0, 0, 0)),
                         ("name_to_handle_at", (AT_FDCWD, a, 0, 0, 0)), ("open_tree", (AT_FDCWD, a, 0)),
                         ("inotify_add_watch", (3, a, 0))):
        args = translate(syscall, (*raw, 0, 0, 0, 0, 0, 0)[:6], tracee).args
        assert ("filename", str(tree / "dir" / "file")) in args or ("filename", str(tree / "dir" / "other")) in args, \
            (syscall, args)
    assert ("target", "dir/file") in translate("symlink", (a, b, 0, 0, 0, 0), tracee).args  # as written


def test_sendmsg_destinations() -> None:
    tracee = FakeTracee(Path("/"))
    address = tracee.put(struct.pack("<HH4s8x", socket.AF_INET, socket.htons(53), socket.inet_aton("10.0.0.1")))
    other = tracee.put(struct.pack("<HH4s8x", socket.AF_INET, socket.htons(53), socket.inet_aton("10.0.0.2")))

    def header(name: int, length: int) -> bytes:
        return struct.pack("<QI4x", name, length) + bytes(40) + bytes(8)  # msghdr + mmsghdr's msg_len

    one = tracee.put(header(address, 16)[:56])
    assert translate("sendmsg", (3, one, 0, 0, 0, 0), tracee).args == [("sockaddr", "inet-[10.0.0.1]:53")]
    connected = tracee.put(header(0, 0)[:56])
    assert translate("sendmsg", (3, connected, 0, 0, 0, 0), tracee).args == [("sockaddr", "<no address>")]
    same = tracee.put(header(address, 16) * 2)
    assert translate("sendmmsg", (3, same, 2, 0, 0, 0), tracee).args == [("sockaddr", "inet-[10.0.0.1]:53")]
    mixed = tracee.put(header(address, 16) + header(other, 16))
    from systrace.policy.match import Unreadable

    assert isinstance(translate("sendmmsg", (3, mixed, 2, 0, 0, 0), tracee).args[0][1], Unreadable)


def test_own_proc_entries_and_pipes_replay(tmp_path: Path) -> None:
    """A learned rule for /proc/self and a pipe on /dev/stdin matches the next run."""
    import re

    from conftest import base_env, systrace

    policies = tmp_path / "policies"
    env = base_env(PATH="/usr/bin:/bin")
    argv = ["sh", "-c", "cat /proc/self/stat /dev/stdin /proc/thread-self/comm > /dev/null"]
    for _ in range(2):
        assert systrace("-d", str(policies), "-A", *argv, input=b"data", env=env).returncode == 0
    texts = "".join(path.read_text() for path in policies.iterdir() if path.is_file())
    assert 'filename eq "/proc/self/stat"' in texts and 'filename eq "pipe:"' in texts
    assert 'filename eq "/proc/thread-self/comm"' in texts
    assert not re.search(r"/proc/\d+/stat\b|pipe:\[", texts)
    before = texts
    assert systrace("-d", str(policies), "-A", *argv, input=b"data", env=env).returncode == 0
    assert "".join(path.read_text() for path in policies.iterdir() if path.is_file()) == before  # nothing added
    enforced = systrace("-d", str(policies), "-a", "-e", *argv, input=b"data", env=env)
    assert enforced.returncode == 0 and b"deny" not in enforced.stderr, enforced


def test_what_systrace_acts_on_keeps_the_tracees_numbers(tree: Path) -> None:
    """The policy sees /proc/self; an emulated call must act on the tracee's entry, never
    on systrace's own /proc/self."""
    tracee = FakeTracee(tree, tgid=1)
    result = translate("unlink", (tracee.put(b"/proc/self/status\0"), 0, 0, 0, 0, 0), tracee)
    assert result.args == [("filename", "/proc/self/status")]
    assert result.targets == [b"/proc/1/status"]
    result = translate("unlink", (tracee.put(b"/proc/thread-self/comm\0"), 0, 0, 0, 0, 0), tracee)
    assert result.args == [("filename", "/proc/thread-self/comm")] and result.targets == [b"/proc/1/task/1/comm"]
    other = FakeTracee(tree, tgid=os.getpid())  # pid 1 by relation; the call acts on /proc/1
    result = translate("unlink", (other.put(b"/proc/1/environ\0"), 0, 0, 0, 0, 0), other)
    assert result.args == [("filename", "/proc/<outside the run>/environ")] and result.targets == [b"/proc/1/environ"]


def test_paths_inside_structures_and_for_some_commands_only(tree: Path) -> None:
    """bpf's BPF_OBJ_PIN/BPF_OBJ_GET pathname inside union bpf_attr (relative to path_fd
    with BPF_F_PATH_FD, else to the working directory; an unreadable struct is an
    unreadable path; other commands name none); quotactl's quota file for Q_QUOTAON only;
    fsconfig's value by command (SET_STRING a string, SET_PATH a path relative to aux)."""
    tracee = FakeTracee(tree, fds={5: str(tree / "dir")})
    name = tracee.put(b"file\0")
    plain = tracee.put(struct.pack("<QIIi", name, 3, 0, 0))
    relative = tracee.put(struct.pack("<QIIi", name, 3, 1 << 14, 5))
    for cmd in (6, 7):
        assert translate("bpf", (cmd, plain, 20, 0, 0, 0), tracee).args == [("cmd", str(cmd)), ("filename", str(tree / "file"))]
        assert translate("bpf", (cmd, relative, 20, 0, 0, 0), tracee).args[1] == ("filename", str(tree / "dir" / "file"))
    assert translate("bpf", (6, 0, 20, 0, 0, 0), tracee).args[1] == ("filename", UNREADABLE)
    assert translate("bpf", (6, plain, 8, 0, 0, 0), tracee).args[1] == ("filename", str(tree / "file"))  # (short: no flags)
    assert translate("bpf", (0, plain, 20, 0, 0, 0), tracee).args == [("cmd", "0")]  # BPF_MAP_CREATE: no path
    device, quota = tracee.put(b"dir\0"), tracee.put(b"dir/file\0")
    on = translate("quotactl", ((0x800002 << 8), device, 0, quota, 0, 0), tracee).args
    assert [value for key, value in on if key == "filename"] == [str(tree / "dir"), str(tree / "dir" / "file")]
    get = translate("quotactl", ((0x800007 << 8), device, 0, quota, 0, 0), tracee).args
    assert [value for key, value in get if key == "filename"] == [str(tree / "dir")]
    assert ("filename", "<null>") in translate("quotactl", ((0x800001 << 8), 0, 0, 0, 0, 0), tracee).args
    key, value = tracee.put(b"source\0"), tracee.put(b"file\0")
    assert translate("fsconfig", (3, 1, key, value, 0, 0), tracee).args[-2:] == [("key", "source"), ("value", "file")]
    assert translate("fsconfig", (3, 3, key, value, 5, 0), tracee).args[-2:] == [
        ("key", "source"), ("filename", str(tree / "dir" / "file"))]
    assert [k for k, _ in translate("fsconfig", (3, 2, key, value, 4, 0), tracee).args] == ["fd", "fdname", "cmd", "key"]


@pytest.mark.parametrize("becomes", ["file", "nothing"])
def test_a_symlink_changed_between_its_lstat_and_its_readlink_is_looked_at_again(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, becomes: str) -> None:
    """A rename racing the walk (found by an adversarial review: 28 of 3000 calls): the
    name was a symlink at the lstat and is a file, or gone, at the readlink. Before, the
    readlink's ENOENT or EINVAL escaped as an internal error (EPERM, where natively the
    call found what is there now); now the name is looked at again."""
    (tmp_path / "target").write_text("t")
    link = tmp_path / "name"
    link.symlink_to(tmp_path / "target")
    real_readlink = os.readlink
    changed = []

    def racing_readlink(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if os.fsencode(path) == os.fsencode(link) and not changed:
            changed.append(True)
            link.unlink()
            if becomes == "file":
                link.write_text("now a file")
        return real_readlink(path, *args, **kwargs)

    monkeypatch.setattr(os, "readlink", racing_readlink)
    # the file there now; or, gone, the missing last name (as the kernel's lookup: ENOENT, or O_CREAT makes it)
    assert walk(b"", [], os.fsencode(link), True, FakeTracee(tmp_path)) == os.fsencode(link)
    assert changed == [True]
