"""The busiest routes (webhooks, fanout, inbound) are served by `shiftd.http.fastpath` once
FastAPI has served them once: each answer there is the answer FastAPI gives — status,
headers, body, metrics, error refs — and whatever it does not handle goes on to FastAPI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from shiftd.http.fastpath import FastRoutes
from shiftd.store.base import StoreUnavailable
from shiftd.testing.api import AUTH, Api, SidProvider, open_api, sign
from shiftd.testing.engine import Harness, shift

SMS = "/webhooks/twilio/sms"
VOICE = "/webhooks/twilio/voice"
GATHER = "/webhooks/twilio/voice/gather"
STATUS = "/webhooks/twilio/status"
NORTH = {"Authorization": "Bearer north-token"}


@pytest.fixture
def provider() -> SidProvider:
    return SidProvider()


@pytest.fixture
async def api(harness: Harness) -> AsyncIterator[Api]:
    north = shift("north-1").model_copy(update={"organization_id": "north"})
    await harness.engine.import_roster([], [north, shift("shift-2")])
    async with open_api(harness, organization_tokens=(("north", "north-token"),)) as api:
        yield api


@pytest.fixture
def served_fast(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths the fast routes answered themselves (not passed on to FastAPI)."""
    served: list[str] = []
    original = FastRoutes._serve

    async def spy(self: FastRoutes, route: Any, serve: Any, param: str, scope: Any, *a: Any) -> Any:
        passed_on = False
        inner = self.app

        async def counting(*args: Any) -> None:
            nonlocal passed_on
            passed_on = True
            await inner(*args)

        self.app = counting
        try:
            await original(self, route, serve, param, scope, *a)
        finally:
            self.app = inner
            if not passed_on:
                served.append(scope["path"])

    monkeypatch.setattr(FastRoutes, "_serve", spy)
    return served


def same(first: httpx.Response, second: httpx.Response, *, ignore: tuple[str, ...] = ()) -> None:
    """The same status, headers (but `ignore`d ones) and, unless ignored, body."""
    assert second.status_code == first.status_code
    if "body" not in ignore:
        assert second.content == first.content
    drop = {"date", *ignore}
    assert [(k, v) for k, v in second.headers.items() if k not in drop] == [
        (k, v) for k, v in first.headers.items() if k not in drop
    ]


def sms_form(n: int, body: str = "NO") -> dict[str, str]:
    return {"From": f"+1555000{n:04d}", "To": "+15550100001", "Body": body, "MessageSid": f"SM{n}"}


async def metrics(api: Api) -> str:
    return (await api.client.get("/metrics", headers=AUTH)).text


# ---- webhooks -----------------------------------------------------------------------------------


async def test_a_signed_sms_is_answered_alike_by_both_paths(
    api: Api, served_fast: list[str], autojump_clock: object
) -> None:
    await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
    await api.harness.settle()
    first = await api.webhook(SMS, sms_form(1))
    second = await api.webhook(SMS, sms_form(2))
    same(first, second)
    assert served_fast == [SMS]
    shown = (await api.client.get("/shifts/shift-1", headers=AUTH)).json()["shift"]
    assert {d["caregiver_id"] for d in shown["declines"]} == {"cg-1", "cg-2"}


@pytest.mark.parametrize(
    ("case", "form", "headers"),
    [
        ("bad signature", sms_form(1), {"X-Twilio-Signature": "bm9wZQ=="}),
        ("no signature", sms_form(1), {}),
        ("no MessageSid", {"From": "+15550000001", "Body": "NO"}, None),
        ("unknown sender", sms_form(99), None),
    ],
)
async def test_refusals_and_unknowns_on_the_sms_webhook_are_answered_alike(
    api: Api,
    served_fast: list[str],
    autojump_clock: object,
    case: str,
    form: dict[str, str],
    headers: dict[str, str] | None,
) -> None:
    answers = []
    for _ in range(2):
        signed = sign(SMS, form) if headers is None else headers
        answers.append(await api.client.post(SMS, data=form, headers=signed))
    same(*answers)
    assert served_fast == [SMS], case


@pytest.mark.parametrize("path", [VOICE, GATHER, STATUS])
async def test_the_voice_and_status_webhooks_are_answered_alike(
    api: Api, served_fast: list[str], autojump_clock: object, path: str
) -> None:
    form = {"CallSid": "CA-unknown", "Digits": "1", "CallStatus": "completed"}
    form |= {"Direction": "inbound"}  # looked up once: no retries on the clock
    first = await api.webhook(path, form)
    second = await api.webhook(path, form)
    same(first, second)
    assert first.status_code == 200
    assert served_fast == [path]


