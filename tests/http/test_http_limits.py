"""The guard in front of every route: body size (also chunked), content types, time limit."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import trio

from shiftd.testing.api import AUTH, Api, open_api, sign
from shiftd.testing.engine import Harness

MAX = 2048


@pytest.fixture
async def api(harness: Harness) -> AsyncIterator[Api]:
    async with open_api(harness, max_body=MAX) as api:
        yield api


def inbound_json(size: int) -> bytes:
    """A valid inbound request of exactly `size` bytes."""
    head, tail = b'{"from":"+15550000001","body":"', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


async def test_a_body_over_max_body_is_413_with_content_length(
    api: Api, autojump_clock: object
) -> None:
    response = await api.client.post(
        "/messages/inbound",
        headers={**AUTH, "Content-Type": "application/json"},
        content=inbound_json(MAX + 1),
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_a_chunked_body_over_max_body_is_413_and_never_handled(
    api: Api, autojump_clock: object
) -> None:
    chunks_sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal chunks_sent
        body = inbound_json(MAX * 4)
        for start in range(0, len(body), 512):
            chunks_sent += 1
            yield body[start : start + 512]

    response = await api.client.post(
        "/messages/inbound",
        headers={**AUTH, "Content-Type": "application/json"},
        content=chunks(),
    )
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert chunks_sent <= MAX // 512 + 1  # refused as soon as the count passed the limit
    status = (await api.client.get("/status", headers=AUTH)).json()
    assert status["outbox"]["pending"] + status["outbox"]["sent"] == 0  # nothing was handled


async def test_a_body_of_exactly_max_body_is_accepted(api: Api, autojump_clock: object) -> None:
    response = await api.client.post(
        "/messages/inbound",
        headers={**AUTH, "Content-Type": "application/json"},
        content=inbound_json(MAX),
    )
    assert response.status_code == 422  # read and validated: the body text is too long
    assert "body" in response.json()["error"]["message"]


async def test_a_big_webhook_form_is_413(api: Api, autojump_clock: object) -> None:
    form = {"From": "+15550000001", "Body": "y" * MAX, "MessageSid": "SM1"}
    response = await api.client.post(
        "/webhooks/twilio/sms", data=form, headers=sign("/webhooks/twilio/sms", form)
    )
    assert response.status_code == 413


async def test_json_routes_refuse_other_content_types_with_415(
    api: Api, autojump_clock: object
) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "application/xml"):
        response = await api.client.post(
            "/messages/inbound",
            headers={**AUTH, "Content-Type": content_type},
            content=b'{"from":"+15550000001","body":"yes"}',
        )
        assert response.status_code == 415, content_type
        assert response.json()["error"]["code"] == "unsupported_media_type"


async def test_json_with_a_charset_is_accepted(api: Api, autojump_clock: object) -> None:
    response = await api.client.post(
        "/messages/inbound",
        headers={**AUTH, "Content-Type": "application/json; charset=utf-8"},
        content=b'{"from":"+15550000001","body":"yes"}',
    )
    assert response.status_code == 200


async def test_webhooks_refuse_json_with_415(api: Api, autojump_clock: object) -> None:
    response = await api.client.post(
        "/webhooks/twilio/sms", json={"From": "+15550000001", "Body": "yes", "MessageSid": "SM1"}
    )
    assert response.status_code == 415


async def test_a_body_that_is_not_json_is_400_bad_json(api: Api, autojump_clock: object) -> None:
    for raw in (b"{", b"\xff\xfe", b"[" * 2000):
        response = await api.client.post(
            "/messages/inbound",
            headers={**AUTH, "Content-Type": "application/json"},
            content=raw,
        )
        assert response.status_code == 400, raw[:10]
        assert response.json()["error"]["code"] == "bad_json"


async def test_a_request_over_request_timeout_is_503_timeout(
    harness: Harness, autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def slow_status() -> dict[str, object]:
        await trio.sleep(60)
        return {}

    monkeypatch.setattr(harness.engine, "status", slow_status)
    async with open_api(harness, request_timeout=5.0) as api:
        started = trio.current_time()
        response = await api.client.get("/status", headers=AUTH)
        took = trio.current_time() - started
        health = await api.client.get("/health")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "timeout"
    assert took == pytest.approx(5.0)
    assert health.status_code == 200


async def test_a_bad_content_length_is_400(api: Api, autojump_clock: object) -> None:
    async def app_call() -> list[dict[str, object]]:
        sent: list[dict[str, object]] = []
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/messages/inbound",
            "raw_path": b"/messages/inbound",
            "query_string": b"",
            "headers": [
                (b"authorization", AUTH["Authorization"].encode()),
                (b"content-length", b"12x"),
                (b"content-type", b"application/json"),
            ],
        }

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": b"{}", "more_body": False}

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        await api.app(scope, receive, send)
        return sent

    sent = await app_call()
    assert sent[0]["status"] == 400
