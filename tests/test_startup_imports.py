"""Start-up (issue 16): a plain run imports only what it uses. `systrace -a true` and
`systrace --permit-all true` must not import the modules of features they do not use
(sends, Landlock copies and their threads, learning, JSON, pickle, tempfile...); those
are imported when first needed (systrace/lazy.py). Not a timing test: it lists modules.

Each run is `python3 -S`: this machine's site hooks (.pth files) import modules of their
own, which an installed systrace does not see either."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TIMEOUT, base_env

# Runs systrace's main() in the interpreter and reports what it imported: every module at
# the end, and those imported once the command was forked (from then on the command runs).
PROBE = """
import sys
after = []
forked = []
def hook(event, args):
    if event == "os.fork":
        forked.append(True)
    elif event == "import" and forked:
        after.append(args[0])
sys.addaudithook(hook)
# While any process on the machine serves a file system (FUSE: other tests make them),
# tracee memory is read by a helper process, which pickles (kernel/memory.py): that path
# has its own tests; here every read is made directly, whatever else runs.
from systrace.kernel import memory
memory._SERVED.present = lambda: False
from systrace.cli import main
status = main(sys.argv[1:])
sys.stdout.write(repr({"status": status, "modules": sorted(sys.modules), "after_fork": sorted(set(after))}))
"""

# imported by none of the plain runs (each stands for what it drags in: socket its enums,
# threading and queue the Landlock copies, json the JSON log, pickle the FUSE helpers...)
HEAVY = {"argparse", "gettext", "pickle", "queue", "threading", "ssl", "json", "socket", "selectors", "tempfile", "shutil", "random",
         "locale", "typing", "dataclasses", "subprocess", "pathlib", "asyncio", "logging", "inspect",
         # re and signal (their enums), and what those bring: policy/parse.py, kernel/proc_names.py
         # and kernel/plain_signal.py read a plain run's text and signals without them
         "re", "enum", "functools", "collections", "signal",
         "systrace.kernel.send", "systrace.kernel.landlock_domain", "systrace.kernel.sockets",
         "systrace.decide.generalise", "systrace.decide.modes", "systrace.policy.printer", "systrace.replicas",
         "systrace.decide.ask", "systrace.faults.plan"}


def probe(*args: str) -> dict:
    result = subprocess.run([sys.executable, "-S", "-c", PROBE, *args], capture_output=True, env=base_env(),
                            timeout=TIMEOUT)
    assert b"Traceback" not in result.stderr, result.stderr.decode()
    report = ast.literal_eval(result.stdout.decode())
    assert report["status"] == 0, result.stderr.decode()
    return report


@pytest.fixture(scope="module")
def true_policy(tmp_path_factory) -> Path:
    policies = tmp_path_factory.mktemp("policies")
    probe("-d", str(policies), "-A", "true")
    return policies


def test_enforcing_true_imports_nothing_heavy(true_policy: Path) -> None:
    report = probe("-d", str(true_policy), "-a", "true")
    assert HEAVY & set(report["modules"]) == set()
    # nothing is read from disk and run once the command runs: what it needed was imported before
    assert report["after_fork"] == []


def test_permit_all_imports_nothing_heavy() -> None:
    report = probe("--permit-all", "true")
    assert HEAVY & set(report["modules"]) == set()
    assert report["after_fork"] == []


def test_a_text_log_imports_nothing_heavy(tmp_path: Path) -> None:
    report = probe("--permit-all", "-E", str(tmp_path / "log"), "true")
    assert HEAVY & set(report["modules"]) == set()
    assert "prog: /usr/bin/true" in (tmp_path / "log").read_text()


def test_what_a_run_uses_is_imported(tmp_path: Path) -> None:
    """The probe sees imports: learning imports learning's modules, a JSON log json."""
    learned = probe("-d", str(tmp_path / "policies"), "-A", "true")
    assert {"systrace.decide.generalise", "systrace.decide.modes", "systrace.policy.printer"} <= set(learned["modules"])
    logged = probe("--permit-all", "--json-log", "-E", str(tmp_path / "log"), "true")
    assert "json" in logged["modules"]
