"""The roots a tracee may have: systrace's own, or one a chroot systrace permitted named.

`chroot` cannot be carried out by systrace (it changes the caller's own root), so a
permitted one is continued, and the kernel reads its path again: a second thread (or a
CLONE_VM sibling) swapping the string between the check and that read lands the caller
in a root nobody checked. Every later path of the process is resolved, and named for the
policy, below its root (translate/filename.py), so the rules written for the jail would
then apply to whatever tree it landed in (found by an adversarial review: natively 1191
of 3000 swaps landed, under -a 76 of 1000 read the other tree's file). Instead of
trusting the continued call, every path call's translated root is compared with the
roots checked chroots named in this run: any other root kills the process at its first
path call there, before anything is resolved in it (SECURITY.md, "Path calls").

Pure logic: the caller reads the roots (/proc/TID/root, as systrace sees it) and the
directories they are (kernel/procfs.py: directory_identity)."""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs start-up time
if TYPE_CHECKING:
    from collections.abc import Callable


def new_root(root_before: str, target: str) -> str:
    """The root a chroot to `target` (its canonical path as the caller saw it, below its
    root) gives a caller whose root was `root_before`, as /proc/TID/root shows it to
    systrace (the readlink's form: no trailing slash but for "/")."""
    if not target.startswith("/"):  # (a name translation could not resolve: it names no root)
        return target
    if root_before == "/":
        return target
    return root_before.rstrip("/") + (target if target != "/" else "")


Identity = tuple[int, int]  # (st_dev, st_ino) of a directory


class Roots:
    """The roots tracees may have: systrace's own at the start ("/": /proc/TID/root names
    a root relative to systrace's), and each root a permitted chroot named (add-only: a
    process forked in a jail keeps its root). A root is known by the name /proc/TID/root
    gives it and by the directory that name named when the chroot was checked, so that a
    jail renamed or deleted in use (its name then changes: `/srv/jail2`, `/srv/jail
    (deleted)`) is still the root checked. A root neither names was never checked.
    `identity_of` gives the directory a path names as systrace sees it (None: none)."""

    def __init__(self, identity_of: Callable[[str], Identity | None]) -> None:
        self._identity_of = identity_of
        self._allowed = {"/"}
        own = identity_of("/")
        self._identities = {own} if own is not None else set()

    def approve(self, root_before: str, target: str) -> None:
        """A chroot to `target` was permitted (now, before the kernel's chroot: its
        directory is what the check named)."""
        root = new_root(root_before, target)
        self._allowed.add(root)
        identity = self._identity_of(root)
        if identity is not None:
            self._identities.add(identity)

    def allows(self, root: str | None, tid: int) -> bool:
        """Is `root` (None: the call resolved no path) one thread `tid` may have? Its
        directory is looked at only for a name not approved."""
        if root is None or root in self._allowed:
            return True
        found = self._identity_of(f"/proc/{tid}/root")
        return found is not None and found in self._identities
