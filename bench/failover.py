"""Failover across a cluster: two real daemons on a fresh PostgreSQL database; a shift's
owner is killed (`kill -9`) right after its first wave, its escalation due 1 s later. The
figure: time from the kill to the first escalation call made by the instance that takes
the shift over, beside the lease TTL (the bound is TTL + TTL/3: the lease must lapse, then
the survivor's next renewal round takes it)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import trio

from shiftd.testing.cluster import Cluster
from shiftd.testing.daemon import sample_roster
from shiftd.testing.waiting import wait_for

from . import postgres
from .common import Size, workdir

SHIFT = "shift-1"


async def failover(size: Size) -> dict[str, Any]:
    reason = postgres.unreachable()
    if reason is not None:
        return {"skipped": f"PostgreSQL is not answering: {reason}"}
    out: dict[str, Any] = {}
    for ttl in size.failover_ttls:
        runs = [await trio.to_thread.run_sync(_one_run, ttl) for _ in range(size.failover_runs)]
        out[f"ttl_{ttl}s"] = {
            "ttl_s": ttl,
            "bound_s": round(ttl * 4 / 3, 3),
            "kill_to_first_call_s": [r["kill_to_first_call_s"] for r in runs],
            "after_deadline_s": [r["after_deadline_s"] for r in runs],
        }
    return out


def _one_run(ttl: int) -> dict[str, float]:
    with postgres.database() as url, workdir("failover") as d:
        cluster = Cluster(url, d, ttl=f"{ttl}s", escalation_delay="1s")
        try:
            a, b = cluster.start("a"), cluster.start("b")
            wait_for(cluster.balanced, 60, "both instances to hold partitions")
            a.call("roster.import", **sample_roster())
            owner, other = (a, b) if cluster.owner_of(SHIFT) == "a" else (b, a)
            owner.call("fanout", shift_id=SHIFT)
            wait_for(lambda: len(owner.messages()) == 3, 30, "the first wave")
            killed = time.time()
            owner.kill9()
            deadline = cluster.escalate_at(SHIFT)

            def calls() -> list[datetime]:
                return [
                    datetime.fromisoformat(m["ts"])
                    for m in other.messages()
                    if m["channel"] == "voice" and m["shift_id"] == SHIFT
                ]

            first = min(wait_for(calls, 10 * ttl + 30, "the survivor's first call"))
            return {
                "kill_to_first_call_s": round(first.timestamp() - killed, 3),
                "after_deadline_s": round((first - deadline).total_seconds(), 3),
            }
        finally:
            cluster.stop()
