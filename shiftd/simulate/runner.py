"""One simulated month: the real engine on Trio's virtual clock, caregivers played by a
responder.

The engine is the daemon's own (`Engine`: supervisor, shift actors, policies, eligibility,
quiet hours, outbox, sender) with an in-memory SQLite store and a notifier that, instead of
calling a provider, asks the responder how each caregiver answers and queues that answer as
an inbound message at its instant. Fanouts start at each shift's posting instant. The
clock jumps from one instant to the next (MockClock, autojump), so a month takes seconds.

Answers due at the same instant are handed to the engine one after another in a fixed
order (shift, caregiver, channel); together with responders that draw per message, this
makes a run a function of its seed.
"""

from __future__ import annotations

import gc
import heapq
import random
from collections import Counter
from collections.abc import Callable, Iterator, MutableSequence, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import trio
import trio.testing

from .. import gcpolicy
from ..clock import Clock
from ..config import Config
from ..engine import Engine
from ..models import Caregiver, Channel, Purpose, ShiftState
from ..notify.base import Outgoing
from ..store.sqlite import SqliteStore
from .behaviour import Responder
from .inputs import SimShift

CAREGIVER_CHANNELS = (Channel.SMS, Channel.VOICE)
_IN_MEMORY = Path(":memory:")
"""The store's path that SQLite opens as a database in memory."""


@dataclass(frozen=True, slots=True)
class Scripted:
    """An inbound message at a fixed instant, whatever was sent (a replayed morning)."""

    at: datetime
    caregiver_id: str
    body: str
    channel: Channel = Channel.SMS


@dataclass(frozen=True, slots=True)
class Sent:
    """One message the engine sent to a caregiver."""

    at: datetime
    channel: Channel
    purpose: Purpose
    caregiver_id: str
    shift_id: str | None


@dataclass(frozen=True, slots=True)
class Answered:
    """One inbound message the simulated caregiver sent, and what the engine made of it."""

    at: datetime
    caregiver_id: str
    body: str
    channel: Channel
    outcome: str


@dataclass(frozen=True, slots=True)
class ShiftOutcome:
    shift_id: str
    state: ShiftState
    time_to_fill: timedelta | None
    before_calls: bool
    """Filled before any call about it went out."""
    texts: int
    calls: int


@dataclass(frozen=True, slots=True)
class Span:
    """The instants a run's wall clock starts from (``epoch``, at Trio time 0) and runs to
    (``end``). Runs that share a span compute every instant with the same float arithmetic,
    so the same events fall on the same instants."""

    epoch: datetime
    end: datetime


def span_of(shifts: Sequence[SimShift], script: Sequence[Scripted] = ()) -> Span:
    """The span of a run of ``shifts`` (and ``script``): from a minute before the first
    posting or scripted message to a minute after the last start or scripted message.
    Raises ValueError when there is neither a shift nor a message."""
    epoch = min([s.posted for s in shifts] + [s.at for s in script]) - timedelta(minutes=1)
    end = max(s.shift.start_time for s in shifts) + timedelta(minutes=1) if shifts else epoch
    return Span(epoch, max([end, *(s.at + timedelta(minutes=1) for s in script)]))


@dataclass(slots=True)
class RunResult:
    shifts: list[ShiftOutcome]
    contacts: Counter[str]
    """Offers (texts and calls) per caregiver over the run."""
    sent: list[Sent] = field(default_factory=list)
    answered: list[Answered] = field(default_factory=list)