async def test_an_engine_refusal_is_answered_by_the_apps_own_error_handler(
    api: Api, served_fast: list[str], autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def full_disk(*args: object, **kwargs: object) -> None:
        raise StoreUnavailable("the disk is full")

    monkeypatch.setattr(api.harness.engine, "inbound", full_disk)
    first = await api.webhook(SMS, sms_form(1))
    second = await api.webhook(SMS, sms_form(2))
    same(first, second)
    assert first.status_code == 503
    assert served_fast == [SMS]


async def test_a_crash_in_the_fast_path_is_a_500_with_its_own_ref_and_counted(
    api: Api, served_fast: list[str], autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("secret detail +15550000001")

    await api.client.post(SMS, data=sms_form(1))  # unsigned: 403, and FastAPI's route learnt
    monkeypatch.setattr(api.harness.engine, "inbound", broken)
    response = await api.webhook(SMS, sms_form(2))
    assert served_fast == [SMS]
    assert response.status_code == 500
    ref = response.headers["X-Request-Ref"]
    message = f"internal error (ref {ref}); see the daemon's log"
    assert response.json() == {"error": {"code": "internal", "message": message}}
    assert "secret" not in response.text
    text = await metrics(api)
    assert f'method="POST",route="{SMS}",status="500"}} 1.0' in text
    assert 'shiftd_internal_errors_total{where="http"} 1.0' in text


async def test_fast_requests_are_counted_by_route_template(
    api: Api, served_fast: list[str], autojump_clock: object
) -> None:
    for n in (1, 2, 3):
        await api.webhook(SMS, sms_form(n))
    await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
    await api.client.post("/shifts/shift-2/fanout", headers=AUTH)
    text = await metrics(api)
    assert served_fast == [SMS, SMS, "/shifts/shift-2/fanout"]
    assert f'method="POST",route="{SMS}",status="200"}} 3.0' in text
    assert 'method="POST",route="/shifts/{shift_id}/fanout",status="200"} 2.0' in text
    assert "shift-2" not in text


# ---- REST ---------------------------------------------------------------------------------------


async def test_a_fanout_is_answered_alike_by_both_paths(
    api: Api, served_fast: list[str], autojump_clock: object
) -> None:
    first = await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
    second = await api.client.post("/shifts/shift-2/fanout", headers=AUTH)
    assert first.status_code == second.status_code == 200
    assert second.json() | {"shift_id": "shift-1"} == first.json()
    assert served_fast == ["/shifts/shift-2/fanout"]


@pytest.mark.parametrize(
    ("case", "path", "headers", "status"),
    [
        ("no such shift", "/shifts/nope/fanout", AUTH, 404),
        ("another organization's", "/shifts/shift-1/fanout", NORTH, 404),
        ("an id too long", "/shifts/" + "x" * 129 + "/fanout", AUTH, 422),
        ("no token", "/shifts/shift-1/fanout", {}, 401),
        ("a repeat", "/shifts/shift-2/fanout", AUTH, 200),
    ],
)
async def test_fanout_refusals_are_answered_alike(
    api: Api,
    served_fast: list[str],
    autojump_clock: object,
    case: str,
    path: str,
    headers: dict[str, str],
    status: int,
) -> None:
    await api.client.post("/shifts/north-1/fanout", headers=NORTH)  # FastAPI learns the route
    await api.harness.engine.fanout("shift-2")
    first = await api.client.post(path, headers=headers)
    second = await api.client.post(path, headers=headers)
    same(first, second)
    assert first.status_code == status, case


async def test_an_organizations_own_fanout_is_served_fast(
    api: Api, served_fast: list[str], autojump_clock: object
) -> None:
    await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
    own = await api.client.post("/shifts/north-1/fanout", headers=NORTH)
    assert own.status_code == 200 and own.json()["status"] == "started"
    assert served_fast == ["/shifts/north-1/fanout"]


async def test_an_inbound_message_is_answered_alike_by_both_paths(
    api: Api, served_fast: list[str], autojump_clock: object
) -> None:
    await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
    await api.harness.settle()
    first = await api.client.post(
        "/messages/inbound", headers=AUTH, json={"from": "+15550000001", "body": "NO"}
    )
    second = await api.client.post(
        "/messages/inbound", headers=AUTH, json={"from": "+15550000002", "body": "NO"}
    )
    assert first.status_code == second.status_code == 200
    assert second.json() | {"caregiver_id": "cg-1"} == first.json()
    assert first.headers["content-type"] == second.headers["content-type"] == "application/json"
    assert served_fast == ["/messages/inbound"]


@pytest.mark.parametrize(
    ("case", "headers", "body", "status"),
    [
        ("an unknown field", AUTH, {"from": "+15550000001", "body": "NO", "x": 1}, 422),
        ("no sender", AUTH, {"body": "NO"}, 422),
        ("not an object", AUTH, ["NO"], 422),
        ("an organization's token", NORTH, {"from": "+15550000001", "body": "NO"}, 403),
        ("no body", AUTH, None, 422),
    ],
)
async def test_inbound_refusals_are_passed_on_to_fastapi(
    api: Api,
    served_fast: list[str],
    autojump_clock: object,
    case: str,
    headers: dict[str, str],
    body: object,
    status: int,
) -> None:
    answers = [
        await api.client.post("/messages/inbound", headers=headers, json=body) for _ in range(2)
    ]
    same(*answers)
    assert answers[0].status_code == status, case
    assert served_fast == [], case
