"""A key press is attributed by its `CallSid`, even when the caregiver has two open offers."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from shiftd.testing.api import AUTH, SidProvider, open_api
from shiftd.testing.engine import Harness, phone, shift

API_TOKEN = "api-token-for-real-http"
GATHER = "/webhooks/twilio/voice/gather"


@pytest.fixture
def provider() -> SidProvider:
    """Texts and calls get Twilio-like sids, so webhooks find their outbox rows."""
    return SidProvider()


async def test_a_digit_is_attributed_by_call_sid_even_with_two_open_offers(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.import_roster([], [shift("shift-2", start_in_h=30)])
    async with open_api(harness) as api:
        for shift_id in ("shift-1", "shift-2"):
            await api.client.post(f"/shifts/{shift_id}/fanout", headers=AUTH)
        # Both escalate; cg-1 is called about each shift, the second call a call gap later.
        await trio.sleep(10 * 60 + 2 * 60 + 1)
        await harness.settle()
        provider = harness.provider
        assert isinstance(provider, SidProvider)
        [(_, call_sid)] = [
            (m, sid)
            for m, sid in provider.calls()
            if m.caregiver_id == "cg-1" and m.shift_id == "shift-2"
        ]
        text = await api.sms(phone(2), "yes", "SM-bare-yes")  # by text: which shift?
        pressed = await api.webhook(GATHER, {"CallSid": call_sid, "Digits": "1"})
    assert text.status_code == 200
    assert (await harness.engine.shift("shift-1")).claimed_by is None  # the text was ambiguous
    assert "The shift is yours" in pressed.text
    assert (await harness.engine.shift("shift-2")).claimed_by == "cg-1"
    assert (await harness.engine.shift("shift-1")).state == "escalated"
