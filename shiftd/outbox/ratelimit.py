"""Send-rate limits on Trio's clock: a token bucket per sender number, shared by a pool.

Carriers and Twilio allow about one text per second from a long-code number and a few call
starts per second per account; faster sending is queued by the provider (or refused with
429), which is how a texted offer ends up arriving after the shift was filled. shiftd keeps
its own queue instead — the outbox — and lets a message leave only when a number has a turn.

Each bucket follows the generic cell rate algorithm: it keeps the *theoretical arrival time*
(TAT) of its next message; a message may go when `now >= TAT - (burst - 1) / rate`, and
sending moves TAT on by `1 / rate`. That is a token bucket holding `burst` tokens refilled
at `rate` per second, kept as one float and compared with `trio.current_time()` exactly, so
it is deterministic on `trio.testing.MockClock` and never spins on rounding.

`RatePool` shares the load of one queue between several numbers: a waiter gets the number
whose bucket frees first (on a tie, the one used least recently). Waiters are served in
arrival order (a `trio.Lock` is fair): the first in line sleeps until a number frees, the
others wait behind it, so nobody starves and nothing busy-waits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import trio

__all__ = ["RatePool", "TokenBucket"]


class TokenBucket:
    """`rate` sends per second, up to `burst` at once after a quiet spell. Starts full.

    Times are Trio times (`trio.current_time()`); methods take `now` so the pool decides with
    one reading of the clock. Raises ValueError for a rate or burst that is not positive.
    """

    __slots__ = ("_tat", "burst", "interval", "rate")

    def __init__(self, rate: float, burst: int = 1) -> None:
        if not (rate > 0 and math.isfinite(rate)):
            raise ValueError(f"rate must be a positive number of sends per second (got {rate})")
        if burst < 1:
            raise ValueError(f"burst must be at least 1 (got {burst})")
        self.rate = rate
        self.burst = burst
        self.interval = 1.0 / rate
        self._tat = -math.inf  # the theoretical arrival time of the next send

    def ready_at(self) -> float:
        """The Trio time from which one send is allowed (in the past when one is allowed now)."""
        return self._tat - (self.burst - 1) * self.interval

    def take(self, now: float) -> None:
        """Spend one send at `now` (the caller checked `ready_at() <= now`)."""
        self._tat = max(self._tat, now) + self.interval

    def give_back(self, now: float) -> None:
        """Undo one `take` that was not used: the bucket is as if that send never happened."""
        self._tat = max(self._tat - self.interval, now)

    def tokens(self, now: float) -> float:
        """How many sends are allowed at once at `now` (for tests and status)."""
        backlog = max(0.0, self._tat - now) / self.interval
        return max(0.0, self.burst - backlog)


class RatePool:
    """Hands out keys (sender numbers) so that each keeps to its own bucket's rate.

    `acquire()` waits for a turn and returns the key to send with; `release(key)` hands back
    a turn that was not used. Raises ValueError for an empty or repeated key list.
    """

    def __init__(self, keys: Sequence[str], rate: float, burst: int = 1) -> None:
        if not keys:
            raise ValueError("a rate pool needs at least one key")
        if len(set(keys)) != len(keys):
            raise ValueError("rate pool keys must be distinct")
        self.rate = rate
        self.burst = burst
        self._buckets = {key: TokenBucket(rate, burst) for key in keys}
        self._line = trio.Lock()  # fair: waiters are served in arrival order
        self._returned = trio.Event()
        self.waiting = 0
        """How many tasks are waiting in `acquire()` now."""

    @property
    def keys(self) -> list[str]:
        return list(self._buckets)

    async def acquire(self) -> str:
        """Wait until some key may send, spend its turn, and return it.

        Cancellation while waiting spends nothing. Waits are on Trio's clock.
        """
        self.waiting += 1
        try:
            async with self._line:
                while True:
                    key, bucket = min(self._buckets.items(), key=lambda kv: kv[1].ready_at())
                    ready = bucket.ready_at()
                    now = trio.current_time()
                    if ready <= now:
                        bucket.take(now)
                        return key
                    # Sleep until that bucket frees, or until a turn is handed back.
                    self._returned = trio.Event()
                    with trio.move_on_at(ready):
                        await self._returned.wait()
        finally:
            self.waiting -= 1

    def release(self, key: str) -> None:
        """Hand back one turn of `key` that `acquire()` gave and was not used. Never blocks."""
        self._buckets[key].give_back(trio.current_time())
        self._returned.set()

    def tokens(self, key: str) -> float:
        """Sends `key` may make at once right now."""
        return self._buckets[key].tokens(trio.current_time())
