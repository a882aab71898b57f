"""The fast path for repeated path calls (translate/path_cache.py, issue 16 item 4): a
hit gives exactly the translation translating in full gives, whatever changed since
(renames, symlinks, a dup2 onto the dirfd, a close, a chdir), because every part of its
key is read again at each call and the symlink-free open is redone. Pure checks on a
fake tracee over a real directory tree, then real processes under systrace."""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from pathlib import Path

from conftest import run, systrace
from hypothesis import given, settings
from hypothesis import strategies as st
from test_translate import FakeTracee

from systrace.kernel.emulate import PROBED_CALLS, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS
from systrace.kernel.procfs import own_link
from systrace.policy.store import file_name
from systrace.translate.filename import AT_FDCWD, _plain
from systrace.translate.path_cache import SHAPES, PathCache, joined
from systrace.translate.translator import Translated, translate

AT_SYMLINK_NOFOLLOW = 0x100
FIELDS = ("args", "alias", "alias_list", "open_target", "open_link", "open_root", "open_flags", "open_mode", "targets",
          "tails", "fd_form", "read_memory", "native_error", "proc_pins", "reaches_systrace")


def _summary(result: Translated) -> tuple[object, ...]:
    return tuple(getattr(result, name) for name in FIELDS)


def _both(cache: PathCache, tracee: FakeTracee, syscall: str, raw: tuple[int, ...]) -> tuple[Translated, Translated]:
    cached = cache.translate(syscall, raw, tracee, keep_probe=True)
    full = translate(syscall, raw, tracee, keep_probe=True)
    try:
        assert _summary(cached) == _summary(full), (syscall, cached.args, full.args)
        if syscall in PROBED_CALLS and cached.open_probe >= 0:  # a stat's, a readlink's from the cache: of its one target
            assert cached.targets == [own_link(cached.open_probe)] and cached.tails == [b""]
        else:
            assert (cached.open_probe >= 0) == (full.open_probe >= 0)
    finally:
        cached.release()
        full.release()
    return cached, full


def test_the_cached_calls_read_one_path_and_integers_only() -> None:
    assert {"open", "openat", "creat", "newfstatat", "stat", "lstat", "statx", "access", "faccessat2",
            "readlinkat"} <= set(SHAPES)
    assert not {"openat2", "execve", "rename", "unlinkat", "mkdirat", "connect", "utimensat"} & set(SHAPES)
    assert SHAPES["openat"].keyed == (0, 2, 3) and SHAPES["newfstatat"].keyed == (0, 3)


@given(st.lists(st.sampled_from(["a", "b", ".", "..", "", "proc"]), max_size=6), st.booleans())
def test_joined_is_the_plain_path_or_nothing(parts: list[str], absolute: bool) -> None:
    path = ("/" if absolute else "") + "/".join(parts)
    result = joined(b"/base", path.encode())
    names = [p for p in (path if path.startswith("/") else "/base/" + path).split("/") if p]
    if not names or names[0] == "proc" or "." in names or ".." in names:
        assert result is None
    else:
        assert result == os.path.normpath("/" + "/".join(names)).encode()
    assert joined(b"pipe:[12]", b"f") is None  # a dirfd naming no directory


