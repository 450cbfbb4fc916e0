"""Waiting on a real process from a synchronous test (a daemon started as a subprocess)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(condition: Callable[[], T], timeout: float, what: str) -> T:
    """Poll `condition` every 50 ms until it returns something truthy, and return that.

    Raises AssertionError naming `what` after `timeout` seconds of wall-clock time.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
