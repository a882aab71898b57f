"""An intercepted system call as the deciders see it."""

from __future__ import annotations

from .kernel.syscalls_x86_64 import SYSCALLS

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable

    from .kernel.notify import Notification
    from .policy.ast import Rule
    from .policy.store import StoredPolicy
    from .translate.translator import Translated

Args = tuple[tuple[str, str], ...]  # translated arguments, in order: (name, value)

SYSCALL_NAMES: dict[int, str] = {nr: name for name, nr in SYSCALLS.items()}


def syscall_name(nr: int) -> str:
    return SYSCALL_NAMES.get(nr, f"syscall_{nr}")


class Call:
    """What the stages learn about a call travels here, in typed fields: translation
    (once), the policy and rule that decided it, why, and how it was asked about."""

    __slots__ = ("notif", "tgid", "ppid", "exe", "name", "uid", "gid", "translation", "translated", "arg_count",
                 "translation_error", "policy", "filters", "rule", "reason", "ask", "asked_as", "no_learn",
                 "may_block", "opener_namespaces")

    def __init__(self, notif: Notification, tgid: int, ppid: int, exe: str, uid: int = -1, gid: int = -1):
        self.notif = notif
        self.tgid = tgid
        self.ppid = ppid
        self.exe = exe
        self.name = syscall_name(notif.nr)
        self.uid = uid
        self.gid = gid
        # set once, by the translate stage (translate/stage.py), never by a decider
        self.translation: Translated | None = None
        self.translated: Args = ()  # ... its arguments, as logged and learned
        self.arg_count = 6  # the call's argument count (a question with no translated argument)
        self.translation_error = ""  # why translating it failed ("": it did not)
        self.policy: StoredPolicy | None = None  # the binary's policy, once a decider looked it up
        self.filters = 0  # how many rules it has (the question's "filters")
        self.rule: Rule | None = None  # the rule that decided the call
        self.reason: str | None = None  # why, when the log line should say
        self.ask = False  # an `ask` rule matched: the mode's fallback decides
        self.asked_as: tuple[str, Args] | None = None  # asked about the alias: its name and arguments
        self.no_learn = False  # decided for a reason learning must not turn into a rule
        self.may_block: Callable[[bytes, int, bytes | None], bool] | None = None  # is a path on a tracee-served mount? (the loop's)
        # the caller's namespaces ("net", "ipc", "user") a helper joins to carry it out: it
        # names a /proc entry resolved by its opener's namespace (supervisor.namespace_of_opener)
        self.opener_namespaces: tuple[str, ...] = ()

    def require_translation(self) -> Translated:
        """The translate stage's result, for a decider that reads arguments. Missing (the
        translation failed, or the decider did not declare that it reads this call):
        an error, so the call is denied (fail closed)."""
        translation = self.translation
        if translation is None:
            raise LookupError(f"{self.name} not translated: "
                              + (self.translation_error or "its decider did not declare that it reads it"))
        return translation

    @property
    def tid(self) -> int:
        return self.notif.pid

    @property
    def nr(self) -> int:
        return self.notif.nr

    @property
    def args(self) -> tuple[int, ...]:
        return self.notif.args
