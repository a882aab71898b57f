"""One table of system call facts: one row per x86_64 system call, as strace's
syscallent keeps them (rows.py), and small accessors. The aliases, translators, fault
tables, baseline, learning and enforcement read this table instead of keeping lists.

A row says:
- `classes`: strace's classes (file, desc, network, process, signal, ipc, memory, creds,
  clock, stat, pure) -- what `%file`, `%desc`... select;
- `args`: every argument that matters for policy, with its translator;
- `errnos`: the errors the call can really return (faults draw from them);
- `failure`: how it fails: "errno" (-errno), "old-break" (brk returns the current break
  unchanged), "none" (it cannot fail);
- `kernel`: why the filter always decides it (see baseline.py), or None;
- `emulated`: permitted calls are done by systrace (open family, connect, bind, sends to a
  destination);
- `reach`: what it acts on: SELF (only the calling process), HELD (descriptors the process
  already holds, within the access their open granted) or OUTSIDE (files, other
  processes, the terminal, mounts, the network, the system). SELF and HELD calls are the
  learned policies' base; OUTSIDE calls are learned with their translated arguments;
- `alias`: fsread / fswrite / open (chosen by the open flags) / seteuid / setegid;
- `fd_errnos`: set when the call has a descriptor form (AT_EMPTY_PATH, a NULL path):
  the errors of that form, which names no file and has no alias;
- `invalidates`: what of the supervisor's caches the call changes ("exec": the binary,
  group and credentials; "credentials": the effective ids; "landlock": the copy of the
  process's own Landlock domain, domains.py; "namespaces": the thread's mount and user
  namespaces, kernel/namespaces.py). Such a call always reaches
  the supervisor (`kernel="notified"`), whatever a policy says;
- `deny`: the errno an enforced denial returns (EACCES for file access, ENOMEM for
  memory, EPERM otherwise) unless the rule names one.
"""

from __future__ import annotations

from .rows import FD_FORM, HELD, OUTSIDE, ROWS, SELF, Row

__all__ = ["FD_FORM", "HELD", "OUTSIDE", "ROWS", "SELF", "Row", "row", "names_with", "fd_form_key", "real_name",
           "invalidating_calls", "STRINGS_READ_AGAIN", "STRINGS_CARRIED_OUT", "refused_argument"]


def row(name: str) -> Row | None:
    return ROWS.get(name)


def names_with(**fields: object) -> tuple[str, ...]:
    """The calls whose rows have these field values, in table order."""
    if len(fields) == 1:  # one field (the baseline's six lists at start-up): one pass for all its values
        ((field, value),) = fields.items()
        groups = _BY_FIELD.get(field)
        if groups is None:
            groups = _BY_FIELD[field] = _grouped(field)
        if groups is not None:
            try:
                return groups.get(value, ())
            except TypeError:  # an unhashable value: compared below
                pass
    return tuple(name for name, r in ROWS.items() if all(getattr(r, k) == v for k, v in fields.items()))


_BY_FIELD: dict[str, dict[object, tuple[str, ...]] | None] = {}


def _grouped(field: str) -> dict[object, tuple[str, ...]] | None:
    """The calls by their value of `field`, in table order (None: some value is unhashable)."""
    lists: dict[object, list[str]] = {}
    try:
        for name, r in ROWS.items():
            lists.setdefault(getattr(r, field), []).append(name)
    except TypeError:
        return None
    return {value: tuple(names) for value, names in lists.items()}


def fd_form_key(name: str) -> str:
    """The name fault sets and errno tables give a call's descriptor form."""
    return name + FD_FORM


def real_name(key: str) -> str:
    return key[: -len(FD_FORM)] if key.endswith(FD_FORM) else key


def invalidating_calls() -> dict[str, str]:
    """Every call that changes something the supervisor caches, and what it changes."""
    return {name: r.invalidates for name, r in ROWS.items() if r.invalidates is not None}


# The calls decided on a string that is not a path, which the kernel reads again from
# the caller's memory once the call is continued (a second thread may change it between
# systrace's check and that read): what a permit that looks at such a string becomes.
#
# Those of STRINGS_CARRIED_OUT are made by systrace on the checked copy
# (kernel/emulate_strings.py); the others are refused (EACCES, logged) when the decision
# looks at their strings: add_key and request_key act on the caller's own process, thread
# and session keyrings, which no other process can act on for it; the module calls and
# kexec_file_load are not carried out. Pure data: the parser warns with it, the policy
# decider applies it.
STRINGS_READ_AGAIN = {"memfd_create": ("name",), "mq_open": ("name",), "mq_unlink": ("name",),
                      "sethostname": ("name",), "setdomainname": ("name",), "delete_module": ("name",),
                      "init_module": ("params",), "finit_module": ("params",), "kexec_file_load": ("cmdline",),
                      "add_key": ("type", "description"), "request_key": ("type", "description")}
STRINGS_CARRIED_OUT = frozenset(("memfd_create", "mq_open", "mq_unlink", "sethostname", "setdomainname",
                                 "delete_module"))


def refused_argument(syscall: str, argument: str) -> str | None:
    """Why a rule whose condition looks at `argument` of `syscall` lets no call through
    (None: it may): every call it permits, or leaves to a later permit, is refused."""
    if syscall in STRINGS_CARRIED_OUT or argument not in STRINGS_READ_AGAIN.get(syscall, ()):
        return None
    return (f"'{syscall}' decided on its '{argument}' is refused at every call (EACCES), whatever this rule "
            "says: the kernel reads it again after the check; decide on the keyring or descriptor (SECURITY.md)")
