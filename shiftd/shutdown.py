"""One deadline for a whole stop: taken once, when the stop begins (the signal, or
`engine.stop()`), and every layer that stops (HTTP's drain, the control requests in hand,
the actors, the sends in flight, the store) is bounded by that same instant, never by a
grace of its own that would add up to several.

A shield that protects work in hand from cancellation is entered with `bounded()`, so
even shielded work ends by the deadline; recording what the deadline cut off (a send's
"may have been sent") gets `RECORDING` more."""

from __future__ import annotations

import math
from types import TracebackType

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

    def bounded(self, scope: trio.CancelScope | None = None, *, after: float = 0.0) -> _Bounded:
        """Enter `scope` (a new one by default) so that it ends by the stop's deadline (plus
        `after` seconds), including a deadline fixed while it runs. Like any cancel scope,
        it swallows its own cancellation: check `cancelled_caught` to learn that the
        deadline cut it."""
        return _Bounded(self, scope if scope is not None else trio.CancelScope(), after)


class _Bounded:
    """What `Shutdown.bounded` returns: entered for every message an actor handles and
    every batch it sends, so a class rather than a generator, and the scope's deadline is
    moved only once a stop has fixed one."""

    __slots__ = ("_after", "_scope", "_shutdown")

    def __init__(self, shutdown: Shutdown, scope: trio.CancelScope, after: float) -> None:
        self._shutdown, self._scope, self._after = shutdown, scope, after

    def __enter__(self) -> trio.CancelScope:
        scope, shutdown = self._scope, self._shutdown
        scope.__enter__()
        if shutdown.deadline + self._after < scope.deadline:
            scope.deadline = shutdown.deadline + self._after
        shutdown._scopes[scope] = self._after
        return scope

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        del self._shutdown._scopes[self._scope]
        return self._scope.__exit__(exc_type, exc, tb)
