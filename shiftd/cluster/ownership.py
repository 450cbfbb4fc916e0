"""Who runs which shifts: the ownership interface the supervisor, the sender and the
forwarding of requests between instances read.

An instance *holds* a partition while its lease on it is valid; only then does it run the
actors of that partition's shifts or send their messages. `Ownership` is what callers see;
`shiftd.cluster.leases.LeaseManager` implements it for a cluster on PostgreSQL and
`SoleOwner` for one instance (SQLite, or PostgreSQL without a cluster), which holds every
partition for good and fences nothing.

The lease manager drives a `PartitionHost` (the supervisor): it asks it to take partitions
it acquired, to give back partitions before it releases them, and tells it at once when a
lease was lost.
"""

from __future__ import annotations

from typing import Protocol

import trio

from .fencing import Fence
from .partitions import DEFAULT_PARTITIONS, partition_of


class Ownership(Protocol):
    """Which partitions this instance holds now. Every method is synchronous and cheap
    (it reads memory, never the database), so it may be called for every request."""

    @property
    def instance_id(self) -> str:
        """This process's id in the cluster (unique per start)."""
        ...

    @property
    def partitions(self) -> int:
        """How many partitions there are (fixed for the database)."""
        ...

    def partition_of(self, shift_id: str) -> int:
        """The partition of a shift."""
        ...

    def holds(self, partition: int) -> bool:
        """Whether this instance holds `partition` now (its lease is valid by the local
        clock)."""
        ...

    def held(self) -> frozenset[int]:
        """Every partition held now."""
        ...

    def fence(self, partition: int) -> Fence | None:
        """The fence writes for `partition` carry now; None if nothing needs fencing (one
        instance). Raises NotHeld if this instance does not hold it."""
        ...

    def changed(self) -> trio.Event:
        """An event set the next time the held partitions change (taken, given back or
        lost); ask again for the change after that."""
        ...


class NotHeld(LookupError):
    """This instance does not hold the partition (another instance runs its shifts)."""


class PartitionHost(Protocol):
    """What runs a partition's work (the supervisor), as the lease manager drives it."""

    async def take(self, partitions: frozenset[int]) -> None:
        """Start running the shifts of `partitions`, just acquired: recover them from the
        store. Returns once they run."""
        ...

    async def give_back(self, partitions: frozenset[int]) -> None:
        """Stop the shifts of `partitions` (each finishes the message in hand); returns
        once they have stopped, so the leases can be released."""
        ...

    def lost(self, partitions: frozenset[int]) -> None:
        """The leases of `partitions` are no longer valid: cancel their work at once.
        Never blocks."""
        ...


class Member:
    """What every ownership has: this process's id and the partitions' count."""

    def __init__(self, instance_id: str, partitions: int) -> None:
        self._instance_id = instance_id
        self._partitions = partitions

    @property
    def instance_id(self) -> str:
        return self._instance_id

    @property
    def partitions(self) -> int:
        return self._partitions

    def partition_of(self, shift_id: str) -> int:
        return partition_of(shift_id, self._partitions)


class SoleOwner(Member):
    """One instance that owns every partition for good: no leases, no fences."""

    def __init__(self, instance_id: str = "local", partitions: int = DEFAULT_PARTITIONS) -> None:
        super().__init__(instance_id, partitions)
        self._all = frozenset(range(partitions))
        self._never = trio.Event()

    def holds(self, partition: int) -> bool:
        return True

    def held(self) -> frozenset[int]:
        return self._all

    def fence(self, partition: int) -> Fence | None:
        return None

    def changed(self) -> trio.Event:
        return self._never
