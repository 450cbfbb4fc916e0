"""What the shared aggregates need from a backend: its dialect, a way to read and a way to
write, and the hooks that keep a backend's in-memory facts in step with its writes."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import trio

from ...cluster.fencing import Fence, current_fence
from .dialect import Conn, Dialect

T = TypeVar("T")


@dataclass(slots=True)
class WriterStats:
    """Counters for the operator's view: how well group commit is batching."""

    commits: int = 0
    writes: int = 0
    commit_seconds: float = 0.0
    max_batch: int = 0

    def count(self, batch: int, seconds: float) -> None:
        """Count one commit of `batch` writes that took `seconds`."""
        self.commits += 1
        self.writes += batch
        self.max_batch = max(self.max_batch, batch)
        self.commit_seconds += seconds


@dataclass(slots=True)
class Write:
    """A write queued for the writer: `fn` runs inside the batch's transaction. `fence`:
    the lease it was queued under (an actor's, in a cluster), checked by PostgreSQL in the
    same transaction (`shiftd.cluster.fencing`)."""

    fn: Callable[[Any], Any]
    done: trio.Event
    fence: Fence | None = None
    result: Any = None
    error: BaseException | None = None


async def gather(recv: trio.MemoryReceiveChannel[Write], batch_max: int) -> list[Write]:
    """The next batch to commit: the first write queued, then whatever the tasks that are
    ready to run queue meanwhile (group commit).

    Before committing, it lets the tasks that are ready to run (often those the last
    commit woke) queue their writes too: one scheduling round, and a second if the first
    brought more. A round costs microseconds, a commit saved tens of them. Never with
    batch_max=1. The pause is shielded: a batch in hand is always committed. Cancellation
    while waiting for the first write raises Cancelled with nothing taken."""
    batch = [await recv.receive()]
    for round_ in range(3):
        queued = len(batch)
        while len(batch) < batch_max:
            try:
                batch.append(recv.receive_nowait())
            except trio.WouldBlock:
                break
        full = len(batch) >= batch_max
        if full or round_ == 2 or (round_ == 1 and len(batch) == queued):
            break
        await trio.lowlevel.cancel_shielded_checkpoint()
    return batch


def pending(recv: trio.MemoryReceiveChannel[Write]) -> list[Write]:
    """The writes still queued (at shutdown: committed before closing)."""
    batch: list[Write] = []
    while True:
        try:
            batch.append(recv.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            return batch


class SqlBackend:
    """The base of `SqliteStore` and `PostgresStore`: the aggregates' methods call
    `_reading` and `_write` with functions of a connection written once over `dialect`."""

    dialect: Dialect
    stats: WriterStats
    _send: trio.MemorySendChannel[Write]
    on_commit: Callable[[int, float], None] | None
    """Told each group commit: (batch size, seconds)."""

    async def _reading(self, fn: Callable[[Conn], T]) -> T:
        """`fn`'s result on a connection that sees committed data. A checkpoint: may
        switch tasks, raises Cancelled (before reading) if cancelled. Raises StoreError if
        the read fails."""
        raise NotImplementedError

    async def _write(self, fn: Callable[[Conn], T]) -> T:
        """Queue `fn` for the writer and return its result once committed.

        Raises what `fn` raised (its changes rolled back), StoreUnavailable if the database
        cannot take writes now (nothing changed), or StoreError if the commit failed or the
        store is not running. If cancelled after queueing, the write still commits. Queued
        under a fence (an actor's, in a cluster), it raises Fenced (nothing written) if
        PostgreSQL finds that lease no longer this instance's."""
        self._require()  # once stopped, nobody would ever commit it: fail, do not hang
        item = Write(fn, trio.Event(), current_fence())
        try:
            # Not `send`: its extra checkpoint is a task switch per write. Waiting for the
            # commit below is the checkpoint.
            self._send.send_nowait(item)
        except trio.WouldBlock:
            await self._send.send(item)  # the queue is full: wait for room (backpressure)
        await item.done.wait()
        if item.error is not None:
            raise item.error
        result: T = item.result  # the queue holds every kind of write; this one's is fn's T
        return result

    def _require(self) -> object:
        """Raises StoreError unless the store is running."""
        raise NotImplementedError

    def _committed(self, batch: list[Write], seconds: float) -> None:
        """Count a commit (or a failed one) of `batch` that took `seconds`, tell
        `on_commit`, and wake its writers."""
        self.stats.count(len(batch), seconds)
        if self.on_commit is not None:
            self.on_commit(len(batch), seconds)
        for item in batch:
            item.done.set()

    def _roster_changed(self) -> None:
        """Called inside a write that changes the roster, at its commit."""

    def _opt_outs_changed(self) -> None:
        """Called inside a write that changes the opt-outs, at its commit."""

    def _texted(self, phones: Iterable[str]) -> None:
        """Called inside a write that texted an offer to `phones`, at its commit."""
