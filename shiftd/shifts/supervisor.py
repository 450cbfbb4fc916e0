"""The supervisor: spawns one actor per shift, routes messages to it, restarts it on failure.

Actors are cheap tasks in the supervisor's nursery, each with its own nursery (whose cancel
scope is the actor's own) and a bounded inbox. An exception inside one actor is logged with
the shift id and the actor is restarted from the store, up to `max_restarts` times within
`restart_window`; the other shifts and the daemon go on. A request in the hands of a failing
actor is answered with ActorUnavailable rather than left waiting. An actor stopped by the
store refusing a write (StoreUnavailable: disk full, read-only) has not failed: the request is
answered with that reason and the actor carries on from the store after `unavailable_pause`,
as often as it takes, so a shift whose escalation fell due meanwhile escalates once the
store writes again.

In a cluster (`ownership` given) the supervisor runs only the shifts of the partitions this
instance holds. Each partition's actors live in a nursery of their own, opened when the
lease manager hands the partition over (`take`: its shifts in progress are recovered from
the store) and closed when it is given back (`give_back`: the actors finish the message in
hand) or lost (`lost`: cancelled at once). Every actor runs with its partition's fence
(`shiftd.cluster.fencing`); a write the database refuses as fenced stops it for good
(`cluster.fenced`) and the partition is dropped.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol, TypeVar

import trio

from ..cluster.fencing import Fence, Fenced, fenced
from ..cluster.ownership import NotHeld, Ownership
from ..logs import get_logger
from ..models import EventKind
from ..store.base import ShiftRow, StoreUnavailable
from .actor import ShiftActor
from .context import ActorContext
from .mailbox import ActorUnavailable, Message, Reply

log = get_logger(__name__)
T = TypeVar("T")
E = TypeVar("E", bound=BaseException)


def _first(group: BaseExceptionGroup[E]) -> E:
    leaf = group.exceptions[0]
    while isinstance(leaf, BaseExceptionGroup):
        leaf = leaf.exceptions[0]
    return leaf


class NotHere(ActorUnavailable):
    """The shift's partition is not run by this instance (another holds it, or it is being
    handed over)."""


class Remote(Protocol):
    """Where requests for shifts owned by another instance go (`shiftd.cluster.forward`)."""

    def elsewhere(self, shift_id: str) -> bool:
        """Whether another instance owns the shift."""
        ...

    async def forward(self, shift_id: str, message: Message, request_id: str | None) -> None:
        """Have the owner's actor handle `message` and set its answer on `message.reply`;
        raises ActorUnavailable if the owner does not answer in time."""
        ...


@dataclass(slots=True)
class _Handle:
    inbox: trio.MemorySendChannel[Message]
    receive: trio.MemoryReceiveChannel[Message]
    partition: int = -1


@dataclass(slots=True, eq=False)
class _Partition:
    """A held partition's actors: their nursery, and the fence their writes carry."""

    number: int
    nursery: trio.Nursery
    fence: Fence | None
    leaving: trio.Event = field(default_factory=trio.Event)
    done: trio.Event = field(default_factory=trio.Event)


