"""Run one corpus command natively and under systrace (-A, -A again, -a) and compare.

Every run starts from the same freshly prepared work directory (outside /tmp), with the
same environment, so the native run is the reference for the three traced ones. The
score of the corpus is how many commands replay exactly and learn nothing the second time.

    PYTHONPATH=src python3 tests/corpus/harness.py [NAME ...]   # prints the score table
"""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent.parent / "src"
TIMEOUT = 60  # safety net only (the slowest command takes a few seconds)
WORKERS = 3  # two cores: a supervisor and its tracee mostly take turns


@dataclass
class Outcome:
    name: str
    native: tuple[int, bytes, bytes] | None = None
    deterministic: bool = True
    learn: tuple[int, bytes, bytes] | None = None
    relearn: tuple[int, bytes, bytes] | None = None
    enforce: tuple[int, bytes, bytes] | None = None
    added: list[str] = field(default_factory=list)  # rules the second -A added
    policy_lines: int = 0
    error: str | None = None

    @property
    def replays(self) -> bool:
        return self.native is not None and self.learn == self.native and self.relearn == self.native \
            and self.enforce == self.native

    @property
    def passed(self) -> bool:
        return self.error is None and self.deterministic and self.replays and not self.added

    def problems(self) -> list[str]:
        out = []
        if self.error:
            out.append(self.error)
        if not self.deterministic:
            out.append("not deterministic natively")
        for label, got in (("-A", self.learn), ("second -A", self.relearn), ("-a", self.enforce)):
            if got is not None and got != self.native:
                out.append(f"{label} differs from native: {_show(self.native)} vs {_show(got)}")
        if self.added:
            out.append(f"second -A added {len(self.added)} rules: " + "; ".join(self.added[:8]))
        return out


def _show(result: tuple[int, bytes, bytes] | None) -> str:
    if result is None:
        return "(not run)"
    status, out, err = result
    return f"status {status}, stdout {out[-300:]!r}, stderr {err[-300:]!r}"


class Corpus:
    """The shared pieces of a corpus run: its base directory, PATH, environment and the
    loopback HTTP server the network commands talk to."""

    def __init__(self, base: Path):
        self.base = base
        self.home = base / "home"
        self.shims = base / "shims"
        for path in (self.home, self.shims, base / "work", base / "policies", base / "logs"):
            path.mkdir(parents=True, exist_ok=True)
        # a pyenv-style shell shim ahead of the real python3
        shim = self.shims / "python3"
        shim.write_text('#!/bin/sh\nexec /usr/bin/python3 "$@"\n')
        shim.chmod(0o755)
        (base / "www").mkdir(exist_ok=True)
        (base / "www" / "hello.txt").write_text("hello from loopback\n")
        self.server = _serve(base / "www")
        port = self.server.server_address[1]
        # a missing directory, the shim, then the real directories with one repeated
        path = f"{base / 'missing'}:{self.shims}:/usr/local/bin:/usr/bin:/bin:/usr/bin:/usr/sbin:/sbin"
        self.env = {
            "PATH": path, "HOME": str(self.home), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TZ": "UTC",
            "USER": os.environ.get("USER", "root"), "LOGNAME": os.environ.get("USER", "root"),
            "PYTHONPATH": str(SRC), "TERM": "dumb", "COLUMNS": "80",
            "CORPUS_PORT": str(port), "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": "Corpus", "GIT_AUTHOR_EMAIL": "corpus@example.org",
            "GIT_COMMITTER_NAME": "Corpus", "GIT_COMMITTER_EMAIL": "corpus@example.org",
            "GIT_AUTHOR_DATE": "2020-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2020-01-01T00:00:00Z",
            # git's automatic maintenance runs when its own heuristics say so: not deterministic
            "GIT_CONFIG_COUNT": "2", "GIT_CONFIG_KEY_0": "maintenance.auto", "GIT_CONFIG_VALUE_0": "false",
            "GIT_CONFIG_KEY_1": "gc.auto", "GIT_CONFIG_VALUE_1": "0",
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def run_command(self, command) -> Outcome:
        outcome = Outcome(command.name)
        work = self.base / "work" / command.name
        policies = self.base / "policies" / command.name
        logs = self.base / "logs"
        shutil.rmtree(policies, ignore_errors=True)
        policies.mkdir(parents=True)
        systrace = [sys.executable, "-m", "systrace", "-d", str(policies)]
        step = "native"
        try:
            outcome.native = self._once(command, work, [])
            outcome.deterministic = self._once(command, work, []) == outcome.native
            step = "-A"
            outcome.learn = self._once(command, work, [*systrace, "-A", "-E", str(logs / f"{command.name}.1")])
            before = _rules(policies)
            step = "second -A"
            outcome.relearn = self._once(command, work, [*systrace, "-A", "-E", str(logs / f"{command.name}.2")])
            after = _rules(policies)
            outcome.added = sorted(after - before)
            outcome.policy_lines = len(after)
            step = "-a"
            outcome.enforce = self._once(command, work, [*systrace, "-a", "-E", str(logs / f"{command.name}.3")])
        except subprocess.TimeoutExpired:
            outcome.error = f"{step} run timed out after {TIMEOUT} s"
        return outcome

    def _once(self, command, work: Path, prefix: list[str]) -> tuple[int, bytes, bytes]:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        if command.setup:
            subprocess.run(["bash", "-ec", command.setup], cwd=work, env=self.env, check=True, capture_output=True,
                           timeout=TIMEOUT)
        done = subprocess.run([*prefix, *command.argv], cwd=work, env=self.env, capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=TIMEOUT)
        return done.returncode, done.stdout, done.stderr


def _rules(policies: Path) -> set[str]:
    rules = set()
    for path in policies.iterdir():
        for line in path.read_text(errors="replace").splitlines():
            if line.startswith("\t") and not line.strip().startswith("#"):
                rules.add(f"{path.name}:{line.strip()}")
    return rules


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


def _serve(root: Path) -> http.server.ThreadingHTTPServer:
    handler = lambda *args, **kwargs: _Quiet(*args, directory=str(root), **kwargs)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def new_base() -> Path:
    """A fresh base directory outside /tmp, named by a counter (not by a random suffix)."""
    root = Path.home() / ".cache" / "systrace-corpus"
    root.mkdir(parents=True, exist_ok=True)
    number = 1
    while True:
        candidate = root / f"session{number}"
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            number += 1


def run_all(commands, workers: int = WORKERS) -> dict[str, Outcome]:
    base = new_base()
    corpus = Corpus(base)
    try:
        with ThreadPoolExecutor(workers) as pool:
            outcomes = list(pool.map(corpus.run_command, commands))
    finally:
        corpus.close()
        shutil.rmtree(base, ignore_errors=True)
    return {outcome.name: outcome for outcome in outcomes}


def main(names: list[str]) -> int:
    sys.path.insert(0, str(HERE))
    from commands import COMMANDS

    chosen = [c for c in COMMANDS if not names or c.name in names]
    outcomes = run_all(chosen)
    passed = zero = 0
    for command in chosen:
        outcome = outcomes[command.name]
        passed += outcome.passed
        zero += not outcome.added and outcome.error is None
        state = "PASS" if outcome.passed else "FAIL"
        print(f"{state} {command.name} ({outcome.policy_lines} rules)")
        for problem in outcome.problems():
            print(f"    {problem}")
    print(f"score: {passed}/{len(chosen)} passed, {zero}/{len(chosen)} with 0 rules added by the second -A")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
