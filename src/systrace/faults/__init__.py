"""Fault injection: which calls may fail and with what (pure planning, no kernel)."""
