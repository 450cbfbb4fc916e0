"""Persist, then act: each transition is committed before the provider hears of it, a claim
being committed at the deadline is finished, and an actor failing while cancelled is logged
while the engine still stops."""

from __future__ import annotations

import contextlib
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
import trio
import trio.testing

from shiftd.clock import Clock
from shiftd.config import Config
from shiftd.engine import Engine
from shiftd.models import Channel, FanoutStatus, Outcome, Purpose, ShiftState
from shiftd.notify.base import Outgoing
from shiftd.shifts.actor import ShiftActor
from shiftd.testing.engine import EPOCH, FakeProvider, Harness, caregiver, phone, shift

MINUTE = 60


def _committed(db: Path, outbox_id: int) -> dict[str, Any]:
    """What another reader (or a restart after a crash) sees in the database file now."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        row = conn.execute(
            "SELECT o.state, s.state, s.claimed_by, f.declined_at FROM outbox o"
            " JOIN shifts s ON s.id = o.shift_id"
            " LEFT JOIN offers f ON f.shift_id = o.shift_id AND f.caregiver_id = o.caregiver_id"
            " WHERE o.id = ?",
            (outbox_id,),
        ).fetchone()
    return dict(zip(("row", "shift", "claimed_by", "declined_at"), row, strict=True))


class CheckingProvider(FakeProvider):
    """Notes, for each message it is handed, what was already committed at that moment."""

    def __init__(self, db: Path) -> None:
        super().__init__()
        self.db = db
        self.seen: list[tuple[Outgoing, dict[str, Any]]] = []

    async def send(self, message: Outgoing) -> str | None:
        self.seen.append((message, _committed(self.db, message.outbox_id)))
        return await super().send(message)


async def test_each_transition_is_committed_before_the_provider_hears_of_it(
    start_engine, config: Config, autojump_clock: trio.testing.MockClock
) -> None:
    provider = CheckingProvider(Path(config.state_dir) / "shiftd.sqlite3")
    h: Harness = await start_engine(prov=provider)
    await h.engine.import_roster([caregiver(n) for n in (1, 2, 3)], [shift()])
    await h.engine.fanout("shift-1")
    await h.settle()
    await h.engine.inbound(phone(2), "no")
    await trio.sleep(10 * MINUTE)
    await h.settle()  # the calls go out before anybody accepts
    await h.engine.inbound(phone(1), "yes")
    await h.settle()

    seen = {(m.purpose, m.channel, m.caregiver_id): state for m, state in provider.seen}
    assert all(state["row"] == "sending" for state in seen.values())
    assert seen[(Purpose.OFFER, Channel.SMS, "cg-1")]["shift"] == "offering"
    assert seen[(Purpose.DECLINED, Channel.SMS, "cg-2")]["declined_at"] is not None
    assert seen[(Purpose.OFFER, Channel.VOICE, "cg-3")]["shift"] == "escalated"
    confirm = seen[(Purpose.CONFIRM, Channel.SMS, "cg-1")]
    assert (confirm["shift"], confirm["claimed_by"]) == ("filled", "cg-1")
    assert seen[(Purpose.FILLED, Channel.SMS, "cg-3")]["shift"] == "filled"


async def test_a_claim_still_being_committed_when_the_deadline_passes_is_finished_and_nobody_is_called(  # noqa: E501
    harness: Harness, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    store = harness.engine.store
    original = store.persist

    async def slow_write(*args: Any, **kwargs: Any) -> Any:
        if any(r.kind == "claimed" for r in args[2].records):
            await trio.sleep(2)  # still writing the claim at the escalation deadline
        return await original(*args, **kwargs)

    monkeypatch.setattr(store, "persist", slow_write)
    await harness.engine.fanout("shift-1")
    await trio.sleep(10 * MINUTE - 1)

    with trio.fail_after(60):  # a claim cut off by the timer would never be answered
        result = await harness.engine.inbound(phone(4), "yes")
    await trio.sleep(30 * MINUTE)
    await harness.settle()

    assert result.outcome is Outcome.CLAIMED
    row = await harness.engine.shift("shift-1")
    assert (row.state, row.claimed_by) == (ShiftState.FILLED, "cg-4")
    assert row.claimed_at == EPOCH + timedelta(minutes=9, seconds=59)  # stamped on receipt
    assert harness.provider.of(Purpose.OFFER, Channel.VOICE) == []


class Boom(RuntimeError):
    """The injected fault."""


async def test_an_actor_failing_while_it_is_cancelled_is_logged_and_the_engine_still_stops(
    config: Config,
    provider: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: trio.testing.MockClock,
) -> None:
    clock = Clock(EPOCH)
    async with trio.open_nursery() as nursery:
        first = await nursery.start(Engine(config, clock=clock, notifier=provider).run)
        await first.import_roster([caregiver(1)], [shift()])
        assert (await first.fanout("shift-1")).status is FanoutStatus.STARTED
        first.stop()

    async def cleanup_that_fails() -> None:
        try:
            await trio.sleep_forever()
        finally:
            raise Boom("a child of the actor failed while being cancelled")

    async def actor_run(self: ShiftActor) -> None:
        # Cancelled at shutdown: the body's Cancelled and the child's Boom arrive together,
        # as a BaseExceptionGroup that `except Exception` would not catch.
        async with trio.open_nursery() as children:
            children.start_soon(cleanup_that_fails)
            await trio.sleep_forever()

    monkeypatch.setattr(ShiftActor, "run", actor_run)
    with structlog.testing.capture_logs() as logs, trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            second = await nursery.start(Engine(config, clock=clock, notifier=provider).run)
            assert second.supervisor.actors == 1  # recovered from the store
            second.stop()

    crashed = [entry for entry in logs if entry["event"] == "actor.crashed"]
    assert [entry["shift_id"] for entry in crashed] == ["shift-1"]
    assert any(entry["event"] == "engine.stopped" for entry in logs)
