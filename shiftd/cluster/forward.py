"""Requests for a shift another instance owns: forwarded to the owner's actor, answered
with its outcome.

The supervisor asks `Forwarder.elsewhere(shift_id)` before every request; when the shift's
partition is not held here, `forward` posts the request to the inbox (`shiftd.cluster.inbox`)
and waits, at most `wait`, for the owner's answer: the owner's actor decided (the first
accept wins once across the cluster: only the owner's actor decides). No answer in time:
OwnerUnavailable ("try again"). Nothing is lost then: the request stays in the inbox, the
owner (or the partition's next owner, after a takeover) handles it once, and the same
request asked again (same request id) gets that answer.

`run` is the owner's side: it LISTENs for posted requests and answers, claims the
unanswered requests of the partitions held here (at each notification, when the held
partitions change, and every `sweep` for notifications lost or requests a dead owner
left), has the local actor handle each, and writes its answer. It also deletes answered
requests after `retention`.
"""

from __future__ import annotations

import functools
import math
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import psycopg
import trio

from ..logs import get_logger
from ..shifts.mailbox import ActorUnavailable, Message
from ..store.base import StoreUnavailable
from ..store.url import redacted
from . import inbox
from .listener import Listener
from .ownership import Ownership
from .wire import (
    UnreadableRequest,
    decode_request,
    encode_request,
    encode_result,
    encode_unavailable,
    settle,
)

log = get_logger(__name__)
T = TypeVar("T")
Conn = psycopg.Connection[Any]
HandleHere = Callable[[str, Message], Awaitable[object]]
"""Has this instance's actor of a shift handle a message; returns its answer (raises
ActorUnavailable as `Supervisor.ask_here` does)."""


class OwnerUnavailable(ActorUnavailable):
    """The shift's owner did not answer in time (it is down, or its partition is changing
    hands). The request is kept and handled once; asking again with the same request id
    returns its answer."""


class _Connections:
    """A few autocommit connections used on worker threads, at most `size` at once."""

    def __init__(self, url: str, size: int, options: str) -> None:
        self._url = url
        self._options = options
        self._limiter = trio.CapacityLimiter(size)
        self._idle: deque[Conn] = deque()

    async def run(self, fn: Callable[[Conn], T]) -> T:
        """`fn(conn)` on a worker thread; raises what it raises (psycopg.Error). Not
        cancellable once started: a statement is never left half-way."""
        return await trio.to_thread.run_sync(self._on_thread, fn, limiter=self._limiter)

    def _on_thread(self, fn: Callable[[Conn], T]) -> T:
        try:
            conn = self._idle.pop()
        except IndexError:
            conn = psycopg.connect(
                self._url,
                autocommit=True,
                connect_timeout=10,
                options=self._options,
                application_name="shiftd-forward",
            )
        try:
            result = fn(conn)
        except BaseException:
            conn.close()  # in an unknown state: never reused
            raise
        self._idle.append(conn)
        return result

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()


def _ms(duration: timedelta) -> int:
    return max(1, math.ceil(duration.total_seconds() * 1000))


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


