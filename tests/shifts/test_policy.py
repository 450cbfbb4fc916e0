"""Escalation policies, offer expiry, eligibility, release and quiet hours, as scenarios.

The clock starts at EPOCH (Tue Jul 1 2025, 14:00 UTC = 10:00 in New York). Shifts belong to
organization `org-1`; each test configures that organization's policy and reads what the
fake provider received at which virtual minute.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import trio
import trio.testing

from shiftd.clock import iso
from shiftd.models import (
    CancelStatus,
    Caregiver,
    Channel,
    FanoutStatus,
    Outcome,
    Purpose,
    ReleaseStatus,
    Shift,
    ShiftState,
)
from shiftd.store.sqlite import MIGRATIONS
from shiftd.testing.engine import EPOCH, FakeProvider, Harness, caregiver, make_config, phone, shift

PREFERRED = {"cg-1", "cg-2"}
OTHERS = {"cg-3", "cg-4", "cg-5"}

THREE_WAVES = [
    {"at": "0s", "channel": "sms", "tags": ["preferred"]},
    {"at": "5m", "channel": "sms"},
    {"at": "10m", "channel": "voice", "audience": "offered", "repeat": {"every": "10m"}},
]


def org_config(tmp_path: Path, **org: Any) -> Any:
    return make_config(tmp_path, caregiver_tags=["preferred"], organizations={"org-1": org})


def tagged(n: int, *tags: str) -> Caregiver:
    return caregiver(n).model_copy(update={"tags": tags})


def roster() -> list[Caregiver]:
    return [tagged(1, "preferred"), tagged(2, "preferred")] + [caregiver(n) for n in (3, 4, 5)]


def texted(h: Harness) -> set[str]:
    return {m.caregiver_id for m in h.provider.of(Purpose.OFFER, Channel.SMS)}


def called(h: Harness) -> list[str]:
    return sorted(m.caregiver_id for m in h.provider.of(Purpose.OFFER, Channel.VOICE))


async def until(h: Harness, minutes: float) -> None:
    """Let virtual time run to `minutes` after EPOCH (when every test's clock starts), then
    let the sends settle."""
    await trio.sleep_until(h.engine.clock.deadline(EPOCH + timedelta(minutes=minutes)))
    await trio.testing.wait_all_tasks_blocked()


async def started(h: Harness, shift_id: str = "shift-1") -> None:
    result = await h.engine.fanout(shift_id)
    assert result.status is FanoutStatus.STARTED, result
    await trio.testing.wait_all_tasks_blocked()


# ---- waves -------------------------------------------------------------------------------


async def test_a_three_wave_policy_reaches_the_right_people_at_the_right_minutes(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine(org_config(tmp_path, policy=THREE_WAVES))
    await h.engine.import_roster(roster(), [shift()])

    await started(h)
    assert texted(h) == PREFERRED  # 0m: the preferred only

    await until(h, 4.9)
    assert texted(h) == PREFERRED
    await until(h, 5)
    assert texted(h) == PREFERRED | OTHERS  # 5m: everyone else, the preferred not again
    assert len(h.provider.of(Purpose.OFFER, Channel.SMS)) == 5

    await h.engine.inbound(phone(4), "no")
    await until(h, 10)
    assert called(h) == ["cg-1", "cg-2", "cg-3", "cg-5"]  # 10m: all not declined
    await until(h, 20)
    assert called(h) == sorted(["cg-1", "cg-2", "cg-3", "cg-5"] * 2)  # 20m: the repeat
    await until(h, 60)
    assert len(called(h)) == 8  # and nothing after the last wave


async def test_a_claim_stops_every_later_wave(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine(org_config(tmp_path, policy=THREE_WAVES))
    await h.engine.import_roster(roster(), [shift()])
    await started(h)

    await until(h, 2)
    assert (await h.engine.inbound(phone(1), "yes")).outcome is Outcome.CLAIMED
    await until(h, 60)

    assert texted(h) == PREFERRED  # the 5m wave never ran
    assert called(h) == []
    assert (await h.engine.shift("shift-1")).state is ShiftState.FILLED


async def test_a_cancel_stops_every_later_wave(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine(org_config(tmp_path, policy=THREE_WAVES))
    await h.engine.import_roster(roster(), [shift()])
    await started(h)

    await until(h, 3)
    assert await h.engine.cancel("shift-1") is CancelStatus.CANCELLED
    await until(h, 60)

    assert texted(h) == PREFERRED and called(h) == []


async def test_the_default_policy_texts_everyone_then_calls_at_the_escalation_delay(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine(make_config(tmp_path, escalation={"delay": "7m"}))
    await h.engine.import_roster(roster(), [shift()])
    await started(h)
    assert texted(h) == PREFERRED | OTHERS

    await until(h, 6.9)
    assert called(h) == []
    await until(h, 7)
    assert called(h) == sorted(PREFERRED | OTHERS)


async def test_a_fanout_keeps_its_plan_across_a_restart_with_a_new_policy(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    first: Harness = await start_engine(org_config(tmp_path, policy=THREE_WAVES))
    await first.engine.import_roster(roster(), [shift()])
    await started(first)
    await until(first, 1)
    first.engine.stop()
    await trio.testing.wait_all_tasks_blocked()

    calls_only = [{"at": "0s", "channel": "voice"}]
    second: Harness = await start_engine(org_config(tmp_path, policy=calls_only), FakeProvider())
    await until(second, 5)

    # The running fanout follows the plan it started with: its 5m wave texts the others.
    assert texted(second) == OTHERS
    assert called(second) == []


# ---- offer expiry ------------------------------------------------------------------------


def soon_shift(minutes: int) -> Shift:
    start = EPOCH + timedelta(minutes=minutes)
    return shift().model_copy(update={"start_time": start, "end_time": start + timedelta(hours=4)})


async def test_offers_close_at_the_lead_time_and_the_coordinator_is_told(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    cfg = org_config(
        tmp_path,
        offer_lead_time="15m",
        coordinator={"phone": "+15550199999", "webhook": "https://ops.example/hooks/shiftd"},
    )
    h: Harness = await start_engine(cfg)
    await h.engine.import_roster(roster(), [soon_shift(20)])  # starts at 20m, closes at 5m
    await started(h)

    await until(h, 4.9)
    assert (await h.engine.shift("shift-1")).state is ShiftState.OFFERING
    await until(h, 5)
    assert (await h.engine.shift("shift-1")).state is ShiftState.UNFILLED
    await until(h, 30)
    assert called(h) == []  # the 10m calls never went out

    [text] = h.provider.of(Purpose.UNFILLED, Channel.SMS)
    assert text.to == "+15550199999" and "RN" in text.body
    [hook] = h.provider.of(Purpose.UNFILLED, Channel.WEBHOOK)
    assert hook.to == "https://ops.example/hooks/shiftd"
    assert '"event": "shift.unfilled"' in hook.body and '"contacted": 5' in hook.body
    assert "Carer" not in text.body + hook.body  # no caregiver names


async def test_a_late_yes_after_offers_closed_is_told_the_shift_is_no_longer_available(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine(org_config(tmp_path))
    await h.engine.import_roster(roster(), [soon_shift(8)])  # starts before the 10m calls
    await started(h)
    await until(h, 9)

    result = await h.engine.inbound(phone(3), "yes")
    await trio.testing.wait_all_tasks_blocked()

    assert result.outcome is Outcome.NO_OPEN_OFFER
    assert "no longer available" in (result.reply or "")
    assert h.provider.to("cg-3", Purpose.CANCELLED)
    assert called(h) == []


async def test_a_shift_that_has_started_is_never_offered(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine(org_config(tmp_path))
    await h.engine.import_roster(roster(), [soon_shift(-30)])

    result = await h.engine.fanout("shift-1")
    await trio.testing.wait_all_tasks_blocked()

    assert result.status is FanoutStatus.TOO_LATE
    assert h.provider.sent == []
    assert (await h.engine.shift("shift-1")).state is ShiftState.OPEN


# ---- eligibility -------------------------------------------------------------------------


def at_hours(shift_id: str, start_h: float, end_h: float) -> Shift:
    start = EPOCH + timedelta(hours=start_h)
    return shift(shift_id).model_copy(
        update={"start_time": start, "end_time": EPOCH + timedelta(hours=end_h)}
    )


async def hold(h: Harness, n: int, shift_id: str) -> None:
    """Caregiver n claims `shift_id` (its fanout started for the purpose)."""
    await h.engine.fanout(shift_id)
    result = await h.engine.inbound(phone(n), "yes", shift_id=shift_id)
    assert result.outcome is Outcome.CLAIMED, result


async def test_a_caregiver_holding_an_overlapping_shift_is_not_offered_it(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine(org_config(tmp_path))
    morning, overlapping = at_hours("morning", 20, 28), at_hours("late", 27, 31)
    await h.engine.import_roster(roster(), [morning, overlapping])
    await hold(h, 1, "morning")

    await started(h, "late")

    assert "cg-1" not in {
        m.caregiver_id for m in h.provider.of(Purpose.OFFER, Channel.SMS) if m.shift_id == "late"
    }
    assert len([m for m in h.provider.of(Purpose.OFFER) if m.shift_id == "late"]) == 4


async def test_the_travel_buffer_counts_as_overlap(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine(org_config(tmp_path, travel_buffer="1h"))
    morning, after = at_hours("morning", 20, 28), at_hours("after", 28.5, 32)
    far = at_hours("far", 29, 33)
    await h.engine.import_roster(roster(), [morning, after, far])
    await hold(h, 1, "morning")

    await h.engine.fanout("after")  # 30 minutes after the morning shift ends: too close
    await h.engine.fanout("far")  # an hour after: fine
    await trio.testing.wait_all_tasks_blocked()

    offered = {(m.shift_id, m.caregiver_id) for m in h.provider.of(Purpose.OFFER)}
    assert ("after", "cg-1") not in offered
    assert ("far", "cg-1") in offered


async def test_an_accept_that_would_overlap_a_held_shift_is_refused_with_the_reason(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine(org_config(tmp_path))
    first, second = at_hours("first", 20, 28), at_hours("second", 24, 30)
    await h.engine.import_roster(roster(), [first, second])
    await h.engine.fanout("first")
    await h.engine.fanout("second")  # cg-1 is offered both while holding neither
    assert (await h.engine.inbound(phone(1), "yes", shift_id="first")).outcome is Outcome.CLAIMED

    result = await h.engine.inbound(phone(1), "yes", shift_id="second")
    await trio.testing.wait_all_tasks_blocked()

    assert result.outcome is Outcome.NOT_ELIGIBLE
    assert "already" in (result.reply or "")  # "you already hold a shift at that time"
    assert h.provider.to("cg-1", Purpose.NOT_ELIGIBLE)
    assert (await h.engine.shift("second")).state is ShiftState.OFFERING
    won = await h.engine.inbound(phone(2), "yes", shift_id="second")
    assert won.outcome is Outcome.CLAIMED


async def test_an_accept_from_someone_who_no_longer_has_the_role_is_refused(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.fanout("shift-1")
    await harness.engine.import_roster([caregiver(3, "LPN")], [])  # cg-3 is now an LPN

    result = await harness.engine.inbound(phone(3), "yes")

    assert result.outcome is Outcome.NOT_ELIGIBLE
    assert (await harness.engine.shift("shift-1")).state is ShiftState.OFFERING


async def test_an_accept_from_someone_never_offered_the_shift_is_refused(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine(org_config(tmp_path, policy=THREE_WAVES))
    await h.engine.import_roster(roster(), [shift()])
    await started(h)  # only the preferred so far

    result = await h.engine.inbound(phone(3), "yes", shift_id="shift-1")

    assert result.outcome is Outcome.NOT_OFFERED
    assert (await h.engine.shift("shift-1")).claimed_by is None


# ---- cancellation and release ------------------------------------------------------------


async def test_a_coordinator_unassigning_reopens_the_shift_without_the_holder(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    h = harness
    await started(h)
    await h.engine.inbound(phone(1), "yes")
    await until(h, 1)
    told_filled = {m.caregiver_id for m in h.provider.of(Purpose.FILLED)}
    assert told_filled == {"cg-2", "cg-3", "cg-4", "cg-5"}

    result = await h.engine.unassign("shift-1")
    await until(h, 2)

    assert result.status is ReleaseStatus.RELEASED
    shift_row = await h.engine.shift("shift-1")
    assert (shift_row.state, shift_row.claimed_by) == (ShiftState.OFFERING, None)
    assert h.provider.to("cg-1", Purpose.RELEASED)  # the holder is told
    # The policy starts again: its first wave offers it anew to all but the releaser.
    again = [m.caregiver_id for m in h.provider.of(Purpose.OFFER, Channel.SMS)][5:]
    assert sorted(again) == ["cg-2", "cg-3", "cg-4", "cg-5"]


async def test_a_released_shift_is_refilled_and_the_releaser_cannot_take_it_back(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    h = harness
    await started(h)
    await h.engine.inbound(phone(1), "yes")
    await h.engine.unassign("shift-1")

    back = await h.engine.inbound(phone(1), "yes", shift_id="shift-1")
    refill = await h.engine.inbound(phone(2), "yes", shift_id="shift-1")
    await until(h, 1)

    assert back.outcome is Outcome.NOT_ELIGIBLE
    assert refill.outcome is Outcome.CLAIMED
    assert (await h.engine.shift("shift-1")).claimed_by == "cg-2"
    assert len(h.provider.to("cg-2", Purpose.CONFIRM)) == 1
    # Those re-offered are told "filled" again, for the new round.
    assert {m.caregiver_id for m in h.provider.of(Purpose.FILLED)[4:]} == {"cg-3", "cg-4", "cg-5"}


async def test_release_calls_follow_the_policy_from_the_release(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    h = harness
    await started(h)
    await until(h, 3)
    await h.engine.inbound(phone(1), "yes")
    await until(h, 30)
    await h.engine.unassign("shift-1")  # at 30m: the plan restarts, calls 10m later

    await until(h, 39.9)
    assert called(h) == []
    await until(h, 40)
    assert called(h) == ["cg-2", "cg-3", "cg-4", "cg-5"]


async def test_the_timeline_records_claim_release_and_refill(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    h = harness
    await started(h)
    await h.engine.inbound(phone(1), "yes")
    await h.engine.unassign("shift-1")
    await h.engine.inbound(phone(2), "yes", shift_id="shift-1")

    detail = await h.engine.store.shift_detail("shift-1")
    assert detail is not None
    kinds = [e["kind"] for e in detail["timeline"] if e["kind"] != "reply"]
    assert kinds[kinds.index("fanout_started") :] == [
        "fanout_started",
        "wave",
        "claimed",
        "released",
        "wave",
        "claimed",
    ]
    released = next(e for e in detail["timeline"] if e["kind"] == "released")
    assert released["caregiver_id"] == "cg-1"
    assert released["detail"] == {"by": "coordinator", "reopened": True}


async def test_a_release_too_late_to_offer_again_ends_unfilled_and_tells_the_coordinator(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    cfg = org_config(tmp_path, offer_lead_time="10m", coordinator={"phone": "+15550199999"})
    h: Harness = await start_engine(cfg)
    await h.engine.import_roster(roster(), [soon_shift(30)])  # offers close at 20m
    await started(h)
    await h.engine.inbound(phone(1), "yes")
    await until(h, 25)

    result = await h.engine.unassign("shift-1")
    await until(h, 26)

    assert result.status is ReleaseStatus.RELEASED_UNFILLED
    assert (await h.engine.shift("shift-1")).state is ShiftState.UNFILLED
    assert h.provider.of(Purpose.UNFILLED, Channel.SMS)
    assert len(h.provider.of(Purpose.OFFER, Channel.SMS)) == 5  # nobody offered it again


async def test_unassigning_a_shift_nobody_holds_changes_nothing(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await started(harness)

    result = await harness.engine.unassign("shift-1")

    assert result.status is ReleaseStatus.NOT_CLAIMED
    assert (await harness.engine.shift("shift-1")).state is ShiftState.OFFERING


# ---- quiet hours -------------------------------------------------------------------------

QUIET = {"start": "21:00", "end": "07:00", "channels": ["voice"]}
EVENING = 10 * 60 + 55  # minutes from EPOCH (10:00 in New York) to 20:55


async def test_quiet_hours_hold_a_call_until_they_end(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine(org_config(tmp_path, quiet_hours=QUIET))
    # EPOCH is 10:00 in New York; a shift the day after tomorrow, fanned out at 20:55.
    await h.engine.import_roster(roster(), [shift(start_in_h=48)])
    await until(h, EVENING)
    await started(h)
    assert texted(h) == PREFERRED | OTHERS  # texts are not held

    await until(h, EVENING + 10)  # 21:05: quiet
    assert called(h) == []
    held = (await h.engine.shift("shift-1")).escalate_at
    assert held is not None and held.astimezone(h.engine.organizations.get("org-1").tz).hour == 7

    await until(h, EVENING + 10 * 60 + 4.9)  # 06:59:54 the next morning
    assert called(h) == []
    await until(h, EVENING + 10 * 60 + 5)  # 07:00
    assert called(h) == sorted(PREFERRED | OTHERS)


async def test_quiet_hours_give_way_when_the_shift_starts_soon(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    urgent = {**QUIET, "unless_starts_within": "3h"}
    h: Harness = await start_engine(org_config(tmp_path, quiet_hours=urgent))
    await h.engine.import_roster(roster(), [shift(start_in_h=13)])  # 23:00 tonight
    await until(h, EVENING)
    await started(h)

    await until(h, EVENING + 10)  # 21:05, but the shift starts in under 3 hours

    assert called(h) == sorted(PREFERRED | OTHERS)


# ---- upgrading a database with fanouts in flight -----------------------------------------


async def test_a_fanout_running_before_the_upgrade_calls_at_its_stored_escalation_time(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    # A schema-v2 database (before policies) with one fanout texted at EPOCH, due to
    # escalate at EPOCH + 10m.
    path = tmp_path / "state" / "shiftd.sqlite3"
    path.parent.mkdir()
    t0, due = iso(EPOCH), iso(EPOCH + timedelta(minutes=10))
    start, end = iso(EPOCH + timedelta(hours=18)), iso(EPOCH + timedelta(hours=26))
    with sqlite3.connect(path) as conn:
        for step in MIGRATIONS[:2]:
            conn.executescript(step)
        conn.execute("PRAGMA user_version = 2")
        conn.execute(
            "INSERT INTO caregivers (id, name, role, phone, updated_at)"
            " VALUES ('cg-1', 'A', 'RN', ?, ?)",
            (phone(1), t0),
        )
        conn.execute(
            "INSERT INTO shifts (id, organization_id, role_required, start_time, end_time,"
            " state, fanout_started_at, escalate_at, created_at, updated_at)"
            " VALUES ('shift-1', 'org-1', 'RN', ?, ?, 'offering', ?, ?, ?, ?)",
            (start, end, t0, due, t0, t0),
        )
        conn.execute(
            "INSERT INTO offers (shift_id, caregiver_id, code, offered_at)"
            " VALUES ('shift-1', 'cg-1', 1, ?)",
            (t0,),
        )
        conn.execute(
            "INSERT INTO outbox (key, shift_id, caregiver_id, channel, purpose, to_phone, body,"
            " state, created_at, updated_at) VALUES ('offer:shift-1:cg-1:sms', 'shift-1',"
            " 'cg-1', 'sms', 'offer', ?, 'hi', 'sent', ?, ?)",
            (phone(1), t0, t0),
        )

    h: Harness = await start_engine(org_config(tmp_path, policy=THREE_WAVES))
    await until(h, 9.9)
    assert called(h) == [] and texted(h) == set()  # no text again, whatever the policy
    await until(h, 10)
    assert called(h) == ["cg-1"]


# ---- opted-out phones and calls -----------------------------------------------------------


async def test_an_opted_out_caregiver_is_not_called_unless_the_policy_allows_it(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine(org_config(tmp_path))
    await h.engine.import_roster(roster(), [shift("a"), shift("b", start_in_h=42)])
    await h.engine.inbound(phone(3), "STOP")

    await started(h, "a")
    await until(h, 10)

    assert "cg-3" not in texted(h)
    assert "cg-3" not in called(h)


async def test_calls_still_reach_an_opted_out_caregiver_where_the_policy_says_so(
    start_engine: Any, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    calls_first = [{"at": "0s", "channel": "voice"}, {"at": "5m", "channel": "sms"}]
    cfg = org_config(tmp_path, policy=calls_first, voice_after_opt_out=True)
    h: Harness = await start_engine(cfg)
    await h.engine.import_roster(roster(), [shift()])
    await h.engine.inbound(phone(3), "STOP")

    await started(h)
    await until(h, 10)

    assert "cg-3" in called(h)  # the call goes out
    assert "cg-3" not in texted(h)  # the texts never do
