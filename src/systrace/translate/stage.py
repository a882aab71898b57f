"""The translate stage of the pipeline (README "The pipeline"): after identify, a call is
translated once, by this stage, and deciders and the log read the result
(`Call.translation`, `Call.translated`); nothing else translates.

What is translated is chosen here, explicitly, from what the run's readers declare: each
decider says which calls' arguments it reads (`reads_arguments_of`: None for every call,
a set of system call names, an empty set for none; a decider that says nothing reads
every call), and a logged call shows its arguments. So a call is translated before
deciding when some decider reads it, and otherwise, only if its decision is logged,
before logging; a call nobody reads (every call of the bare engine, --permit-all
without a log) costs no translation at all."""

from __future__ import annotations

from .filename import MayBlock
from .path_cache import PathCache
from .table import ARG_COUNTS
from .tracee import LiveTracee
from .translator import translate as translate_in_full

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Protocol

    from .tracee import Tracee
    from .translator import Translated

    class Translatable(Protocol):  # systrace.call.Call, as this stage fills it in (a layer above)
        name: str
        tgid: int
        translation: Translated | None
        translated: tuple[tuple[str, str], ...]
        arg_count: int
        translation_error: str

        @property
        def tid(self) -> int: ...

        @property
        def args(self) -> tuple[int, ...]: ...


def translate(syscall: str, raw: tuple[int, ...], tracee: Tracee, use_aliases: bool = True, *,
              keep_probe: bool = False, paths: PathCache | None = None) -> Translated:
    """The stage's one translation of a call: from `paths` (the path cache) when given,
    which translates in full what it does not hold."""
    if paths is None:
        return translate_in_full(syscall, raw, tracee, use_aliases, keep_probe)
    return paths.translate(syscall, raw, tracee, use_aliases, keep_probe)


def arguments_read_by(deciders: Iterable[object]) -> frozenset[str] | None:
    """The calls whose arguments some decider reads: None for every call."""
    names: set[str] = set()
    for decider in deciders:
        reads = getattr(decider, "reads_arguments_of", None)  # not declared: it reads every call
        if reads is None:
            return None
        names |= reads
    return frozenset(names)


class TranslateStage:
    def __init__(self, read: frozenset[str] | None, use_aliases: bool = True):
        self.read = read  # names whose arguments a decider reads (None: every call's)
        self.use_aliases = use_aliases  # --no-aliases: rules and questions see the real calls only
        self.translations = 0  # how many calls were translated (--stats, tests)
        self.paths = PathCache()  # a repeated open or stat of the same file (translate/path_cache.py)

    @classmethod
    def for_deciders(cls, deciders: Iterable[object], use_aliases: bool = True) -> TranslateStage:
        return cls(arguments_read_by(deciders), use_aliases)

    def before_deciding(self, call: Translatable) -> None:
        """Translate the call if a decider reads its arguments."""
        read = self.read
        if (read is None or call.name in read) and call.translation is None:  # (a helper's: FUSE)
            self._translate(call)

    def before_logging(self, call: Translatable) -> None:
        """A logged call shows its arguments: translate it if deciding did not need to."""
        if call.translation is None and not call.translation_error:
            self._translate(call)

    def _translate(self, call: Translatable) -> None:
        self.translations += 1
        try:
            result = translate(call.name, call.args, LiveTracee(call.tid, call.tgid, getattr(call, "may_block", None)),
                               self.use_aliases, keep_probe=True,  # an open's probe: released once answered
                               paths=self.paths)
        except MayBlock:
            raise  # a path on a FUSE mount: the loop has a helper translate it
        except Exception as error:  # noqa: BLE001 - a decider that needs it fails closed (Call.require_translation)
            call.translation_error = repr(error)
            call.translated = (("args", f"<untranslatable: {error!r}>"),)
            return
        call.translation = result
        call.translated = tuple(result.args)
        call.arg_count = ARG_COUNTS.get(call.name, 6)