def test_a_repeated_open_hits_and_a_rename_a_symlink_or_a_missing_file_miss(tmp_path: Path) -> None:
    """... and a missing file, once translated in full, is a hit as missing."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_text("x")
    tracee = FakeTracee(tmp_path, {3: str(tmp_path / "d")})
    cache = PathCache()
    relative, absolute = tracee.put(b"f\0"), tracee.put(os.fsencode(tmp_path / "d" / "f") + b"\0")
    on_dirfd = (3, relative, os.O_RDONLY, 0, 0, 0)
    for _ in range(3):
        _both(cache, tracee, "openat", on_dirfd)
        _both(cache, tracee, "newfstatat", (3, relative, 0, 0, 0, 0))
        _both(cache, tracee, "openat", (AT_FDCWD & 0xFFFFFFFF, absolute, os.O_RDONLY, 0, 0, 0))
    assert (cache.hits, cache.misses) == (6, 3)
    os.rename(tmp_path / "d", tmp_path / "e")  # what the dirfd names is read again: a new key
    tracee._fds[3] = str(tmp_path / "e")
    cached, _ = _both(cache, tracee, "openat", on_dirfd)
    # (a new key; the same shape: the translation of d/f with the new name, not a walk)
    assert cached.open_target == os.fsencode(tmp_path / "e" / "f") and (cache.misses, cache.shaped) == (3, 1)
    (tmp_path / "d").mkdir()
    os.symlink(tmp_path / "e" / "f", tmp_path / "d" / "f")  # the old name is a symlink now
    cached, _ = _both(cache, tracee, "openat", (AT_FDCWD & 0xFFFFFFFF, absolute, os.O_RDONLY, 0, 0, 0))
    assert cached.open_target == os.fsencode(tmp_path / "e" / "f") and (cache.misses, cache.shaped) == (4, 1)
    os.unlink(tmp_path / "e" / "f")  # missing: its translation names it as to be created, as in full
    before, missed = cache.hits, cache.misses
    for _ in range(3):
        cached, _ = _both(cache, tracee, "openat", on_dirfd)
    # (the first probe fails: in full, kept as MISSING; then hits while its directory is there)
    assert (cache.hits - before, cache.misses - missed) == (2, 1)
    del tracee._fds[3]  # closed: the kernel's EBADF, whatever is decided
    cached, _ = _both(cache, tracee, "openat", on_dirfd)
    assert cached.native_error == errno.EBADF and cached.open_target is None


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["open", "stat", "lstat", "rename", "symlink", "unlink", "mkfile", "cwd",
                                           "dup2"]),
                          st.sampled_from(["x", "y", "x/f", "y/f", "x/l", "f", "l", "l/f", "x/g"])),
                min_size=1, max_size=30))
def test_a_cached_translation_is_always_the_full_one(steps: list[tuple[str, str]]) -> None:
    """Random changes to the tree, the cwd and the dirfd between repeated calls: each
    call's cached translation equals its full one."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "x").mkdir()
        (root / "x" / "f").write_text("f")
        tracee = FakeTracee(root, {3: str(root / "x")})
        cache = PathCache()
        for action, name in steps:
            target = root / name
            address = tracee.put(name.encode() + b"\0")
            try:
                if action == "rename":
                    os.rename(target, root / ("y" if name.startswith("x") else "x") / "f" if "/" in name else
                              root / ("y" if name == "x" else "x"))
                elif action == "symlink":
                    os.symlink(root / "x", target)
                elif action == "unlink":
                    os.unlink(target) if not target.is_dir() or target.is_symlink() else os.rmdir(target)
                elif action == "mkfile":
                    target.write_text("m")
                elif action == "cwd":
                    tracee._cwd = root / name
                elif action == "dup2":
                    tracee._fds[3] = str(root / name)
            except OSError:
                pass
            for dirfd in (AT_FDCWD & 0xFFFFFFFF, 3):
                _both(cache, tracee, "openat", (dirfd, address, os.O_RDONLY, 0, 0, 0))
                _both(cache, tracee, "newfstatat", (dirfd, address, 0, AT_SYMLINK_NOFOLLOW, 0, 0))
                _both(cache, tracee, "newfstatat", (dirfd, address, 0, 0, 0, 0))
                _both(cache, tracee, "openat", (dirfd, address, os.O_RDONLY, 0, 0, 0))


_NAMES = ["a", "b.py", "sub", "sub/", "sub/c", "sub//c", "link", "sub/link", "missing", "dirlink/c", "dirlink/e",
          "dirlink/gone", "sub/gone", "d\xe9", "d\xff",
          "sub/../a", "./a", "a/", "memfd:x"]
