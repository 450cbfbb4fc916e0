"""Live pages: the event bus, condensed into "shift X changed" notices for server-sent events.

One bus listener (`LiveFeed.on_event`) serves every open page: it appends the shift id to a
bounded ring of numbered notices and wakes the streams, in O(1) whatever the number of pages,
so a hundred open pages add nothing to what a publisher pays. Each stream (`stream`) wakes
at most every `coalesce` seconds, sends the notices after the last one it sent (those of its
shift only, on a shift's page), and the page's script re-fetches what it shows.

A board's stream carries the changed rows themselves, rendered once per change for every
open board (`payload`); a shift's page re-fetches itself. A page is rendered with the
feed's current number and its stream starts after it, so nothing
that happens between the render and the stream is missed; a stream that reconnects passes
the last number it saw (`Last-Event-ID`) and gets what it missed, or `reload` when that has
left the ring. Streams end by themselves before the listener's idle-read limit would cut
them (the browser reconnects at once), and when the server begins to stop.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

import trio

from ..events import Event

__all__ = ["ANY_SHIFT", "LIVE_KINDS", "LiveFeed"]

ANY_SHIFT = "*"
"""The shift id of a notice that concerns the board as a whole (a roster import)."""

#: Events that change what a coordinator's page shows.
LIVE_KINDS = frozenset(
    {
        "created",
        "fanout_started",
        "wave",
        "wave_held",
        "escalated",
        "claimed",
        "declined",
        "released",
        "unfilled",
        "cancelled",
        "reply",
        "sent",
        "send_failed",
        "send_suppressed",
        "delivery",
    }
)


class LiveFeed:
    """Numbered change notices for the live pages; see the module docstring."""

    def __init__(self, size: int = 4096) -> None:
        self._ring: deque[tuple[int, str]] = deque(maxlen=size)
        self._last_change: dict[str, int] = {}  # shift id → number of its latest notice
        self._size = size
        self.seq = 0
        self._changed = trio.Event()
        self._closed = trio.Event()
        self.streams = 0

    def on_event(self, event: Event) -> None:
        """Bus listener: note a change of `event.shift_id` (of any shift, `*`, for a roster
        import). Never blocks or raises."""
        if event.kind == "roster_imported":
            shift_id = ANY_SHIFT
        elif event.kind in LIVE_KINDS and event.shift_id is not None:
            shift_id = event.shift_id
        else:
            return
        self.seq += 1
        self._ring.append((self.seq, shift_id))
        if len(self._last_change) > 4 * self._size:
            self._last_change.clear()  # a shift missing here counts as changed just now
        self._last_change[shift_id] = self.seq
        self._changed.set()
        self._changed = trio.Event()

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        self._closed.set()
        self._changed.set()

    def last_change(self, shift_id: str) -> int:
        """The number of the latest notice about `shift_id` (the current one if unknown)."""
        return self._last_change.get(shift_id, self.seq)

    def since(self, after: int, shift_id: str | None) -> tuple[list[str], bool]:
        """The shifts changed after notice `after` (each once, `shift_id`'s only when given),
        and whether some of those notices have already left the ring."""
        lost = after < self.seq and (not self._ring or self._ring[0][0] > after + 1)
        changed: dict[str, None] = {}
        for seq, sid in reversed(self._ring):
            if seq <= after:
                break
            if shift_id is None or sid == shift_id:
                changed[sid] = None
        return list(changed), lost

    async def stream(
        self,
        after: int,
        shift_id: str | None,
        *,
        lifetime: float,
        coalesce: float = 1.0,
        alive: Callable[[], bool] = lambda: True,
        payload: Callable[[list[str]], Awaitable[str]] | None = None,
    ) -> AsyncIterator[bytes]:
        """SSE frames: `change` notices after `after` (data: the changed shift ids as JSON,
        or what `payload` makes of them: one line, JSON), `reload` if some were lost (or,
        with a `payload`, for a roster import), a comment every 15 s to keep proxies from
        closing it, until `lifetime` seconds have passed, `alive()` turns false, or
        `close()`."""
        self.streams += 1
        try:
            yield b"retry: 1000\n\n"
            deadline = trio.current_time() + lifetime
            last = after
            while alive() and not self._closed.is_set():
                changed, lost = self.since(last, shift_id)
                last = self.seq
                if lost or (payload is not None and ANY_SHIFT in changed):
                    yield f"id: {last}\nevent: reload\ndata: {{}}\n\n".encode()
                elif changed:
                    data = await payload(changed) if payload is not None else json.dumps(changed)
                    yield f"id: {last}\nevent: change\ndata: {data}\n\n".encode()
                remaining = deadline - trio.current_time()
                if remaining <= 0:
                    return
                with trio.move_on_after(min(remaining, 15.0)) as idle:
                    await self._changed.wait()
                if idle.cancelled_caught:
                    yield b": idle\n\n"
                else:
                    await trio.sleep(coalesce)  # let a burst of changes arrive together
        finally:
            self.streams -= 1
