"""Importing the roster again: rows are matched by id and updated in place, and the phone
lookups an inbound text runs go through the index."""

from __future__ import annotations

import re
import sqlite3

import trio
import trio.testing

from shiftd.models import Outcome
from shiftd.testing.engine import Harness, caregiver, phone, shift


async def test_reimporting_an_open_shift_with_new_times_updates_it_in_place(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    moved = shift(start_in_h=20)

    counts = await harness.engine.import_roster([], [moved])

    assert counts["shifts"]["updated"] == 1 and counts["shifts"]["created"] == 0
    [row] = await harness.engine.shifts()
    assert (row.id, row.start_time, row.end_time) == ("shift-1", moved.start_time, moved.end_time)


async def test_reimporting_a_caregiver_with_a_new_phone_moves_them_to_that_phone(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.fanout("shift-1")
    new_phone = "+15557770001"

    counts = await harness.engine.import_roster(
        [caregiver(1).model_copy(update={"phone": new_phone})], []
    )

    assert counts["caregivers"]["updated"] == 1 and counts["caregivers"]["created"] == 0
    assert len(await harness.engine.store.list_caregivers()) == 7
    assert (await harness.engine.inbound(phone(1), "yes")).outcome is Outcome.UNKNOWN_SENDER
    found = await harness.engine.inbound(new_phone, "yes")
    assert (found.outcome, found.caregiver_id) == (Outcome.CLAIMED, "cg-1")


async def test_the_phone_lookups_an_inbound_text_runs_use_the_index_not_a_scan(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.fanout("shift-1")
    conn: sqlite3.Connection = harness.engine.store._conn  # type: ignore[attr-defined]
    executed: list[str] = []
    conn.set_trace_callback(executed.append)
    try:
        result = await harness.engine.inbound("(555) 000-0003", "yes")
    finally:
        conn.set_trace_callback(None)

    assert result.outcome is Outcome.CLAIMED
    by_phone = [s for s in executed if re.search(r"FROM caregivers\b.*\bWHERE (c\.)?phone =", s)]
    assert by_phone, executed  # the statements actually run, with their values bound
    for statement in by_phone:
        plan = " ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + statement))
        assert "INDEX" in plan and "SCAN" not in plan, (statement, plan)