_FLAGS = [os.O_RDONLY, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY, os.O_PATH,
          os.O_DIRECTORY, os.O_WRONLY]


def _named_tree(root: Path) -> None:
    (root / "sub").mkdir()
    for name in ("a", "b.py", "sub/c", "sub/e", "d\xe9"):
        (root / name).write_text(name)
    (root / os.fsdecode(b"d\xff")).write_text("raw")
    os.symlink(root / "a", root / "link")
    os.symlink("../a", root / "sub" / "link")
    os.symlink(root / "sub", root / "dirlink")


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_NAMES), st.sampled_from(_FLAGS), st.booleans(), st.booleans()),
                min_size=1, max_size=25), st.booleans())
def test_a_new_file_translated_from_the_same_shape_is_the_full_translation(
        calls: list[tuple[str, int, bool, bool]], aliases: bool) -> None:
    """tar's shape (each file new, stat'ed then opened on its directory's descriptor): a
    miss translated from another file's translation of the same call and integers
    equals its full translation, whatever the name (a symlink, a directory, a trailing
    slash, `..`, a name that is not UTF-8, a missing file)."""
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        _named_tree(root)
        tracee = FakeTracee(root, {3: str(root), 4: str(root / "sub")})
        cache = PathCache()
        for name, flags, on_sub, stat in calls:
            address = tracee.put(os.fsencode(name) + b"\0")
            dirfd = 4 if on_sub else 3
            if stat:
                cached, _ = _both(cache, tracee, "newfstatat", (dirfd, address, 0, AT_SYMLINK_NOFOLLOW, 0, 0))
            else:
                cached, _ = _both(cache, tracee, "openat", (dirfd, address, flags, 0, 0, 0))
            cached, _ = _both(cache, tracee, "newfstatat", (AT_FDCWD & 0xFFFFFFFF, address, 0, 0, 0, 0))
        cached, _ = _both(cache, tracee, "stat", (tracee.put(os.fsencode(root / "a") + b"\0"), 0, 0, 0, 0, 0))


def test_new_files_of_one_shape_are_not_walked(tmp_path: Path) -> None:
    """The second file of a shape and every one after it: no full translation."""
    names = [f"f{index}" for index in range(20)]
    for name in names:
        (tmp_path / name).write_text(name)
    tracee = FakeTracee(tmp_path, {3: str(tmp_path)})
    cache = PathCache()
    for name in names:
        address = tracee.put(name.encode() + b"\0")
        _both(cache, tracee, "newfstatat", (3, address, 0, AT_SYMLINK_NOFOLLOW, 0, 0))
        cached, _ = _both(cache, tracee, "openat", (3, address, os.O_RDONLY | os.O_NOFOLLOW, 0, 0, 0))
        assert cached.open_target == os.fsencode(tmp_path / name) and cached.args[0] == ("filename", str(tmp_path / name))
    assert (cache.misses, cache.shaped, cache.hits) == (2, 38, 0)
    os.symlink(tmp_path / "f0", tmp_path / "l")  # a symlink: never from the shape
    _both(cache, tracee, "openat", (3, tracee.put(b"l\0"), os.O_RDONLY | os.O_NOFOLLOW, 0, 0, 0))
    assert (cache.misses, cache.shaped) == (3, 38)


