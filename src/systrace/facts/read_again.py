"""The calls decided on a string that is not a path, which the kernel reads again from
the caller's memory once the call is continued (a second thread may change it between
systrace's check and that read): what a permit that looks at such a string becomes.

Those of STRINGS_CARRIED_OUT are made by systrace on the checked copy
(kernel/emulate_strings.py); the others are refused (EACCES, logged) when the decision
looks at their strings: add_key and request_key act on the caller's own process, thread
and session keyrings, which no other process can act on for it; the module calls and
kexec_file_load are not carried out. Pure data: the parser warns with it, the policy
decider applies it."""

from __future__ import annotations

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
