"""Schema v2 for the webhooks: outbox rows found by provider id, delivery status that only
moves forward (on every backend), and a SQLite v1 database upgraded in place."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from store_backends import Backend

from shiftd.models import Channel, SendResult
from shiftd.store.base import SendOutcome, provider_status_rank
from shiftd.store.sqlite import MIGRATIONS, SCHEMA_VERSION, SqliteStore
from shiftd.testing.engine import EPOCH, caregiver, shift, text_everyone


@asynccontextmanager
async def running(path: Path) -> AsyncIterator[SqliteStore]:
    async with trio.open_nursery() as nursery:
        store = await nursery.start(SqliteStore(path).run)
        yield store
        nursery.cancel_scope.cancel()


async def store_with_sent_offer(store: Any, sid: str) -> int:
    """A fanout to one caregiver whose offer text the provider accepted as `sid`."""
    await store.import_roster([caregiver(1)], [shift()], EPOCH)
    await text_everyone(store)
    [row] = await store.due_outbox(after_id=0, now=EPOCH, limit=10)
    await store.mark_sending(row.id, at=EPOCH)
    await store.finish_sends(
        [SendOutcome(row.id, SendResult.SENT, None, provider_id=sid, at=EPOCH)]
    )
    return row.id


async def test_a_row_is_found_by_its_provider_id(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running() as store:
        outbox_id = await store_with_sent_offer(store, "SM123")
        row = await store.outbox_by_provider_id("SM123")
        missing = await store.outbox_by_provider_id("SM999")
    assert row is not None
    assert (row.id, row.shift_id, row.caregiver_id, row.channel) == (
        outbox_id,
        "shift-1",
        "cg-1",
        Channel.SMS,
    )
    assert row.provider_status is None
    assert missing is None


async def test_the_provider_id_lookup_uses_an_index(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with running(tmp_path / "s.sqlite3") as store:
        plan = store._read(
            "EXPLAIN QUERY PLAN SELECT id FROM outbox WHERE provider_id = ?", ("SM1",)
        )
    assert any("outbox_provider_id" in row["detail"] for row in plan)


async def test_provider_status_never_moves_backwards(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running() as store:
        await store_with_sent_offer(store, "SM1")
        results = [
            await store.update_provider_status("SM1", status, at=EPOCH)
            for status in ("queued", "delivered", "sent", "sending", "delivered", "failed")
        ]
        row = await store.outbox_by_provider_id("SM1")
    assert results == ["updated", "updated", "stale", "stale", "stale", "stale"]
    assert row is not None
    assert row.provider_status == "delivered"


async def test_provider_status_reports_unknown_rows_and_statuses(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running() as store:
        await store_with_sent_offer(store, "SM1")
        assert await store.update_provider_status("SM2", "sent", at=EPOCH) == "not_found"
        assert await store.update_provider_status("SM1", "exploded", at=EPOCH) == "unknown_status"


def test_call_statuses_rank_in_twilios_order() -> None:
    order = ["queued", "initiated", "ringing", "in-progress", "completed"]
    ranks = [provider_status_rank(Channel.VOICE, status) for status in order]
    assert ranks == sorted(ranks)
    assert len(set(ranks)) == len(ranks)
    finals = {"completed", "busy", "no-answer", "failed", "canceled"}
    assert {provider_status_rank(Channel.VOICE, s) for s in finals} == {ranks[-1]}


async def test_a_version_1_database_is_upgraded_in_place(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "v1.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.executescript(MIGRATIONS[0])
        conn.execute("PRAGMA user_version = 1")
        conn.execute(
            "INSERT INTO caregivers (id, name, role, phone, updated_at)"
            " VALUES ('cg-1', 'A', 'RN', '+15550000001', 'x')"
        )
        conn.execute(
            "INSERT INTO outbox (key, caregiver_id, channel, purpose, to_phone, body, state,"
            " created_at, updated_at, provider_id) VALUES ('k', 'cg-1', 'sms', 'offer',"
            " '+15550000001', 'hello', 'sent', 'x', 'x', 'SM-old')"
        )
    async with running(path) as store:
        row = await store.outbox_by_provider_id("SM-old")
        assert await store.update_provider_status("SM-old", "delivered", at=EPOCH) == "updated"
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert row is not None
    assert (row.body, row.state, row.provider_status) == ("hello", "sent", None)
