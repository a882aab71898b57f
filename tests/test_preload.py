"""systrace/preload.py: the modules every run imports, loaded from their compiled files in
one pass (start-up time, issue 16). It must load exactly what `import` would, from the
same files, only when importlib would accept them, and its list must stay the run's.
Not a timing test."""

from __future__ import annotations

import ast
import importlib.util
import os
import pwd
import py_compile
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TIMEOUT, base_env

from systrace import preload

# A plain run: with preload() made a no-op, run under -X importtime (which prints each
# import as it finishes: the order the lists must follow); or with preload() as it is,
# the names it loaded and the systrace modules importlib imported from its start on (the
# audit event of an import).
PROBE = """
import sys
from systrace import preload as _preload
mode = sys.argv.pop(1)
after, loaded = [], []
original = _preload.preload
if mode == "off":
    _preload.preload = lambda *args, **kwargs: []
else:
    started = []
    def hook(event, args):
        if event == "import" and started and args[0].startswith("systrace"):
            after.append(args[0])
    sys.addaudithook(hook)
    def recording(*args, **kwargs):
        started.append(True)
        result = original(*args, **kwargs)
        loaded.append(result)
        return result
    _preload.preload = recording
from systrace.cli import main
status = main(sys.argv[1:])
sys.stdout.write(repr({"status": status, "after": after, "loaded": loaded[0] if loaded else None}))
"""


_PYCACHE: list[str] = []


def _compiled_env() -> dict[str, str]:
    """The environment of a run whose bytecode is written and then used, as an installed
    systrace's is (the suite's PYTHONDONTWRITEBYTECODE would leave a changed module's
    compiled file stale: preload() rightly refuses it), in a directory of this session's."""
    if not _PYCACHE:
        import atexit
        import shutil
        import tempfile

        _PYCACHE.append(tempfile.mkdtemp(prefix="preload-pycache-"))
        atexit.register(shutil.rmtree, _PYCACHE[0], True)
    env = {key: value for key, value in base_env().items() if key != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPYCACHEPREFIX": _PYCACHE[0], "SYSTRACE_TEST_FUSE_UNSEEN": "1"}


def probe(mode: str, *args: str) -> dict:
    flags = ["-X", "importtime"] if mode == "off" else []
    # (while a FUSE file system exists anywhere, tracee memory is read by a helper, which
    # imports more: tests/test_startup_imports.py; here every check says there is none)
    result = subprocess.run([sys.executable, "-S", *flags, "-c", PROBE, mode, *args], capture_output=True,
                            env=_compiled_env(), timeout=TIMEOUT, text=True)
    assert "Traceback" not in result.stderr, result.stderr
    report = ast.literal_eval(result.stdout)
    assert report["status"] == 0, result.stderr
    report["finished"] = [line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
                          if line.startswith("import time:") and line.rsplit("|", 1)[1].strip().startswith("systrace")]
    return report


def _listed(finished: list[str]) -> list[str]:
    """The run's modules as preload lists them: relative, without those imported before
    run() (the package, cli, quick_options, preload itself)."""
    before = {"systrace", "systrace.cli", "systrace.quick_options", "systrace.preload"}
    return [name.removeprefix("systrace.") for name in finished if name not in before]


@pytest.fixture(scope="module")
def true_policy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    policies = tmp_path_factory.mktemp("policies")
    probe("on", "-d", str(policies), "-A", "true")
    return policies


def test_plain_is_what_every_run_imports_in_order() -> None:
    finished = _listed(probe("off", "--permit-all", "true")["finished"])
    assert tuple(finished) == preload.PLAIN, f"PLAIN should now be {tuple(finished)!r}"


def test_enforcing_is_what_an_enforcing_run_adds(true_policy: Path) -> None:
    finished = _listed(probe("off", "-d", str(true_policy), "-a", "true")["finished"])
    assert tuple(finished) == preload.PLAIN + preload.ENFORCING, \
        f"ENFORCING should now be {tuple(name for name in finished if name not in preload.PLAIN)!r}"


def test_a_run_loads_its_modules_in_one_pass(true_policy: Path) -> None:
    probe("on", "-d", str(true_policy), "-a", "true")  # (its modules compiled)
    report = probe("on", "-d", str(true_policy), "-a", "true")
    listed = {f"systrace.{name}" for name in preload.PLAIN + preload.ENFORCING}
    # left to import: kernel/ (a namespace package: no compiled file); facts/, whose
    # __init__ imports its two modules as it runs, is made before them and run after them
    imported = {"systrace.kernel"}
    assert listed - set(report["loaded"]) == imported
    assert set(report["after"]) == imported


def _attributes(name: str, load: bool) -> dict:
    """What a module and its spec say, loaded by preload() or by import, in a fresh interpreter."""
    code = f"""
import sys, systrace
from systrace import preload
name = {name!r}
if {load!r}:
    assert preload.preload((name.removeprefix("systrace."),)) == [name]
module = __import__(name, fromlist=["_"])
spec = module.__spec__
package = sys.modules[name.rpartition(".")[0]]
print(repr({{"file": module.__file__, "cached": module.__cached__, "package": module.__package__,
            "path": getattr(module, "__path__", None), "loader": (type(module.__loader__).__name__,
            module.__loader__.name, module.__loader__.path), "spec": (spec.name, spec.origin, spec.cached,
            spec.parent, spec.has_location, spec.submodule_search_locations, spec.loader is module.__loader__),
            "bound": getattr(package, name.rpartition(".")[2]) is module, "doc": module.__doc__ is not None}}))
"""
    # (compiled first, in this session's cache: the suite may run with PYTHONDONTWRITEBYTECODE,
    # and preload() loads compiled files only)
    subprocess.run([sys.executable, "-S", "-c", f"import {name}"], env=_compiled_env(), timeout=TIMEOUT, check=True)
    result = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, env=_compiled_env(),
                            timeout=TIMEOUT, check=True)
    return ast.literal_eval(result.stdout)


