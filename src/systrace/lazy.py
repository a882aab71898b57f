"""A module imported, or a regular expression compiled, the first time one of its names
is used (start-up time: a run that never sends or restricts itself with Landlock never
pays for the code that does it; issue 16).

    send = lazy("systrace.kernel.send")   # nothing imported yet
    send.SendCall(...)                    # imported now; later uses are plain attribute reads

Each name is read from the module once and kept on the proxy, so a use after the first
costs what an attribute read costs (an import statement in a function costs about 1-3 µs
per call). Meant for a module's classes and functions, which it never rebinds.

Loaded late means loaded while the command runs: SECURITY.md, "Code loaded after the
command starts", says what that implies.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    import re


class _Lazy:
    _lazy_name: str

    def __init__(self, name: str):
        self.__dict__["_lazy_name"] = name

    def __getattr__(self, attribute: str) -> object:  # only called for names not read yet
        module = __import__(self._lazy_name, fromlist=("_",))
        value = getattr(module, attribute)
        self.__dict__[attribute] = value
        return value

    def __repr__(self) -> str:
        return f"<lazy module {self._lazy_name}>"


def lazy(name: str) -> object:
    """A stand-in for the module `name` (absolute), imported at its first use."""
    return _Lazy(name)


class _LazyPattern:
    _lazy_pattern: tuple[str, int]

    def __init__(self, pattern: str, flags: int):
        self.__dict__["_lazy_pattern"] = (pattern, flags)

    def __getattr__(self, attribute: str) -> object:  # only called for names not read yet
        import re

        value = getattr(re.compile(*self._lazy_pattern), attribute)
        self.__dict__[attribute] = value
        return value


def lazy_pattern(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """re.compile(pattern, flags), compiled at its first use (a pattern costs 0.1-0.6 ms
    to compile: those of error messages and of paths few runs take wait until needed)."""
    return _LazyPattern(pattern, flags)  # type: ignore[return-value]