class _Caregivers:
    """The notifier the engine sends through, and the caregivers answering it."""

    def __init__(
        self,
        clock: Clock,
        responder: Responder | None,
        seed: int,
        keep_timeline: bool,
    ) -> None:
        self.clock = clock
        self.responder = responder
        self.seed = seed
        self.keep_timeline = keep_timeline
        self.sent: list[Sent] = []
        self.texts: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        self.called: set[str] = set()
        self.contacts: Counter[str] = Counter()
        self._nth: Counter[tuple[str, str, Channel]] = Counter()
        self._decided: set[tuple[str, str]] = set()
        self.queue: list[tuple[datetime, str, str, str, str, Channel]] = []
        self.wake = trio.Event()

    async def send(self, message: Outgoing) -> str | None:
        if message.channel not in CAREGIVER_CHANNELS or message.purpose is Purpose.UNFILLED:
            return None  # the coordinator's notices are not outreach
        now = self.clock.now()
        shift_id = message.shift_id
        if self.keep_timeline:
            self.sent.append(
                Sent(now, message.channel, message.purpose, message.caregiver_id, shift_id)
            )
        if shift_id is not None:
            (self.calls if message.channel is Channel.VOICE else self.texts)[shift_id] += 1
        if message.purpose is not Purpose.OFFER or shift_id is None:
            return None
        self.contacts[message.caregiver_id] += 1
        if message.channel is Channel.VOICE:
            self.called.add(shift_id)
        if self.responder is None:
            return None
        key = (shift_id, message.caregiver_id, message.channel)
        nth = self._nth[key]
        self._nth[key] += 1
        reply = self.responder.respond(
            self.seed, shift_id, message.caregiver_id, message.channel, nth, now
        )
        if reply is not None:
            self.push(now + reply.after, shift_id, message.caregiver_id, reply.body, reply.channel)
        return None

    def push(
        self,
        at: datetime,
        shift_id: str,
        caregiver_id: str,
        body: str,
        channel: Channel,
        order: str | None = None,
    ) -> None:
        """Queue an inbound message. Messages due at the same instant go in by shift, then
        ``order`` (default: caregiver and channel)."""
        rank = order if order is not None else f"{caregiver_id}\x1f{channel.value}"
        item = (at, shift_id, rank, caregiver_id, body, channel)
        heapq.heappush(self.queue, item)
        if self.queue[0] is item:
            # Only a new earliest answer changes how long the feeder waits: a fanout queues
            # dozens of answers at once, and waking the feeder for each costs a task switch.
            self.wake.set()

    def first_answer(self, shift_id: str, caregiver_id: str) -> bool:
        """Whether this is the caregiver's first yes-or-no about the shift (a person who
        answered a text does not answer the call about it again)."""
        key = (shift_id, caregiver_id)
        if key in self._decided:
            return False
        self._decided.add(key)
        return True

    async def aclose(self) -> None:
        return None


def run_once(
    config: Config,
    caregivers: Sequence[Caregiver],
    shifts: Sequence[SimShift],
    responder: Responder | None,
    seed: int,
    *,
    script: Sequence[Scripted] = (),
    keep_timeline: bool = False,
    on_fanout: Callable[[], None] | None = None,
    store_path: Path | None = None,
    span: Span | None = None,
) -> RunResult:
    """Replay ``shifts`` under ``config``'s policies with ``responder``'s caregivers (plus any
    ``script``ed messages) and return what became of every shift.

    Runs its own ``trio.run`` on a MockClock; calls ``on_fanout`` after each fanout starts
    (for progress). The store is in memory unless ``store_path`` names a file to keep (a
    history to learn from). ``span`` (default: ``span_of`` the shifts and the script) is
    given for a part of a larger run, which replays it exactly only on that run's clock.
    Raises what the engine raises at start (e.g. a bad classifier).
    """
    config = _for_simulation(config)
    span = span or span_of(shifts, script)
    result: list[RunResult] = []
    try:
        with _tasks_ready_together_run_in_order():
            trio.run(
                _run,
                config,
                list(caregivers),
                sorted(shifts, key=lambda s: (s.posted, s.shift.id)),
                responder,
                seed,
                sorted(script, key=lambda s: s.at),  # stable: the order given within an instant
                keep_timeline,
                on_fanout,
                span,
                store_path or _IN_MEMORY,
                result,
                clock=trio.testing.MockClock(autojump_threshold=0),
            )
    finally:
        # The collector policy froze long-lived objects, as the daemon's does; between
        # runs they are garbage.
        gc.unfreeze()
        gc.collect()
    return result[0]


@contextmanager
def _tasks_ready_together_run_in_order() -> Iterator[None]:
    """Inside, Trio runs the tasks that are ready at the same time in the order they were
    created, where it otherwise picks an order at random (so that code does not come to
    depend on one). The engine's outcome may depend on it: two shifts whose waves call one
    phone at the same instant (a quiet-hours end) are spaced by the call gap, and which call
    waits is whichever actor writes second. A simulation replays them the same way every
    time, and a run split by role as the whole run (a role's tasks keep their order among
    themselves).

    This is the switch Trio keeps for Hypothesis (`trio._core._run`: the batch sorted by
    task, then shuffled), with a shuffle that keeps the order; pytest-trio turns the same
    switch on. The previous setting is restored on exit."""
    run = trio._core._run
    saved = run._ALLOW_DETERMINISTIC_SCHEDULING, run._r
    run._ALLOW_DETERMINISTIC_SCHEDULING = True  # type: ignore[misc]
    run._r = _InCreationOrder()
    try:
        yield
    finally:
        run._ALLOW_DETERMINISTIC_SCHEDULING, run._r = saved  # type: ignore[misc]