@pytest.mark.parametrize("name", ["systrace.record", "systrace.decide", "systrace.policy.parse"])
def test_a_preloaded_module_is_what_import_makes(name: str) -> None:
    """A plain module, a package (decide/: __path__, its spec's search locations), a module in a package."""
    assert _attributes(name, load=True) == _attributes(name, load=False)


# -- which compiled files are used: a package of our own in tmp_path ------------------------
@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    name = "preload_probe_" + "".join(c if c.isalnum() else "_" for c in request.node.name)
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__(name)
    yield name
    for key in [key for key in sys.modules if key == name or key.startswith(name + ".")]:
        del sys.modules[key]


def _write(package: str, text: str, invalidation: py_compile.PycInvalidationMode | None = None) -> Path:
    source = Path(sys.modules[package].__path__[0]) / "mod.py"
    source.write_text(text)
    if invalidation is not None:
        py_compile.compile(str(source), cfile=importlib.util.cache_from_source(str(source)), doraise=True,
                           invalidation_mode=invalidation)
    return source


TIMESTAMP = py_compile.PycInvalidationMode.TIMESTAMP


def test_a_current_compiled_file_is_loaded(package: str) -> None:
    _write(package, "VALUE = 1\n", TIMESTAMP)
    assert preload.preload(("mod",), package) == [f"{package}.mod"]
    assert sys.modules[f"{package}.mod"].VALUE == 1
    assert sys.modules[package].mod is sys.modules[f"{package}.mod"]
    assert preload.preload(("mod",), package) == []  # loaded: left as it is


def test_a_source_changed_since_it_was_compiled_is_imported(package: str) -> None:
    source = _write(package, "VALUE = 1\n", TIMESTAMP)
    source.write_text("VALUE = 22\n")  # another size
    assert preload.preload(("mod",), package) == []
    assert __import__(f"{package}.mod", fromlist=["_"]).VALUE == 22


