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
"""

from __future__ import annotations

import sys
from _frozen_importlib import ModuleSpec  # what importlib.machinery re-exports, without importing it
from _frozen_importlib_external import MAGIC_NUMBER, SourceFileLoader, cache_from_source
from marshal import loads
from posix import stat

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
    "decide.protected", "kernel.heap", "decide.breaks", "kernel.closer", "domains", "kernel.mounts", "kernel.memory",
    "kernel.offload", "kernel.emulate_identity", "kernel.proc_names", "kernel.emulate", "kernel.id_maps", "kernel.emulate_fstat",
    "kernel.emulate_view", "kernel.opener_devices", "kernel.worker", "lazy", "policy.ast", "policy.match",
    "translate.pids", "translate.filename", "effects", "handshake", "kernel.group_priority", "translate.aliases",
    "translate.table", "translate.translator", "translate.path_cache", "translate.tracee", "translate.stage",
    "supervisor", "engine", "frontend.errors", "policy.errors", "decide.uffd", "policy.errnos", "policy.parse",
    "policy.trust", "policy.store", "wiring",
)
# and those of a run that enforces its policies (-a), after them
ENFORCING = ("decide.enforce", "kernel.emulate_watch", "kernel.emulate_path", "policy.compiled", "decide.policy", "policy.compile",
             "policy.reach")

_Module = type(sys)


def preload(names: tuple[str, ...] = PLAIN, package: str = PACKAGE) -> list[str]:
    """Load the modules `names` (relative to `package`, already imported) not loaded yet;
    the names of those loaded here."""
    modules = sys.modules
    root = modules[package].__path__[0]
    loaded = []
    for relative in names:
        name = f"{package}.{relative}"
        if name in modules:
            continue
        parent, _, child = name.rpartition(".")
        if parent not in modules:  # its package first, by import (a namespace package, or
            __import__(parent)  # one whose own imports load this module: then it is loaded)
            if name in modules:
                continue
        path = f"{root}/{relative.replace('.', '/')}"
        try:
            code, spec = _compiled(name, f"{path}.py", None)
        except FileNotFoundError:  # a package
            try:
                code, spec = _compiled(name, f"{path}/__init__.py", [path])
            except OSError:
                continue
        except OSError:
            continue
        if code is None:
            continue
        module: Any = _Module(name)
        module.__spec__, module.__loader__, module.__file__ = spec, spec.loader, spec.origin
        module.__cached__, module.__package__ = spec.cached, spec.parent
        if spec.submodule_search_locations is not None:
            module.__path__ = spec.submodule_search_locations
        modules[name] = module
        spec._initializing = True  # type: ignore[attr-defined]  # as importlib marks a module whose code runs
        try:
            exec(code, module.__dict__)
        except BaseException:
            modules.pop(name, None)
            raise
        finally:
            spec._initializing = False  # type: ignore[attr-defined]
        setattr(modules[parent], child, modules[name])
        loaded.append(name)
    return loaded


def _compiled(name: str, source: str, search: list[str] | None) -> tuple[CodeType | None, ModuleSpec]:
    """The code of `source` from its compiled file and the module's spec, or (None, spec)
    when importlib would not use that file as it is."""
    status = stat(source)
    cached = cache_from_source(source)
    loader = SourceFileLoader(name, source)
    spec = ModuleSpec(name, loader, origin=source, is_package=search is not None)
    spec.has_location, spec.cached = True, cached
    if search is not None:
        spec.submodule_search_locations = search
    try:
        with open(cached, "rb") as file:
            data = file.read()
    except OSError:
        return None, spec
    if (len(data) < 16 or data[:4] != MAGIC_NUMBER or data[4:8] != b"\0\0\0\0"  # a timestamp-based file
            or int.from_bytes(data[8:12], "little") != int(status.st_mtime) & 0xFFFFFFFF
            or int.from_bytes(data[12:16], "little") != status.st_size & 0xFFFFFFFF):
        return None, spec
    return loads(memoryview(data)[16:]), spec