def test_a_probe_that_failed_is_not_made_again_by_the_full_translation(tmp_path: Path, monkeypatch) -> None:
    """A symlink on the way (merged /usr's /lib) or a missing file: the path cache's probe
    of the plain path fails, and the full translation walks it at once instead of making
    the same openat2 again: the symlink on the way is followed by the kernel once
    (filename._followed), and the answer is the walk's."""
    from systrace.translate import filename, path_cache

    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_text("x")
    os.symlink("real", tmp_path / "lib")
    made: list[tuple[bytes, int]] = []

    def counted(dirfd: int, path: bytes, flags: int, mode: int, resolve: int) -> int:
        made.append((path, resolve))
        return real(dirfd, path, flags, mode, resolve)

    real = filename.openat2
    monkeypatch.setattr(filename, "openat2", counted)
    monkeypatch.setattr(path_cache, "openat2", counted)
    tracee = FakeTracee(tmp_path, {3: str(tmp_path)})
    cache = PathCache()
    through_link = tracee.put(b"lib/f\0")
    for name in ("a", "b"):  # a shape: the second file is probed by the cache first
        (tmp_path / name).write_text(name)
        _both(cache, tracee, "newfstatat", (3, tracee.put(name.encode() + b"\0"), 0, AT_SYMLINK_NOFOLLOW, 0, 0))
    made.clear()
    cached = cache.translate("newfstatat", (3, through_link, 0, AT_SYMLINK_NOFOLLOW, 0, 0), tracee)
    through = os.fsencode(tmp_path / "lib" / "f")
    # the cache's probe; where the kernel leads, following the last name and not (the
    # path cache's FOLLOWED check: no symlink last); the full translation's own follow
    probe, follow = (through, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS), (through, RESOLVE_NO_MAGICLINKS)
    assert made == [probe, follow, follow, follow] and cache.misses == 2
    assert cached.args == translate("newfstatat", (3, through_link, 0, AT_SYMLINK_NOFOLLOW, 0, 0), tracee).args
    assert cached.args[0] == ("filename", str(tmp_path / "real" / "f"))
    made.clear()  # again: kept as FOLLOWED, a hit on the same three opens, no translation
    again = cache.translate("newfstatat", (3, through_link, 0, AT_SYMLINK_NOFOLLOW, 0, 0), tracee)
    assert made == [probe, follow, follow] and (cache.misses, cache.hits) == (2, 1) and again.args == cached.args
    missing = tracee.put(b"gone\0")  # (ld.so.preload's access at each exec): one probe per call
    for _ in range(3):
        made.clear()
        _both(cache, tracee, "newfstatat", (3, missing, 0, AT_SYMLINK_NOFOLLOW, 0, 0))
        gone = [made_path for made_path, _ in made if made_path == os.fsencode(tmp_path / "gone")]
        assert len(gone) == 2  # the cached translation's probe, the full one's (_both): then its directory's


def test_missing_names_and_paths_through_a_symlink_are_kept_as_what_they_are(tmp_path: Path) -> None:
    """gcc's header search (a new missing name of one shape each time) and merged /usr's
    /lib (a symlinked directory on the way): after the first of a shape, neither is
    translated in full again; each change to what the path is (the file created, the
    last name made a symlink, the directory made a symlink or removed) is seen by the
    next call, whose translation is the full one (_both)."""
    (tmp_path / "real").mkdir()
    os.symlink("real", tmp_path / "lib")
    tracee = FakeTracee(tmp_path, {3: str(tmp_path)})
    cache = PathCache()

    def stat(name: str) -> Translated:
        return _both(cache, tracee, "newfstatat", (3, tracee.put(name.encode() + b"\0"), 0, 0, 0, 0))[0]

    for index in range(6):  # a search: each name new and missing
        stat(f"real/h{index}.h")
    # (the first is kept as PRESENT, its probe not made by the cache; the second fails the
    # probe, its translation is kept as MISSING: the others are of its shape)
    assert (cache.misses, cache.shaped) == (2, 4)
    for index in range(6):  # each file found through the symlinked directory
        (tmp_path / "real" / f"lib{index}.so").write_text("x")
        assert stat(f"lib/lib{index}.so").args[0] == ("filename", str(tmp_path / "real" / f"lib{index}.so"))
    assert (cache.misses, cache.shaped) == (3, 9)  # (the first through the symlink in full)
    hits = cache.hits
    stat("real/h3.h"), stat("lib/lib0.so")
    assert (cache.hits - hits, cache.misses) == (2, 3)
    (tmp_path / "real" / "h3.h").write_text("now there")
    os.unlink(tmp_path / "real" / "lib0.so")
    os.symlink("lib1.so", tmp_path / "real" / "lib0.so")  # the last name a symlink: where the call leads depends on it
    assert stat("real/h3.h").targets == [os.fsencode(tmp_path / "real" / "h3.h")]
    assert stat("lib/lib0.so").args[0] == ("filename", str(tmp_path / "real" / "lib1.so"))
    assert cache.misses == 4
    os.rename(tmp_path / "real", tmp_path / "moved")
    os.symlink("moved", tmp_path / "real")  # the missing names' directory is a symlink now
    stat("real/h1.h")
    shutil.rmtree(tmp_path / "moved")  # and then nothing: below a missing directory
    assert stat("real/h2.h").args[0][1].startswith("/<non-existent filename>: ")
    assert stat("lib/lib2.so").args[0][1].startswith("/<non-existent filename>: ")
    assert cache.misses == 7


