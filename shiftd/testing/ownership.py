"""An ownership fixed by the test: which partitions an instance holds is set, not leased
(`shiftd.cluster.ownership.Ownership`), so tests of what runs where need no lease timing."""

from __future__ import annotations

from collections.abc import Iterable

import trio

from ..cluster.fencing import Fence
from ..cluster.ownership import Member, NotHeld
from ..cluster.partitions import DEFAULT_PARTITIONS


class FixedOwnership(Member):
    """Holds the partitions it is given (`hold` changes them), fencing nothing."""

    def __init__(
        self, instance_id: str, held: Iterable[int] = (), partitions: int = DEFAULT_PARTITIONS
    ) -> None:
        super().__init__(instance_id, partitions)
        self._held = frozenset(held)
        self._changed = trio.Event()

    @classmethod
    def everything(cls, instance_id: str, partitions: int = DEFAULT_PARTITIONS) -> FixedOwnership:
        return cls(instance_id, range(partitions), partitions)

    def holds(self, partition: int) -> bool:
        return partition in self._held

    def held(self) -> frozenset[int]:
        return self._held

    def fence(self, partition: int) -> Fence | None:
        if partition not in self._held:
            raise NotHeld(f"partition {partition} is not held by {self.instance_id}")
        return None

    def changed(self) -> trio.Event:
        return self._changed

    def hold(self, partitions: Iterable[int]) -> None:
        """Hold exactly `partitions` from now on (a takeover, or giving them up)."""
        self._held = frozenset(partitions)
        self._changed.set()
        self._changed = trio.Event()
