"""The event bus: what just happened, for `shiftctl watch` and the metrics.

Actors, the inbound router and the sender *publish* small facts ("fanout started", "text
sent", "reply handled", "claimed"); nobody waits for anybody. Two kinds of consumer:

* **listeners** — plain functions called synchronously inside `publish` (the metrics, the
  board's live pages), each for the kinds it names. They must be cheap and must not raise;
  one that raises is logged and left out of that event.
* **subscriptions** — each with its own bounded memory channel (`shiftctl watch`). A
  subscriber that falls behind never slows a publisher: when its buffer is full, events for
  it are dropped and counted, and once it has room again it first receives one `overflow`
  event (`detail.dropped` = how many it missed) exactly where the gap is.

`publish` never blocks, never yields and never raises; an event of a kind nobody listens
for and nobody is subscribed to is not even built (`wants` says so beforehand, for a
publisher with many to build). Events carry `ts` (UTC, from the one
clock), `kind`, `shift_id`, `caregiver_id` and `detail`, and never a full phone number
(publishers mask them with `logs.mask_phone`).

Kinds: `models.EventKind`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import trio

from .clock import iso
from .logs import get_logger
from .models import EventKind

log = get_logger(__name__)

#: Events buffered per subscriber before it starts losing them.
DEFAULT_BUFFER = 1024


@dataclass(frozen=True, slots=True)
class Event:
    at: datetime
    kind: str
    shift_id: str | None = None
    caregiver_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def ts(self) -> str:
        """`at` as ISO text, formatted only for whoever shows it (most events are just
        counted)."""
        return iso(self.at) or ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "ts": self.ts,
            "kind": self.kind,
            "shift_id": self.shift_id,
            "caregiver_id": self.caregiver_id,
            "detail": self.detail,
        }


Listener = Callable[[Event], None]


class Subscription:
    """One subscriber's view of the bus: iterate it (`async for event in sub`) and close it
    (or use `with`) when done. Iteration ends when the subscription is closed."""

    def __init__(self, bus: EventBus, shift_id: str | None, buffer: int) -> None:
        if buffer < 2:
            raise ValueError("a subscription needs room for an event and an overflow marker")
        self.shift_id = shift_id
        self.dropped = 0  # events lost since the last overflow marker
        self.dropped_total = 0
        self._bus = bus
        self._send, self._receive = trio.open_memory_channel[Event](buffer)

    def offer(self, event: Event) -> None:
        """Queue `event` if there is room, else count it as dropped. Never blocks."""
        if self.shift_id is not None and event.shift_id != self.shift_id:
            return
        stats = self._send.statistics()
        room = stats.max_buffer_size - stats.current_buffer_used
        try:
            if self.dropped:
                if room < 2:  # the marker and this event must both fit
                    self._drop()
                    return
                self._send.send_nowait(
                    Event(
                        event.at, EventKind.OVERFLOW, self.shift_id, None, {"dropped": self.dropped}
                    )
                )
                self.dropped = 0
                room -= 1
            if room < 1:
                self._drop()
                return
            self._send.send_nowait(event)
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self._drop()

    def _drop(self) -> None:
        self.dropped += 1
        self.dropped_total += 1
        self._bus.dropped += 1

    async def receive(self) -> Event:
        """The next event; raises trio.EndOfChannel once closed and drained."""
        return await self._receive.receive()

    def receive_nowait(self) -> Event:
        """The next buffered event; raises trio.WouldBlock if none is buffered."""
        return self._receive.receive_nowait()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None

    def close(self) -> None:
        """Leave the bus; iteration ends after what is buffered. Idempotent."""
        self._bus._subscriptions.discard(self)
        self._send.close()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
        self._receive.close()


class EventBus:
    """Fan-out of events to listeners and bounded subscriptions; see the module docstring.

    `now` gives the wall time stamped on each event (the engine passes its `Clock.now`).
    """

    def __init__(self, now: Callable[[], datetime] | None = None) -> None:
        self._now = now or (lambda: datetime.now(UTC))
        self._listeners: list[tuple[Listener, frozenset[str] | None]] = []
        self._wanted: frozenset[str] | None = frozenset()
        """The kinds some listener takes (None: every kind)."""
        self._subscriptions: set[Subscription] = set()
        self.published = 0
        self.dropped = 0  # events lost by slow subscribers, all of them, ever

    @property
    def subscribers(self) -> int:
        return len(self._subscriptions)

    def add_listener(self, listener: Listener, kinds: Iterable[str] | None = None) -> None:
        """Call `listener` with every event of `kinds` (None: of every kind)."""
        taken = None if kinds is None else frozenset(kinds)
        self._listeners.append((listener, taken))
        if taken is None or self._wanted is None:
            self._wanted = None
        else:
            self._wanted |= taken

    def wants(self, kind: str) -> bool:
        """Whether an event of `kind` would reach anybody (a listener or a subscriber)."""
        wanted = self._wanted
        return wanted is None or kind in wanted or bool(self._subscriptions)

    def subscribe(
        self, *, shift_id: str | None = None, buffer: int = DEFAULT_BUFFER
    ) -> Subscription:
        """A new subscription to every event from now on (or only `shift_id`'s)."""
        sub = Subscription(self, shift_id, buffer)
        self._subscriptions.add(sub)
        return sub

    def publish(
        self,
        kind: EventKind,
        *,
        shift_id: str | None = None,
        caregiver_id: str | None = None,
        **detail: Any,
    ) -> None:
        """Stamp and deliver one event. Never blocks, yields or raises."""
        self.published += 1
        if not self.wants(kind):
            return  # nobody to tell (an engine without metrics, a simulation): not built
        event = Event(self._now(), kind, shift_id, caregiver_id, detail)
        for listener, kinds in self._listeners:
            if kinds is not None and kind not in kinds:
                continue
            try:
                listener(event)
            except Exception:
                log.exception("events.listener_failed", kind=kind)
        for sub in tuple(self._subscriptions):
            sub.offer(event)
