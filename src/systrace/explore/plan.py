"""Which runs to make (pure): one trial per site, errno and kind (one-off or lasting), in
waves so that a loop's later occurrences are folded once K of them gave the same outcome.
The order depends only on the recording and the outcomes, never on timing, so a shard
or a --max-runs budget always selects the same trials."""

from __future__ import annotations

from ..faults.tables import ERRNOS
from ..policy.errnos import name_of
from ..record import record
from .sites import Site


@record
class Trial:
    site: Site
    errno: int
    lasting: bool

    def spec(self) -> str:
        """The --inject rule that fails exactly this site (and, lasting, every later call it selects)."""
        when = f"{self.site.occurrence}+" if self.lasting else str(self.site.occurrence)
        text = f"{self.site.syscall}:error={name_of(self.errno).upper()}:when={when}"
        if self.site.path is not None:
            text += f":path={self.site.path}"
        return text

    def reproducer(self, command: list[str]) -> list[str]:
        return ["systrace", "--permit-all", "--inject", self.spec(), "--", *command]

    @property
    def sequence(self) -> tuple:
        return (self.site.group, self.errno, self.lasting)


def choose_errnos(syscall: str, wanted: str | frozenset[int]) -> tuple[int, ...]:
    """'first': the table's representative (its first, most common errno); 'all': the
    whole table; a set: those of the set the call can return."""
    table = ERRNOS.get(syscall, ())
    if wanted == "first":
        return table[:1]
    if wanted == "all":
        return table
    return tuple(code for code in table if code in wanted)


def trials_for(sites: list[Site], wanted: str | frozenset[int]) -> list[Trial]:
    return [Trial(site, code, lasting) for site in sites for code in choose_errnos(site.syscall, wanted)
            for lasting in (False, True)]


class Campaign:
    """Hands out trials wave by wave. A sequence (one loop site, one errno, one kind) gives
    K trials per wave; once its last K outcomes are identical the rest is folded."""

    def __init__(self, trials: list[Trial], fold: int = 3, max_runs: int | None = None):
        self.fold = fold
        self.budget = max_runs
        self.sequences: dict[tuple, list[Trial]] = {}
        for trial in trials:
            self.sequences.setdefault(trial.sequence, []).append(trial)
        for sequence in self.sequences.values():
            sequence.sort(key=lambda t: t.site.occurrence)
        self.outcomes: dict[Trial, str] = {}
        self.given: dict[tuple, int] = dict.fromkeys(self.sequences, 0)
        self.folded: dict[tuple, int] = {}  # sequence -> how many trials were folded
        self.handed = 0

    def record(self, trial: Trial, outcome: str) -> None:
        self.outcomes[trial] = outcome

    def wave(self) -> list[Trial]:
        """The next trials to run, all of whose predecessors' outcomes are known."""
        out: list[Trial] = []
        for key, sequence in self.sequences.items():
            given = self.given[key]
            if given >= len(sequence) or key in self.folded:
                continue
            done = [self.outcomes.get(t) for t in sequence[:given]]
            if None in done:
                continue  # still running (the caller runs a whole wave before asking again)
            if self.fold and len(done) >= self.fold and len(set(done[-self.fold:])) == 1:
                self.folded[key] = len(sequence) - given
                continue
            step = self.fold if self.fold else len(sequence)
            out.extend(sequence[given:given + step])
            self.given[key] = min(len(sequence), given + step)
        if self.budget is not None:
            room = max(0, self.budget - self.handed)
            for trial in reversed(out[room:]):  # not handed out after all
                self.given[trial.sequence] = self.sequences[trial.sequence].index(trial)
            out = out[:room]
        self.handed += len(out)
        return out

    def left_out(self) -> int:
        """Trials never run because of --max-runs."""
        return sum(len(seq) - self.given[key] for key, seq in self.sequences.items() if key not in self.folded)

    def folded_total(self) -> int:
        return sum(self.folded.values())

