"""The cluster's tables in the PostgreSQL database, and the statements on them.

They are created by the store's PostgreSQL migrations (`shiftd.store.postgres.schema`,
version 12), which run before the cluster starts; a single instance leaves them empty.
Times here are the server's (`now()`, `timestamptz`): leases are judged by one clock, the
database's, whatever the instances' clocks say.

- `cluster_meta`: the number of partitions, recorded at the first start.
- `cluster_instances`: one row per running process (id unique per start), its heartbeat.
- `cluster_leases`: one row per partition: its owner, epoch (bumped at every acquisition:
  the fencing token) and `expires_at`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from ..clock import iso
from ..store.base import StoreError
from .partitions import partition_of

Conn = psycopg.Connection[Any]

_SETUP_LOCK = 0x73686967  # pg_advisory_xact_lock key: instances record the partitions one at a time


class PartitionsMismatch(StoreError):
    """The database was set up with another number of partitions than configured."""


class Unregistered(StoreError):
    """This instance's row is gone (it was silent for long, and forgotten): register
    again."""


def set_up(conn: Conn, partitions: int) -> None:
    """Record `partitions` and a lease row for each, or check it against the one recorded.
    Raises PartitionsMismatch if they differ (nothing changed)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SETUP_LOCK,))
        found = conn.execute("SELECT partitions FROM cluster_meta").fetchone()
        if found is None:
            conn.execute("INSERT INTO cluster_meta (partitions) VALUES (%s)", (partitions,))
            conn.execute(
                "INSERT INTO cluster_leases (partition) SELECT generate_series(0, %s - 1)"
                " ON CONFLICT DO NOTHING",
                (partitions,),
            )
        elif found[0] != partitions:
            raise PartitionsMismatch(
                f"cluster.partitions is {partitions} but this database was set up with"
                f" {found[0]}; the number of partitions cannot change"
            )


