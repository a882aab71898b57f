"""The fast path for a repeated open or stat of the same file (issue 16 item 4): the
translation of a path call kept by exactly what it is a function of, so a hit skips the
work of translating again and never gives another answer than translating would.

A path call whose path, joined to its base, is plain (no `.` or `..`, not below /proc)
and in which the kernel finds no symlink (openat2 RESOLVE_NO_SYMLINKS) translates to
that joined path whatever else holds (filename._plain). Its whole translation is then a
function of: the call and its integer arguments (dirfd, flags, mode), the path bytes
read, the base they are joined to (the cwd or what the dirfd names, read now), the root
(read now, "/" only), and whether aliases are on. That is the key. Nothing is
remembered that another process could change: every part of the key is read again at
each call, and a hit holds only once the same RESOLVE_NO_SYMLINKS open of the path
succeeds again now (its descriptor is the open's probe, as on a miss). A rename, a new
symlink, a missing file, a chdir, a dup2 onto the dirfd or a chroot all change the key
or fail that open: then the call is translated in full.

What the base is is read at every call, never kept per (process, descriptor): a
directory can be renamed by any process, which changes what its descriptor names
without any call of the tracee's (README "Caches").

A miss of another file has a fast path too (tar: every file is new, each stat'ed and
opened on its directory's descriptor). The same facts make a plain path's translation
a function of the canonical path and the integer arguments alone: a plain joined path
with no trailing slash (its tail is b""), not starting /memfd: (named as an object), in
which the same RESOLVE_NO_SYMLINKS open finds no symlink now, translates as the last
plain translation of the same call and integers (its shape) with the filename its own
(`_renamed`). Anything else, or no such translation yet, is translated in full.

Two other outcomes of the plain path's probe are kept too, each standing for the fast
route filename.resolve_bytes itself takes after that probe, checked again at each hit:
- MISSING: the probe fails ENOENT and the path's directory opens without a symlink
  (filename._missing_last): only the last name is missing, and the translation is the
  plain path's as a name to be created (ld.so.preload's access at every exec, gcc's
  header search: each a new name of the same shape);
- FOLLOWED: the probe fails ELOOP and the kernel, following symlinks, leads to the same
  place whether or not it follows the last one (filename._followed both ways: the last
  name is no symlink): merged /usr's /lib/x86_64-linux-gnu/libc.so.6 at every exec. The
  translation is the one of where it led, as in full."""

from __future__ import annotations

import errno
import operator
import os

from ..kernel.emulate import PROBED_CALLS, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, openat2
from ..kernel.memory import PATH_MAX, MemoryError_
from . import formats
from .filename import AT_FDCWD, _followed, _may_look_up, _missing_last
from .table import TRANSLATORS, IntArg, PathArg
from .translator import NAME_ARGS, Translated, translate

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable

    from .tracee import Tracee

MAX_ENTRIES = 4096  # past this the cache starts again (a run touches fewer hot paths)
# what the plain path's probe found when an entry was kept (see the module's text)
PRESENT, MISSING, FOLLOWED = 0, 1, 2
_OPEN_MODE_INDEX = {"open": 2, "openat": 3, "creat": 1}  # translator._open_mode's registers


class Shape:
    """Where a cacheable call's path, dirfd and translated integers are."""

    __slots__ = ("path", "dirfd", "keyed", "integers")

    def __init__(self, path: int, dirfd: int | None, keyed: tuple[int, ...]):
        self.path, self.dirfd, self.keyed = path, dirfd, keyed
        # raw -> the registers at `keyed`, as a tuple (built per call: no list comprehension)
        self.integers: Callable[[tuple[int, ...]], tuple[int, ...]] = _picker(keyed)


def _picker(indices: tuple[int, ...]) -> Callable[[tuple[int, ...]], tuple[int, ...]]:
    if len(indices) >= 2:
        return operator.itemgetter(*indices)  # type: ignore[return-value]  # (a tuple for two or more)
    if indices:
        index = indices[0]
        return lambda raw: (raw[index],)
    return lambda raw: ()


