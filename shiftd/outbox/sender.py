"""The sender: moves outbox rows to the provider, `pending → sending → sent | failed`.

Delivery is at-most-once per row. A row is marked `sending` (committed) before the provider
is called; a row found in `sending` at start-up may or may not have reached the provider, so
it is marked failed and never re-sent: a caregiver may miss one text, never gets two, and
the next escalation round is the safety net. Failures the notifier reports as transient
(known not sent) are retried with exponential backoff and jitter; rows withdrawn meanwhile
(the shift was filled or cancelled) are skipped.

Opt-outs are checked before every send, in the same store write that marks a row
`sending`: a text to a phone that opted out (STOP) becomes `suppressed` and is never handed
to the provider, unless it is a compliance answer (to STOP, START or HELP). Calls are not
checked here: whether an opted-out caregiver is called is decided when the call is queued.

A rate-limited notifier (`Throttled`) is asked for a turn *before* the row is marked
`sending`: waiting for it commits nothing, so a row withdrawn while it waits is skipped (its
turn handed back), and stopping while it waits leaves the row `pending` for the next start.
Only from `sending` on is the delivery shielded from cancellation.

When the store refuses a write (StoreUnavailable: disk full), a row it could not mark
`sending` stays pending and is tried again after a pause; what became of a row the provider
already has is written again until the store takes it (within the send timeout).

In a cluster (`ownership` given) the central workers take only the rows of shifts whose
partition this instance holds, each under its partition's fence (a message of no shift, an
answer to HELP, is sent by whichever instance marks it `sending` first), and look for due
rows at least every `_CLUSTER_POLL` seconds (another instance may have queued them). Rows
left `sending` are failed by whoever acquires their partition, not at start. Right before a
row is handed to the provider, its fence is asked whether the lease is still held by the
local clock: a process paused past its lease between committing `sending` and the call
sends nothing (the row is recorded failed, if the database still lets it).
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import trio

from ..clock import Clock
from ..cluster.fencing import Fence, Fenced, current_fence, fenced
from ..cluster.ownership import NotHeld, Ownership
from ..logs import get_logger
from ..models import Channel, Purpose, SendResult
from ..notify.base import (
    Notifier,
    Outgoing,
    PermanentSendError,
    SendOutcomeUnknown,
    Throttled,
    TransientSendError,
)
from ..shutdown import RECORDING, Shutdown
from ..store.base import OutboxRow, SendOutcome, Store, StoreUnavailable

log = get_logger(__name__)

_BATCH = 64
"""Rows an actor's delivery marks `sending` (and then records) in one commit each."""
_BATCHES_IN_FLIGHT = 4
_UNAVAILABLE_PAUSE = 1.0
"""Seconds a worker waits after the store refused a write before taking the next row."""
_CLUSTER_POLL = 1.0
"""Seconds between looks for due rows in a cluster (other instances queue rows too)."""


async def _nothing() -> None:
    return None


COMPLIANCE_PURPOSES = frozenset({Purpose.OPT_OUT, Purpose.OPT_IN, Purpose.HELP})
"""Texts that still go to a phone that opted out: the answers to STOP, START and HELP."""


