"""Fencing: every write an actor makes carries its partition's lease epoch, and the
PostgreSQL store refuses it unless that lease is still this instance's.

The fence travels in a context variable rather than as an argument of every store call: the
supervisor sets it in the task that runs a shift's actor, the tasks the actor starts (its
deliveries) inherit it, and the store reads it when a write is queued (`current_fence`). A
write queued with no fence (a roster import, a coordinator account, SQLite) is not fenced.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from ..store.base import StoreError


@dataclass(frozen=True, slots=True)
class Fence:
    """The lease a write is made under: `instance_id` held `partition` at `epoch`.

    `valid()` says whether this instance still holds that lease by its own clock: what the
    sender asks right before handing a message to the provider, so that a process paused
    between committing `sending` and the provider call sends nothing once its lease ran
    out (the database cannot refuse a call it never sees)."""

    instance_id: str
    partition: int
    epoch: int
    valid: Callable[[], bool] = field(default=lambda: True, compare=False, repr=False)


class Fenced(StoreError):
    """The write was made under a lease this instance no longer holds (another instance
    took the partition, or the lease expired): nothing was written. The actor must stop;
    the partition's new holder carries on from the store."""

    def __init__(self, fence: Fence) -> None:
        super().__init__(
            f"partition {fence.partition} is no longer leased to {fence.instance_id}"
            f" at epoch {fence.epoch}: nothing was written"
        )
        self.fence = fence


_current: ContextVar[Fence | None] = ContextVar("shiftd_fence", default=None)


def current_fence() -> Fence | None:
    """The fence of the task running now (and of the tasks it started), or None."""
    return _current.get()


@contextmanager
def fenced(fence: Fence | None) -> Iterator[None]:
    """Run the block (and the tasks it starts) with `fence` as the current fence."""
    token = _current.set(fence)
    try:
        yield
    finally:
        _current.reset(token)


def check(conn: Any, fence: Fence) -> None:
    """Inside a write's transaction on PostgreSQL: raise Fenced unless `fence`'s lease is
    still this instance's, at that epoch, and unexpired by the server's clock. The lease
    row is locked `FOR KEY SHARE` until the transaction ends: a takeover locks it `FOR
    UPDATE`, so it skips the partition while this write is in flight and cannot interleave
    with it, while the owner's renewal (an `UPDATE` of no key) does not wait for it."""
    found = conn.execute(
        "SELECT 1 FROM cluster_leases WHERE partition = %s AND owner = %s AND epoch = %s"
        " AND expires_at > now() FOR KEY SHARE",
        (fence.partition, fence.instance_id, fence.epoch),
    ).fetchone()
    if found is None:
        raise Fenced(fence)
