"""The REST API in-process (httpx over ASGI, no sockets) against a real engine on the autojump
clock: each route does what its `shiftctl` command does, behind the bearer token."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from shiftd.control.server import handle_line
from shiftd.models import Purpose
from shiftd.testing.api import AUTH, Api, SidProvider, open_api
from shiftd.testing.engine import Harness, shift

SAMPLE = Path(__file__).parents[1] / "data" / "sample_data.json"  # ../shared/reference, copied
NEW_SHIFT = {
    "id": "shift-new",
    "organization_id": "org-1",
    "role_required": "LPN",
    "start_time": "2025-07-04T08:00:00Z",
    "end_time": "2025-07-04T16:00:00Z",
}


@pytest.fixture
def provider() -> SidProvider:
    return SidProvider()


@pytest.fixture
async def api(harness: Harness) -> AsyncIterator[Api]:
    async with open_api(harness) as api:
        yield api


async def fill(api: Api) -> None:
    """Fan out shift-1 and let cg-1 claim it."""
    await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
    await api.harness.settle()
    claimed = await api.client.post(
        "/messages/inbound", headers=AUTH, json={"from": "+15550000001", "body": "YES"}
    )
    assert claimed.json()["outcome"] == "claimed"
    await api.harness.settle()


# ---- open routes --------------------------------------------------------------------------------


async def test_health_answers_ok_without_a_token(api: Api, autojump_clock: object) -> None:
    response = await api.client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_ready_answers_ready_with_the_actor_count(api: Api, autojump_clock: object) -> None:
    response = await api.client.get("/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "actors": 0}


async def test_ready_is_503_until_the_daemon_says_ready(
    harness: Harness, autojump_clock: object
) -> None:
    async with open_api(harness) as api:
        api.app.state.shiftd.ready = False
        response = await api.client.get("/ready")
    assert response.status_code == 503
    assert response.json()["error"] == {"code": "unavailable", "message": "starting"}


async def test_ready_is_503_while_stopping(api: Api, autojump_clock: object) -> None:
    api.app.state.shiftd.stopping = True
    response = await api.client.get("/ready")
    assert response.status_code == 503
    assert response.json()["error"]["message"] == "stopping"


async def test_openapi_lists_every_route(api: Api, autojump_clock: object) -> None:
    response = await api.client.get("/openapi.json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    expected = {
        "/health": {"get"},
        "/ready": {"get"},
        "/status": {"get"},
        "/metrics": {"get"},
        "/caregivers": {"get"},
        "/roster": {"post"},
        "/roster/csv": {"post"},
        "/caregivers/{caregiver_id}/activate": {"post"},
        "/caregivers/{caregiver_id}/deactivate": {"post"},
        "/shifts": {"get", "post"},
        "/shifts/{shift_id}": {"get", "delete"},
        "/shifts/{shift_id}/fanout": {"post", "delete"},
        "/shifts/{shift_id}/claim": {"delete"},
        "/messages/inbound": {"post"},
        "/webhooks/twilio/sms": {"post"},
        "/webhooks/twilio/voice": {"post"},
        "/webhooks/twilio/voice/gather": {"post"},
        "/webhooks/twilio/status": {"post"},
    }
    assert {path: set(ops) for path, ops in paths.items()} == expected
    schemes = response.json()["components"]["securitySchemes"]
    assert schemes["HTTPBearer"]["scheme"] == "bearer"


# ---- auth ---------------------------------------------------------------------------------------


async def test_fanout_without_a_token_is_401_and_sends_nothing(
    api: Api, autojump_clock: object
) -> None:
    response = await api.client.post("/shifts/shift-1/fanout")
    await api.harness.settle()
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"
    assert api.harness.provider.sent == []
    assert (await api.harness.engine.shift("shift-1")).state == "open"


async def test_a_wrong_token_is_401(api: Api, autojump_clock: object) -> None:
    for header in ("Bearer nope", f"Basic {AUTH['Authorization'][7:]}", "Bearer", ""):
        response = await api.client.post(
            "/shifts/shift-1/fanout", headers={"Authorization": header}
        )
        assert response.status_code == 401, header


async def test_reads_need_the_token_too(api: Api, autojump_clock: object) -> None:
    for path in ("/shifts", "/shifts/shift-1", "/status", "/caregivers"):
        assert (await api.client.get(path)).status_code == 401, path
        assert (await api.client.get(path, headers=AUTH)).status_code == 200, path


async def test_without_a_token_file_the_rest_api_answers_401(
    harness: Harness, autojump_clock: object
) -> None:
    async with open_api(harness, api_token=None) as api:
        response = await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
        health = await api.client.get("/health")
    assert response.status_code == 401
    assert "token_file" in response.json()["error"]["message"]
    assert health.status_code == 200


# ---- fanout and cancel --------------------------------------------------------------------------


async def test_fanout_over_rest_texts_every_caregiver_with_the_role(
    api: Api, autojump_clock: object
) -> None:
    response = await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
    await api.harness.settle()
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "started"
    assert body["offered"] == 5
    assert body["escalate_at"] == "2025-07-01T10:10:00-04:00"  # the organization's zone
    offers = api.harness.provider.of(Purpose.OFFER)
    assert sorted(m.caregiver_id for m in offers) == [f"cg-{n}" for n in range(1, 6)]


async def test_repeated_fanout_answers_already_running_and_sends_nothing(
    api: Api, autojump_clock: object
) -> None:
    await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
    await api.harness.settle()
    sent = len(api.harness.provider.sent)
    answers: list[str] = []

    async def fanout() -> None:
        response = await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
        answers.append(response.json()["status"])

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(fanout)
    again = await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
    await api.harness.settle()
    assert answers == ["already_running"] * 10
    assert again.json()["status"] == "already_running"
    assert len(api.harness.provider.sent) == sent


async def test_fanout_of_an_unknown_shift_is_404(api: Api, autojump_clock: object) -> None:
    response = await api.client.post("/shifts/no-such-shift/fanout", headers=AUTH)
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "no shift 'no-such-shift'"}
    }


async def test_delete_fanout_cancels_the_shift(api: Api, autojump_clock: object) -> None:
    await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
    response = await api.client.delete("/shifts/shift-1/fanout", headers=AUTH)
    again = await api.client.delete("/shifts/shift-1/fanout", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"shift_id": "shift-1", "status": "cancelled"}
    assert again.json()["status"] == "already_cancelled"
    assert (await api.harness.engine.shift("shift-1")).state == "cancelled"


async def test_delete_fanout_of_an_unknown_shift_is_404(api: Api, autojump_clock: object) -> None:
    response = await api.client.delete("/shifts/nope/fanout", headers=AUTH)
    assert response.status_code == 404


async def test_delete_shift_cancels_it_as_delete_fanout_does(
    api: Api, autojump_clock: object
) -> None:
    await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
    response = await api.client.delete("/shifts/shift-1", headers=AUTH)
    again = await api.client.delete("/shifts/shift-1/fanout", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"shift_id": "shift-1", "status": "cancelled"}
    assert again.json()["status"] == "already_cancelled"
    assert (await api.harness.engine.shift("shift-1")).state == "cancelled"


async def test_delete_shift_tells_whoever_held_it(api: Api, autojump_clock: object) -> None:
    await fill(api)
    response = await api.client.delete("/shifts/shift-1", headers=AUTH)
    await api.harness.settle()
    assert response.json()["status"] == "cancelled"
    assert len(api.harness.provider.to("cg-1", Purpose.SHIFT_CANCELLED)) == 1


async def test_delete_an_unknown_shift_is_404(api: Api, autojump_clock: object) -> None:
    response = await api.client.delete("/shifts/nope", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_fanout_of_a_shift_that_has_started_answers_too_late(
    api: Api, autojump_clock: object
) -> None:
    await api.harness.engine.import_roster([], [shift("started", start_in_h=-1)])
    response = await api.client.post("/shifts/started/fanout", headers=AUTH)
    await api.harness.settle()
    assert response.status_code == 200
    assert response.json() == {
        "shift_id": "started",
        "status": "too_late",
        "offered": 0,
        "escalate_at": None,
    }
    assert api.harness.provider.sent == []


# ---- unassign -----------------------------------------------------------------------------------


async def test_delete_claim_unassigns_the_holder_and_tells_them(
    api: Api, autojump_clock: object
) -> None:
    await fill(api)
    response = await api.client.delete("/shifts/shift-1/claim", headers=AUTH)
    await api.harness.settle()
    told = api.harness.provider.to("cg-1", Purpose.RELEASED)
    assert response.status_code == 200
    assert response.json() == {"shift_id": "shift-1", "status": "released", "reply": told[0].body}
    assert (await api.harness.engine.shift("shift-1")).state == "offering"


async def test_delete_claim_of_a_shift_nobody_holds_answers_not_claimed(
    api: Api, autojump_clock: object
) -> None:
    response = await api.client.delete("/shifts/shift-1/claim", headers=AUTH)
    assert response.status_code == 200
    assert response.json() == {"shift_id": "shift-1", "status": "not_claimed", "reply": None}


async def test_delete_claim_once_offers_have_closed_answers_released_unfilled(
    api: Api, autojump_clock: object
) -> None:
    await fill(api)
    await trio.sleep(19 * 3600)  # the shift has started
    response = await api.client.delete("/shifts/shift-1/claim", headers=AUTH)
    listed = await api.client.get("/shifts", params={"state": "unfilled"}, headers=AUTH)
    assert response.json()["status"] == "released_unfilled"
    assert [s["id"] for s in listed.json()["shifts"]] == ["shift-1"]


async def test_delete_claim_of_an_unknown_shift_is_404(api: Api, autojump_clock: object) -> None:
    response = await api.client.delete("/shifts/nope/claim", headers=AUTH)
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "no shift 'nope'"}}


# ---- inbound ------------------------------------------------------------------------------------


async def test_inbound_over_rest_answers_what_shiftctl_inbound_answers(
    api: Api, autojump_clock: object
) -> None:
    await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
    rest = await api.client.post(
        "/messages/inbound",
        headers=AUTH,
        json={"from": "+15550000001", "body": "YES", "channel": "sms"},
    )
    line = json.dumps(
        {"id": 1, "cmd": "inbound", "args": {"from": "+15550000002", "body": "yes"}}
    ).encode()
    control = json.loads(await handle_line(api.harness.engine, line))["result"]
    assert rest.status_code == 200
    assert rest.json() == {
        "outcome": "claimed",
        "shift_id": "shift-1",
        "caregiver_id": "cg-1",
        "reply": rest.json()["reply"],
        "sent": True,
        "replayed": False,
    }
    assert set(control) == set(rest.json())
    assert control["outcome"] == "already_filled"


async def test_inbound_with_a_shift_id_narrows_the_offer(api: Api, autojump_clock: object) -> None:
    await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
    response = await api.client.post(
        "/messages/inbound",
        headers=AUTH,
        json={"from": "+15550000003", "body": "no", "shift_id": "shift-1"},
    )
    assert response.json()["outcome"] == "declined"
    assert response.json()["shift_id"] == "shift-1"


async def test_inbound_with_unknown_keys_is_422(api: Api, autojump_clock: object) -> None:
    response = await api.client.post(
        "/messages/inbound", headers=AUTH, json={"from": "+15550000003", "body": "y", "x": 1}
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "bad_args"
    assert "x" in error["message"]


# ---- shifts and roster --------------------------------------------------------------------------


async def test_post_shifts_creates_then_updates_then_leaves_unchanged(
    api: Api, autojump_clock: object
) -> None:
    created = await api.client.post("/shifts", headers=AUTH, json=NEW_SHIFT)
    moved = {**NEW_SHIFT, "end_time": "2025-07-04T18:00:00Z"}
    updated = await api.client.post("/shifts", headers=AUTH, json=moved)
    same = await api.client.post("/shifts", headers=AUTH, json=moved)
    assert (created.status_code, created.json()["result"]) == (201, "created")
    assert (updated.status_code, updated.json()["result"]) == (200, "updated")
    assert (same.status_code, same.json()["result"]) == (200, "unchanged")
    assert same.json()["shift"] == {
        "id": "shift-new",
        "organization_id": "org-1",
        "role_required": "LPN",
        "start_time": "2025-07-04T04:00:00-04:00",  # local, with its offset
        "end_time": "2025-07-04T14:00:00-04:00",
        "state": "open",
        "claimed_by": None,
    }


async def test_post_shifts_without_an_id_creates_a_new_shift(
    api: Api, autojump_clock: object
) -> None:
    body = {k: v for k, v in NEW_SHIFT.items() if k != "id"}
    first = await api.client.post("/shifts", headers=AUTH, json=body)
    second = await api.client.post("/shifts", headers=AUTH, json=body)
    assert first.status_code == second.status_code == 201
    assert first.json()["shift"]["id"] != second.json()["shift"]["id"]


async def test_changing_a_shift_in_fanout_is_409(api: Api, autojump_clock: object) -> None:
    await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
    shift = (await api.client.get("/shifts/shift-1", headers=AUTH)).json()["shift"]
    changed = {
        "id": "shift-1",
        "role_required": "LPN",
        "start_time": shift["start_time"],
        "end_time": shift["end_time"],
        "organization_id": "org-1",
    }
    response = await api.client.post("/shifts", headers=AUTH, json=changed)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


async def test_post_shifts_refuses_an_end_before_the_start(
    api: Api, autojump_clock: object
) -> None:
    backwards = {**NEW_SHIFT, "end_time": "2025-07-04T07:00:00Z"}
    response = await api.client.post("/shifts", headers=AUTH, json=backwards)
    assert response.status_code == 422
    assert "end_time must be after start_time" in response.json()["error"]["message"]


async def test_get_shift_answers_what_shift_show_answers(api: Api, autojump_clock: object) -> None:
    await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
    await api.harness.settle()
    rest = await api.client.get("/shifts/shift-1", headers=AUTH)
    line = json.dumps({"id": 1, "cmd": "shift.show", "args": {"shift_id": "shift-1"}})
    control = json.loads(await handle_line(api.harness.engine, line.encode()))["result"]
    assert rest.status_code == 200
    assert rest.json() == control
    assert len(rest.json()["shift"]["contacts"]) == 5


async def test_get_an_unknown_shift_is_404(api: Api, autojump_clock: object) -> None:
    response = await api.client.get("/shifts/nope", headers=AUTH)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_get_shifts_filters_by_state(api: Api, autojump_clock: object) -> None:
    await api.client.post("/shifts", headers=AUTH, json=NEW_SHIFT)
    await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
    offering = await api.client.get("/shifts", params={"state": "offering"}, headers=AUTH)
    everything = await api.client.get("/shifts", headers=AUTH)
    assert [s["id"] for s in offering.json()["shifts"]] == ["shift-1"]
    assert {s["id"] for s in everything.json()["shifts"]} == {"shift-1", "shift-new"}


def sample_roster() -> dict[str, list[dict[str, str]]]:
    roster: dict[str, list[dict[str, str]]] = json.loads(SAMPLE.read_text())
    return roster


async def test_post_roster_imports_the_sample_roster_file(api: Api, autojump_clock: object) -> None:
    sample = sample_roster()
    first = await api.client.post("/roster", headers=AUTH, json=sample)
    again = await api.client.post("/roster", headers=AUTH, json=sample)
    assert first.status_code == 200
    assert first.json()["caregivers"]["created"] == len(sample["caregivers"])
    assert first.json()["shifts"]["created"] == len(sample["shifts"])
    assert again.json()["caregivers"]["unchanged"] == len(sample["caregivers"])


async def test_post_roster_with_unknown_top_level_keys_is_422(
    api: Api, autojump_clock: object
) -> None:
    response = await api.client.post("/roster", headers=AUTH, json={"nurses": []})
    assert response.status_code == 422


# ---- errors are JSON ----------------------------------------------------------------------------


async def test_an_unknown_route_is_a_json_404(api: Api, autojump_clock: object) -> None:
    response = await api.client.get("/nowhere", headers=AUTH)
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "no such route"}}


async def test_a_wrong_method_is_a_json_405(api: Api, autojump_clock: object) -> None:
    response = await api.client.put("/shifts/shift-1/fanout", headers=AUTH)
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert "POST" in response.headers["allow"]


async def test_a_crash_in_a_route_is_a_json_500_without_details(
    api: Api, autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken() -> None:
        raise RuntimeError("secret detail +15550000001")

    monkeypatch.setattr(api.harness.engine, "status", broken)
    response = await api.client.get("/status", headers=AUTH)
    assert response.status_code == 500
    ref = response.headers["X-Request-Ref"]
    message = f"internal error (ref {ref}); see the daemon's log"
    assert response.json() == {"error": {"code": "internal", "message": message}}
    assert "secret" not in response.text
    assert (await api.client.get("/health")).status_code == 200


# ---- metrics ------------------------------------------------------------------------------------


async def test_metrics_are_served_in_prometheus_text_format_behind_the_token(
    api: Api, autojump_clock: object
) -> None:
    assert (await api.client.get("/metrics")).status_code == 401

    await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
    response = await api.client.get("/metrics", headers=AUTH)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "shiftd_shifts{" in response.text or "shiftd_shifts " in response.text


async def test_http_requests_are_counted_by_route_template_not_raw_path(
    api: Api, autojump_clock: object
) -> None:
    await api.client.get("/shifts/shift-1", headers=AUTH)
    await api.client.get("/shifts/no-such-shift", headers=AUTH)
    await api.client.get("/no/such/route")

    text = (await api.client.get("/metrics", headers=AUTH)).text

    assert 'route="/shifts/{shift_id}",status="200"' in text
    assert 'route="/shifts/{shift_id}",status="404"' in text
    assert 'route="unmatched"' in text
    assert "no-such-shift" not in text