def _shapes() -> dict[str, Shape]:
    """The calls whose translation reads nothing but one path and integer registers
    (open, openat, creat, the stat, access and readlink families...). Not openat2
    (struct open_how in memory), not the calls that make or remove a name."""
    shapes: dict[str, Shape] = {}
    for name, specs in TRANSLATORS.items():
        paths = [spec for spec in specs if isinstance(spec, PathArg)]
        if len(paths) != 1 or name in NAME_ARGS or not all(isinstance(s, (IntArg, PathArg)) for s in specs):
            continue
        path = paths[0]
        if path.nullable or path.struct is not None:
            continue  # utimensat(fd, NULL): a descriptor form by address; bpf's path in its struct
        keyed = {spec.index for spec in specs if isinstance(spec, IntArg)}
        keyed |= {index for index in (path.dirfd, path.flags, _OPEN_MODE_INDEX.get(name)) if index is not None}
        shapes[name] = Shape(path.index, path.dirfd, tuple(sorted(keyed)))
    return shapes


SHAPES = _shapes()


def joined(base: bytes, path: bytes) -> bytes | None:
    """The canonical path `path` names from `base` when it is plain (filename._plain's
    test, without the lookup), else None."""
    full = path if path.startswith(b"/") else base + b"/" + path
    if not full.startswith(b"/"):
        return None  # a dirfd naming no directory (a pipe...): unresolvable
    parts = [part for part in full.split(b"/") if part]
    if not parts or parts[0] == b"proc" or b"." in parts or b".." in parts:
        return None
    return b"/" + b"/".join(parts)


class _Pinned:
    """The tracee as it was read for the key: a miss is translated from exactly the path
    and base the key holds (a second read could see other bytes), the rest read live."""

    def __init__(self, tracee: Tracee, address: int, path: bytes | MemoryError_, dirfd: int | None,
                 base: bytes | None, unplain: tuple[bytes, int] | None = None):
        self._tracee, self._address, self._path, self._dirfd, self._base = tracee, address, path, dirfd, base
        self.unplain = unplain  # (a canonical path, errno) the plain probe just failed with (filename._plain: not tried again)

    def string(self, address: int, limit: int = 4096) -> bytes:
        if address == self._address:
            if isinstance(self._path, MemoryError_):
                raise self._path
            return self._path
        return self._tracee.string(address, limit)

    def cwd(self) -> bytes:
        return self._base if self._base is not None and self._dirfd is None else self._tracee.cwd()

    def fd_path(self, fd: int) -> bytes:
        return self._base if self._base is not None and fd == self._dirfd else self._tracee.fd_path(fd)

    def __getattr__(self, name: str) -> object:
        return getattr(self._tracee, name)


def _pinned(tracee: Tracee, address: int, path: bytes | MemoryError_, dirfd: int | None, base: bytes | None,
            unplain: tuple[bytes, int] | None = None) -> Tracee:
    return _Pinned(tracee, address, path, dirfd, base, unplain)  # type: ignore[return-value]  # (the rest by __getattr__)