def test_a_hit_needs_the_symlink_free_open_the_plain_path_makes(tmp_path: Path) -> None:
    """What a hit stands for is filename._plain's answer: the same canonical path."""
    (tmp_path / "f").write_text("x")
    probes: list[int] = []
    assert _plain(os.fsencode(tmp_path), b"f", None, probes) == joined(os.fsencode(tmp_path), b"f")
    for fd in probes:
        os.close(fd)


def _tree(directory: Path) -> None:
    for name, text in (("a", "a"), ("c", "c")):
        (directory / name).mkdir(parents=True)
        (directory / name / "f").write_text(text)


NATIVE = b"""dirfd open: a
dirfd stat: size 1
dirfd open: a
dirfd stat: size 1
dirfd open: a
dirfd stat: size 1
dirfd open after rename: a
dirfd stat after rename: size 1
dirfd open after dup2: c
dirfd open after close: EBADF
dirfd stat after close: EBADF
cwd open: c
cwd open after rename: c
cwd open through a symlink: new a
absolute open: new a
absolute open again: new a
"""


def test_repeated_path_calls_of_a_real_process_hit_and_see_every_change(cbin, tmp_path: Path) -> None:
    """Renames of the dirfd's and the cwd's directories, a dup2 onto the dirfd, its
    close, a symlink swapped in: each seen by the next call, as natively (none of those
    calls needs to reach systrace for it: nothing is kept per descriptor)."""
    binary = cbin("pathcache")
    work = tmp_path / "native"
    _tree(work)
    assert run([binary, str(work)]).stdout == NATIVE
    policies = tmp_path / "policies"
    learned = tmp_path / "learned"
    _tree(learned)
    assert systrace("-d", str(policies), "-A", binary, str(learned)).stdout == NATIVE
    shutil.rmtree(learned)  # the same names again, for the learned rules
    _tree(learned)
    enforced = systrace("-d", str(policies), "-a", "--stats", binary, str(learned))
    assert enforced.stdout == NATIVE, enforced
    hits = re.search(rb"path cache: (\d+) path calls translated from it", enforced.stderr)
    assert hits and int(hits.group(1)) >= 4, enforced.stderr[-600:]
    routed = enforced.stderr.split(b"routed by system call: ")[1]
    assert b"close" not in routed and b"dup2" not in routed, routed  # decided in the kernel


