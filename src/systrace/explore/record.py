"""The recording run: every call that may fail goes to the supervisor, which writes one
JSON line per call (process, binary, system call, translated arguments) and lets it run.

    python -m systrace.explore.record OUT SET -- command ...

Occurrence numbers are computed afterwards (sites.py) exactly as an --inject rule counts:
per process, reset by exec, so the recorder only numbers the processes."""

from __future__ import annotations

import json
import os
import sys

from ..decide import Chain, PermitAll

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..call import Call
    from ..processes import ProcessTable


class SiteRecorder:
    """A decider that records and never decides: the next one (PermitAll) lets the call run."""

    def __init__(self, routed: frozenset[str], out, processes: ProcessTable | None = None):
        self.routed = routed
        self.reads_arguments_of = routed  # every call it records (translate/stage.py)
        self.out = out
        self.processes = processes  # who owns a call (a reused pid, an exec: a new process)
        self._owners: dict[int, tuple[object, int]] = {}  # tgid -> (its ThreadInfo, process number)
        self._next = 0

    def decide(self, call: Call):
        if call.name not in self.routed:
            return None
        owner = self.processes.info(call.tgid) if self.processes is not None else call.tgid
        known = self._owners.get(call.tgid)
        if known is None or known[0] is not owner:  # a new process, or the same after exec
            self._next += 1
            known = self._owners[call.tgid] = (owner, self._next)
        try:
            args = [list(pair) for pair in call.require_translation().args]
        except Exception:  # noqa: BLE001 - a call we cannot read is still a site
            args = []
        self.out.write(json.dumps({"proc": known[1], "pid": call.tgid, "binary": call.exe, "syscall": call.name, "args": args},
                                  ensure_ascii=False) + "\n")
        return None


def main(argv: list[str]) -> int:
    from ..baseline import apply_baseline, base_plan
    from ..engine import supervise
    from ..faults.spec import SpecError, expand_set
    from ..kernel import abi
    from ..kernel.launch import LaunchError, resolve_command
    from ..log import Log
    from ..processes import ProcessTable
    from ..session import Session
    from ..wiring import route_faults
    from .sites import failable

    if len(argv) < 4 or argv[2] != "--":
        print("usage: python -m systrace.explore.record OUT SET -- command ...", file=sys.stderr)
        return 2
    out_path, set_text, command = argv[0], argv[1], argv[3:]
    try:
        routed = failable(expand_set(set_text))
    except SpecError as error:
        print(f"systrace: {error}", file=sys.stderr)
        return 2
    try:
        path = resolve_command(command[0], os.environ.get("PATH"))
    except LaunchError as error:
        print(f"systrace: {error}", file=sys.stderr)
        return error.status
    with open(out_path, "w", encoding="utf-8", errors="surrogateescape") as out:
        processes = ProcessTable()
        recorder = SiteRecorder(routed, out, processes=processes)
        session = Session(log=Log([]), chain=Chain([recorder, PermitAll(log=False)]), processes=processes)
        plan = base_plan(abi.RET_ALLOW)
        route_faults(plan, recorder)
        apply_baseline(plan)
        try:
            status = supervise(path, command, dict(os.environ), session, plan)
        except LaunchError as error:
            print(f"systrace: {error}", file=sys.stderr)
            return error.status
        session.finish()
    return status


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
