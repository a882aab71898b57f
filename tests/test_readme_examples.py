"""README's examples, run for real (issue 14 item 4): the worked fault example and the
fault-wrapper example are checked line by line against their `#>` output lines; the
workflow example is run and checked against what its comments claim."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SRC, run

README = (ROOT / "README.md").read_text()
CLEAN_PATH = "/usr/bin:/bin"
SHELL_PRELUDE = f'systrace() {{ {sys.executable} -m systrace "$@"; }}\n'


def sh_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README, re.S)


def checked_blocks() -> list[str]:
    return [block for block in sh_blocks() if "\n#> " in block]


def steps(block: str) -> list[tuple[str, list[str]]]:
    """(command, its expected output lines) for each command of a block."""
    out: list[tuple[str, list[str]]] = []
    for line in block.splitlines():
        if line.startswith("#> "):
            out[-1][1].append(line[3:])
        elif line.strip() and not line.startswith("#"):
            out.append((line, []))
    return out


def matches(expected: str, actual: str) -> bool:
    """`...` in README output stands for anything that differs between machines and runs."""
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual) is not None


def shell_env(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("BRK_")}
    env.update(PATH=CLEAN_PATH, PYTHONPATH=str(SRC), HOME=str(home))
    return env


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """A directory away from the checkout (faults must not depend on where binaries live),
    with the examples at hand as README's commands expect."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    return tmp_path


def run_block(block: str, workdir: Path) -> None:
    for command, expected in steps(block):
        result = run(["bash", "-c", SHELL_PRELUDE + command], env=shell_env(workdir), cwd=str(workdir))
        lines = result.stdout.decode().splitlines()
        assert len(lines) == len(expected), (command, lines, result.stderr[-2000:])
        for want, got in zip(expected, lines, strict=True):
            assert matches(want, got), (command, want, got)


def test_readme_has_the_checked_examples() -> None:
    blocks = checked_blocks()
    assert any("examples/crashy.c" in block for block in blocks)
    assert any("examples/fault-wrapper.sh" in block for block in blocks)


@pytest.mark.parametrize("name", ["crashy", "fault-wrapper"])
def test_checked_example(name: str, workdir: Path) -> None:
    [block] = [block for block in checked_blocks() if f"examples/{name}" in block]
    run_block(block, workdir)


def test_worked_example_reproduces_in_another_directory(workdir: Path) -> None:
    """The same seeds, the binary built somewhere else entirely."""
    [block] = [block for block in checked_blocks() if "examples/crashy.c" in block]
    elsewhere = workdir / "some" / "deeper" / "place"
    elsewhere.mkdir(parents=True)
    (elsewhere / "examples").symlink_to(ROOT / "examples")
    first_two = "\n".join(block.splitlines()[:5]) + "\n"  # build, and the seeds loop with its output
    run_block(first_two, elsewhere)


WORKFLOW = [
    "systrace -A ls -l /usr",
    "systrace -A ls -l /usr",
    "systrace -a ls -l /usr",
    "systrace -a ls -l /etc",
]


def test_workflow_example(workdir: Path) -> None:
    [block] = [block for block in sh_blocks() if "systrace -A ls -l /usr" in block]
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands == WORKFLOW  # README changed: teach this test what its comments claim
    env = shell_env(workdir)

    def step(command: str):
        return run(["bash", "-c", SHELL_PRELUDE + command], env=env, cwd=str(workdir))

    native_usr = run(["ls", "-l", "/usr"], env=env)
    learned = step(WORKFLOW[0])
    assert learned.returncode == 0 and learned.stdout == native_usr.stdout
    policy = workdir / ".systrace" / "usr_bin_ls"  # "~/.systrace/usr_bin_ls now holds one rule per call"
    ls = os.path.realpath(shutil.which("ls", path=CLEAN_PATH))
    if not policy.exists():
        policy = workdir / ".systrace" / ls.strip("/").replace("/", "_")
    text = policy.read_text()
    assert "native-fsread: filename eq" in text
    assert step(WORKFLOW[1]).returncode == 0 and policy.read_text() == text  # "adds nothing"
    enforced = step(WORKFLOW[2])
    assert (enforced.returncode, enforced.stdout) == (0, native_usr.stdout)  # "same output, nothing denied"
    assert b"not permitted" not in enforced.stderr
    denied = step(WORKFLOW[3])  # "new paths: denied (EACCES)"
    assert denied.returncode != 0 and b"Permission denied" in denied.stderr


PROG = r"""
#include <stdio.h>
int main(int argc, char **argv) {
    FILE *in = fopen(argv[1], "r");
    if (!in) { perror(argv[1]); return 1; }
    char line[256];
    while (fgets(line, sizeof line, in))
        if (fputs(line, stdout) == EOF) { perror("stdout"); return 1; }
    if (ferror(in) || fclose(in) != 0) { perror(argv[1]); return 1; }
    if (fflush(stdout) != 0) { perror("stdout"); return 1; }
    return 0;
}
"""


def test_explore_example(workdir: Path) -> None:
    """README's --explore command, run as written on a small program that checks its calls."""
    [block] = [block for block in sh_blocks() if "systrace --explore" in block]
    command = block.split("#")[0].strip()
    assert command == "systrace --explore -j 2 --report out/ -- ./prog input.txt"
    (workdir / "prog.c").write_text(PROG)
    subprocess.run(["gcc", "-static", "-O1", "-o", str(workdir / "prog"), str(workdir / "prog.c")], check=True)
    (workdir / "input.txt").write_text("one\ntwo\n")
    result = run(["bash", "-c", SHELL_PRELUDE + command], env=shell_env(workdir), cwd=str(workdir))
    assert result.returncode in (0, 1), result.stderr  # 1: something crashed, hung or was ignored
    findings = json.loads((workdir / "out" / "findings.json").read_text())["findings"]
    assert findings and {"outcome", "syscall", "reproducer"} <= set(findings[0])
    assert "<table" in (workdir / "out" / "index.html").read_text()  # "then open out/index.html"
    # a program that checks every call it makes: nothing crashed or hung
    assert not [f for f in findings if f["outcome"] in ("crashed", "hung")], findings


def test_install_and_run_example(tmp_path: Path) -> None:
    """README's first command, as written, in a fresh virtual environment: `pip install .`
    from the checkout, then learn and enforce a policy for cat."""
    [block] = [block for block in sh_blocks() if block.startswith("pip install .")]
    command = block.strip()
    assert command == "pip install . && systrace -A cat /etc/hostname && systrace -a cat /etc/hostname"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    home = tmp_path / "home"
    home.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PIP_REQUIRE_VIRTUALENV")}
    env.update(HOME=str(home), PATH=f"{venv / 'bin'}:{CLEAN_PATH}", PIP_DISABLE_PIP_VERSION_CHECK="1")
    build = tmp_path / "checkout"
    shutil.copytree(ROOT, build, ignore=shutil.ignore_patterns(".git", "__pycache__", "*.egg-info", "build"))
    result = run(["bash", "-c", command], env=env, cwd=str(build), timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.endswith(Path("/etc/hostname").read_bytes() * 2)
    assert (home / ".systrace" / "usr_bin_cat").exists()  # "written to ~/.systrace/usr_bin_cat"
