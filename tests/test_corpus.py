"""The real-program corpus (tests/corpus/commands.py): for each command, learn (-A), learn
again (which must add no rule), enforce (-a), each compared with the native run: same
stdout, stderr and exit status. Run from a work directory outside /tmp with a PATH that
has a missing directory, a repeated one and a shell-script shim ahead of python3.

The commands run three at a time in one session fixture (the machine has two cores; a
supervisor and its tracee mostly take turns); each test then checks its own outcome."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "corpus"))
from commands import COMMANDS  # noqa: E402
from harness import run_all  # noqa: E402

BY_NAME = {command.name: command for command in COMMANDS}


def _param(command):
    marks = [pytest.mark.xfail(reason=command.xfail, strict=False)] if command.xfail else []
    return pytest.param(command.name, id=command.name, marks=marks)


@pytest.fixture(scope="session")
def corpus_outcomes(request: pytest.FixtureRequest):
    """Run every selected corpus command once (in parallel)."""
    chosen = [item.callspec.params["name"] for item in request.session.items
              if item.originalname == "test_corpus_command" and hasattr(item, "callspec")]
    return run_all([BY_NAME[name] for name in chosen])


def test_corpus_is_large_and_names_are_unique() -> None:
    assert len(COMMANDS) >= 60
    assert len(BY_NAME) == len(COMMANDS)


@pytest.mark.parametrize("name", [_param(command) for command in COMMANDS])
def test_corpus_command(name: str, corpus_outcomes) -> None:
    outcome = corpus_outcomes[name]
    assert outcome.deterministic, f"{name} is not deterministic natively: fix the corpus entry"
    assert outcome.passed, "\n".join(outcome.problems())
