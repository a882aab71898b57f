"""The modules every supervised run imports, loaded from their compiled files in one pass
before anything imports them (start-up time, issue 16).

The `import` statement costs about 310,000 instructions per module before the module's
own code runs (importlib's finders, locks, specs, path searches; valgrind: 80 empty
modules, 25 M instructions, about 11 ms on the test machine), which is about as much as
systrace's own code takes to import. Loading a module here costs about 130,000: its
compiled file is read where importlib would read it (`cache_from_source`, honouring
PYTHONPYCACHEPREFIX), accepted only when importlib would accept it (magic number, a
timestamp header whose source modification time and size match the source's), and run
in a module made with the attributes importlib gives it (`__spec__`, `__loader__`,
`__file__`, `__cached__`, `__package__`, bound in its package). Anything else (no
compiled file yet, a stale or hash-based one, a namespace package such as kernel/) is
left to `import`, which then does as it always does: this only ever loads earlier what the run
would load anyway, from the same files (tests/test_preload.py).

PLAIN (and ENFORCING) list the modules in the order their imports finish in a plain run
(so that each module's own imports find theirs already loaded); a module missing from
them is imported as usual, one listed that a run no longer imports is caught by
tests/test_preload.py.

The compiled code of every module loaded here is also kept in one bundle file beside the
compiled files (`bundle_path`: one open and one read instead of two system calls and
a read per module, issue 16). An entry of it is used only as its compiled file would be:
when its source's modification time and size are still those recorded (each source is
stat'ed as before), and only when the bundle is a regular file with this interpreter's
magic number, owned by root or by the package directory's owner and writable by no one
else (as trusted as the compiled files beside it). Anything else is read from the compiled
file as above; the bundle is then written again (unless sys.dont_write_bytecode), as
importlib writes a compiled file, atomically (a new file renamed over the old).
"""

from __future__ import annotations

import sys
from _frozen_importlib import ModuleSpec  # what importlib.machinery re-exports, without importing it
from _frozen_importlib_external import MAGIC_NUMBER, SourceFileLoader, cache_from_source
from marshal import dumps, loads
from posix import (
    O_CLOEXEC,
    O_CREAT,
    O_EXCL,
    O_NOFOLLOW,
    O_NONBLOCK,
    O_RDONLY,
    O_WRONLY,
    close,
    fstat,
    getpid,
    read,
    replace,
    stat,
    unlink,
    write,
)
from posix import open as posix_open

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from types import CodeType
    from typing import Any

PACKAGE = __name__.rpartition(".")[0]

# every supervised run's modules (`--permit-all true`, `-a true`), in the order their imports finish
PLAIN = (
    "kernel", "kernel.abi", "kernel.libc", "kernel.landlock", "kernel.plain_signal", "kernel.launch", "record",
    "translate", "translate.formats", "facts.args", "facts.rows", "facts", "kernel.bpf", "kernel.filter",
    "kernel.syscalls_x86_64", "baseline", "kernel.notify", "kernel.own_entries", "kernel.signals", "kernel.wakeup", "call", "decide",
    "frontend", "policy", "policy.escaping", "frontend.question", "log", "decide.reporting", "frontend.relay",
    "kernel.namespaces", "kernel.procfs", "processes", "session", "kernel.forking", "kernel.watchdog", "children",
    "decide.protected", "kernel.heap", "decide.breaks", "decide.roots", "kernel.closer", "domains", "kernel.handed_procfs", "kernel.mounts",
    "kernel.memory", "kernel.offload", "kernel.emulate_identity", "kernel.proc_names", "kernel.emulate", "kernel.id_maps",
    "kernel.emulate_fstat", "kernel.emulate_view", "kernel.opener_devices", "kernel.worker", "lazy", "policy.ast", "policy.match",
    "translate.pids", "translate.filename", "translate.tracee", "effects", "handshake", "kernel.group_priority", "translate.aliases",
    "translate.table", "translate.translator", "translate.path_cache", "translate.stage",
    "supervisor", "engine", "frontend.errors", "policy.errors", "decide.uffd", "policy.errnos", "policy.parse",
    "policy.trust", "policy.store", "wiring",
)
# and those of a run that enforces its policies (-a), after them
ENFORCING = ("decide.enforce", "kernel.emulate_watch", "kernel.emulate_path", "policy.compiled", "decide.policy", "policy.compile",
             "policy.reach")

_Module = type(sys)


