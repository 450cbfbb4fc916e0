"""Three daemons on one PostgreSQL database: accepts that land on any of them are decided
by the shift's owner, once. Real processes, real time; every wait is bounded."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from store_backends import create_database, drop_database, postgres_unreachable

from shiftd.cluster.partitions import DEFAULT_PARTITIONS
from shiftd.testing.daemon import Daemon
from shiftd.testing.waiting import wait_for

pytestmark = [pytest.mark.process, pytest.mark.slow]

CAREGIVERS = 100
# Long enough that a daemon starved of CPU for a second (other tests running beside this
# one) still renews in time: a shift changing hands mid-storm drops what its owner had in
# flight (at most once), and this test counts every message.
LEASE_TTL = "5s"


def phone(n: int) -> str:
    return f"+1555041{n:04d}"


@pytest.fixture
def database(cluster_turn: None) -> Iterator[str]:
    reason = postgres_unreachable()
    if reason is not None:
        pytest.skip(reason)
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture
def instances(database: str) -> Iterator[list[Daemon]]:
    """Daemons "a", "b" and "c" on `database`, started, each in a directory of its own."""
    root = Path(tempfile.mkdtemp(prefix="shiftd-", dir="/tmp"))
    for name in "abc":
        (root / name).mkdir()
    daemons = [
        Daemon(
            root / name,
            escalation_delay="10m",
            extra_config=(
                f"store:\n  url: {database}\n"
                f"cluster:\n  name: {name}\n  lease_ttl: {LEASE_TTL}\n  forward_wait: 20s\n"
            ),
        )
        for name in "abc"
    ]
    try:
        for daemon in daemons:
            daemon.start()
        # Each answers once it holds its first share; the shares settle a few renewals
        # later, and the storm below counts on the shift's owner not changing hands.
        wait_for(lambda: _settled(database), 60, "the partitions to be shared by all three")
        yield daemons
    finally:
        for daemon in daemons:
            daemon.ensure_gone()
        shutil.rmtree(root, ignore_errors=True)


def _settled(database: str) -> bool:
    """Every partition leased, each of the three instances holding some and none more than
    its fair share: nobody has extras left to give back, so no partition moves."""
    with psycopg.connect(database, autocommit=True) as conn:
        held = [
            n
            for _, n in conn.execute(
                "SELECT owner, count(*) FROM cluster_leases WHERE expires_at > now() GROUP BY owner"
            )
        ]
    share = -(-DEFAULT_PARTITIONS // 3)
    return len(held) == 3 and sum(held) == DEFAULT_PARTITIONS and max(held) <= share


def recorded(daemons: list[Daemon], purpose: str) -> list[dict[str, Any]]:
    """What the three record files hold of `purpose`, together."""
    return [m for d in daemons for m in d.messages() if m["purpose"] == purpose]


def test_of_100_accepts_spread_over_three_instances_exactly_one_claims(
    instances: list[Daemon], database: str
) -> None:
    a = instances[0]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    roster = {
        "caregivers": [
            {"id": f"cg-{n}", "name": f"Carer {n}", "role": "RN", "phone": phone(n)}
            for n in range(CAREGIVERS)
        ],
        "shifts": [
            {
                "id": "night-rn",
                "role_required": "RN",
                "start_time": start.isoformat(),
                "end_time": (start + timedelta(hours=8)).isoformat(),
            }
        ],
    }
    a.call("roster.import", **roster)
    # A fanout asked again after `unavailable` is a new request (no request id): the first,
    # kept in the inbox, may have started it meanwhile.
    assert a.call_when_available("fanout", shift_id="night-rn")["status"] in {
        "started",
        "already_running",
    }
    wait_for(lambda: len(recorded(instances, "offer")) == CAREGIVERS, 60, "100 offers")

    def accept(n: int, daemon: Daemon) -> str:
        answer = daemon.call_when_available(
            "inbound", **{"from": phone(n), "body": "YES", "provider_message_id": f"SM-{n}"}
        )
        return str(answer["outcome"])

    spread = zip(range(CAREGIVERS), itertools.cycle(instances), strict=False)
    with ThreadPoolExecutor(max_workers=CAREGIVERS) as pool:
        outcomes = Counter(pool.map(lambda job: accept(*job), spread))

    assert outcomes == Counter({"claimed": 1, "already_filled": CAREGIVERS - 1})
    holder = a.call("shift.show", shift_id="night-rn")["shift"]["claimed_by"]
    wait_for(lambda: recorded(instances, "confirm"), 30, "the confirmation")
    for daemon in instances:
        assert daemon.stop() == 0  # every send in flight has ended
    assert [m["caregiver_id"] for m in recorded(instances, "confirm")] == [holder]
    with psycopg.connect(database) as conn:
        senders = {r[0] for r in conn.execute("SELECT DISTINCT sender FROM shiftd_inbox")}
    assert len(senders) == 2  # the two instances not owning the shift forwarded to it
