"""A process's parent as systrace records it follows reparenting (processes.py): a
grandchild whose parent exits is adopted by systrace (the run's subreaper), and its
next call must say so (the log's ppid, a question's [ppid], a detached parent's
children, the Landlock domain a process inherits all read it)."""

from __future__ import annotations

import json
from pathlib import Path


def _ppids(log: Path) -> dict[str, int]:
    out = {}
    for line in log.read_text().splitlines():
        record = json.loads(line)
        for arg in record.get("args", ()):
            if arg["name"] == "filename" and arg["value"].startswith("/orphan-"):
                out[arg["value"]] = record["ppid"]
    return out


def test_an_orphans_parent_is_its_new_one(runner, cbin, shared_dir: Path) -> None:
    orphan = cbin("orphan")
    log = runner.writable(shared_dir / f"orphan-{runner.name}.log")
    result = runner("--permit-all", "--json-log", "-E", str(log), orphan)
    assert result.returncode == 0, result.stderr
    first, adopted = (int(word) for word in result.stdout.split())
    assert first != adopted  # it was reparented (natively the same happens, to the nearest subreaper)
    ppids = _ppids(log)
    print(f"{runner.name}: parent {first}, then {adopted}; recorded {ppids}")
    assert ppids == {"/orphan-before": first, "/orphan-after": adopted}
