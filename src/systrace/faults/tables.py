"""Which errors each system call can really return, the classes used to select calls, and
the calls that are never failed -- all read from the system call facts table
(facts/rows.py: `errnos`, `fd_errnos`, `classes`, `faultable`).

A call with no table is never failed by -r: an error it cannot return would test nothing
but the program's surprise. A call's descriptor form (newfstatat(fd, "", AT_EMPTY_PATH),
fstat by another name) has its own key, NAME/fd, with its own errors: it names no file,
so it is in neither fsread nor %file, and never gets ENOENT, ENOTDIR, ELOOP or EROFS."""

from __future__ import annotations

from ..facts import ROWS, fd_form_key

ERRNOS: dict[str, tuple[int, ...]] = {
    **{name: row.errnos for name, row in ROWS.items() if row.errnos and row.faultable},
    **{fd_form_key(name): row.fd_errnos for name, row in ROWS.items() if row.fd_errnos and row.faultable},
}

# Calls that cannot fail: programs do not check them, and failing them sends a program
# down paths that do harm (a getpid() of -1 led to kill(-1, SIGABRT) in the original's
# discussion). Besides these, nothing without a table above is ever failed, and the
# calls systrace always leaves to the kernel (README "Always decided") never reach it.
NEVER_FAIL = tuple(name for name, row in ROWS.items() if not row.faultable)
assert not set(NEVER_FAIL) & set(ERRNOS)

_FAULT_CLASSES = ("file", "desc", "network", "memory", "process", "signal", "ipc", "creds", "clock")
# %desc also holds the descriptor forms (NAME/fd); %file holds only the forms that name a file.
CLASSES: dict[str, tuple[str, ...]] = {
    klass: tuple(name for name, row in ROWS.items() if klass in row.classes)
    + (tuple(fd_form_key(name) for name, row in ROWS.items() if row.fd_errnos is not None) if klass == "desc" else ())
    for klass in _FAULT_CLASSES
}


def fd_forms_of(names: frozenset[str] | set[str]) -> set[str]:
    """The descriptor-form keys of the calls named: naming a call selects both its forms."""
    return {fd_form_key(name) for name in names if name in ROWS and ROWS[name].fd_errnos is not None}
