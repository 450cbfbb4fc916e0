"""Two real daemons on one PostgreSQL database (a cluster with a 2 s lease): when the owner
of a shift in mid-fanout dies or is paused past its lease, the other takes the shift over,
calls at the stored escalation instant, and no message goes out twice; a paused owner that
resumes sends and writes nothing."""

from __future__ import annotations

import signal
from collections import Counter
from datetime import datetime
from typing import Any

import pytest

from shiftd.testing.cluster import Cluster
from shiftd.testing.daemon import Daemon, sample_roster
from shiftd.testing.waiting import wait_for

pytestmark = [pytest.mark.process, pytest.mark.slow]

SHIFT = "shift-1"  # texted first, called at the stored escalation instant 6 s later


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
    print(f"first call {(first - deadline).total_seconds():.2f} s after the deadline (TTL 2 s)")
    assert _calls(owner) == []
    _nothing_twice(cluster)
    assert "cluster.acquired" in other.log_text()


def test_an_owner_paused_past_its_lease_sends_nothing_and_changes_nothing_when_it_resumes(
    cluster: Cluster,
) -> None:
    owner, other = _fan_out_through_the_owner(cluster)
    assert owner.proc is not None
    owner.proc.send_signal(signal.SIGSTOP)
    sent_before = len(owner.messages())
    # Paused past its escalation instant and its lease: the other takes over and calls.
    wait_for(lambda: len(_calls(other)) == 3, 30, "the other instance to call")
    events = cluster.sql("SELECT count(*) FROM events WHERE shift_id = %s", (SHIFT,))
    outbox = cluster.sql("SELECT id, state FROM outbox ORDER BY id")

    owner.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: "cluster.lease_lost" in owner.log_text(), 15, "the resumed one to say so")
    wait_for(cluster.balanced, 30, "the resumed one to hold partitions again")
    assert len(owner.messages()) == sent_before
    assert cluster.sql("SELECT count(*) FROM events WHERE shift_id = %s", (SHIFT,)) == events
    assert cluster.sql("SELECT id, state FROM outbox ORDER BY id") == outbox
    assert owner.ping()
    _nothing_twice(cluster)
