"""REST at its edges: a repeated fanout of a filled shift, `shift_id` narrowing an inbound
message, `/ready` with the store down, the 64 KiB default body limit."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from shiftd.testing.api import AUTH, SidProvider, open_api
from shiftd.testing.engine import Harness, phone, shift

API_TOKEN = "api-token-for-real-http"


@pytest.fixture
def provider() -> SidProvider:
    return SidProvider()


async def test_a_repeated_fanout_of_a_filled_shift_answers_already_filled_and_sends_nothing(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_api(harness) as api:
        await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
        await api.sms(phone(1), "yes", "SM-claim")
        await harness.settle()
        sent = len(harness.provider.sent)
        again = await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
        await harness.settle()
    assert again.status_code == 200
    assert again.json()["status"] == "already_filled"
    assert len(harness.provider.sent) == sent


async def test_inbound_shift_id_picks_one_of_two_open_offers(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.import_roster([], [shift("shift-2", start_in_h=30)])
    async with open_api(harness) as api:
        for shift_id in ("shift-1", "shift-2"):
            await api.client.post(f"/shifts/{shift_id}/fanout", headers=AUTH)
        bare = await api.client.post(
            "/messages/inbound", headers=AUTH, json={"from": phone(3), "body": "yes"}
        )
        narrowed = await api.client.post(
            "/messages/inbound",
            headers=AUTH,
            json={"from": phone(3), "body": "yes", "shift_id": "shift-2"},
        )
    assert bare.json()["outcome"] == "ambiguous"
    assert (narrowed.json()["outcome"], narrowed.json()["shift_id"]) == ("claimed", "shift-2")
    assert (await harness.engine.shift("shift-2")).claimed_by == "cg-3"
    assert (await harness.engine.shift("shift-1")).state == "offering"


async def test_ready_is_503_when_the_store_is_not_running(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_api(harness) as api:
        assert (await api.client.get("/ready")).status_code == 200
        harness.engine.stop()
        await trio.sleep(30)  # past shutdown.grace: the store is closed
        response = await api.client.get("/ready")
        health = await api.client.get("/health")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert health.status_code == 200  # liveness is not readiness


def inbound_of_size(size: int) -> bytes:
    head, tail = b'{"from":"+15550000001","body":"', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


async def test_the_default_body_limit_is_64_kib(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    async with open_api(harness) as api:  # HttpSettings' defaults: max_body not set
        assert api.app.state.shiftd.settings.max_body == 64 * 1024
        over = await api.client.post(
            "/messages/inbound", headers=headers, content=inbound_of_size(64 * 1024 + 1)
        )
        at = await api.client.post(
            "/messages/inbound", headers=headers, content=inbound_of_size(64 * 1024)
        )
    assert over.status_code == 413
    assert over.json()["error"]["code"] == "payload_too_large"
    assert at.status_code != 413