def test_a_renamed_directory_is_decided_by_its_new_name_after_hits(cbin, tmp_path: Path) -> None:
    """The dirfd's opens hit the cache under the name a/f; once the directory is renamed
    to b, the same call names b/f, which this policy does not permit: denied, never the
    decision kept for a/f."""
    binary = cbin("pathcache")
    directory = tmp_path / "t"
    _tree(directory)
    policies = tmp_path / "policies"
    assert systrace("-d", str(policies), "-A", binary, str(directory)).returncode == 0
    path = policies / file_name(binary)
    text, count = re.subn(rf'\tnative-fsread: filename eq "{re.escape(str(directory / "b" / "f"))}" then permit\n', "",
                          path.read_text())
    assert count == 1, text
    path.write_text(text)
    shutil.rmtree(directory)
    _tree(directory)
    enforced = systrace("-d", str(policies), "-a", binary, str(directory))
    lines = enforced.stdout.decode().splitlines()
    assert lines[:6] == ["dirfd open: a", "dirfd stat: size 1"] * 3, enforced
    assert lines[6].startswith("dirfd open after rename: E") and lines[7].startswith("dirfd stat after rename: E"), lines
    assert str(directory / "b" / "f").encode() in enforced.stderr, enforced.stderr[-600:]


def test_the_stat_of_a_closed_dirfd_fails_as_natively_with_ebadf(cbin, tmp_path: Path) -> None:
    """A relative path on a descriptor that is not open: EBADF (the kernel's, before
    any lookup), not the ENOENT of a missing file, and nothing denied or learned."""
    binary = cbin("pathcache")
    directory = tmp_path / "t"
    _tree(directory)
    policies = tmp_path / "policies"
    learned = systrace("-d", str(policies), "-A", binary, str(directory))
    assert b"dirfd open after close: EBADF\ndirfd stat after close: EBADF\n" in learned.stdout, learned
    assert "non-existent" not in (policies / file_name(binary)).read_text()


def test_a_copy_of_a_translation_sets_every_field() -> None:
    original = Translated([("filename", "/f")], "fsread", [("filename", "/f")])
    original.open_probe = 99  # (not a descriptor: never closed here)
    copy = original.copy()
    original.open_probe = -1
    for name in Translated.__slots__:  # a field added later must be copied too
        value = getattr(copy, name)
        assert value == ({} if name == "proc_pins" else -1 if name == "open_probe" else getattr(original, name)), name


def test_an_unreadable_path_is_read_once(tmp_path: Path) -> None:
    """A read that failed (perhaps after waiting on the tracee's memory) is not made again
    to translate in full: the same error, translated as always."""
    tracee = FakeTracee(tmp_path)
    reads: list[int] = []
    real = tracee.string

    def counted(address: int, limit: int = 4096) -> bytes:
        reads.append(address)
        return real(address, limit)

    tracee.string = counted  # type: ignore[method-assign]
    cached = PathCache().translate("openat", (AT_FDCWD & 0xFFFFFFFF, 0xDEAD000, os.O_RDONLY, 0, 0, 0), tracee)
    assert reads == [0xDEAD000] and cached.args[0] == ("filename", "<unreadable>"), cached.args


def test_the_full_translations_of_a_loop_of_execs_do_not_grow_with_its_processes(tmp_path: Path) -> None:
    """Each /bin/true the loop starts: its loader's access of the missing
    /etc/ld.so.preload and its open of libc through merged /usr's /lib (where /lib is a
    symlink) are answered from the path cache after the first process, so 12 processes
    translate no more paths in full than 4 (before, two more per process)."""
    policies = tmp_path / "policies"
    loop = "for i in $(seq {}); do /bin/true; done"
    for count in (4, 12):  # learned for both argv
        for _ in range(2):
            assert systrace("-d", str(policies), "-A", "sh", "-c", loop.format(count)).returncode == 0
    in_full = {}
    for count in (4, 12):
        result = systrace("-d", str(policies), "--stats", "-a", "sh", "-c", loop.format(count))
        assert result.returncode == 0, result.stderr[-800:]
        found = re.search(rb"path cache: (\d+) path calls translated from it .*?, (\d+) in full", result.stderr)
        assert found, result.stderr[-800:]
        in_full[count] = int(found.group(2))
        assert int(found.group(1)) >= 3 * count  # (ld.so.cache, ld.so.preload, libc: each process's)
    assert in_full[12] == in_full[4], in_full