class Supervisor:
    """Start with `await nursery.start(supervisor.run)`; it re-spawns every shift in progress
    from the store before reporting started."""

    def __init__(
        self,
        ctx: ActorContext,
        *,
        inbox_size: int = 64,
        max_restarts: int = 5,
        restart_window: timedelta = timedelta(seconds=60),
        unavailable_pause: timedelta = timedelta(seconds=1),
        remote: Remote | None = None,
        ownership: Ownership | None = None,
        on_fenced: Callable[[Fence], None] | None = None,
    ) -> None:
        """`remote`: in a cluster, how requests reach shifts another instance owns.
        `ownership`: in a cluster, which partitions this instance holds (only their shifts
        run here); `on_fenced` is told when the database refused a write as fenced."""
        self._ctx = ctx
        self._remote = remote
        self._ownership = ownership
        self._on_fenced = on_fenced
        self._parts: dict[int, _Partition] = {}
        self._inbox_size = inbox_size
        self._max_restarts = max_restarts
        self._restart_window = restart_window.total_seconds()
        self._unavailable_pause = unavailable_pause.total_seconds()
        self._actors: dict[str, _Handle] = {}
        self._nursery: trio.Nursery | None = None
        self._stopping = trio.Event()
        self.restarts = 0

    @property
    def actors(self) -> int:
        """How many actors are alive."""
        return len(self._actors)

    def inbox_depth(self) -> int:
        """Messages waiting in all inboxes (for the operator's view)."""
        return sum(h.inbox.statistics().current_buffer_used for h in self._actors.values())

    async def run(
        self, *, task_status: trio.TaskStatus[Supervisor] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Recover actors, report started, supervise until `stop()` (then return once every
        actor has) or until cancelled.

        Either way every actor stops between messages (one in hand is finished) and the
        requests still queued are answered with ActorUnavailable, as is any request made
        after the supervisor stopped.
        """
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if self._ownership is None:
                    recovered = await self._recover(None)
                else:
                    recovered = await self._take(self._ownership.held())
                log.info("supervisor.recovered", actors=recovered)
                task_status.started(self)
                await self._stopping.wait()
        finally:
            self._nursery = None

    async def _recover(self, partitions: frozenset[int] | None) -> int:
        """Spawn an actor for every shift in progress (of `partitions`, if given); how
        many."""
        shifts = await self._ctx.store.shifts_in_progress()
        if partitions is not None:
            assert self._ownership is not None
            of = self._ownership.partition_of
            shifts = [s for s in shifts if of(s.id) in partitions]
        recovered = len(shifts)
        for shift in shifts:
            if shift.id not in self._actors:
                self._spawn(shift.id, shift)
        del shifts
        # An actor loads its shift in its first step, without yielding, then waits on its
        # inbox. Trio runs a scheduling round in either order, so after two rounds of ours
        # every actor spawned above has loaded: reporting started then lets the daemon's
        # collector policy (gcpolicy) freeze what they hold.
        await trio.lowlevel.checkpoint()
        await trio.lowlevel.checkpoint()
        return recovered

    # ---- partitions (a cluster) ----------------------------------------------------------

    async def take(self, partitions: frozenset[int]) -> None:
        """Run the shifts of `partitions`, just acquired: recover those in progress (a
        deadline that passed meanwhile fires now) and have the sender look for their
        pending rows. See `PartitionHost.take`."""
        recovered = await self._take(partitions)
        log.info("supervisor.took", partitions=sorted(partitions), actors=recovered)

    async def _take(self, partitions: Iterable[int]) -> int:
        wanted = frozenset(partitions)
        if not wanted:
            return 0
        for number in sorted(wanted):
            await self._reopen(number)
        recovered = await self._recover(wanted)
        self._ctx.wake_sender()
        return recovered

    async def _reopen(self, number: int) -> None:
        """Open partition `number` to run it afresh. Its previous run here may still be
        stopping: its lease lapsed locally and the next round took it again before the
        cancelled actors had unwound (a busy machine). That run ends first (promptly: it
        was cancelled; a delivery already `sending` is bounded by the send timeout), rather
        than the take failing and every partition just acquired being dropped again.
        Raises NotHere as `_partition` does."""
        old = self._parts.get(number)
        if old is not None and old.leaving.is_set():
            await old.done.wait()
        await self._partition(number)

    async def give_back(self, partitions: frozenset[int]) -> None:
        """Stop the actors of `partitions` as `stop()` stops all (each finishes the message
        in hand; queued requests are answered ActorUnavailable); returns once they have."""
        parts = [p for n, p in list(self._parts.items()) if n in partitions]
        for part in parts:
            part.leaving.set()
        for shift_id, handle in list(self._actors.items()):
            if handle.partition in partitions:
                handle.inbox.close()
                self._close_inbox(
                    shift_id, handle, "handed over to another instance", close_receive=False
                )
        for part in parts:
            await part.done.wait()

    def lost(self, partitions: frozenset[int]) -> None:
        """Cancel the actors of `partitions` at once (their leases lapsed). Never blocks."""
        for number in partitions:
            part = self._parts.get(number)
            if part is not None:
                part.leaving.set()
                part.nursery.cancel_scope.cancel()

    async def _partition(self, number: int) -> _Partition:
        """The running partition `number`, opened if this instance holds it. Raises
        NotHere if it does not, or if the partition is being handed over."""
        part = self._parts.get(number)
        if part is None:
            assert self._ownership is not None
            if self._nursery is None or self._stopping.is_set():
                raise ActorUnavailable("shiftd is stopping")
            try:
                fence = self._ownership.fence(number)
            except NotHeld:
                raise NotHere(f"partition {number} is held by another instance") from None
            part = await self._nursery.start(self._run_partition, number, fence)
        if part.leaving.is_set():
            raise NotHere(f"partition {number} is being handed over to another instance")
        return part

    async def _run_partition(
        self, number: int, fence: Fence | None, task_status: trio.TaskStatus[_Partition]
    ) -> None:
        if (found := self._parts.get(number)) is not None:
            task_status.started(found)  # opened meanwhile by another request
            return
        part: _Partition | None = None
        try:
            async with trio.open_nursery() as nursery:
                part = self._parts[number] = _Partition(number, nursery, fence)
                task_status.started(part)
                await part.leaving.wait()
        finally:
            if part is not None:
                if self._parts.get(number) is part:
                    del self._parts[number]
                part.done.set()

    def stop(self) -> None:
        """Stop every actor without cancelling it: its inbox is closed (senders waiting on it
        and the requests queued in it are answered with ActorUnavailable), so it returns
        once the message in hand is handled. Cancelling 100,000 actors instead costs seconds
        (a cancellation crossing each actor's nursery). Never blocks; `run()` returns when
        the last actor has."""
        self._stopping.set()
        for part in self._parts.values():
            part.leaving.set()
        for shift_id, handle in list(self._actors.items()):
            handle.inbox.close()
            self._close_inbox(shift_id, handle, "shiftd is stopping", close_receive=False)

    async def ask(
        self,
        shift_id: str,
        message: Message,
        reply: Reply[T],
        *,
        request_id: str | None = None,
        keep_answer: bool = False,
    ) -> T:
        """Send `message` to the shift's actor (spawning it if needed) and await `reply`.

        The caller must know the shift exists. Waits while the inbox is full (backpressure).
        Raises ActorUnavailable if the actor fails with the message in hand or has given up,
        or if the supervisor stops (or has stopped) before the message is handled.

        In a cluster, a shift another instance owns is asked there (`remote`): its actor
        decides, and its answer is returned; ActorUnavailable also when it does not answer
        in time (the request is kept and handled once). `request_id` names the request
        across retries: asked again with it, the owner answers the first request again.
        With `keep_answer` a named request goes through the cluster's inbox even when this
        instance owns the shift, so its retry is answered the same wherever it lands: for
        commands whose name nothing else remembers (a text's, its provider message id, is
        kept by the inbound log).
        """
        remote = self._remote
        if remote is not None and (
            remote.elsewhere(shift_id) or (keep_answer and request_id is not None)
        ):
            await remote.forward(shift_id, message, request_id)
        else:
            await self._route(shift_id, message)
        return await reply.wait()

    async def ask_here(self, shift_id: str, message: Message) -> object:
        """`ask` this instance's actor of the shift, whoever owns it (a request forwarded
        here by its owner's view); returns what the actor sets on `message.reply`."""
        await self._route(shift_id, message)
        return await message.reply.wait()

    async def _route(self, shift_id: str, message: Message) -> None:
        while True:
            handle = self._actors.get(shift_id)
            if handle is None:
                if self._ownership is not None:
                    await self._partition(self._ownership.partition_of(shift_id))
                handle = self._actors.get(shift_id) or self._spawn(shift_id)
            try:
                try:
                    # Not `send` when there is room: its checkpoint is a task switch per
                    # message, and the caller waits for the reply next anyway.
                    handle.inbox.send_nowait(message)
                except trio.WouldBlock:
                    await handle.inbox.send(message)  # the inbox is full: backpressure
                return
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                # The actor retired (its shift closed) between lookup and send; a fresh
                # one answers from the store.
                if self._actors.get(shift_id) is handle:
                    del self._actors[shift_id]

    def _spawn(self, shift_id: str, loaded: ShiftRow | None = None) -> _Handle:
        if self._stopping.is_set():
            raise ActorUnavailable("shiftd is stopping")
        if self._nursery is None:
            raise ActorUnavailable("supervisor is not running")
        if self._ownership is not None:
            return self._spawn_in_partition(shift_id, loaded)
        send, receive = trio.open_memory_channel[Message](self._inbox_size)
        handle = _Handle(send, receive)
        self._actors[shift_id] = handle
        self._nursery.start_soon(
            # One name for all: a string per task would cost 100,000 of them (the logs carry
            # the shift id).
            self._supervise,
            shift_id,
            handle,
            loaded,
            name="shiftd.shifts.actor",
        )
        return handle

    def _spawn_in_partition(self, shift_id: str, loaded: ShiftRow | None) -> _Handle:
        assert self._ownership is not None
        number = self._ownership.partition_of(shift_id)
        part = self._parts.get(number)
        if part is None or part.leaving.is_set() or not self._ownership.holds(number):
            raise NotHere(f"shift {shift_id}: its partition {number} is not run here")
        send, receive = trio.open_memory_channel[Message](self._inbox_size)
        handle = _Handle(send, receive, number)
        self._actors[shift_id] = handle
        part.nursery.start_soon(
            self._supervise_fenced, shift_id, handle, loaded, part.fence, name="shiftd.shifts.actor"
        )
        return handle

    async def _supervise_fenced(
        self, shift_id: str, handle: _Handle, loaded: ShiftRow | None, fence: Fence | None
    ) -> None:
        with fenced(fence):  # the actor's writes and deliveries carry its partition's fence
            await self._supervise(shift_id, handle, loaded)

    def _retire(self, shift_id: str, handle: _Handle) -> None:
        if self._actors.get(shift_id) is handle:
            del self._actors[shift_id]

    async def _supervise(self, shift_id: str, handle: _Handle, loaded: ShiftRow | None) -> None:
        # Made on the first crash: an empty deque is 760 bytes, most actors never crash.
        failures: deque[float] | None = None
        reason = "shiftd is stopping"
        try:
            while True:
                actor = ShiftActor(
                    shift_id,
                    self._ctx,
                    handle.receive,
                    functools.partial(self._retire, shift_id, handle),
                    loaded,
                )
                loaded = None  # a restarted actor reads its shift afresh
                crashed = False
                refused: StoreUnavailable | None = None
                stale: Fenced | None = None
                try:
                    await actor.run()
                except* Fenced as group:
                    stale = _first(group)
                except* StoreUnavailable as group:
                    refused = _first(group)
                except* Exception as group:
                    crashed = True
                    log.error("actor.crashed", shift_id=shift_id, exc_info=group)
                    if actor.current is not None:
                        actor.current.reply.fail(
                            ActorUnavailable(f"shift {shift_id}: internal error")
                        )
                if stale is not None:
                    reason = "its partition was taken over by another instance"
                    self._fenced(shift_id, actor, stale)
                    return
                if refused is not None and not crashed:
                    # Not a fault of the actor: the store refused a write (disk full…) and
                    # rolled it back. Answer the message in hand with why, wait, and carry
                    # on from the store, however long it takes: never give up on it.
                    log.warning("actor.store_unavailable", shift_id=shift_id, error=str(refused))
                    if actor.current is not None:
                        actor.current.reply.fail(ActorUnavailable(f"shift {shift_id}: {refused}"))
                    await trio.sleep(self._unavailable_pause)
                    continue
                if not crashed:
                    return
                now = trio.current_time()
                if failures is None:
                    failures = deque()
                failures.append(now)
                while failures and failures[0] < now - self._restart_window:
                    failures.popleft()
                if len(failures) > self._max_restarts:
                    log.error("actor.gave_up", shift_id=shift_id, failures=len(failures))
                    self._ctx.events.publish(
                        EventKind.ACTOR_GAVE_UP, shift_id=shift_id, failures=len(failures)
                    )
                    reason = "actor failed repeatedly"
                    return
                self.restarts += 1
                log.warning("actor.restarting", shift_id=shift_id, attempt=len(failures))
                self._ctx.events.publish(
                    EventKind.ACTOR_RESTARTED, shift_id=shift_id, attempt=len(failures)
                )
        finally:
            # Given up, or cancelled (shutdown): nobody reads this inbox any more.
            self._close_inbox(shift_id, handle, reason)

    def _fenced(self, shift_id: str, actor: ShiftActor, refused: Fenced) -> None:
        """The database refused the actor's write: another instance holds its partition
        now. Stop here for good (nothing was written) and drop the partition."""
        fence = refused.fence
        log.warning(
            "cluster.fenced",
            shift_id=shift_id,
            partition=fence.partition,
            epoch=fence.epoch,
            instance=fence.instance_id,
        )
        if actor.current is not None:
            actor.current.reply.fail(NotHere(f"shift {shift_id}: {refused}"))
        if self._on_fenced is not None:
            self._on_fenced(fence)

    def _close_inbox(
        self, shift_id: str, handle: _Handle, reason: str, *, close_receive: bool = True
    ) -> None:
        """Answer everything queued with ActorUnavailable and (unless told not to: the actor
        still reads it) close the inbox, so senders blocked on it route afresh; the next
        request gets a fresh actor (if still running). A no-op for an actor that retired
        normally (it closed its inbox itself)."""
        self._retire(shift_id, handle)
        while True:
            try:
                message = handle.receive.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
            message.reply.fail(ActorUnavailable(f"shift {shift_id}: {reason}"))
        if close_receive:
            handle.receive.close()
