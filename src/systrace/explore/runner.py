"""Runs: the recording, the control run and one run per trial, each a `python -m
systrace` subprocess with the same stdin, environment and cwd, in its own process group
(killed whole when its time is up). With --reset the work directory is restored before
each run and its contents afterwards are part of the output; runs that share it take
turns."""

from __future__ import annotations

import hashlib
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from .classify import RunResult, split_stats

SYSTRACE = [sys.executable, "-m", "systrace"]
RECORDER = [sys.executable, "-m", "systrace.explore.record"]
STDERR_KEPT = 64 * 1024
DRAIN_GRACE = 5.0  # seconds to finish reading a dead run's pipes


class WorkDir:
    """A directory put back as it was before each run."""

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self._pristine_root = tempfile.mkdtemp(prefix="systrace-explore-")
        self.pristine = os.path.join(self._pristine_root, "dir")
        shutil.copytree(self.path, self.pristine, symlinks=True)
        self.lock = threading.Lock()

    def restore(self) -> None:
        for entry in os.scandir(self.path):
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        shutil.copytree(self.pristine, self.path, symlinks=True, dirs_exist_ok=True)

    def digest(self) -> str:
        hasher = hashlib.blake2b(digest_size=16)
        for root, dirs, files in os.walk(self.path):
            dirs.sort()
            for name in sorted(dirs + files):
                full = os.path.join(root, name)
                hasher.update(os.path.relpath(full, self.path).encode("utf-8", "surrogateescape") + b"\0")
                if os.path.islink(full):
                    hasher.update(b"l" + os.readlink(full).encode("utf-8", "surrogateescape"))
                elif os.path.isfile(full):
                    hasher.update(b"f%o" % (os.stat(full).st_mode & 0o7777))
                    with open(full, "rb") as handle:
                        hasher.update(hashlib.blake2b(handle.read()).digest())
                else:
                    hasher.update(b"d")
        return hasher.hexdigest()

    def close(self) -> None:
        shutil.rmtree(self._pristine_root, ignore_errors=True)


class Runner:
    def __init__(self, command: list[str], stdin: str, env: dict[str, str], cwd: str, workdir: WorkDir | None = None):
        self.command = command
        self.stdin = stdin
        self.env = env
        self.cwd = cwd
        self.workdir = workdir
        self._live: dict[int, subprocess.Popen] = {}
        self._lock = threading.Lock()
        self.stopping = False

    def record(self, selected: str, out_path: str, timeout: float) -> RunResult:
        return self.run([*RECORDER, out_path, selected, "--", *self.command], timeout)

    def trial(self, spec: str, timeout: float) -> RunResult:
        return self.run([*SYSTRACE, "--stats", "--permit-all", "--inject", spec, "--", *self.command], timeout)

    def reproduce(self, reproducer: list[str], timeout: float) -> RunResult:
        """The reproducer exactly as reported (`systrace` is this interpreter's)."""
        return self.run([*SYSTRACE, *reproducer[1:]], timeout)

    def run(self, argv: list[str], timeout: float) -> RunResult:
        if self.workdir is None:
            return self._run(argv, timeout)
        with self.workdir.lock:
            self.workdir.restore()
            return self._run(argv, timeout)

    def _run(self, argv: list[str], timeout: float) -> RunResult:
        """stdout and stderr are pipes, as in a pipeline (a program may act differently on
        a file: cat copies file to file with copy_file_range), drained by threads."""
        if self.stopping:
            raise KeyboardInterrupt
        with open(self.stdin, "rb") as stdin:
            started = time.monotonic()
            process = subprocess.Popen(argv, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.env,
                                       cwd=self.cwd, start_new_session=True)
        with self._lock:
            self._live[process.pid] = process
        stdout, stderr = _Drain(process.stdout, keep=0), _Drain(process.stderr, keep=STDERR_KEPT)
        try:
            finished = not self.stopping and _wait(process.pid, timeout)
        finally:  # also on Ctrl-C: a run in its own session gets no SIGINT from the terminal
            # Until it is reaped the leader holds the group id: the group is still ours.
            self._kill(process)  # on time-out, and what the command left behind
            status: int | None = process.wait()
            with self._lock:
                self._live.pop(process.pid, None)
        if self.stopping:
            raise KeyboardInterrupt
        duration = time.monotonic() - started
        stdout.join()
        stderr.join()
        if not finished:
            status = None
        elif status is not None and status < 0:  # systrace itself was killed
            status = 128 - status
        digest = stdout.hasher
        if self.workdir is not None:
            digest.update(self.workdir.digest().encode())
        text, injected = split_stats(stderr.kept)
        return RunResult(status, digest.hexdigest(), text, duration, injected)

    @staticmethod
    def _kill(process: subprocess.Popen) -> None:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self) -> None:
        """Ctrl-C: end every run under way (each in its own group) and start no more."""
        self.stopping = True
        with self._lock:
            for process in list(self._live.values()):
                self._kill(process)


def _wait(pid: int, timeout: float) -> bool:
    """Wait for the process to end, without reaping it; False when the time is up."""
    pidfd = os.pidfd_open(pid)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(max(0, int(timeout * 1000))))
    finally:
        os.close(pidfd)


class _Drain:
    """Reads a pipe to its end in a thread: a digest of everything, the last `keep` bytes."""

    def __init__(self, stream, keep: int):
        self.stream = stream
        self.keep = keep
        self.hasher = hashlib.blake2b(digest_size=16)
        self.kept = b""
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        with self.stream:
            for chunk in iter(lambda: self.stream.read1(1 << 16), b""):
                self.hasher.update(chunk)
                if self.keep:
                    self.kept = (self.kept + chunk)[-self.keep:]

    def join(self) -> None:
        # The group is dead; a process that left it (setsid) and kept the pipe is not
        # waited for beyond this.
        self.thread.join(DRAIN_GRACE)
