"""The control socket's commands over a real Unix socket: a connection keeps serving after
an error, and each command answers what the roster and shifts hold."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
import trio
import trio.testing

from shiftd.clock import parse_iso
from shiftd.control.server import serve_control
from shiftd.models import ShiftState
from shiftd.testing.control import IO_LIMIT, Conn, connect
from shiftd.testing.engine import Harness, phone

MINUTE = 60


@pytest.fixture
async def conn(harness: Harness, sock_path: Path) -> AsyncIterator[Conn]:
    await harness.nursery.start(serve_control, sock_path, harness.engine)
    c = await connect(sock_path)
    yield c
    await c.stream.aclose()


async def test_after_an_unknown_command_the_connection_still_serves(
    conn: Conn, loopback_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(IO_LIMIT):
        unknown = await conn.request("shift.explode")
        after = await conn.request("ping")
    assert (unknown["ok"], unknown["error"]["code"]) == (False, "unknown_command")
    assert after["ok"] is True


async def test_after_bad_arguments_the_connection_still_serves(
    conn: Conn, loopback_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(IO_LIMIT):
        bad = await conn.request("fanout", {"shift_id": 42, "force": True})
        after = await conn.request("fanout", {"shift_id": "shift-1"})
    assert (bad["ok"], bad["error"]["code"]) == (False, "bad_args")
    assert after["ok"] is True and after["result"]["status"] == "started"


async def test_caregiver_list_over_the_socket_lists_the_roster_and_filters_by_role(
    conn: Conn, loopback_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(IO_LIMIT):
        everyone = await conn.call("caregiver.list")
        lpns = await conn.call("caregiver.list", {"role": "LPN"})
    assert len(everyone["caregivers"]) == 7
    assert [(c["id"], c["phone"]) for c in lpns["caregivers"]] == [
        ("cg-6", phone(6)),
        ("cg-7", phone(7)),
    ]


async def test_shift_add_over_the_socket_creates_one_open_shift(
    conn: Conn, loopback_clock: trio.testing.MockClock
) -> None:
    args = {
        "role_required": "LPN",
        "start_time": "2025-07-04T08:00:00Z",
        "end_time": "2025-07-04T16:00:00Z",
    }
    with trio.fail_after(IO_LIMIT):
        added = (await conn.call("shift.add", args))["shift"]
        listed = (await conn.call("shift.list", {"state": "open"}))["shifts"]
    assert added["state"] == "open" and added["role_required"] == "LPN"
    assert added["id"]  # an opaque id was made for it
    assert sorted(s["id"] for s in listed) == sorted(["shift-1", added["id"]])


async def test_cancel_over_the_socket_ends_the_fanout_and_nothing_more_is_sent(
    harness: Harness, conn: Conn, loopback_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(IO_LIMIT):
        await conn.call("fanout", {"shift_id": "shift-1"})
        await harness.settle()
        cancelled = await conn.call("cancel", {"shift_id": "shift-1"})
    sent = len(harness.provider.sent)
    await trio.sleep(60 * MINUTE)
    await harness.settle()

    assert cancelled == {"shift_id": "shift-1", "status": "cancelled"}
    assert len(harness.provider.sent) == sent
    assert (await harness.engine.shift("shift-1")).state is ShiftState.CANCELLED


async def test_shift_show_over_the_socket_tells_who_was_contacted_how_and_when_and_who_declined(
    harness: Harness, conn: Conn, loopback_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(IO_LIMIT):
        await conn.call("fanout", {"shift_id": "shift-1"})
        await harness.settle()
    await trio.sleep(1 * MINUTE)
    with trio.fail_after(IO_LIMIT):
        await conn.call("inbound", {"from": phone(2), "body": "no"})
    await trio.sleep(10 * MINUTE)
    await harness.settle()
    with trio.fail_after(IO_LIMIT):
        shown = (await conn.call("shift.show", {"shift_id": "shift-1"}))["shift"]

    assert shown["state"] == "escalated" and shown["claimed_by"] is None
    started, escalate_at = parse_iso(shown["fanout_started_at"]), parse_iso(shown["escalate_at"])
    assert started is not None and escalate_at == started + timedelta(minutes=10)
    offers = [c for c in shown["contacts"] if c["purpose"] == "offer"]
    texts = {c["caregiver_id"]: c for c in offers if c["channel"] == "sms"}
    calls = [c for c in offers if c["channel"] == "voice"]
    assert set(texts) == {f"cg-{n}" for n in range(1, 6)}
    assert all(parse_iso(c["at"]) == started for c in texts.values())
    assert sorted(c["caregiver_id"] for c in calls) == ["cg-1", "cg-3", "cg-4", "cg-5"]
    assert all(c["state"] == "sent" and parse_iso(c["at"]) == escalate_at for c in calls)
    [declined] = shown["declines"]
    assert declined["caregiver_id"] == "cg-2"
    assert started < parse_iso(declined["at"]) < escalate_at  # type: ignore[operator]
    kinds = [e["kind"] for e in shown["timeline"]]
    assert kinds.index("fanout_started") < kinds.index("declined") < kinds.index("escalated")
    assert "reply" in kinds
