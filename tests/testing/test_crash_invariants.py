"""The crash loop's invariants catch what they promise to: each check, shown a store or a
provider log that breaks its promise, reports it; shown one that keeps it, stays silent."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from shiftd.testing.invariants import Ledger, ProviderRequest, StoreView, call_lateness, check

T0 = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)
DELAY = timedelta(seconds=2)
PHONE = "+15550310001"


def at(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def store(**changes: Any) -> StoreView:
    """Shift s1 fanned out at T0 with cg-1 offered by text, everything as it should be."""
    view = StoreView(
        shifts={
            "s1": {
                "id": "s1",
                "state": "offering",
                "claimed_by": None,
                "fanout_started_at": at(0),
                "escalate_at": at(2),
                "next_step": 1,
                "plan": json.dumps([[0, "sms"], [2, "voice"]]),
            }
        },
        outbox=[row(1, "offer:s1:cg-1:sms", "sms", "offer", "Take s1?", sid="SM1")],
        offers={("s1", "cg-1"): {"declined_at": None, "released_at": None}},
        events=[],
        opt_outs={},
        phones={"cg-1": PHONE},
    )
    for name, value in changes.items():
        setattr(view, name, value)
    return view


def row(
    id_: int,
    key: str,
    channel: str,
    purpose: str,
    body: str,
    *,
    sid: str | None = None,
    created: float = 0,
    state: str = "sent",
) -> dict[str, Any]:
    return {
        "id": id_,
        "key": key,
        "shift_id": "s1",
        "caregiver_id": "cg-1",
        "channel": channel,
        "purpose": purpose,
        "to_phone": PHONE,
        "body": body,
        "state": state,
        "error": None,
        "provider_id": sid,
        "created_at": at(created),
    }


def sent(body: str | None = "Take s1?", kind: str = "message", sid: str = "SM1") -> ProviderRequest:
    return ProviderRequest(0.0, kind, PHONE, body, sid)


def violations(
    view: StoreView,
    ledger: Ledger | None = None,
    provider: list[ProviderRequest] | None = None,
    *,
    now: float = 1,
) -> list[str]:
    provider = [sent()] if provider is None else provider
    return check(
        view,
        ledger or Ledger(),
        provider,
        delay=DELAY,
        now=T0 + timedelta(seconds=now),
        ready_at=T0,
        due_bound=timedelta(seconds=5),
        made={p.sid for p in provider if p.sid},
        send_grace=5.0,
    )


def claimed(cg: str) -> dict[str, Any]:
    return {"kind": "claimed", "shift_id": "s1", "caregiver_id": cg, "ts": at(1), "detail": None}


def test_a_store_that_keeps_every_promise_has_no_violation() -> None:
    assert violations(store()) == []


def test_a_second_claim_without_a_release_between_is_two_holders() -> None:
    events = [claimed("cg-1"), claimed("cg-2")]

    [found] = violations(store(events=events))

    assert "claimed by cg-2 while held by cg-1" in found


def test_a_claimed_answer_with_no_claim_stored_is_a_lost_claim() -> None:
    ledger = Ledger(claims=[("s1", "cg-1")])

    [found] = violations(store(), ledger)

    assert "answered `claimed` but no claim is stored" in found


def test_the_provider_taking_one_text_twice_is_a_duplicate() -> None:
    [found] = violations(store(), provider=[sent(), sent(sid="SM2")])

    assert "provider took 2 of the text" in found


def test_an_offer_queued_after_the_decline_reached_a_decliner() -> None:
    offers = {("s1", "cg-1"): {"declined_at": at(-1), "released_at": None}}

    [found] = violations(store(offers=offers))

    assert "sms offer to the decliner cg-1" in found


def test_a_call_queued_before_its_stored_instant_is_early() -> None:
    call = row(2, "offer:s1:cg-1:voice", "voice", "offer", "call", sid="CA1", created=1.5)
    view = store(outbox=[*store().outbox, call])

    [found] = violations(view, provider=[sent(), sent(None, "call", "CA1")])

    assert "call to cg-1" in found and "due" in found


def test_a_wave_overdue_past_the_bound_on_a_running_daemon_is_late() -> None:
    [found] = violations(store(), now=2 + 6)

    assert "wave 1 due" in found and "not run" in found


def test_an_answered_stop_missing_from_the_opt_outs_is_lost() -> None:
    ledger = Ledger(stop_asked={PHONE: 1.0}, stop_answered={PHONE: (1.0, 1.1)})

    [found] = violations(store(), ledger)

    assert "answered STOP but is not opted out" in found


def test_an_offer_text_accepted_long_after_the_stop_was_answered_is_a_violation() -> None:
    ledger = Ledger(stop_asked={PHONE: -10.0}, stop_answered={PHONE: (-10.0, -9.0)})
    late = ProviderRequest(0.0, "message", PHONE, "Take s1?", "SM1")

    found = violations(store(opt_outs={PHONE: T0 - timedelta(seconds=9)}), ledger, [late])

    assert any("text to opted-out" in f and "9.00s after STOP" in f for f in found)


def test_a_stop_answered_before_a_start_no_longer_counts_after_it() -> None:
    # STOP (answered), START (sent, fate unknown), STOP again (sent, fate unknown).
    ledger = Ledger(
        stop_asked={PHONE: 3.0}, start_asked={PHONE: 2.0}, stop_answered={PHONE: (1.0, 1.1)}
    )

    assert violations(store(), ledger) == []


def test_call_lateness_counts_from_the_stored_instant_to_each_generation_s_first_call() -> None:
    calls = [
        row(2, "offer:s1:cg-1:voice", "voice", "offer", "", created=2.5),
        row(3, "offer:s1:cg-2:voice", "voice", "offer", "", created=3.0),
        row(4, "offer:s1:cg-1:voice:g1", "voice", "offer", "", created=12.0),
    ]
    reopened = {
        "kind": "released",
        "shift_id": "s1",
        "caregiver_id": "cg-2",
        "ts": at(9),
        "detail": json.dumps({"reopened": True}),
    }

    lateness = call_lateness(store(outbox=calls, events=[reopened]), DELAY)

    assert sorted(lateness) == [0.5, 1.0]