class Forwarder:
    """The supervisor's way to shifts owned elsewhere (`Supervisor(remote=...)`), and the
    service answering requests forwarded here: start it with
    `await nursery.start(forwarder.run, supervisor.ask_here)` once the supervisor runs."""

    def __init__(
        self,
        url: str,
        ownership: Ownership,
        *,
        wait: timedelta = timedelta(seconds=5),
        sweep: timedelta = timedelta(seconds=1),
        retention: timedelta = timedelta(hours=1),
        connections: int = 4,
        batch: int = 256,
        statement_timeout: timedelta = timedelta(seconds=30),
        lock_timeout: timedelta = timedelta(seconds=5),
    ) -> None:
        """`wait`: how long a forwarded request waits for the owner's answer. `sweep`:
        how often the inbox is read without a notification. `retention`: how long an
        answered request is kept (a retry within it gets the same answer)."""
        self._url = url
        self._ownership = ownership
        self._wait = wait.total_seconds()
        self._sweep = sweep.total_seconds()
        self._retention = retention
        self._batch = batch
        self._db = _Connections(
            url,
            connections,
            f"-c statement_timeout={_ms(statement_timeout)} -c lock_timeout={_ms(lock_timeout)}",
        )
        self._listener = Listener(url, (inbox.REQUESTS, inbox.ANSWERS), self._on_notify)
        self._waiters: dict[int, list[trio.Event]] = {}
        self._busy: set[int] = set()
        self._kick = trio.Event()
        self._claiming = trio.CancelScope()
        self._running = False
        self._stopping = False

    # ---- the asking side -----------------------------------------------------------

    def elsewhere(self, shift_id: str) -> bool:
        """Whether another instance owns the shift (its partition is not held here)."""
        return not self._ownership.holds(self._ownership.partition_of(shift_id))

    async def forward(self, shift_id: str, message: Message, request_id: str | None) -> None:
        """Have the owner's actor handle `message`; its answer is set on `message.reply`.

        `request_id` (None: a fresh one) makes the request idempotent: posted again, it
        is the same request, handled once. Raises OwnerUnavailable when no answer came
        within `wait` (the request stays, and is handled), ActorUnavailable when the
        inbox cannot be reached or this instance is not serving. Cancellation stops the
        wait; the request stays and is handled.
        """
        if not self._running:
            raise ActorUnavailable(f"shift {shift_id}: this instance is starting or stopping")
        partition = self._ownership.partition_of(shift_id)
        rid = request_id or f"req-{uuid.uuid4().hex}"
        post = functools.partial(
            inbox.post,
            request_id=rid,
            partition=partition,
            shift_id=shift_id,
            request=encode_request(message),
            sender=self._ownership.instance_id,
        )
        try:
            posted = await self._db.run(post)
            answer = posted.answer
            if answer is None:
                answer = await self._answer(posted.id)
        except psycopg.Error as exc:
            log.warning("cluster.inbox_unavailable", shift_id=shift_id, error=_first_line(exc))
            raise ActorUnavailable(
                f"shift {shift_id}: cannot reach its owner: {_first_line(exc)}"
            ) from None
        if answer is None:
            log.warning(
                "cluster.forward_unanswered",
                shift_id=shift_id,
                partition=partition,
                request_id=rid,
                waited_s=self._wait,
            )
            raise OwnerUnavailable(
                f"shift {shift_id}: its owner did not answer within {self._wait:g}s;"
                " the request is kept and handled once: try again"
            )
        settle(message, answer)

    async def _answer(self, row_id: int) -> str | None:
        """The answer of the posted request `row_id`, awaited at most `wait`: woken by its
        notification, read again every `sweep` in case that was lost."""
        with trio.move_on_after(self._wait):
            while True:
                event = trio.Event()
                # Registered before reading: an answer committed after the read is
                # announced to this event.
                self._waiters.setdefault(row_id, []).append(event)
                try:
                    answer = await self._db.run(functools.partial(inbox.answer_of, row_id=row_id))
                    if answer is not None:
                        return answer
                    with trio.move_on_after(self._sweep):
                        await event.wait()
                finally:
                    waiting = self._waiters.get(row_id)
                    if waiting is not None and event in waiting:
                        waiting.remove(event)
                        if not waiting:
                            del self._waiters[row_id]
        return None

    def _on_notify(self, channel: str, payload: str) -> None:
        try:
            number = int(payload)
        except ValueError:
            return
        if channel == inbox.ANSWERS:
            for event in self._waiters.pop(number, ()):
                event.set()
        elif channel == inbox.REQUESTS and self._ownership.holds(number):
            self._kick.set()

    # ---- the owner's side ----------------------------------------------------------

    async def run(
        self,
        handle: HandleHere,
        *,
        task_status: trio.TaskStatus[Forwarder] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Open the inbox (the store's migrations made it), listen, report started, then answer
        forwarded requests with `handle` until `stop()` (then it returns once the
        requests in hand are answered) or until cancelled (those are left for the next
        sweep, here or at the partition's next owner).

        Raises StoreUnavailable if the database cannot be reached at start."""
        try:
            try:
                await self._db.run(inbox.open_inbox)
            except psycopg.Error as exc:
                raise StoreUnavailable(
                    f"cannot open the inbox at {redacted(self._url)}: {_first_line(exc)}"
                ) from exc
            async with trio.open_nursery() as services:
                await services.start(self._listener.run)
                services.start_soon(self._watch_ownership)
                services.start_soon(self._purge)
                self._running = True
                log.info(
                    "cluster.forwarding",
                    instance=self._ownership.instance_id,
                    url=redacted(self._url),
                )
                async with trio.open_nursery() as serving:
                    task_status.started(self)
                    with self._claiming:
                        await self._claim(serving, handle)
                self._running = False
                services.cancel_scope.cancel()
        finally:
            self._running = False
            self._db.close()

    def stop(self) -> None:
        """Claim nothing more; the requests in hand are answered (or, if the actors stop
        first, left for the partition's next owner). Never blocks."""
        self._stopping = True
        self._claiming.cancel()

    async def _claim(self, serving: trio.Nursery, handle: HandleHere) -> None:
        while True:
            kick = self._kick = trio.Event()  # a notification from now on wakes the next round
            held = self._ownership.held()
            claimed: list[inbox.Claimed] = []
            if held:
                claim = functools.partial(
                    inbox.claim,
                    me=self._ownership.instance_id,
                    partitions=held,
                    busy=tuple(self._busy),
                    limit=self._batch,
                )
                try:
                    claimed = await self._db.run(claim)
                except psycopg.Error as exc:
                    log.warning("cluster.inbox_unavailable", error=_first_line(exc))
            for row in claimed:
                self._busy.add(row.id)
                serving.start_soon(self._serve, row, handle)
            if len(claimed) < self._batch:
                with trio.move_on_after(self._sweep):
                    await kick.wait()

    async def _serve(self, row: inbox.Claimed, handle: HandleHere) -> None:
        try:
            try:
                message = decode_request(row.request)
            except UnreadableRequest as exc:
                answer = encode_unavailable(str(exc))
            else:
                try:
                    answer = encode_result(message, await handle(row.shift_id, message))
                except ActorUnavailable as exc:
                    if self._stopping:
                        # Stopping: the partition's next owner handles it (a sweep).
                        log.info(
                            "cluster.forward_left", shift_id=row.shift_id, request_id=row.request_id
                        )
                        return
                    answer = encode_unavailable(str(exc))
            try:
                await self._db.run(functools.partial(inbox.answer, answers=[(row.id, answer)]))
            except psycopg.Error as exc:
                log.warning("cluster.answer_failed", shift_id=row.shift_id, error=_first_line(exc))
                return
            log.info(
                "cluster.forward_answered",
                shift_id=row.shift_id,
                request_id=row.request_id,
                sender=row.sender,
            )
        finally:
            self._busy.discard(row.id)

    async def _watch_ownership(self) -> None:
        """Read the inbox at once when partitions change hands: requests left for a
        partition just taken over are handled without waiting for the sweep."""
        while True:
            await self._ownership.changed().wait()
            self._kick.set()

    async def _purge(self) -> None:
        every = max(self._sweep, min(60.0, self._retention.total_seconds() / 2))
        while True:
            await trio.sleep(every)
            purge = functools.partial(inbox.purge, answered_before=self._retention)
            try:
                deleted = await self._db.run(purge)
            except psycopg.Error as exc:
                log.warning("cluster.inbox_unavailable", error=_first_line(exc))
                continue
            if deleted:
                log.info("cluster.inbox_purged", deleted=deleted)
