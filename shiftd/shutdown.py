"""One deadline for a whole stop: taken once, when the stop begins (the signal, or
`engine.stop()`), and every layer that stops (HTTP's drain, the control requests in hand,
the actors, the sends in flight, the store) is bounded by that same instant, never by a
grace of its own that would add up to several.

A shield that protects work in hand from cancellation is entered with `bounded()`, so
even shielded work ends by the deadline; recording what the deadline cut off (a send's
"may have been sent") gets `RECORDING` more."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import trio

RECORDING = 1.0
"""Seconds after the deadline for writing down what it cut off; the store's last writes."""


class Shutdown:
    """The stop's deadline (`math.inf` until the stop begins), in `trio.current_time()`."""

    def __init__(self) -> None:
        self.deadline = math.inf
        self._scopes: dict[trio.CancelScope, float] = {}

    @property
    def begun(self) -> bool:
        return self.deadline != math.inf

    def begin(self, grace: float) -> float:
        """Fix the deadline `grace` seconds from now, unless a stop has already fixed it;
        return it. Every scope entered with `bounded()` ends by then at the latest."""
        if not self.begun:
            self.deadline = trio.current_time() + grace
            for scope, after in self._scopes.items():
                scope.deadline = min(scope.deadline, self.deadline + after)
        return self.deadline

    @contextmanager
    def bounded(
        self, scope: trio.CancelScope | None = None, *, after: float = 0.0
    ) -> Iterator[trio.CancelScope]:
        """Enter `scope` (a new one by default) so that it ends by the stop's deadline (plus
        `after` seconds), including a deadline fixed while it runs. Like any cancel scope,
        it swallows its own cancellation: check `cancelled_caught` to learn that the
        deadline cut it."""
        scope = scope if scope is not None else trio.CancelScope()
        with scope:
            scope.deadline = min(scope.deadline, self.deadline + after)
            self._scopes[scope] = after
            try:
                yield scope
            finally:
                del self._scopes[scope]