def preload(names: tuple[str, ...] = PLAIN, package: str = PACKAGE) -> list[str]:
    """Load the modules `names` (relative to `package`, already imported) not loaded yet;
    the names of those loaded here.

    A package listed after some of its modules (facts/, whose __init__ imports them) is
    made first, in sys.modules as importlib puts a package whose code is running, and its
    code is run when its own turn comes: its modules, listed before, are then loaded here
    too instead of by its imports (which find them loaded)."""
    modules = sys.modules
    root = modules[package].__path__[0]
    bundle = Bundle(root)
    loaded = []
    early: dict[str, tuple[Any, CodeType]] = {}  # packages made before their modules, run at their turn
    try:
        for index, relative in enumerate(names):
            name = f"{package}.{relative}"
            parent, _, child = name.rpartition(".")
            if name in early:
                module, code = early.pop(name)
            else:
                if name in modules:
                    continue
                if parent not in modules:
                    package_first = None
                    if parent.rpartition(".")[0] in modules and parent.removeprefix(f"{package}.") in names[index + 1:]:
                        package_first = _made(parent, f"{root}/{parent.removeprefix(f'{package}.').replace('.', '/')}",
                                              bundle, is_package=True)
                    if package_first is not None:
                        modules[parent] = package_first[0]
                        early[parent] = package_first
                    else:  # its package first, by import (a namespace package, or one whose
                        __import__(parent)  # own imports load this module: then it is loaded)
                        if name in modules:
                            continue
                made = _made(name, f"{root}/{relative.replace('.', '/')}", bundle)
                if made is None:
                    continue
                module, code = made
                modules[name] = module
            spec = module.__spec__
            spec._initializing = True  # as importlib marks a module whose code runs
            try:
                exec(code, module.__dict__)
            except BaseException:
                modules.pop(name, None)
                raise
            finally:
                spec._initializing = False
            setattr(modules[parent], child, modules[name])
            loaded.append(name)
    except BaseException:
        for name in early:  # (made, never run)
            modules.pop(name, None)
        raise
    bundle.save()
    return loaded


def _made(name: str, path: str, bundle: Bundle, is_package: bool = False) -> tuple[Any, CodeType] | None:
    """The module `name` (its source `path`.py, or `path`/__init__.py for a package), made
    with the attributes importlib gives it, and its code; None when it is left to import."""
    try:
        if is_package:
            raise FileNotFoundError
        code, spec = _compiled(name, f"{path}.py", None, bundle)
    except FileNotFoundError:  # a package
        try:
            code, spec = _compiled(name, f"{path}/__init__.py", [path], bundle)
        except OSError:
            return None
    except OSError:
        return None
    if code is None:
        return None
    module: Any = _Module(name)
    module.__spec__, module.__loader__, module.__file__ = spec, spec.loader, spec.origin
    module.__cached__, module.__package__ = spec.cached, spec.parent
    if spec.submodule_search_locations is not None:
        module.__path__ = spec.submodule_search_locations
    spec._initializing = True  # type: ignore[attr-defined]  # (until its code has run: see preload)
    return module, code


def _compiled(name: str, source: str, search: list[str] | None, bundle: Bundle | None = None
              ) -> tuple[CodeType | None, ModuleSpec]:
    """The code of `source` from the bundle or its compiled file and the module's spec, or
    (None, spec) when importlib would not use that file as it is."""
    status = stat(source)
    stamp, size = int(status.st_mtime) & 0xFFFFFFFF, status.st_size & 0xFFFFFFFF
    cached = cache_from_source(source)
    loader = SourceFileLoader(name, source)
    spec = ModuleSpec(name, loader, origin=source, is_package=search is not None)
    spec.has_location, spec.cached = True, cached
    if search is not None:
        spec.submodule_search_locations = search
    if bundle is not None:
        code = bundle.code(source, stamp, size)
        if code is not None:
            return loads(code), spec
    try:
        with open(cached, "rb") as file:
            data = file.read()
    except OSError:
        return None, spec
    if (len(data) < 16 or data[:4] != MAGIC_NUMBER or data[4:8] != b"\0\0\0\0"  # a timestamp-based file
            or int.from_bytes(data[8:12], "little") != stamp or int.from_bytes(data[12:16], "little") != size):
        return None, spec
    if bundle is not None:
        bundle.add(source, stamp, size, data[16:])
    return loads(memoryview(data)[16:]), spec


