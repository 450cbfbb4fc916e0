"""Shift actors under supervision: one shift's failure stays that shift's problem.

Faults are injected by making one store method raise for one shift id; the rest of the
engine (the other shifts, the sender, the store) keeps working.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import structlog
import trio

from shiftd.models import Channel, FanoutStatus, Outcome, Purpose, ShiftState
from shiftd.shifts.actor import LINGER
from shiftd.shifts.mailbox import ActorUnavailable
from shiftd.store.base import StoreUnavailable
from shiftd.testing.engine import EPOCH, Harness, caregiver, make_config, phone, shift

MINUTE = 60


class Boom(RuntimeError):
    """The injected fault."""


def inject_fault(
    monkeypatch: pytest.MonkeyPatch,
    h: Harness,
    method: str,
    shift_id: str,
    times: int | None = 1,
    fault: Callable[[str], Exception] = lambda text: Boom(text),
) -> Callable[[], None]:
    """Make the store's write of a `shift_id` transition that records `kind` (claimed,
    declined, wave, fanout_started…) raise `fault` (Boom) `times` times (None: until
    healed). A wave is `wave` or `escalated`.

    Returns `heal()`, which ends the fault.
    """
    store = h.engine.store
    original = store.persist
    left = {"n": times}
    kinds = {"wave", "escalated"} if method == "wave" else {method}

    async def faulty(*args: Any, **kwargs: Any) -> Any:
        target, _, transition = args[:3]
        recorded = {r.kind for r in transition.records}
        if target == shift_id and kinds & recorded and (left["n"] is None or left["n"] > 0):
            if left["n"] is not None:
                left["n"] -= 1
            raise fault(f"injected fault in {method}")
        return await original(*args, **kwargs)

    monkeypatch.setattr(store, "persist", faulty)

    def heal() -> None:
        left["n"] = 0

    return heal


def events(logs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == name]


async def started(h: Harness, shift_id: str = "shift-1") -> None:
    assert (await h.engine.fanout(shift_id)).status is FanoutStatus.STARTED
    await h.settle()


# ---- one crash ------------------------------------------------------------------------


async def test_request_in_hand_of_a_crashing_actor_gets_actor_unavailable(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    await started(harness)
    inject_fault(monkeypatch, harness, "claimed", "shift-1")

    with trio.fail_after(60), pytest.raises(ActorUnavailable, match="shift-1"):
        await harness.engine.inbound(phone(1), "yes")

    row = await harness.engine.shift("shift-1")
    assert (row.state, row.claimed_by) == (ShiftState.OFFERING, None)


async def test_actor_crash_is_logged_with_the_shift_id(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    await started(harness)
    inject_fault(monkeypatch, harness, "claimed", "shift-1")

    with structlog.testing.capture_logs() as logs, pytest.raises(ActorUnavailable):
        await harness.engine.inbound(phone(1), "yes")

    [crash] = events(logs, "actor.crashed")
    assert crash["shift_id"] == "shift-1"
    assert crash["log_level"] == "error"
    [restart] = events(logs, "actor.restarting")
    assert restart["shift_id"] == "shift-1"


async def test_crashed_actor_restarts_and_the_next_request_works(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    await started(harness)
    inject_fault(monkeypatch, harness, "claimed", "shift-1")
    with pytest.raises(ActorUnavailable):
        await harness.engine.inbound(phone(1), "yes")

    with trio.fail_after(60):
        result = await harness.engine.inbound(phone(1), "yes")
    await harness.settle()

    assert result.outcome is Outcome.CLAIMED
    assert harness.engine.supervisor.restarts == 1
    assert [m.caregiver_id for m in harness.provider.of(Purpose.CONFIRM)] == ["cg-1"]


async def test_crash_of_one_shift_leaves_another_shift_untouched(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.add_shift(shift("shift-2", start_in_h=42))
    await started(harness, "shift-1")
    await started(harness, "shift-2")
    inject_fault(monkeypatch, harness, "declined", "shift-1")
    code_2 = next(
        o.code
        for o in await harness.engine.store.offers_for_shift("shift-2")
        if o.caregiver_id == "cg-1"
    )

    with pytest.raises(ActorUnavailable):
        await harness.engine.inbound(phone(1), "no", shift_id="shift-1")
    result = await harness.engine.inbound(phone(1), f"yes {code_2}")
    await harness.settle()

    assert (result.outcome, result.shift_id) == (Outcome.CLAIMED, "shift-2")
    assert (await harness.engine.shift("shift-2")).claimed_by == "cg-1"


async def test_crash_during_escalation_retries_it_at_once_after_restart(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    await started(harness)
    inject_fault(monkeypatch, harness, "wave", "shift-1")

    with structlog.testing.capture_logs() as logs:
        await trio.sleep(10 * MINUTE)
        await harness.settle()

    assert [e["shift_id"] for e in events(logs, "actor.crashed")] == ["shift-1"]
    calls = harness.provider.of(Purpose.OFFER, Channel.VOICE)
    assert len(calls) == 5
    assert {m.at for m in calls} == {EPOCH + timedelta(minutes=10)}


async def test_a_store_refusing_writes_for_a_while_delays_the_calls_but_never_loses_them(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    await started(harness)
    heal = inject_fault(monkeypatch, harness, "wave", "shift-1", None, StoreUnavailable)

    with structlog.testing.capture_logs() as logs:
        await trio.sleep(10 * MINUTE + 30)  # the calls fall due; the disk stays full 30 s on
        heal()
        await trio.sleep(2)
        await harness.settle()

    assert events(logs, "actor.store_unavailable")
    assert not events(logs, "actor.crashed") and not events(logs, "actor.gave_up")
    assert len(harness.provider.of(Purpose.OFFER, Channel.VOICE)) == 5


# ---- repeated crashes --------------------------------------------------------------------


async def test_supervisor_gives_up_after_max_restarts_but_the_engine_keeps_running(
    start_engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: trio.testing.MockClock,
) -> None:
    h: Harness = await start_engine(make_config(tmp_path, actor={"max_restarts": 2}))
    await h.engine.import_roster(
        [caregiver(1), caregiver(2)], [shift("shift-1"), shift("shift-2", start_in_h=42)]
    )
    heal = inject_fault(monkeypatch, h, "fanout_started", "shift-2", times=None)

    with structlog.testing.capture_logs() as logs:
        for _ in range(3):  # two restarts are allowed; the third failure is one too many
            with trio.fail_after(60), pytest.raises(ActorUnavailable):
                await h.engine.fanout("shift-2")

    assert len(events(logs, "actor.crashed")) == 3
    assert len(events(logs, "actor.restarting")) == 2
    [gave_up] = events(logs, "actor.gave_up")
    assert gave_up["shift_id"] == "shift-2"
    # The engine and the other shifts carry on.
    await started(h, "shift-1")
    assert sorted(m.caregiver_id for m in h.provider.of(Purpose.OFFER)) == ["cg-1", "cg-2"]
    # Once the fault is gone, the next request for the shift gets a fresh actor.
    heal()
    with trio.fail_after(60):
        assert (await h.engine.fanout("shift-2")).status is FanoutStatus.STARTED


async def test_actor_that_cannot_even_load_answers_queued_requests_instead_of_hanging(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    def broken(org_id: str) -> None:
        raise Boom("injected fault while loading")

    monkeypatch.setattr(harness.engine.organizations, "get", broken)

    with trio.fail_after(60), pytest.raises(ActorUnavailable, match="shift-1"):
        await harness.engine.fanout("shift-1")

    assert (await harness.engine.shift("shift-1")).state is ShiftState.OPEN
    assert harness.provider.sent == []


# ---- lifecycle ---------------------------------------------------------------------------


async def test_a_filled_shifts_actor_stays_to_answer_late_replies_then_retires(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await started(harness)
    assert harness.engine.supervisor.actors == 1

    await harness.engine.inbound(phone(1), "yes")
    await harness.settle()
    assert harness.engine.supervisor.actors == 1  # lingering for late answers

    late = await harness.engine.inbound(phone(2), "yes")
    assert late.outcome is Outcome.ALREADY_FILLED
    assert harness.engine.supervisor.actors == 1  # answered by the same actor

    await trio.sleep(LINGER)
    await harness.settle()
    assert harness.engine.supervisor.actors == 0


async def test_a_cancelled_shifts_actor_retires_after_lingering(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await started(harness)

    await harness.engine.cancel("shift-1")
    await harness.settle()
    assert harness.engine.supervisor.actors == 1

    await trio.sleep(LINGER)
    await harness.settle()
    assert harness.engine.supervisor.actors == 0


async def test_a_shift_closed_before_anyone_was_offered_it_retires_its_actor_at_once(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.cancel("shift-1")
    await harness.settle()

    assert harness.engine.supervisor.actors == 0


async def test_requests_for_a_closed_shift_are_answered_by_a_short_lived_actor(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await started(harness)
    await harness.engine.inbound(phone(1), "yes")
    await trio.sleep(LINGER)
    await harness.settle()
    assert harness.engine.supervisor.actors == 0

    assert (await harness.engine.fanout("shift-1")).status is FanoutStatus.ALREADY_FILLED
    await harness.settle()

    assert harness.engine.supervisor.actors == 0


# ---- stopping ----------------------------------------------------------------------------


async def fanouts_while_stopping(
    h: Harness, monkeypatch: pytest.MonkeyPatch, requests: int
) -> list[object]:
    """Queue `requests` fanouts for shift-1 behind a slow first one, then stop the engine.

    Returns what each caller got, in the order they got it.
    """
    store = h.engine.store
    original = store.candidates

    async def slow_candidates(*args: Any, **kwargs: Any) -> Any:
        await trio.sleep(1)
        return await original(*args, **kwargs)

    monkeypatch.setattr(store, "candidates", slow_candidates)
    answers: list[object] = []

    async def ask() -> None:
        try:
            answers.append((await h.engine.fanout("shift-1")).status)
        except ActorUnavailable as exc:
            answers.append(exc)

    with trio.fail_after(60):  # virtual time: a request left waiting fails the test
        async with trio.open_nursery() as nursery:
            for _ in range(requests):
                nursery.start_soon(ask)
            await trio.testing.wait_all_tasks_blocked()  # one in hand, the others queued
            h.engine.stop()
    return answers


async def test_requests_queued_when_the_engine_stops_are_answered_not_left_waiting(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    answers = await fanouts_while_stopping(harness, monkeypatch, 10)

    assert len(answers) == 10
    assert answers.count(FanoutStatus.STARTED) == 1  # the one in hand is finished
    refused = [a for a in answers if isinstance(a, ActorUnavailable)]
    assert len(refused) == 9
    assert all("stopping" in str(a) for a in refused)


async def test_requests_blocked_on_a_full_inbox_when_the_engine_stops_are_answered(
    start_engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: trio.testing.MockClock,
) -> None:
    h: Harness = await start_engine(make_config(tmp_path, actor={"inbox_size": 1}))
    await h.engine.import_roster([caregiver(1)], [shift()])

    answers = await fanouts_while_stopping(h, monkeypatch, 10)

    assert len(answers) == 10
    assert answers.count(FanoutStatus.STARTED) == 1
    assert sum(isinstance(a, ActorUnavailable) for a in answers) == 9


async def test_replies_to_answers_waiting_together_are_marked_sending_in_one_write(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.fanout("shift-1")
    await harness.settle()
    store = harness.engine.store
    original = store.mark_sending_many
    batches: list[int] = []

    async def counting(ids: Any, **kwargs: Any) -> Any:
        batches.append(len(ids))
        return await original(ids, **kwargs)

    monkeypatch.setattr(store, "mark_sending_many", counting)

    async def say_no(n: int) -> None:
        await harness.engine.inbound(phone(n), "no")

    async with trio.open_nursery() as nursery:
        for n in range(1, 6):
            nursery.start_soon(say_no, n)
    await harness.settle()

    assert len(harness.provider.of(Purpose.DECLINED)) == 5
    assert batches == [5]


async def test_answers_waiting_together_are_decided_in_turn_and_written_in_one_transaction(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.fanout("shift-1")
    store = harness.engine.store
    original = store.persist_steps
    bursts: list[int] = []

    async def counting(shift_id: str, steps: Any, **kwargs: Any) -> Any:
        bursts.append(len(steps))
        return await original(shift_id, steps, **kwargs)

    monkeypatch.setattr(store, "persist_steps", counting)
    outcomes: list[Outcome] = []

    async def say_yes(n: int) -> None:
        outcomes.append((await harness.engine.inbound(phone(n), "yes")).outcome)

    async with trio.open_nursery() as nursery:
        for n in range(1, 6):
            nursery.start_soon(say_yes, n)
    await harness.settle()

    assert bursts and sum(bursts) <= 5  # answers that waited together: one write
    assert sorted(outcomes) == sorted([Outcome.CLAIMED] + [Outcome.ALREADY_FILLED] * 4)
    assert len(harness.provider.of(Purpose.CONFIRM)) == 1
