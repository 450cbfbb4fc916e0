"""Each contact's provider status on the shift (`GET /shifts/{id}`, `shiftctl shift show`), and
a `no-answer` call recorded and logged as `delivery.failed`, which is no answer."""

from __future__ import annotations

import argparse
import io
from typing import Any

import pytest
import structlog
import trio
import trio.testing

from shiftd.models import Purpose
from shiftd.shiftctl import commands as ctl
from shiftd.testing.api import AUTH, SidProvider, open_api
from shiftd.testing.engine import Harness

API_TOKEN = "api-token-for-real-http"
STATUS = "/webhooks/twilio/status"


@pytest.fixture
def provider() -> SidProvider:
    """Texts and calls get Twilio-like sids, so webhooks find their outbox rows."""
    return SidProvider()


async def test_get_shift_shows_each_contacts_provider_status(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_api(harness) as api:
        await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
        await harness.settle()
        provider = harness.provider
        assert isinstance(provider, SidProvider)
        [to_cg1] = provider.to("cg-1", Purpose.OFFER)
        [to_cg2] = provider.to("cg-2", Purpose.OFFER)
        await api.webhook(
            STATUS, {"MessageSid": provider.sid_of(to_cg1), "MessageStatus": "delivered"}
        )
        await api.webhook(
            STATUS, {"MessageSid": provider.sid_of(to_cg2), "MessageStatus": "undelivered"}
        )
        shown = (await api.client.get("/shifts/shift-1", headers=AUTH)).json()["shift"]
    by_caregiver = {c["caregiver_id"]: c["provider_status"] for c in shown["contacts"]}
    assert by_caregiver["cg-1"] == "delivered"
    assert by_caregiver["cg-2"] == "undelivered"
    assert by_caregiver["cg-3"] is None  # no report yet


class _ScriptedClient:
    def __init__(self, result: dict[str, Any]) -> None:
        self.result = result

    def call(self, cmd: str, args: dict[str, Any]) -> dict[str, Any]:
        assert cmd == "shift.show"
        return self.result


def test_shiftctl_shift_show_has_a_delivery_column() -> None:
    contact = {
        "caregiver_id": "cg-1",
        "name": "Alice",
        "channel": "sms",
        "purpose": "offer",
        "state": "sent",
        "at": "2025-07-02T07:00:01Z",
    }
    result = {
        "shift": {
            "id": "s1",
            "state": "offering",
            "contacts": [
                {**contact, "provider_status": "delivered"},
                {**contact, "caregiver_id": "cg-2", "provider_status": "failed"},
                {**contact, "caregiver_id": "cg-3", "provider_status": None},
            ],
        }
    }
    ns = argparse.Namespace(shift_id="s1")
    answer, render = ctl.cmd_shift_show(_ScriptedClient(result), ns)  # type: ignore[arg-type]
    out = io.StringIO()
    render(answer, out)
    lines = out.getvalue().splitlines()
    table = lines[lines.index("Contacts") + 1 :]
    assert table[0].split() == [
        "CAREGIVER",
        "NAME",
        "CHANNEL",
        "PURPOSE",
        "STATE",
        "DELIVERY",
        "AT",
    ]
    assert [row.split()[5] for row in table[1:4]] == ["delivered", "failed", "-"]


async def test_a_no_answer_call_is_recorded_logged_and_not_an_answer(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_api(harness) as api:
        await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
        await trio.sleep(10 * 60 + 1)
        await harness.settle()
        provider = harness.provider
        assert isinstance(provider, SidProvider)
        message, call_sid = provider.calls()[0]
        with structlog.testing.capture_logs() as logs:
            for status in ("initiated", "ringing", "no-answer"):
                await api.webhook(STATUS, {"CallSid": call_sid, "CallStatus": status})
        row = await harness.engine.store.outbox_by_provider_id(call_sid)
        detail = await harness.engine.store.shift_detail("shift-1")
    assert row is not None and row.provider_status == "no-answer"
    [failed] = [e for e in logs if e["event"] == "delivery.failed"]
    assert (failed["status"], failed["caregiver_id"]) == ("no-answer", message.caregiver_id)
    assert (await harness.engine.shift("shift-1")).state == "escalated"
    assert detail is not None and detail["declines"] == []