def test_a_source_touched_since_it_was_compiled_is_imported(package: str) -> None:
    source = _write(package, "VALUE = 1\n", TIMESTAMP)
    source.write_text("VALUE = 3\n")  # the same size, another time
    stamp = os.stat(source).st_mtime + 10
    os.utime(source, (stamp, stamp))
    assert preload.preload(("mod",), package) == []
    assert __import__(f"{package}.mod", fromlist=["_"]).VALUE == 3


@pytest.mark.parametrize("mode", [py_compile.PycInvalidationMode.CHECKED_HASH,
                                  py_compile.PycInvalidationMode.UNCHECKED_HASH])
def test_a_hash_based_compiled_file_is_left_to_import(package: str, mode: py_compile.PycInvalidationMode) -> None:
    _write(package, "VALUE = 4\n", mode)
    assert preload.preload(("mod",), package) == []
    assert __import__(f"{package}.mod", fromlist=["_"]).VALUE == 4


def test_a_foreign_or_missing_compiled_file_is_left_to_import(package: str) -> None:
    source = _write(package, "VALUE = 5\n")
    assert preload.preload(("mod", "absent"), package) == []  # no compiled file; no module at all
    cached = Path(importlib.util.cache_from_source(str(source)))
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"\x00\x01\x02\x03" + bytes(12) + b"junk")  # another interpreter's magic number
    assert preload.preload(("mod",), package) == []
    cached.write_bytes(b"\x01")  # truncated
    assert preload.preload(("mod",), package) == []
    assert __import__(f"{package}.mod", fromlist=["_"]).VALUE == 5


def _subpackage(package: str, init: str, mod: str) -> Path:
    directory = Path(sys.modules[package].__path__[0]) / "sub"
    directory.mkdir()
    for path, text in ((directory / "__init__.py", init), (directory / "mod.py", mod)):
        path.write_text(text)
        py_compile.compile(str(path), cfile=importlib.util.cache_from_source(str(path)), doraise=True,
                           invalidation_mode=TIMESTAMP)
    return directory


def test_a_package_listed_after_its_modules_is_made_first_and_run_last(package: str) -> None:
    """As facts/: the package's __init__ imports its module, which finds it loaded."""
    directory = _subpackage(package, "from .mod import VALUE\nDOUBLE = 2 * VALUE\n", "VALUE = 21\n")
    assert preload.preload(("sub.mod", "sub"), package) == [f"{package}.sub.mod", f"{package}.sub"]
    sub, mod = sys.modules[f"{package}.sub"], sys.modules[f"{package}.sub.mod"]
    assert (sub.DOUBLE, sub.mod, sys.modules[package].sub) == (42, mod, sub)
    assert sub.__path__ == [str(directory)] and sub.__spec__.submodule_search_locations == [str(directory)]
    assert not sub.__spec__._initializing and mod.__package__ == f"{package}.sub"


def test_a_package_made_first_is_not_left_when_its_module_fails(package: str) -> None:
    _subpackage(package, "from .mod import VALUE\n", "raise ValueError('at import')\n")
    with pytest.raises(ValueError, match="at import"):
        preload.preload(("sub.mod", "sub"), package)
    assert f"{package}.sub" not in sys.modules and f"{package}.sub.mod" not in sys.modules
    assert not hasattr(sys.modules[package], "sub")


def test_a_module_that_fails_is_not_left_loaded(package: str) -> None:
    _write(package, "raise ValueError('at import')\n", TIMESTAMP)
    with pytest.raises(ValueError, match="at import"):
        preload.preload(("mod",), package)
    assert f"{package}.mod" not in sys.modules
    assert not hasattr(sys.modules[package], "mod")


