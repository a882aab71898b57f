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

Pure logic: the caller reads the roots (/proc/TID/root, as systrace sees it)."""

from __future__ import annotations


def new_root(root_before: str, target: str) -> str:
    """The root a chroot to `target` (its canonical path as the caller saw it, below its
    root) gives a caller whose root was `root_before`, as /proc/TID/root shows it to
    systrace (the readlink's form: no trailing slash but for "/")."""
    if not target.startswith("/"):  # (a name translation could not resolve: it names no root)
        return target
    if root_before == "/":
        return target
    return root_before.rstrip("/") + (target if target != "/" else "")


class Roots:
    """The roots tracees may have: systrace's own at the start, and each root a permitted
    chroot named (add-only: a process forked in a jail keeps its root). A root not in it
    was never checked."""

    def __init__(self, own: str) -> None:
        self._own = own or "/"
        self._allowed = {self._own}

    def approve(self, root_before: str, target: str) -> None:
        self._allowed.add(new_root(root_before, target))

    def allows(self, root: str | None) -> bool:
        """Is `root` (None: the call resolved no path) one a tracee may have?"""
        return root is None or root in self._allowed

    def only_own(self) -> bool:
        """No chroot was permitted yet: every tracee's root is systrace's."""
        return self._allowed == {self._own}