class _InCreationOrder(random.Random):
    """Trio's scheduling draws that keep a sorted batch as it is."""

    def shuffle(self, x: MutableSequence[Any]) -> None:
        return None


class _InstantClock(Clock):
    """The engine's wall clock, computed once per virtual instant: a fanout's messages and
    their rows all read the same instant."""

    def __init__(self, epoch: datetime) -> None:
        super().__init__(epoch)
        self._at = trio.current_time()
        self._now = epoch

    def now(self) -> datetime:
        at = trio.current_time()
        if at != self._at:
            self._at, self._now = at, super().now()
        return self._now


def _for_simulation(config: Config) -> Config:
    """The policy's configuration with the randomness that is not policy removed: the
    escalation jitter spreads load at scale and would make runs differ."""
    escalation = config.escalation.model_copy(update={"jitter": timedelta(0)})
    return config.model_copy(update={"escalation": escalation})


async def _run(
    config: Config,
    caregivers: list[Caregiver],
    shifts: list[SimShift],
    responder: Responder | None,
    seed: int,
    script: list[Scripted],
    keep_timeline: bool,
    on_fanout: Callable[[], None] | None,
    span: Span,
    store_path: Path,
    out: list[RunResult],
) -> None:
    clock = _InstantClock(span.epoch)
    phones = {c.id: c.phone for c in caregivers}
    people = _Caregivers(clock, responder, seed, keep_timeline)
    store = SqliteStore(store_path, synchronous="off", batch_max=config.store.batch_max)
    # Nobody scrapes a simulation's metrics: the engine keeps none.
    engine = Engine(config, clock=clock, notifier=people, store=store, measured=False)
    answered: list[Answered] = []
    for index, item in enumerate(script):  # at one instant, in the script's order
        people.push(item.at, "", item.caregiver_id, item.body, item.channel, f"{index:09d}")

    async def answer() -> None:
        while True:
            if not people.queue:
                people.wake = trio.Event()
                await people.wake.wait()
                continue
            at = people.queue[0][0]
            if at > clock.now():
                people.wake = trio.Event()
                with trio.move_on_at(clock.deadline(at)):
                    await people.wake.wait()
                continue
            _, shift_id, _, caregiver_id, body, channel = heapq.heappop(people.queue)
            if shift_id and not people.first_answer(shift_id, caregiver_id):
                continue
            result = await engine.inbound(
                phones[caregiver_id], body, channel, shift_id=shift_id or None
            )
            if keep_timeline:
                answered.append(
                    Answered(clock.now(), caregiver_id, body, channel, result.outcome.value)
                )

    async def post() -> None:
        for item in shifts:
            await trio.sleep_until(clock.deadline(item.posted))
            await engine.fanout(item.shift.id)
            if on_fanout is not None:
                on_fanout()

    async with trio.open_nursery() as nursery:
        with gcpolicy.applied() as recovered:  # the collector as `shiftd run` sets it
            await nursery.start(engine.run)
            recovered()
            await engine.import_roster(caregivers, [s.shift for s in shifts])
            nursery.start_soon(answer)
            async with trio.open_nursery() as posting:
                posting.start_soon(post)
            await trio.sleep_until(clock.deadline(span.end))
            await trio.testing.wait_all_tasks_blocked()
            rows = await engine.shifts()
        nursery.cancel_scope.cancel()

    outcomes = []
    for row in rows:
        claimed, started = row.claimed_at, row.fanout_started_at
        filled = row.state is ShiftState.FILLED and claimed is not None and started is not None
        outcomes.append(
            ShiftOutcome(
                row.id,
                row.state,
                claimed - started if filled and claimed and started else None,
                filled and row.id not in people.called,
                people.texts[row.id],
                people.calls[row.id],
            )
        )
    out.append(RunResult(outcomes, people.contacts, people.sent, answered))