def test_the_collector_runs_while_the_command_runs(true_policy: Path) -> None:
    """Start-up runs without the cyclic garbage collector (cli.run); it must be on again,
    with what start-up made frozen out of its collections, while the command runs."""
    code = """
import gc, sys
from systrace import engine
seen = []
original = engine.Supervisor.run
def run(self, *args, **kwargs):
    seen.append((gc.isenabled(), gc.get_freeze_count() > 1000))
    return original(self, *args, **kwargs)
engine.Supervisor.run = run
from systrace.cli import main
status = main(sys.argv[1:])
print(repr((status, seen, gc.isenabled(), gc.get_freeze_count())))
"""
    for mode in (["-d", str(true_policy), "-a"], ["--permit-all"]):
        result = subprocess.run([sys.executable, "-S", "-c", code, *mode, "true"], capture_output=True, text=True,
                                env={**base_env(), "SYSTRACE_TEST_FUSE_UNSEEN": "1"}, timeout=TIMEOUT)
        assert ast.literal_eval(result.stdout) == (0, [(True, True)], True, 0), result.stderr


def test_a_run_leaves_the_collector_as_it_found_it(tmp_path: Path) -> None:
    """main() in a process that goes on (as tests call it): the collector on again and
    nothing left frozen, whether the run went ahead or stopped early."""
    code = """
import gc, sys
from systrace.cli import main
found = []
for argv in (["--permit-all", "true"], ["--permit-all", "/nonexistent/command"], ["-a", "-d", sys.argv[1], "true"]):
    status = main(argv)
    found.append((status != 0, gc.isenabled(), gc.get_freeze_count()))
gc.disable()
main(["--permit-all", "true"])
found.append(gc.isenabled())
print(repr(found))
"""
    result = subprocess.run([sys.executable, "-S", "-c", code, str(tmp_path / "empty")], capture_output=True, text=True,
                            env={**base_env(), "SYSTRACE_TEST_FUSE_UNSEEN": "1"}, timeout=TIMEOUT)
    assert ast.literal_eval(result.stdout) == [(False, True, 0), (True, True, 0), (True, True, 0), False], result.stderr


# -- the bundle: every preloaded module's code in one file, trusted as the compiled files --
@pytest.fixture
def writing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # (the suite may run with PYTHONDONTWRITEBYTECODE)


def _forget(package: str) -> None:
    sys.modules.pop(f"{package}.mod", None)
    if hasattr(sys.modules[package], "mod"):
        delattr(sys.modules[package], "mod")


def _bundled(package: str, text: str = "VALUE = 1\n") -> tuple[Path, Path]:
    """`mod` compiled, preloaded once (which writes the bundle), forgotten, and its
    compiled file removed: what loads it next can only be the bundle."""
    source = _write(package, text, TIMESTAMP)
    assert preload.preload(("mod",), package) == [f"{package}.mod"]
    bundle = Path(preload.bundle_path(sys.modules[package].__path__[0]))
    assert bundle.is_file()
    _forget(package)
    Path(importlib.util.cache_from_source(str(source))).unlink()
    return source, bundle


def test_a_bundle_is_written_and_used_in_place_of_the_compiled_files(package: str, writing: None) -> None:
    _bundled(package)
    assert preload.preload(("mod",), package) == [f"{package}.mod"]
    module = sys.modules[f"{package}.mod"]
    assert module.VALUE == 1 and sys.modules[package].mod is module
    assert module.__cached__ == importlib.util.cache_from_source(module.__file__)  # as import would say


def test_a_bundle_entry_whose_source_changed_is_not_used(package: str, writing: None) -> None:
    source, bundle = _bundled(package)
    source.write_text("VALUE = 22\n")  # another size
    assert preload.preload(("mod",), package) == []
    assert __import__(f"{package}.mod", fromlist=["_"]).VALUE == 22
    _forget(package)
    source.write_text("VALUE = 3\n")  # the bundled size again, another time
    stamp = os.stat(source).st_mtime + 10
    os.utime(source, (stamp, stamp))
    Path(importlib.util.cache_from_source(str(source))).unlink()
    assert preload.preload(("mod",), package) == []
    assert __import__(f"{package}.mod", fromlist=["_"]).VALUE == 3


@pytest.mark.parametrize("damage", ["group-writable", "other-writable", "a symbolic link", "a FIFO", "junk", "truncated",
                                    "another magic number", "another shape"])
