"""A notice that matters and ends `failed` — the winner's confirmation, a holder's "you're
released" or "cancelled" — is flagged on the shift (`shift show`, the timeline, the watch
stream, a metric) and followed up once: a failed confirmation text becomes a call to the
winner, and the organization's coordinator is told by text and webhook."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
import trio

from shiftd.clock import Clock
from shiftd.commands import COMMANDS, ShiftIdArgs
from shiftd.engine import Engine
from shiftd.models import Channel, Purpose
from shiftd.notify.base import Outgoing, PermanentSendError
from shiftd.testing.engine import EPOCH, FakeProvider, Harness, caregiver, make_config, phone, shift

COORDINATOR = {"phone": "+15550199999", "webhook": "https://ops.example/hooks/shiftd"}


@dataclass
class RefusingProvider(FakeProvider):
    """Refuses every text of the given purposes (as a provider refusing a number would)."""

    refuse: tuple[Purpose, ...] = (Purpose.CONFIRM,)

    async def send(self, message: Outgoing) -> str | None:
        if message.purpose in self.refuse and message.channel is Channel.SMS:
            raise PermanentSendError("21610: the number is unreachable")
        return await super().send(message)


def config(tmp_path: Path, **org: Any) -> Any:
    return make_config(tmp_path, organizations={"org-1": {"coordinator": COORDINATOR, **org}})


async def claimed(start_engine: Any, tmp_path: Path, provider: FakeProvider) -> Harness:
    h: Harness = await start_engine(config(tmp_path), provider)
    await h.engine.import_roster([caregiver(1), caregiver(2)], [shift()])
    await h.engine.fanout("shift-1")
    await h.engine.inbound(phone(1), "yes")
    await h.settle()
    return h


async def show(h: Harness) -> dict[str, Any]:
    result = await COMMANDS["shift.show"].run(h.engine, ShiftIdArgs(shift_id="shift-1"))
    return result["shift"]


async def test_a_refused_confirmation_is_flagged_on_the_shift(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    h = await claimed(start_engine, tmp_path, RefusingProvider())

    shown = await show(h)
    [lost] = shown["lost_notices"]
    assert (lost["caregiver_id"], lost["purpose"], lost["channel"]) == ("cg-1", "confirm", "sms")
    assert "refused" in lost["error"]
    [event] = [e for e in shown["timeline"] if e["kind"] == "notice_lost"]
    assert event["caregiver_id"] == "cg-1"
    metric = h.engine.metrics.registry.get_sample_value(
        "shiftd_notices_lost_total", {"purpose": "confirm"}
    )
    assert metric == 1


async def test_a_refused_confirmation_becomes_a_call_to_the_winner_and_a_coordinator_notice(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    h = await claimed(start_engine, tmp_path, RefusingProvider())

    [call] = h.provider.of(Purpose.CONFIRM, Channel.VOICE)
    assert call.caregiver_id == "cg-1" and "confirmed" in call.body
    [text] = h.provider.of(Purpose.NOTICE_LOST, Channel.SMS)
    assert text.to == COORDINATOR["phone"]
    assert "confirmation" in text.body and "cg-1" in text.body and "Carer" not in text.body
    [hook] = h.provider.of(Purpose.NOTICE_LOST, Channel.WEBHOOK)
    assert '"event": "shift.notice_lost"' in hook.body and '"called": true' in hook.body


async def test_the_watch_stream_carries_notice_lost(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine(config(tmp_path), RefusingProvider())
    await h.engine.import_roster([caregiver(1)], [shift()])
    with h.engine.events.subscribe(shift_id="shift-1") as watch:
        await h.engine.fanout("shift-1")
        await h.engine.inbound(phone(1), "yes")
        await h.settle()
        kinds = []
        while True:
            try:
                event = watch.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            kinds.append((event.kind, event.as_dict().get("detail", {}).get("purpose")))
    assert ("notice_lost", "confirm") in kinds


async def test_a_refused_release_notice_tells_the_coordinator_and_calls_nobody(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    h = await claimed(start_engine, tmp_path, RefusingProvider(refuse=(Purpose.SHIFT_CANCELLED,)))
    await h.engine.cancel("shift-1")
    await h.settle()

    [lost] = (await show(h))["lost_notices"]
    assert lost["purpose"] == "shift_cancelled"
    assert h.provider.of(Purpose.CONFIRM, Channel.VOICE) == []
    [text] = h.provider.of(Purpose.NOTICE_LOST, Channel.SMS)
    assert "cancellation notice" in text.body


async def test_a_confirmation_interrupted_by_a_crash_is_followed_up_once_after_restart(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    cfg = config(tmp_path)
    async with trio.open_nursery() as nursery:
        engine = Engine(cfg, clock=Clock(EPOCH), notifier=FakeProvider())
        await nursery.start(engine.run)
        await engine.import_roster([caregiver(1), caregiver(2)], [shift()])
        await engine.fanout("shift-1")
        await engine.inbound(phone(1), "yes")
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    # What kill -9 leaves between "marked sending" and "marked sent": the row in `sending`.
    with sqlite3.connect(Path(cfg.state_dir) / "shiftd.sqlite3") as db:
        db.execute("UPDATE outbox SET state = 'sending' WHERE purpose = 'confirm'")

    for restart in range(2):  # restarted twice: followed up once
        again = FakeProvider()
        with structlog.testing.capture_logs() as logs:
            async with trio.open_nursery() as nursery:
                engine = Engine(cfg, clock=Clock(EPOCH), notifier=again)
                await nursery.start(engine.run)
                await trio.testing.wait_all_tasks_blocked()
                shown = await COMMANDS["shift.show"].run(engine, ShiftIdArgs(shift_id="shift-1"))
                nursery.cancel_scope.cancel()
        if restart == 0:
            assert [e["purpose"] for e in logs if e["event"] == "notice.lost"] == ["confirm"]
            assert [m.caregiver_id for m in again.of(Purpose.CONFIRM, Channel.VOICE)] == ["cg-1"]
            assert len(again.of(Purpose.NOTICE_LOST, Channel.SMS)) == 1
        else:
            assert again.sent == []
    [lost] = shown["shift"]["lost_notices"]
    assert lost["purpose"] == "confirm" and "interrupted" in lost["error"]
