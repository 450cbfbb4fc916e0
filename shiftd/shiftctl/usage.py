"""A problem with what the user gave shiftctl (a bad file, an oversized item)."""

from __future__ import annotations

PROG = "shiftctl"


class UsageError(Exception):
    """A problem with what the user gave us (bad file, oversized item): exit status 2."""
