"""Errors of the asking transports, importable without loading them (start-up time)."""


class FrontendGone(Exception):
    """The frontend closed its end, exited, or the terminal went away."""