def test_a_foreign_or_damaged_bundle_is_not_used(package: str, writing: None, damage: str) -> None:
    import marshal

    _, bundle = _bundled(package)
    data = bundle.read_bytes()
    if damage == "group-writable":
        bundle.chmod(0o664)
    elif damage == "other-writable":
        bundle.chmod(0o646)
    elif damage == "a symbolic link":  # (even to a bundle that would do)
        bundle.rename(bundle.with_suffix(".elsewhere"))
        bundle.symlink_to(bundle.with_suffix(".elsewhere"))
    elif damage == "a FIFO":  # (not opened to block: refused as no regular file)
        bundle.unlink()
        os.mkfifo(bundle, 0o644)
    elif damage == "junk":
        bundle.write_bytes(b"junk")
    elif damage == "truncated":
        bundle.write_bytes(data[:len(data) // 2])
    elif damage == "another magic number":
        bundle.write_bytes(b"\x00\x01\r\n" + data[4:])
    else:  # a valid marshal of another structure; an entry's code beyond the file's end
        header = data[:data.index(b"\n", 4) + 1]
        source = Path(sys.modules[package].__path__[0]) / "mod.py"
        for index in ({"mod.py": (1, 2)}, {"mod.py": (int(source.stat().st_mtime), source.stat().st_size, 0, 10**6)}):
            marshalled = marshal.dumps(index)
            bundle.write_bytes(header + len(marshalled).to_bytes(4, "little") + marshalled + data[len(header):])
            assert preload.preload(("mod",), package) == []
    assert preload.preload(("mod",), package) == []
    assert __import__(f"{package}.mod", fromlist=["_"]).VALUE == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the bundle to another user")
def test_a_bundle_owned_by_another_user_is_not_used(package: str, writing: None, test_user: pwd.struct_passwd) -> None:
    _, bundle = _bundled(package)
    os.chown(bundle, test_user.pw_uid, -1)
    assert preload.preload(("mod",), package) == []
    os.chown(bundle, 0, -1)
    assert preload.preload(("mod",), package) == [f"{package}.mod"]


def test_no_bundle_is_written_without_bytecode_writing(package: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    _write(package, "VALUE = 1\n", TIMESTAMP)
    assert preload.preload(("mod",), package) == [f"{package}.mod"]
    assert not os.path.exists(preload.bundle_path(sys.modules[package].__path__[0]))


OPENS = """
import sys
opened = []
sys.addaudithook(lambda event, args: opened.append(str(args[0])) if event == "open" and isinstance(args[0], str) else None)
from systrace.cli import main
status = main(sys.argv[1:])
sys.stdout.write(repr({"status": status, "opened": opened}))
"""


def test_a_run_reads_its_modules_from_the_bundle_once_it_is_written(true_policy: Path) -> None:
    """As installed (bytecode written): the first run writes the bundle, the next reads the
    code of every module it loads from it, and no compiled file of them."""
    argv = [sys.executable, "-S", "-c", OPENS, "-d", str(true_policy), "-a", "true"]
    for _ in range(2):  # (compiled, then bundled: another test may have left the cache at either)
        subprocess.run(argv, env=_compiled_env(), timeout=TIMEOUT, check=True, capture_output=True)
    result = subprocess.run(argv, env=_compiled_env(), timeout=TIMEOUT, capture_output=True, text=True)
    report = ast.literal_eval(result.stdout)
    assert report["status"] == 0, result.stderr
    compiled = [path for path in report["opened"] if path.endswith(".pyc") and "systrace" in path]
    bundles = [path for path in report["opened"] if path.endswith(".bundle")]
    assert len(bundles) == 1 and bundles[0].startswith(_PYCACHE[0]), report["opened"]
    # (only what is imported before the preload, or left to import: the package, cli,
    # quick_options, preload itself)
    outside = [path for path in compiled if str(Path(path).parent).removesuffix("/__pycache__").rpartition("/")[2]
               != "systrace" or Path(path).name.partition(".")[0] not in ("__init__", "cli", "quick_options", "preload")]
    assert compiled and outside == [], compiled
