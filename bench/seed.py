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


def seed_database(
    path: Path,
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
    """
    from .common import create_schema  # the shiftd store, only in this process

    started = time.perf_counter()
    trio.run(create_schema, path)
    n_cg = shifts * stride if stride >= offers_per_shift else shifts
    n_cg = max(n_cg, offers_per_shift, caregivers)
    rng = random.Random(1)
    now = datetime.now(UTC)
    stamp = iso(now)
    start = iso(now + timedelta(days=1))
    end = iso(now + timedelta(days=1, hours=8))
    default_plan = dump_plan(plan(default_steps(timedelta(minutes=10))))
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO caregivers (id, name, role, phone, tags, last_code, updated_at)"
            " VALUES (?, ?, ?, ?, '[]', ?, ?)",
            (
                (f"cg-{c:07d}", f"Carer {c}", role, phone_of(c), offers_per_shift, stamp)
                for c in range(n_cg)
            ),
        )
        conn.executemany(
            "INSERT INTO shifts (id, organization_id, role_required, start_time, end_time,"
            " state, fanout_started_at, escalate_at, plan, next_step, created_at, updated_at)"
            " VALUES (?, 'org-1', ?, ?, ?, 'offering', ?, ?, ?, 1, ?, ?)",
            (
                (
                    f"sh-{i:07d}",
                    role,
                    start,
                    end,
                    stamp,
                    iso(now + timedelta(seconds=escalate_in_s + rng.uniform(0, jitter_s))),
                    default_plan,  # its texts sent, the calls (step 1) come next
                    stamp,
                    stamp,
                )
                for i in range(shifts)
            ),
        )
        pairs = [
            (i, (i * stride + j) % n_cg, j + 1)
            for i in range(shifts)
            for j in range(offers_per_shift)
        ]
        conn.executemany(
            "INSERT INTO offers (shift_id, caregiver_id, code, offered_at) VALUES (?, ?, ?, ?)",
            ((f"sh-{i:07d}", f"cg-{c:07d}", code, stamp) for i, c, code in pairs),
        )
        conn.executemany(
            "INSERT INTO outbox (key, shift_id, caregiver_id, channel, purpose, to_phone, body,"
            " state, attempts, created_at, updated_at, sent_at)"
            " VALUES (?, ?, ?, 'sms', 'offer', ?, ?, 'sent', 1, ?, ?, ?)",
            (
                (
                    f"offer:sh-{i:07d}:cg-{c:07d}:sms",
                    f"sh-{i:07d}",
                    f"cg-{c:07d}",
                    phone_of(c),
                    f"Bench Care: open {role} shift. Reply YES {code} to take it or NO {code}.",
                    stamp,
                    stamp,
                    stamp,
                )
                for i, c, code in pairs
            ),
        )
        conn.executemany(
            "INSERT INTO events (shift_id, ts, kind, detail) VALUES (?, ?, 'fanout_started', ?)",
            (
                (f"sh-{i:07d}", stamp, json.dumps({"offered": offers_per_shift}))
                for i in range(shifts)
            ),
        )
        conn.execute("COMMIT")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return Seeded(shifts, n_cg, len(pairs), round(time.perf_counter() - started, 3))


async def seed(path: Path, **spec: Any) -> Seeded:
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
    path = Path(args.pop("path"))
    print(json.dumps(asdict(seed_database(path, **args))))
