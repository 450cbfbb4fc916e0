"""`shiftctl status` on any instance of a cluster shows every instance, the partitions
each holds and how fresh its leases are."""

from __future__ import annotations

import pytest

from shiftd.testing.cluster import Cluster
from shiftd.testing.waiting import wait_for

pytestmark = [pytest.mark.process, pytest.mark.slow]


def test_shiftctl_status_shows_every_instance_and_the_partitions_it_holds(
    cluster: Cluster,
) -> None:
    a, _ = cluster.start("a"), cluster.start("b")
    wait_for(cluster.balanced, 30, "both instances to hold partitions")

    shown = a.shiftctl("status")

    assert shown.returncode == 0, shown.stderr
    assert "cluster:   64 partitions, 0 unowned, lease ttl 2.0s" in shown.stdout
    rows = {line.split()[0]: line.split() for line in shown.stdout.splitlines()[1:]}
    instances = sorted(name for name in rows if name[:2] in ("a-", "b-"))
    assert [name[:2] for name in instances] == ["a-", "b-"]
    a_row, b_row = (rows[name] for name in instances)
    assert a_row[1] == "*"  # the instance that answered
    assert int(a_row[4]) + int(b_row[3]) == 64