def bundle_path(root: str) -> str:
    """Where the bundle of the package at `root` is kept: beside its compiled files, named
    as they are (PYTHONPYCACHEPREFIX, the optimization level), with another suffix."""
    return cache_from_source(f"{root}/__preload__.py").removesuffix(".pyc") + ".bundle"


_BUNDLE_HEADER = MAGIC_NUMBER + b"systrace preload bundle 2\n"


class Bundle:
    """The compiled code of a package's preloaded modules in one file: the header, the
    length of the index (4 bytes, little-endian), the index (marshalled: source path
    relative to the package -> modification time, size, offset and length of its code),
    then every module's marshalled code, one after the other (each is unmarshalled from
    the one buffer read: no copy of it is made, nor of the modules not loaded)."""

    def __init__(self, root: str) -> None:
        self._root, self._prefix = root, root + "/"
        self._entries: dict[str, tuple[int, int, bytes | memoryview]] = {}
        self._changed = False
        try:
            self._path = bundle_path(root)
        except NotImplementedError:  # no cache tag (sys.implementation.cache_tag is None)
            self._path = ""
            return
        self._entries = self._read()

    def _read(self) -> dict[str, tuple[int, int, bytes | memoryview]]:
        try:  # (not following a symbolic link; a FIFO put there would not block the open)
            fd = posix_open(self._path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
        except OSError:
            return {}
        try:
            status = fstat(fd)
            if not self._trusted(status.st_mode, status.st_uid):
                return {}
            data = read(fd, status.st_size + 1)
        except OSError:
            return {}
        finally:
            close(fd)
        start = len(_BUNDLE_HEADER) + 4
        if len(data) < start or not data.startswith(_BUNDLE_HEADER):
            return {}
        codes = start + int.from_bytes(data[start - 4:start], "little")
        view = memoryview(data)
        try:
            index = loads(view[start:codes])
        except (ValueError, EOFError, TypeError):
            return {}
        if type(index) is not dict:  # noqa: E721 - exactly marshal's own types, checked before use
            return {}
        entries: dict[str, tuple[int, int, bytes | memoryview]] = {}
        for key, value in index.items():
            if not (type(key) is str and type(value) is tuple and len(value) == 4  # noqa: E721
                    and all(type(field) is int and field >= 0 for field in value)  # noqa: E721
                    and codes + value[2] + value[3] <= len(data)):
                return {}
            entries[key] = (value[0], value[1], view[codes + value[2]:codes + value[2] + value[3]])
        return entries

    def _trusted(self, mode: int, uid: int) -> bool:
        """A regular file writable only by its owner, root or the package directory's."""
        if mode & 0o170022 != 0o100000:  # S_IFREG, without group or other write permission
            return False
        try:
            return uid == 0 or uid == stat(self._root).st_uid
        except OSError:
            return False

    def code(self, source: str, stamp: int, size: int) -> bytes | memoryview | None:
        """The marshalled code of `source` if recorded for this modification time and size."""
        key = source.removeprefix(self._prefix)
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry[0] != stamp or entry[1] != size:  # stale: dropped from the bundle
            del self._entries[key]
            self._changed = True
            return None
        return entry[2]

    def add(self, source: str, stamp: int, size: int, code: bytes) -> None:
        """Record `source`'s code, read from its compiled file (which matched)."""
        self._entries[source.removeprefix(self._prefix)] = (stamp, size, bytes(code))
        self._changed = True

    def save(self) -> None:
        """Write the bundle again when an entry was added, as importlib writes a compiled file:
        not under sys.dont_write_bytecode; a failure is no error (the files stay as they are)."""
        if not self._changed or not self._path or sys.dont_write_bytecode:
            return
        temporary = f"{self._path}.{getpid()}"
        try:
            fd = posix_open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)  # (see _trusted)
        except OSError:
            return
        try:
            try:
                index, codes, offset = {}, [], 0
                for key, (stamp, size, code) in self._entries.items():
                    index[key] = (stamp, size, offset, len(code))
                    codes.append(code)
                    offset += len(code)
                marshalled = dumps(index)
                data = memoryview(b"".join((_BUNDLE_HEADER, len(marshalled).to_bytes(4, "little"), marshalled, *codes)))
                while data:
                    data = data[write(fd, data):]
            finally:
                close(fd)
            replace(temporary, self._path)
        except OSError:
            try:
                unlink(temporary)
            except OSError:
                pass
