"""The audit record from the store, whatever the notifier: every message out and in, every
shift event, in a window, page by page; and retention of the texts caregivers sent."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import trio

from shiftd.commands import COMMANDS
from shiftd.testing.engine import Harness, StartEngine, caregiver, make_config, phone, shift


async def _export(h: Harness, **args: Any) -> dict[str, Any]:
    command = COMMANDS["export"]
    return await command.run(h.engine, command.args.model_validate(args))


async def _fanout_and_decline(h: Harness) -> None:
    await h.engine.fanout("shift-1")
    await h.settle()
    await trio.sleep(60)
    await h.engine.inbound(phone(2), "no thanks")
    await h.settle()


async def test_messages_holds_every_text_out_and_in_oldest_first(
    harness: Harness, autojump_clock: object
) -> None:
    await _fanout_and_decline(harness)
    rows = (await _export(harness, kind="messages"))["rows"]
    offers = [r for r in rows if r["purpose"] == "offer"]
    assert sorted(r["caregiver_id"] for r in offers) == [f"cg-{n}" for n in range(1, 6)]
    received = [r for r in rows if r["direction"] == "in"]
    assert [(r["caregiver_id"], r["body"], r["outcome"]) for r in received] == [
        ("cg-2", "no thanks", "declined")
    ]
    assert [r["ts"] for r in rows] == sorted(r["ts"] for r in rows)
    assert rows[-1]["direction"] == "out" and rows[-1]["purpose"] == "declined"


async def test_pages_continue_where_the_last_one_ended(
    harness: Harness, autojump_clock: object
) -> None:
    await _fanout_and_decline(harness)
    whole = (await _export(harness, kind="messages"))["rows"]
    paged, after = [], None
    while True:
        page = await _export(harness, kind="messages", limit=2, after=after)
        paged += page["rows"]
        if page["next"] is None:
            break
        after = page["next"]
    assert paged == whole and len(whole) == 7


async def test_the_window_bounds_what_is_exported(harness: Harness, autojump_clock: object) -> None:
    await _fanout_and_decline(harness)
    # The offers went at 10:00 local (14:00Z); the decline a minute later.
    later = await _export(harness, kind="messages", since="2025-07-01 10:00:30")
    assert {r["direction"] for r in later["rows"]} == {"in", "out"}
    assert all(r["purpose"] != "offer" for r in later["rows"])
    earlier = await _export(harness, kind="messages", since="2d", until="2025-07-01 10:00:30")
    assert {r["purpose"] for r in earlier["rows"]} == {"offer"}
    assert earlier["until"] == "2025-07-01T10:00:30-04:00"


async def test_timeline_holds_every_shift_event_with_its_detail(
    harness: Harness, autojump_clock: object
) -> None:
    await _fanout_and_decline(harness)
    rows = (await _export(harness, kind="timeline"))["rows"]
    kinds = [r["kind"] for r in rows]
    assert kinds[:3] == ["created", "fanout_started", "wave"] and "declined" in kinds
    started = rows[1]
    assert started["shift_id"] == "shift-1" and started["detail"]["candidates"] == 5


async def test_reply_texts_are_blanked_after_the_retention_and_their_outcome_stays(
    start_engine: StartEngine, tmp_path: Path, autojump_clock: object
) -> None:
    h = await start_engine(make_config(tmp_path, retention={"reply_text": "1d"}))
    await h.engine.import_roster([caregiver(n) for n in (1, 2)], [shift(start_in_h=60)])
    await _fanout_and_decline(h)

    await trio.sleep(timedelta(hours=23).total_seconds())
    kept = [r for r in (await _export(h, kind="messages"))["rows"] if r["direction"] == "in"]
    assert kept[0]["body"] == "no thanks"

    await trio.sleep(timedelta(hours=2).total_seconds())  # the next hourly sweep is past 24h
    rows = (await _export(h, kind="messages", since="3d"))["rows"]
    blanked = [r for r in rows if r["direction"] == "in"]
    assert [(r["body"], r["outcome"]) for r in blanked] == [("", "declined")]
    assert any(r["purpose"] == "offer" and r["body"] for r in rows)  # only replies go


async def test_without_retention_reply_texts_are_kept(
    harness: Harness, autojump_clock: object
) -> None:
    await _fanout_and_decline(harness)
    await trio.sleep(timedelta(days=400).total_seconds())
    rows = (await _export(harness, kind="messages", since="500d"))["rows"]
    assert [r["body"] for r in rows if r["direction"] == "in"] == ["no thanks"]