def register(conn: Conn, instance_id: str, name: str, host: str, pid: int) -> None:
    """Record this instance (its heartbeat now)."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO cluster_instances (id, name, host, pid) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (id) DO UPDATE SET heartbeat = now()",
            (instance_id, name, host, pid),
        )


@dataclass(frozen=True, slots=True)
class Round:
    """What one renewal round found: the leases renewed and acquired (partition → epoch),
    how many instances are alive, and how many rows left `sending` were failed."""

    renewed: dict[int, int]
    acquired: dict[int, int]
    live: int
    abandoned: int


def renew_and_acquire(
    conn: Conn,
    instance_id: str,
    held: dict[int, int],
    ttl: timedelta,
    want: int,
    partitions: int,
    at: datetime,
) -> Round:
    """One transaction: heartbeat, renew the leases in `held` (those still ours at the
    same epoch and not expired), then acquire free or expired partitions (and our own that
    we no longer count as held) until we hold `want` (`want` < 0: the fair share among the
    instances alive now). Acquiring bumps the epoch; rows of the acquired partitions left
    `sending` are marked failed in the same transaction (at-most-once: the old owner may
    have sent them). A partition whose lease row a fenced write holds (`FOR KEY SHARE`) is
    skipped this round; renewing does not wait for such writes. Raises Unregistered if
    this instance's row was forgotten."""
    seconds = ttl.total_seconds()
    with conn.transaction():
        touched = conn.execute(
            "UPDATE cluster_instances SET heartbeat = now() WHERE id = %s", (instance_id,)
        ).rowcount
        if not touched:
            raise Unregistered(f"instance {instance_id} is no longer registered")
        renewed: dict[int, int] = {}
        if held:
            for partition, epoch in conn.execute(
                "UPDATE cluster_leases SET expires_at = now() + make_interval(secs => %s),"
                " renewed_at = now() WHERE owner = %s AND partition = ANY(%s)"
                " AND expires_at > now() RETURNING partition, epoch",
                (seconds, instance_id, list(held)),
            ):
                if held.get(partition) == epoch:
                    renewed[partition] = epoch
        (live,) = conn.execute(
            "SELECT count(*) FROM cluster_instances"
            " WHERE heartbeat > now() - make_interval(secs => %s)",
            (seconds,),
        ).fetchone() or (1,)
        if want < 0:
            want = -(-partitions // max(1, live))
        acquired: dict[int, int] = {}
        missing = want - len(renewed)
        if missing > 0:
            rows = conn.execute(
                "UPDATE cluster_leases SET owner = %s, epoch = epoch + 1, acquired_at = now(),"
                " renewed_at = now(), expires_at = now() + make_interval(secs => %s)"
                " WHERE partition IN (SELECT partition FROM cluster_leases"
                "  WHERE (owner IS NULL OR expires_at IS NULL OR expires_at <= now()"
                "   OR owner = %s) AND NOT partition = ANY(%s)"
                "  ORDER BY partition LIMIT %s FOR UPDATE SKIP LOCKED)"
                " RETURNING partition, epoch",
                (instance_id, seconds, instance_id, list(renewed), missing),
            ).fetchall()
            acquired = {p: e for p, e in rows}
        abandoned = _abandon_sending(conn, acquired, partitions, at) if acquired else 0
        # Instances dead for long are forgotten (they are shown until then).
        conn.execute(
            "DELETE FROM cluster_instances WHERE heartbeat < now() - make_interval(secs => %s)",
            (seconds * 20,),
        )
    return Round(renewed, acquired, int(live), abandoned)


def _abandon_sending(conn: Conn, acquired: Collection[int], partitions: int, at: datetime) -> int:
    """Rows of `acquired` partitions caught in `sending` become failed, never re-sent. A
    message of no shift (an answer to HELP) counts in its recipient's partition: any
    instance may send one, and whoever takes that partition clears what a dead one left."""
    ids = [
        row_id
        for row_id, shift_id, caregiver_id in conn.execute(
            "SELECT id, shift_id, caregiver_id FROM outbox WHERE state = 'sending'"
        )
        if partition_of(shift_id or caregiver_id, partitions) in acquired
    ]
    if not ids:
        return 0
    return conn.execute(
        "UPDATE outbox SET state = 'failed', updated_at = %s,"
        " error = 'interrupted while sending; not retried (at-most-once)'"
        " WHERE id = ANY(%s) AND state = 'sending'",
        (iso(at), ids),
    ).rowcount


def release(conn: Conn, instance_id: str, partitions: Collection[int]) -> None:
    """Give up our leases on `partitions` at once (another instance may take them now)."""
    with conn.transaction():
        conn.execute(
            "UPDATE cluster_leases SET owner = NULL, expires_at = NULL"
            " WHERE owner = %s AND partition = ANY(%s)",
            (instance_id, list(partitions)),
        )


def leave(conn: Conn, instance_id: str) -> None:
    """Give up every lease and forget this instance (a graceful stop)."""
    with conn.transaction():
        conn.execute(
            "UPDATE cluster_leases SET owner = NULL, expires_at = NULL WHERE owner = %s",
            (instance_id,),
        )
        conn.execute("DELETE FROM cluster_instances WHERE id = %s", (instance_id,))


def overview(conn: Conn) -> dict[str, Any]:
    """The cluster as the database sees it: instances (with the partitions each holds and
    their lease ages) and the partitions no live lease covers."""
    with conn.transaction():
        instances = conn.execute(
            "SELECT id, name, host, pid, started, heartbeat,"
            " extract(epoch FROM now() - heartbeat) FROM cluster_instances ORDER BY started, id"
        ).fetchall()
        leases = conn.execute(
            "SELECT partition, owner, epoch, extract(epoch FROM now() - renewed_at),"
            " extract(epoch FROM expires_at - now()) FROM cluster_leases"
            " WHERE owner IS NOT NULL AND expires_at > now() ORDER BY partition"
        ).fetchall()
        (total,) = conn.execute("SELECT count(*) FROM cluster_leases").fetchone() or (0,)
    held: dict[str, list[tuple[int, int, float, float]]] = {}
    for partition, owner, epoch, age, left in leases:
        held.setdefault(owner, []).append((partition, epoch, float(age), float(left)))
    out = []
    for id_, name, host, pid, started, _heartbeat, since in instances:
        mine = held.get(id_, [])
        out.append(
            {
                "id": id_,
                "name": name,
                "host": host,
                "pid": pid,
                "started": iso(started),
                "heartbeat_age_s": round(float(since), 3),
                "partitions": [p for p, _, _, _ in mine],
                "oldest_renewal_s": round(max((a for _, _, a, _ in mine), default=0.0), 3),
                "soonest_expiry_s": round(min((left for *_, left in mine), default=0.0), 3),
            }
        )
    covered = sum(len(v) for v in held.values())
    return {"instances": out, "partitions": int(total), "unowned": int(total) - covered}
