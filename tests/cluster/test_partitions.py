"""A shift's partition is the same in every process: CRC-32 of its id modulo the count."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib

import pytest

from shiftd.cluster.ownership import SoleOwner
from shiftd.cluster.partitions import DEFAULT_PARTITIONS, fair_share, partition_of


def test_a_shift_maps_to_crc32_of_its_id_modulo_the_partitions() -> None:
    assert partition_of("shift-1") == zlib.crc32(b"shift-1") % DEFAULT_PARTITIONS == 5
    assert partition_of("shift-1", 7) == zlib.crc32(b"shift-1") % 7


def test_the_mapping_does_not_depend_on_the_process_hash_seed() -> None:
    ids = [f"shift-{n}" for n in range(50)]
    script = (
        "from shiftd.cluster.partitions import partition_of;"
        f"print([partition_of(s) for s in {ids!r}])"
    )
    seen = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert seen == {f"{[partition_of(s) for s in ids]}\n"}


def test_every_partition_is_in_range_and_ids_spread_over_them() -> None:
    found = {partition_of(f"shift-{n}", 16) for n in range(1000)}
    assert found == set(range(16))


def test_a_count_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        partition_of("shift-1", 0)


def test_a_fair_share_covers_every_partition_between_the_live_instances() -> None:
    assert fair_share(64, 1) == 64
    assert fair_share(64, 3) == 22
    assert fair_share(64, 0) == 64
    assert 3 * fair_share(64, 3) >= 64


def test_a_sole_owner_holds_every_partition_and_fences_nothing() -> None:
    owner = SoleOwner(partitions=8)
    assert owner.held() == frozenset(range(8))
    assert owner.holds(owner.partition_of("shift-1"))
    assert owner.fence(3) is None
    assert not owner.changed().is_set()