class Sender:
    """Start with `await nursery.start(sender.run)`; call `wake()` after queueing messages."""

    def __init__(
        self,
        store: Store,
        notifier: Notifier,
        clock: Clock,
        *,
        concurrency: int = 16,
        max_attempts: int = 5,
        backoff_initial: timedelta = timedelta(seconds=1),
        backoff_max: timedelta = timedelta(minutes=5),
        timeout: timedelta = timedelta(seconds=10),
        page: int = 256,
        shutdown: Shutdown | None = None,
        on_outcomes: Callable[[Sequence[OutboxRow], SendResult], None] | None = None,
        after_failure: Callable[[], Awaitable[None]] | None = None,
        ownership: Ownership | None = None,
        abandon_on_start: bool = True,
    ) -> None:
        """`ownership`: in a cluster, the partitions whose rows this instance sends;
        `abandon_on_start` False: rows left `sending` are failed by the lease manager as it
        acquires their partitions, not all at start (another instance may be sending them)."""
        self._store = store
        self._ownership = ownership
        self._abandon_on_start = abandon_on_start
        self._notifier = notifier
        self._throttle = notifier if isinstance(notifier, Throttled) else None
        self._clock = clock
        self._concurrency = concurrency
        self._max_attempts = max_attempts
        self._backoff_initial = backoff_initial.total_seconds()
        self._backoff_max = backoff_max.total_seconds()
        self._timeout = timeout.total_seconds()
        self._page = page
        # A send in hand is finished during a stop, but not beyond its deadline (the
        # provider's answer) and RECORDING after it (writing down what became of it).
        self._shutdown = shutdown or Shutdown()
        self._wake = trio.Event()
        self._queued: set[int] = set()
        self._limiter = trio.CapacityLimiter(concurrency)
        self.sent = 0
        self.failed = 0
        # Told each attempt's result (events, metrics), and SUPPRESSED for a text never
        # handed over because its phone opted out: once per batch and result.
        self._on_outcomes = on_outcomes or (lambda rows, outcome: None)
        # Awaited after a row ends failed (and once at start): the engine flags a lost notice
        # that matters and follows it up (see outbox.lostnotices).
        self._after_failure = after_failure or _nothing

    def wake(self) -> None:
        """Look for due rows now. Never blocks."""
        self._wake.set()

    async def send_now(self, rows: Sequence[OutboxRow]) -> None:
        """Deliver `rows`, just queued, in the calling task: what a shift's actor does with
        the messages its transition queued, in its own nursery.

        Without a rate limit, rows go in batches: one commit marks a batch `sending` (a text
        to an opted-out phone becomes `suppressed` instead), the provider gets each row of
        it (at most `concurrency` at once across the sender), one commit records what
        became of them. With a rate limit, each row waits for its turn first, as a central
        worker's would. Cancellation stops what has not been marked `sending` (it stays
        as it is: withdrawn by the transition that cancelled, or pending for the central
        workers); from `sending` on, a batch is finished and recorded.
        """
        ids = {r.id for r in rows}
        fresh = [r for r in rows if r.id not in self._queued]
        self._queued |= ids
        try:
            if self._throttle is not None:
                async with trio.open_nursery() as nursery:
                    for row in fresh:
                        nursery.start_soon(self._deliver_guarded, row)
                return
            if len(fresh) <= _BATCH:  # most transitions queue a few rows: one batch
                await self._send_batch(fresh)
                return
            # A few batches in flight: one's commit overlaps the next one's sends.
            in_flight = trio.CapacityLimiter(_BATCHES_IN_FLIGHT)
            async with trio.open_nursery() as nursery:
                for start in range(0, len(fresh), _BATCH):
                    await in_flight.acquire_on_behalf_of(start)
                    nursery.start_soon(
                        self._send_batch_then_release,
                        fresh[start : start + _BATCH],
                        in_flight,
                        start,
                    )
        finally:
            self._queued -= ids

    async def _deliver_guarded(self, row: OutboxRow) -> None:
        try:
            await self._deliver(row)
        except StoreUnavailable as exc:
            log.warning("send.store_unavailable", outbox_id=row.id, error=str(exc))
            self.wake()  # the central workers take it up when the store writes again

    async def _send_batch_then_release(
        self, rows: list[OutboxRow], in_flight: trio.CapacityLimiter, token: int
    ) -> None:
        try:
            await self._send_batch(rows)
        finally:
            in_flight.release_on_behalf_of(token)

    async def _send_batch(self, rows: list[OutboxRow]) -> None:
        store, clock = self._store, self._clock
        try:
            taken, suppressed = await store.mark_sending_many([r.id for r in rows], at=clock.now())
        except StoreUnavailable as exc:
            log.warning("send.store_unavailable", rows=len(rows), error=str(exc))
            self.wake()
            return
        if suppressed:
            self._report_suppressed([r for r in rows if r.id in suppressed])
        sending = [r for r in rows if r.id in taken]
        if not sending:
            return
        with self._shutdown.bounded(trio.CancelScope(shield=True), after=RECORDING):
            outcomes = await self._hand_over(sending)
            await self._record(lambda: store.finish_sends(outcomes))
            if self._report(sending, outcomes):
                await self._follow_up()

    async def _hand_over(self, rows: list[OutboxRow]) -> list[SendOutcome]:
        """Hand `sending` rows to the provider, at most `concurrency` calls at once across
        the sender; what became of each, in the order of `rows`.

        A task per row would cost more than an instant provider's call: lanes take the rows
        one after another instead, and a lane starts the next only when it is about to call
        the provider with rows left over; that one gets to run only if the call waits. So an
        instant provider is handed a batch by one lane, a slow one by up to `concurrency`."""
        outcomes: dict[int, SendOutcome] = {}
        lanes = _Lanes(iter(rows), min(len(rows), self._concurrency), outcomes)
        if lanes.most == 1:  # one row (a reply), or one call at a time: no lane to start
            await self._lane(lanes, None)
        else:
            async with trio.open_nursery() as nursery:
                await self._lane(lanes, nursery)
        return [outcomes[r.id] for r in rows]

    async def _lane(self, lanes: _Lanes, nursery: trio.Nursery | None, spare: bool = False) -> None:
        """Hand the rows of `lanes` to the provider one after another, holding one of the
        sender's turns; put what became of each in `lanes.outcomes`. One cancel scope serves
        its calls in turn (a new one only after a call was cut), each call bounded by the
        send timeout (to within a thousandth of it) and the stop's deadline."""
        async with self._limiter:
            if spare:
                lanes.idle -= 1
            todo, outcomes, clock = lanes.todo, lanes.outcomes, self._clock
            shutdown, timeout = self._shutdown, self._timeout
            # Moving a scope's deadline costs more than an instant provider's call: the
            # next call keeps the last one's unless that leaves it shorter than the timeout
            # by more than a thousandth of it.
            slack = timeout / 1000
            fence = current_fence()
            row = next(todo, None)
            while row is not None:
                with shutdown.bounded() as scope:
                    now = clock.now()
                    while row is not None:
                        if lanes.idle == 0 and lanes.started < lanes.most:
                            # It runs only if this call waits: then it takes the next row.
                            assert nursery is not None  # given whenever more lanes may run
                            lanes.started += 1
                            lanes.idle += 1
                            nursery.start_soon(self._lane, lanes, nursery, True)
                        deadline = min(trio.current_time() + timeout, shutdown.deadline)
                        if deadline > scope.deadline + slack or deadline < scope.deadline:
                            scope.deadline = deadline
                        outcome = await self._try(row, _outgoing(row, now), fence)
                        outcomes[row.id] = outcome
                        now = outcome.at or clock.now()  # the next call starts now
                        row = next(todo, None)
                if scope.cancelled_caught:  # the call of `row` was cut
                    assert row is not None
                    outcomes[row.id] = self._cut(row)
                    row = next(todo, None)

    async def _call(self, row: OutboxRow, message: Outgoing) -> SendOutcome:
        """Hand one `sending` row to the provider in its turn, within the send timeout and
        the stop's deadline; what became of it."""
        async with self._limiter:
            with self._shutdown.bounded() as scope:
                scope.deadline = self._call_deadline()
                return await self._try(row, message, current_fence())
            return self._cut(row)

    def _call_deadline(self) -> float:
        return min(trio.current_time() + self._timeout, self._shutdown.deadline)

    def _cut(self, row: OutboxRow) -> SendOutcome:
        """What became of a call cut by the send timeout or the stop's deadline: the
        provider may have taken it, so it is failed, never retried."""
        if self._shutdown.begun and trio.current_time() >= self._shutdown.deadline:
            why = "shiftd stopped before the provider answered"
        else:
            why = "provider timed out"
        return SendOutcome(
            row.id,
            SendResult.FAILED,
            f"{why}; may have been sent, not retried",
            at=self._clock.now(),
        )

    async def _try(self, row: OutboxRow, message: Outgoing, fence: Fence | None) -> SendOutcome:
        """Hand `message` to the provider (the caller bounds the call) unless `fence` (the
        calling task's) says the lease is lost; what became of it. Cancelled (the caller's
        bound) only while the provider has it."""
        if fence is not None and not fence.valid():
            return self._fenced(row, fence)
        try:
            provider_id = await self._notifier.send(message)
        except Exception as exc:
            return self._not_sent(row, exc)
        return SendOutcome(row.id, SendResult.SENT, None, provider_id, self._clock.now())

    def _fenced(self, row: OutboxRow, fence: Fence) -> SendOutcome:
        """What becomes of a row whose lease was lost before its provider call: not sent."""
        log.warning(
            "cluster.fenced",
            outbox_id=row.id,
            shift_id=row.shift_id,
            partition=fence.partition,
            epoch=fence.epoch,
        )
        return SendOutcome(
            row.id,
            SendResult.FAILED,
            "lease lost before the provider call; not sent",
            at=self._clock.now(),
        )

    def _not_sent(self, row: OutboxRow, exc: Exception) -> SendOutcome:
        """What becomes of a row whose provider call raised `exc`: retried later if the
        provider says it did not take it (up to `max_attempts`), else failed."""
        now = self._clock.now()
        attempt = row.attempts + 1
        if isinstance(exc, TransientSendError):
            if attempt >= self._max_attempts:
                return SendOutcome(
                    row.id, SendResult.FAILED, f"gave up after {attempt} attempts: {exc}", at=now
                )
            next_at = now + timedelta(seconds=self._backoff(attempt, exc.retry_after))
            return SendOutcome(row.id, SendResult.RETRY, str(exc), at=now, next_at=next_at)
        if isinstance(exc, PermanentSendError):
            return SendOutcome(row.id, SendResult.FAILED, f"refused: {exc}", at=now)
        if isinstance(exc, SendOutcomeUnknown):
            why = f"{exc}; may have been sent, not retried"
            return SendOutcome(row.id, SendResult.FAILED, why, at=now)
        log.exception("send.error", outbox_id=row.id)  # called while `exc` is handled
        why = f"unknown outcome ({type(exc).__name__}); not retried"
        return SendOutcome(row.id, SendResult.FAILED, why, at=now)

    def _report(self, rows: list[OutboxRow], outcomes: list[SendOutcome]) -> bool:
        """Count, announce and log what became of rows handed to the provider (announced
        once per result: most batches are sent whole); whether any failed."""
        sent = [r for r, o in zip(rows, outcomes, strict=True) if o.state is SendResult.SENT]
        if sent:
            self.sent += len(sent)
            self._on_outcomes(sent, SendResult.SENT)
            if log.is_enabled_for(logging.DEBUG):
                for row in sent:
                    log.debug(
                        "send.sent",
                        outbox_id=row.id,
                        shift_id=row.shift_id,
                        caregiver_id=row.caregiver_id,
                        channel=row.channel,
                        purpose=row.purpose,
                    )
        if len(sent) == len(rows):
            return False
        failed = False
        for row, outcome in zip(rows, outcomes, strict=True):
            if outcome.state is SendResult.RETRY:
                self._on_outcomes((row,), SendResult.RETRY)
                log.info("send.retry", outbox_id=row.id, shift_id=row.shift_id, error=outcome.error)
                self.wake()
            elif outcome.state is SendResult.FAILED:
                failed = True
                self.failed += 1
                self._on_outcomes((row,), SendResult.FAILED)
                log.warning(
                    "send.failed", outbox_id=row.id, shift_id=row.shift_id, error=outcome.error
                )
        return failed

    def _report_suppressed(self, rows: list[OutboxRow]) -> None:
        self._on_outcomes(rows, SendResult.SUPPRESSED)
        for row in rows:
            log.info(
                "send.suppressed",
                outbox_id=row.id,
                shift_id=row.shift_id,
                caregiver_id=row.caregiver_id,
                purpose=row.purpose,
            )

    async def run(self, *, task_status: trio.TaskStatus[Sender] = trio.TASK_STATUS_IGNORED) -> None:
        """Fail rows interrupted mid-send, then deliver due rows until cancelled.

        On cancellation, messages already handed to the provider finish (bounded by the send
        timeout) and are recorded; nothing new starts.
        """
        if self._abandon_on_start:
            abandoned = await self._store.abandon_sending(at=self._clock.now())
            if abandoned:
                log.warning("sender.abandoned_in_flight", count=abandoned)
        await self._follow_up()  # also those failed before a crash but not followed up
        send, receive = trio.open_memory_channel[OutboxRow](self._concurrency)
        async with trio.open_nursery() as nursery, send, receive:
            for _ in range(self._concurrency):
                nursery.start_soon(self._worker, receive.clone())
            task_status.started(self)
            await self._feed(send)

    async def _feed(self, workers: trio.MemorySendChannel[OutboxRow]) -> None:
        while True:
            self._wake = trio.Event()  # reset before scanning so a wake-up meanwhile is kept
            cursor = 0
            elsewhere = False
            while rows := await self._store.due_outbox(
                after_id=cursor, now=self._clock.now(), limit=self._page
            ):
                for row in rows:
                    cursor = row.id
                    if row.shift_id is not None and not self._holds(row.shift_id):
                        elsewhere = True  # another instance's to send
                    elif row.id not in self._queued:
                        self._queued.add(row.id)
                        await workers.send(row)
            retry_at = await self._store.next_retry_at()
            deadline = self._clock.deadline(retry_at) if retry_at else math.inf
            if deadline <= trio.current_time() and self._queued:
                # A due retry is already waiting for a busy worker: rescanning now would spin
                # without yielding to the clock. Workers wake us as each row finishes.
                deadline = math.inf
            if self._ownership is not None:
                poll = trio.current_time() + _CLUSTER_POLL
                if deadline <= trio.current_time() and elsewhere:
                    # Due rows only another instance may send (or a dead one, until its
                    # partitions are taken over): look again later, not at once.
                    deadline = poll
                deadline = min(deadline, poll)
            with trio.move_on_at(deadline):
                await self._wake.wait()

    def _holds(self, shift_id: str) -> bool:
        ownership = self._ownership
        return ownership is None or ownership.holds(ownership.partition_of(shift_id))

    def _fence(self, row: OutboxRow) -> Fence | None:
        """The fence a central worker sends `row` under; NotHeld if it is not ours."""
        if self._ownership is None or row.shift_id is None:
            return None
        return self._ownership.fence(self._ownership.partition_of(row.shift_id))

    async def _worker(self, rows: trio.MemoryReceiveChannel[OutboxRow]) -> None:
        async with rows:
            async for row in rows:
                try:
                    with fenced(self._fence(row)):
                        await self._deliver(row)
                except (NotHeld, Fenced) as exc:
                    # Its partition went to another instance meanwhile: theirs to send.
                    log.info("cluster.fenced", outbox_id=row.id, error=str(exc))
                except StoreUnavailable as exc:
                    # The row is as it was (pending) or, if the provider has it, `sending`
                    # (failed at the next start, never re-sent). Pause before the next row:
                    # a full disk is not cured by asking again at once.
                    log.warning("send.store_unavailable", outbox_id=row.id, error=str(exc))
                    await trio.sleep(_UNAVAILABLE_PAUSE)
                finally:
                    self._queued.discard(row.id)
                    self.wake()  # a due row may be waiting for this worker (see _feed)

    async def _deliver(self, row: OutboxRow) -> None:
        message = _outgoing(row, self._clock.now())
        if self._throttle is not None:
            # Waiting for a turn is cancellable and commits nothing: the row stays pending.
            message = replace(message, from_number=await self._throttle.acquire(message))
        # From `sending` on, the delivery is finished even during shutdown: cutting it off
        # would leave the row `sending`, and so unsent for good.
        with self._shutdown.bounded(trio.CancelScope(shield=True), after=RECORDING):
            await self._send(row, message)

    async def _send(self, row: OutboxRow, message: Outgoing) -> None:
        store, clock = self._store, self._clock
        try:
            taken = await store.mark_sending(row.id, at=clock.now())
        except StoreUnavailable:
            if self._throttle is not None:
                self._throttle.release(message)  # nothing went out: the turn goes back
            raise
        if not taken:
            if self._throttle is not None:
                self._throttle.release(message)  # withdrawn while waiting: the turn goes back
            if await self._suppressed(row):
                self._report_suppressed([row])
            return  # withdrawn since it was queued, or suppressed (the phone opted out)
        outcome = await self._call(row, replace(message, at=clock.now()))
        await self._record(lambda: store.finish_sends([outcome]))
        if self._report([row], [outcome]):
            await self._follow_up()

    async def _suppressed(self, row: OutboxRow) -> bool:
        """Whether a row `mark_sending` refused was refused because its phone opted out (the
        store then marked it `suppressed`) rather than withdrawn."""
        if row.channel is not Channel.SMS or row.purpose in COMPLIANCE_PURPOSES:
            return False
        return await self._store.is_opted_out(row.to_phone)

    async def _record(self, write: Callable[[], Awaitable[None]]) -> None:
        """Record what became of a row handed to the provider, retrying while the store
        refuses writes (disk full) for up to the send timeout. Past that, StoreUnavailable:
        the row stays `sending`, failed at the next start and never re-sent."""
        deadline = trio.current_time() + self._timeout
        while True:
            try:
                await write()
                return
            except StoreUnavailable:
                if trio.current_time() >= deadline:
                    raise
                await trio.sleep(_UNAVAILABLE_PAUSE / 2)

    async def _follow_up(self) -> None:
        """Run the after-failure hook; its own failure is logged, never the sender's end
        (what it missed is picked up by its next run: it works from the store)."""
        try:
            await self._after_failure()
        except Exception:
            log.exception("sender.follow_up_failed")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential with equal jitter; never sooner than the provider's Retry-After."""
        ceiling = min(self._backoff_max, self._backoff_initial * 2.0 ** (attempt - 1))
        delay = ceiling / 2 + random.uniform(0, ceiling / 2)
        return max(delay, retry_after or 0.0)


@dataclass(slots=True, eq=False)
class _Lanes:
    """The lanes handing one batch to the provider: the rows left, how many lanes may run,
    how many have started and how many of those have not taken a row yet."""

    todo: Iterator[OutboxRow]
    most: int
    outcomes: dict[int, SendOutcome]
    started: int = 1
    idle: int = 0


def _outgoing(row: OutboxRow, at: datetime) -> Outgoing:
    """The message of an outbox row as a provider is handed it."""
    return Outgoing(
        outbox_id=row.id,
        channel=row.channel,
        purpose=row.purpose,
        to=row.to_phone,
        body=row.body,
        caregiver_id=row.caregiver_id,
        shift_id=row.shift_id,
        at=at,
    )
