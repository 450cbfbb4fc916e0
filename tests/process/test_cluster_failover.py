"""Two real daemons on one PostgreSQL database (a cluster with a 2 s lease): when the owner
of a shift in mid-fanout dies, the other takes the shift over, calls at the stored
escalation instant, and no message goes out twice."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from store_backends import create_database, drop_database, postgres_unreachable

from shiftd.cluster.partitions import partition_of
from shiftd.testing.daemon import Daemon, sample_roster
from shiftd.testing.waiting import wait_for

pytestmark = pytest.mark.process

TTL = 2
DELAY = "6s"  # texts first, calls at the stored escalation instant 6 s later
SHIFT = "shift-1"


@pytest.fixture
def database() -> Iterator[str]:
    reason = postgres_unreachable()
    if reason is not None:
        pytest.skip(reason)
    url = create_database()
    try:
        yield url
    finally:
        drop_database(url)


class Cluster:
    def __init__(self, url: str, workdir: Path) -> None:
        self.url = url
        self.workdir = workdir
        self.daemons: dict[str, Daemon] = {}

    def start(self, name: str) -> Daemon:
        (self.workdir / name).mkdir()
        daemon = Daemon(self.workdir / name, escalation_delay=DELAY)
        with daemon.config.open("a") as config:
            config.write(
                f'store:\n  url: "{self.url}"\n'
                f'cluster:\n  name: "{name}"\n  lease_ttl: "{TTL}s"\n'
                "log:\n  level: info\n"
            )
        self.daemons[name] = daemon
        return daemon.start()

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, autocommit=True) as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    def owner_of(self, shift_id: str) -> str | None:
        """The name of the instance whose lease covers the shift now."""
        found = self.sql(
            "SELECT owner FROM cluster_leases WHERE partition = %s AND expires_at > now()",
            (partition_of(shift_id),),
        )
        owner = found[0][0] if found else None
        return owner.rsplit("-", 1)[0] if owner else None

    def balanced(self) -> bool:
        """Every partition leased, and each instance holds some."""
        rows = self.sql(
            "SELECT owner, count(*) FROM cluster_leases WHERE expires_at > now() GROUP BY owner"
        )
        return len(rows) == len(self.daemons) and sum(n for _, n in rows) == 64

    def escalate_at(self, shift_id: str) -> datetime:
        (at,) = self.sql("SELECT escalate_at FROM shifts WHERE id = %s", (shift_id,))[0]
        return datetime.fromisoformat(at)

    def messages(self) -> list[dict[str, Any]]:
        return [m for d in self.daemons.values() for m in d.messages()]

    def stop(self) -> None:
        for daemon in self.daemons.values():
            if daemon.alive() and daemon.proc is not None:
                daemon.proc.send_signal(signal.SIGCONT)
            daemon.ensure_gone()


@pytest.fixture
def cluster(database: str, workdir: Path) -> Iterator[Cluster]:
    made = Cluster(database, workdir)
    try:
        yield made
    finally:
        made.stop()


def _fan_out_through_the_owner(cluster: Cluster) -> tuple[Daemon, Daemon]:
    """Both instances up and balanced, a shift fanned out by its owner: (owner, other)."""
    a, b = cluster.start("a"), cluster.start("b")
    wait_for(cluster.balanced, 30, "both instances to hold partitions")
    a.call("roster.import", **sample_roster())
    owner_name = cluster.owner_of(SHIFT)
    owner, other = (a, b) if owner_name == "a" else (b, a)
    assert owner.call("fanout", shift_id=SHIFT)["status"] == "started"
    wait_for(lambda: len(owner.messages()) == 3, 15, "the three texts of the first wave")
    return owner, other


def _calls(daemon: Daemon) -> list[dict[str, Any]]:
    return [m for m in daemon.messages() if m["channel"] == "voice" and m["shift_id"] == SHIFT]


def _nothing_twice(cluster: Cluster) -> None:
    sent = Counter((m["outbox_id"]) for m in cluster.messages())
    assert [k for k, n in sent.items() if n > 1] == []
    keys = Counter((m["to"], m["channel"], m["purpose"], m["shift_id"]) for m in cluster.messages())
    assert [k for k, n in keys.items() if n > 1] == []


def test_a_killed_owner_s_shift_escalates_on_another_instance_at_its_deadline(
    cluster: Cluster,
) -> None:
    owner, other = _fan_out_through_the_owner(cluster)
    deadline = cluster.escalate_at(SHIFT)
    owner.kill9()

    calls = wait_for(lambda: len(_calls(other)) == 3 and _calls(other), 30, "the calls")
    first = min(datetime.fromisoformat(c["ts"]) for c in calls)
    assert first >= deadline  # never before the stored instant
    print(f"first call {(first - deadline).total_seconds():.2f} s after the deadline (TTL {TTL} s)")
    assert _calls(owner) == []
    _nothing_twice(cluster)
    assert "cluster.acquired" in other.log_text()
