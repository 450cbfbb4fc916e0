"""Shifts map to a fixed number of partitions; a partition is the unit an instance leases.

The mapping must be the same in every process and every Python version, so it is CRC-32 of
the shift id's UTF-8 bytes modulo the number of partitions (never `hash`, which is salted
per process). The number is fixed for the life of a database: the lease table records it at
the first start and an instance configured with another number refuses to start.
"""

from __future__ import annotations

import zlib

DEFAULT_PARTITIONS = 64
MAX_PARTITIONS = 4096


def partition_of(shift_id: str, partitions: int = DEFAULT_PARTITIONS) -> int:
    """The partition of `shift_id`, in `range(partitions)`: stable across processes,
    machines and restarts. Raises ValueError if `partitions` is not positive."""
    if partitions < 1:
        raise ValueError(f"partitions must be positive, not {partitions}")
    return zlib.crc32(shift_id.encode("utf-8", "surrogatepass")) % partitions


def fair_share(partitions: int, instances: int) -> int:
    """How many partitions one of `instances` live instances may hold: ceil(P / n), so
    that together they cover every partition (all of them for a lone instance)."""
    return -(-partitions // max(1, instances))
