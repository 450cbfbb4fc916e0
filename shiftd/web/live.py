"""Live pages: the event bus, condensed into "shift X changed" notices for server-sent events.

One bus listener (`LiveFeed.on_event`) serves every open page: it notes the shift's latest
notice number in a bounded table and wakes the streams, in O(1) whatever the number of pages,
so a hundred open pages add nothing to what a publisher pays. Streams wake at most every
`coalesce` seconds and send the notices up to a tick they share (those of their shift only,
on a shift's page), so streams at the same position send one frame made once.

A board's stream carries the changed rows themselves, rendered once per change for every
open board (`payload`); a shift's page re-fetches itself. A page is rendered with the
feed's current number and its stream starts after it, so nothing that happens between the
render and the stream is missed; a stream that reconnects passes the last number it saw
(`Last-Event-ID`) and gets what it missed, or `reload` when that has left the table. Streams
end by themselves before the listener's idle-read limit would cut them (the browser
reconnects at once), and when the server begins to stop.
"""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import trio

from ..events import Event
from ..models import EventKind

__all__ = ["ANY_SHIFT", "LISTENED", "LIVE_KINDS", "LiveFeed"]

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


LISTENED = LIVE_KINDS | {EventKind.ROSTER_IMPORTED}
"""The kinds `LiveFeed.on_event` takes notice of."""


class LiveFeed:
    """Numbered change notices for the live pages; see the module docstring."""

    def __init__(self, size: int = 4096) -> None:
        # shift id → the number of its latest notice, oldest first; at most `size` shifts,
        # so a burst on the same shifts loses nothing however many notices it makes.
        self._last_change: dict[str, int] = {}
        self._forgotten_upto = 0  # notices up to this one may have been dropped
        self._size = size
        self.seq = 0
        # Streams send up to a shared tick, so those at the same position share one frame.
        self._tick_seq = 0
        self._tick_at = -math.inf
        self._frames: dict[tuple[Any, ...], bytes | trio.Event] = {}
        self._changed = trio.Event()
        self._closed = trio.Event()
        self.streams = 0

    def on_event(self, event: Event) -> None:
        """Bus listener: note a change of `event.shift_id` (of any shift, `*`, for a roster
        import). Never blocks or raises."""
        if event.kind == EventKind.ROSTER_IMPORTED:
            shift_id = ANY_SHIFT
        elif event.kind in LIVE_KINDS and event.shift_id is not None:
            shift_id = event.shift_id
        else:
            return
        self.seq += 1
        if self._last_change.pop(shift_id, None) is None and len(self._last_change) >= self._size:
            self._last_change.clear()  # a shift missing here counts as changed just now
            self._forgotten_upto = self.seq - 1
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

    def since(
        self, after: int, shift_id: str | None, upto: int | None = None
    ) -> tuple[list[str], bool]:
        """The shifts changed after notice `after` up to `upto` (default: the latest), each
        once (`shift_id`'s only when given), and whether some of those notices have already
        been dropped from the table."""
        upto = self.seq if upto is None else upto
        lost = after < self._forgotten_upto
        changed: dict[str, None] = {}
        for sid, seq in reversed(self._last_change.items()):
            if seq <= after:
                break
            if seq <= upto and (shift_id is None or sid == shift_id):
                changed[sid] = None
        return list(changed), lost

    def _tick(self, coalesce: float) -> int:
        """The notice streams send up to now: the latest one, taken at most every
        `coalesce` seconds and shared by every stream until the next."""
        now = trio.current_time()
        if now - self._tick_at >= coalesce:
            self._tick_seq, self._tick_at = self.seq, now
            self._frames.clear()
        return self._tick_seq

    async def _frame(
        self,
        after: int,
        upto: int,
        shift_id: str | None,
        payload: Callable[[list[str]], Awaitable[str]] | None,
    ) -> bytes:
        """The frame for the notices after `after` up to `upto`, made once per tick for all
        the streams at that position."""
        key = (after, upto, shift_id, payload)
        while isinstance(made := self._frames.get(key), trio.Event):
            await made.wait()  # another stream at this position is making it
        if made is not None:
            return made
        # The payload reads the store (a checkpoint): the streams that wake at the same tick
        # wait for the first one's frame rather than each making its own.
        self._frames[key] = making = trio.Event()
        try:
            changed, lost = self.since(after, shift_id, upto)
            if lost or (payload is not None and ANY_SHIFT in changed):
                frame = f"id: {upto}\nevent: reload\ndata: {{}}\n\n".encode()
            elif changed:
                data = await payload(changed) if payload is not None else json.dumps(changed)
                frame = f"id: {upto}\nevent: change\ndata: {data}\n\n".encode()
            else:
                frame = b""
        except BaseException:
            if self._frames.get(key) is making:
                del self._frames[key]  # a stream waiting for it makes it itself
            raise
        else:
            self._frames[key] = frame
        finally:
            making.set()
        return frame

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
                upto = self._tick(coalesce)
                if upto > last:
                    frame = await self._frame(last, upto, shift_id, payload)
                    last = upto
                    if frame:
                        yield frame
                remaining = deadline - trio.current_time()
                if remaining <= 0:
                    return
                if self.seq > last:  # changes after the tick: the next one sends them
                    await trio.sleep(min(coalesce, remaining))
                    continue
                with trio.move_on_after(min(remaining, 15.0)) as idle:
                    await self._changed.wait()
                if idle.cancelled_caught:
                    yield b": idle\n\n"
                else:
                    await trio.sleep(coalesce)  # let a burst of changes arrive together
        finally:
            self.streams -= 1
