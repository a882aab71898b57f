"""A learned rule names one file, not its case variants (policy/match.py, SECURITY.md
"Policies"). The original systrace compared `eq` with strcasecmp, and so did systrace
until a new user's trial found that a policy learned from `cat DIR/notes` let
`cat DIR/NOTES` read another file, and one learned from `rm DIR/keep` let `rm DIR/Keep`
remove another: on Linux those are other files. `eq` and `neq` now compare exactly, so
every learned rule (paths read, paths written or removed, exec argv) holds for what the
learning run did only. Checked by class: a read, a removal, an exec's argv."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import Runner

VARIANTS = ("NOTES", "Notes", "noteS")
KEEPS = ("Keep", "KEEP", "keeP")


def _arrange(directory: Path, uid: int) -> None:
    directory.mkdir(parents=True)
    (directory / "notes").write_text("public\n")
    for name in VARIANTS:
        (directory / name).write_text("SECRET\n")
    for name in ("keep", *KEEPS):
        (directory / name).write_text("keep\n")
    for path in (directory, *directory.iterdir()):
        os.chown(path, uid, -1)
        path.chmod(0o755 if path.is_dir() else 0o644)


def test_a_learned_rule_permits_no_case_variant_of_what_it_names(runner: Runner, shared_dir: Path, tmp_path: Path) -> None:
    directory, native = (shared_dir / f"case-{where}-{runner.name}-{tmp_path.name}" for where in ("traced", "native"))
    _arrange(directory, runner.uid)
    _arrange(native, runner.uid)
    # natively each variant is a file of its own: read, removed, run with
    read = sum(b"SECRET" in runner.native("/bin/cat", str(native / name)).stdout for name in VARIANTS)
    removed = 0
    for name in KEEPS:
        runner.native("/bin/rm", str(native / name))
        removed += not (native / name).exists()
    run_with = sum(b"SECRET" in runner.native("/bin/sh", "-c", f"cat {native}/{name}").stdout for name in VARIANTS)
    assert (read, removed, run_with) == (3, 3, 3)

    policies = runner.policy_dir(shared_dir / f"case-policies-{runner.name}")
    learned = [runner("-d", str(policies), "-A", "/bin/cat", str(directory / "notes")),
               runner("-d", str(policies), "-A", "/bin/rm", str(directory / "keep")),
               runner("-d", str(policies), "-A", "/bin/sh", "-c", f"cat {directory}/notes")]
    assert all(r.returncode == 0 for r in learned), [r.stderr[-1000:] for r in learned]
    (directory / "keep").write_text("keep\n")
    os.chown(directory / "keep", runner.uid, -1)

    enforced = runner("-d", str(policies), "-a", "/bin/cat", str(directory / "notes"))
    assert enforced.returncode == 0 and enforced.stdout == b"public\n"  # what was learned replays
    read = sum(b"SECRET" in runner("-d", str(policies), "-a", "/bin/cat", str(directory / name)).stdout
               for name in VARIANTS)
    removed = 0
    for name in KEEPS:
        runner("-d", str(policies), "-a", "/bin/rm", str(directory / name))
        removed += not (directory / name).exists()
    run_with = sum(b"SECRET" in runner("-d", str(policies), "-a", "/bin/sh", "-c", f"cat {directory}/{name}").stdout
                   for name in VARIANTS)  # the exec's argv differs in case only: refused
    assert (read, removed, run_with) == (0, 0, 0)
    assert (directory / "keep").exists() and runner("-d", str(policies), "-a", "/bin/rm",
                                                    str(directory / "keep")).returncode == 0
    assert not (directory / "keep").exists()  # the learned removal itself replays