class PathCache:
    """Translations of plain path calls by their key (see the module's text)."""

    def __init__(self) -> None:
        # key -> (the plain path probed, its translation, what the probe found: PRESENT...)
        self._entries: dict[tuple[object, ...], tuple[bytes, Translated, int]] = {}
        # (call, aliases, integers) -> a plain translation of that shape per PRESENT, MISSING, FOLLOWED
        self._shapes: dict[tuple[object, ...], list[Translated | None]] = {}
        self.hits = 0
        self.misses = 0  # cacheable calls translated in full
        self.shaped = 0  # misses translated from another file's translation of the same shape

    def translate(self, syscall: str, raw: tuple[int, ...], tracee: Tracee, use_aliases: bool = True,
                  keep_probe: bool = False) -> Translated:
        shape = SHAPES.get(syscall)
        if shape is None or raw[shape.path] == 0:
            return translate(syscall, raw, tracee, use_aliases, keep_probe)
        address = raw[shape.path]
        try:
            path = tracee.string(address, PATH_MAX - 1)
        except MemoryError_ as error:  # translated with that error, never read twice (it may have waited)
            return translate(syscall, raw, _pinned(tracee, address, error, None, None), use_aliases, keep_probe)
        if not path:  # (AT_EMPTY_PATH: the descriptor form)
            return translate(syscall, raw, _pinned(tracee, address, path, None, None), use_aliases, keep_probe)
        dirfd = formats.s32(raw[shape.dirfd]) if shape.dirfd is not None else None
        try:
            if path.startswith(b"/"):
                base, dirfd = b"/", None
            elif dirfd is None or dirfd == AT_FDCWD:
                base, dirfd = tracee.cwd(), None
            else:
                base = tracee.fd_path(dirfd)
        except OSError:  # its own error, as always
            return translate(syscall, raw, _pinned(tracee, address, path, None, None), use_aliases, keep_probe)
        if tracee.root() != b"/":
            return translate(syscall, raw, _pinned(tracee, address, path, dirfd, None if path.startswith(b"/") else base),
                             use_aliases, keep_probe)
        integers = shape.integers(raw)
        key = (syscall, use_aliases, path, base, *integers)
        entry = self._entries.get(key)
        unplain = None  # (the plain path, errno) a probe below failed with: the full translation does not probe again
        found: tuple[int, bytes | None] | None = None  # what that failed probe's path is (_found)
        if entry is not None:
            probed, template, state = entry
            _may_look_up(tracee, probed)  # (a FUSE mount may have appeared since)
            try:
                probe = openat2(AT_FDCWD, probed, os.O_PATH | os.O_CLOEXEC, 0,
                                RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
            except OSError as error:
                unplain = (probed, error.errno or 0)
                if state != PRESENT:
                    found = _found(base, path, tracee, unplain[1])
                    if found == (state, template.targets[0]):
                        self.hits += 1
                        return _fresh(template, -1, False)
                del self._entries[key]  # a symlink, a missing file now: translated in full
            else:
                if state == PRESENT:
                    self.hits += 1
                    return _fresh(template, probe, keep_probe and _keeps_probe(syscall, template))
                os.close(probe)  # (there now, symlink-free: translated in full)
                del self._entries[key]
        plain = joined(base, path)
        shape_key = (syscall, use_aliases, *integers)
        # (not when the entry's probe just failed: it was of this same path)
        if plain is not None and unplain is None and _renamable(path, plain) and shape_key in self._shapes:
            _may_look_up(tracee, plain)
            try:
                probe = openat2(AT_FDCWD, plain, os.O_PATH | os.O_CLOEXEC, 0, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
            except OSError as error:
                unplain = (plain, error.errno or 0)  # a symlink, a missing file: as found, else in full
                found = _found(base, path, tracee, unplain[1])
                state, there = found
                same_shape = self._shapes[shape_key][state] if there is not None else None
                if same_shape is not None and there is not None and _renamable(path, there):
                    self.shaped += 1
                    entry_result = _renamed(same_shape, there)
                    self._keep(key, plain, entry_result, state)
                    return _fresh(entry_result, -1, False)
            else:
                same_shape = self._shapes[shape_key][PRESENT]
                if same_shape is not None:
                    self.shaped += 1
                    entry_result = _renamed(same_shape, plain)
                    self._keep(key, plain, entry_result, PRESENT)
                    return _fresh(entry_result, probe, keep_probe and _keeps_probe(syscall, entry_result))
                os.close(probe)  # (no plain translation of this shape yet: in full)
        self.misses += 1  # (the pinned tracee is made only now: a hit needs none)
        result = translate(syscall, raw, _pinned(tracee, address, path, dirfd, None if path.startswith(b"/") else base,
                                                 unplain), use_aliases, keep_probe)
        if plain is not None:
            if unplain is not None and found is None:
                found = _found(base, path, tracee, unplain[1])
            self._keep_translated(key, shape_key, path, plain, found, result)
        return result

    def _keep_translated(self, key: tuple[object, ...], shape_key: tuple[object, ...], path: bytes, plain: bytes,
                         found: tuple[int, bytes | None] | None, result: Translated) -> None:
        """Keep a full translation if it is the one a plain path gives, with what its probe
        found: PRESENT when no probe of it failed in this call (a hit probes it again),
        else what _found made of the failed probe (MISSING, FOLLOWED; None: walked, not
        kept). The translation must name where that led, or it took another route."""
        state, there = found if found is not None else (PRESENT, plain)
        if there is None or not _plain_result(result, there):
            return
        entry_result = _fresh(result, -1, False)
        self._keep(key, plain, entry_result, state)
        if _renamable(path, plain) and _renamable(path, there) and result.tails == [b""]:
            shapes = self._shapes.setdefault(shape_key, [None, None, None])
            shapes[state] = entry_result

    def _keep(self, key: tuple[object, ...], plain: bytes, result: Translated, state: int) -> None:
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
            self._shapes.clear()
        self._entries[key] = (plain, result, state)


def _found(base: bytes, path: bytes, tracee: Tracee, code: int) -> tuple[int, bytes | None]:
    """(MISSING or FOLLOWED, what the path then names) after its plain probe failed with
    `code`, when resolve_bytes would take that fast route (filename._missing_last,
    filename._followed); (.., None) when it would walk."""
    if code == errno.ENOENT:
        return MISSING, _missing_last(base, path)
    if code == errno.ELOOP:
        led = _followed(base, path, True, tracee)
        # (the last name no symlink: the call's own follow flag cannot change where it leads)
        return FOLLOWED, led if led is not None and _followed(base, path, False, tracee) == led else None
    return PRESENT, None


def _renamable(path: bytes, plain: bytes) -> bool:
    """Does `plain`'s translation differ from another plain path's of the same shape by
    the name alone? Not with a trailing slash (its tail says "a directory"), nor for a
    path named as an object (filename.stable_name)."""
    return not path.endswith(b"/") and not plain.startswith(b"/memfd:")


def _renamed(template: Translated, plain: bytes) -> Translated:
    """The translation of the same call and integers on the plain path `plain`: the
    template's, with the filename its own (the only value a plain path gives it: the
    canonical path, as the policy sees it, the target, what an emulated open opens)."""
    name = os.fsdecode(plain)
    copy = template.copy()
    copy.args = [("filename", name) if arg_name == "filename" else (arg_name, value) for arg_name, value in template.args]
    copy.alias_list = [("filename", name) if arg_name == "filename" else (arg_name, value)
                       for arg_name, value in template.alias_list]
    copy.targets = [plain]
    if template.open_target is not None:
        copy.open_target = plain
    copy.shared = True
    return copy


def _plain_result(result: Translated, canonical: bytes) -> bool:
    """Is this the translation the plain path gives (what a hit stands for)?"""
    return (result.targets == [canonical] and [value for name, value in result.args if name == "filename"]
            == [os.fsdecode(canonical)] and not result.proc_pins and not result.reaches_systrace
            and not result.native_error and result.open_link is None and result.open_root in (None, "/"))


def _keeps_probe(syscall: str, template: Translated) -> bool:
    """Is the probe of a hit worth keeping: an open's (not O_PATH: it opens nothing), as
    translate keeps it, or a stat's or readlink's of one plain path (what it names is the
    file the call would look up: kernel/emulate_path.PathCall.use_probe)?"""
    if template.open_target is not None:
        return not template.open_flags & os.O_PATH
    return syscall in PROBED_CALLS and template.tails == [b""] and len(template.targets) == 1


def _fresh(template: Translated, probe: int, keep_probe: bool) -> Translated:
    """A copy of `template` for one call (translator.Translated.copy), holding `probe`
    when `keep_probe` (_keeps_probe); the template itself when there is no probe to hold
    (nothing changes a translation once made)."""
    if probe >= 0 and keep_probe:
        copy = template.copy()
        copy.open_probe = probe
        return copy
    if probe >= 0:
        os.close(probe)
    if template.shared:
        return template
    copy = template.copy()
    copy.shared = True
    return copy
