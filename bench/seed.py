"""Bulk-write shifts in progress straight into a shiftd database.

The fanout path would take minutes for 100,000 shifts; the actors recovered from what this
writes are the real ones. It runs as its own process (`python -m bench.seed SPEC`), so the
memory it churns is not counted in the resident-memory figures of the process that measures.
"""

from __future__ import annotations

import json
import random
import sqlite3
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trio

from shiftd.clock import iso
from shiftd.shifts.policy import default_steps, dump_plan, plan

from .stats import phone_of


@dataclass(frozen=True, slots=True)
class Seeded:
    shifts: int
    caregivers: int
    offers: int
    seconds: float


_COLUMNS = {
    "caregivers": "id, name, role, phone, tags, last_code, updated_at",
    "shifts": "id, organization_id, role_required, start_time, end_time, state,"
    " fanout_started_at, escalate_at, plan, next_step, created_at, updated_at",
    "offers": "shift_id, caregiver_id, code, offered_at",
    "outbox": "key, shift_id, caregiver_id, channel, purpose, to_phone, body, state, attempts,"
    " created_at, updated_at, sent_at",
    "events": "shift_id, ts, kind, detail",
}


def _rows(
    *,
    shifts: int,
    offers_per_shift: int,
    stride: int,
    escalate_in_s: float,
    jitter_s: float,
    role: str,
    caregivers: int,
) -> tuple[int, dict[str, list[tuple[Any, ...]]]]:
    """The caregivers and the rows of `shifts` shifts in progress (see `seed_database`),
    by table in `_COLUMNS`' order; and how many caregivers."""
    n_cg = shifts * stride if stride >= offers_per_shift else shifts
    n_cg = max(n_cg, offers_per_shift, caregivers)
    rng = random.Random(1)
    now = datetime.now(UTC)
    stamp = iso(now)
    start = iso(now + timedelta(days=1))
    end = iso(now + timedelta(days=1, hours=8))
    default_plan = dump_plan(plan(default_steps(timedelta(minutes=10))))
    pairs = [
        (i, (i * stride + j) % n_cg, j + 1) for i in range(shifts) for j in range(offers_per_shift)
    ]
    text = "Bench Care: open {role} shift. Reply YES {code} to take it or NO {code}."
    return n_cg, {
        "caregivers": [
            (f"cg-{c:07d}", f"Carer {c}", role, phone_of(c), "[]", offers_per_shift, stamp)
            for c in range(n_cg)
        ],
        "shifts": [
            (
                f"sh-{i:07d}",
                "org-1",
                role,
                start,
                end,
                "offering",
                stamp,
                iso(now + timedelta(seconds=escalate_in_s + rng.uniform(0, jitter_s))),
                default_plan,  # its texts sent, the calls (step 1) come next
                1,
                stamp,
                stamp,
            )
            for i in range(shifts)
        ],
        "offers": [(f"sh-{i:07d}", f"cg-{c:07d}", code, stamp) for i, c, code in pairs],
        "outbox": [
            (
                f"offer:sh-{i:07d}:cg-{c:07d}:sms",
                f"sh-{i:07d}",
                f"cg-{c:07d}",
                "sms",
                "offer",
                phone_of(c),
                text.format(role=role, code=code),
                "sent",
                1,
                stamp,
                stamp,
                stamp,
            )
            for i, c, code in pairs
        ],
        "events": [
            (f"sh-{i:07d}", stamp, "fanout_started", json.dumps({"offered": offers_per_shift}))
            for i in range(shifts)
        ],
    }


def seed_database(
    path: Path | str,
    *,
    shifts: int,
    offers_per_shift: int,
    stride: int,
    escalate_in_s: float = 3600.0,
    jitter_s: float = 600.0,
    role: str = "RN",
    caregivers: int = 0,
) -> Seeded:
    """Create the schema (with the real store) and write `shifts` shifts in state `offering`.

    Shift i (`sh-i`) is offered to caregivers `(i*stride + j) % C` for `j < offers_per_shift`,
    with reply code j+1; its offer texts are in the outbox as `sent`, its escalation is
    `escalate_in_s` from now plus a uniform jitter of up to `jitter_s`. `stride=1` makes
    neighbouring shifts share caregivers (caregiver c holds code 1 of shift c and code 2 of
    shift c-1); `stride=offers_per_shift` gives each caregiver exactly one offer (code 1).
    At least `caregivers` caregivers are written (the others hold no offer).

    `path` is an SQLite file, or a PostgreSQL URL (`postgresql://…`, an empty database).
    """
    from .common import create_schema  # the shiftd store, only in this process

    started = time.perf_counter()
    trio.run(create_schema, path)
    n_cg, tables = _rows(
        shifts=shifts,
        offers_per_shift=offers_per_shift,
        stride=stride,
        escalate_in_s=escalate_in_s,
        jitter_s=jitter_s,
        role=role,
        caregivers=caregivers,
    )
    if isinstance(path, str):
        _write_postgres(path, tables)
    else:
        _write_sqlite(path, tables)
    offers = len(tables["offers"])
    return Seeded(shifts, n_cg, offers, round(time.perf_counter() - started, 3))


def _write_sqlite(path: Path, tables: dict[str, list[tuple[Any, ...]]]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("BEGIN")
        for table, rows in tables.items():
            marks = ", ".join("?" * len(_COLUMNS[table].split(",")))
            conn.executemany(f"INSERT INTO {table} ({_COLUMNS[table]}) VALUES ({marks})", rows)
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


def _write_postgres(url: str, tables: dict[str, list[tuple[Any, ...]]]) -> None:
    import psycopg

    with psycopg.connect(url) as conn, conn.cursor() as cur:
        for table, rows in tables.items():
            with cur.copy(f"COPY {table} ({_COLUMNS[table]}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")  # the planner sees the seeded tables, as after a day's work


async def seed(path: Path | str, **spec: Any) -> Seeded:
    """`seed_database` in a separate process (see the module docstring)."""
    result = await trio.run_process(
        [sys.executable, "-m", "bench.seed", json.dumps({"path": str(path), **spec})],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"seeding failed: {result.stderr.decode()[-2000:]}")
    return Seeded(**json.loads(result.stdout))


if __name__ == "__main__":
    from shiftd.logs import configure_logging

    configure_logging("warning", "json", sys.stderr)  # stdout carries the answer
    args = json.loads(sys.argv[1])
    target = args.pop("path")
    path = target if target.startswith("postgresql://") else Path(target)
    print(json.dumps(asdict(seed_database(path, **args))))
