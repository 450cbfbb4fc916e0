"""Coordinator webhooks: a `webhook` outbox row is POSTed as JSON; failures are classed the
way the sender needs (retry only what certainly was not taken); other rows pass through."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import trio

from shiftd.engine import Engine
from shiftd.models import Channel, Purpose
from shiftd.notify import NotifierSetupError
from shiftd.notify.base import (
    Outgoing,
    PermanentSendError,
    SendOutcomeUnknown,
    TransientSendError,
)
from shiftd.notify.webhook import WebhookNotifier
from shiftd.testing.engine import make_config

URL = "https://ops.example.org/hooks/shiftd?token=s3cret"
PAYLOAD = {"event": "shift.unfilled", "shift_id": "shift-1", "contacted": 5}


class Inner:
    """The SMS/voice notifier the webhook one wraps."""

    def __init__(self) -> None:
        self.sent: list[Outgoing] = []
        self.closed = False

    async def send(self, message: Outgoing) -> str | None:
        self.sent.append(message)
        return "SM1"

    async def aclose(self) -> None:
        self.closed = True


def outgoing(channel: Channel = Channel.WEBHOOK) -> Outgoing:
    return Outgoing(
        outbox_id=7,
        channel=channel,
        purpose=Purpose.UNFILLED,
        to=URL if channel is Channel.WEBHOOK else "+15550100999",
        body=json.dumps(PAYLOAD),
        caregiver_id="coordinator:org-1",
        shift_id="shift-1",
        at=datetime(2025, 7, 1, tzinfo=UTC),
    )


def answering(status: int, seen: list[httpx.Request] | None = None) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return httpx.Response(status)

    return httpx.MockTransport(handle)


async def test_a_webhook_row_is_posted_as_json_to_its_url(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[httpx.Request] = []
    inner = Inner()
    notifier = WebhookNotifier(inner, transport=answering(204, seen))

    assert await notifier.send(outgoing()) is None

    [request] = seen
    assert (request.method, str(request.url)) == ("POST", URL)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["x-shiftd-delivery"] == "7"
    assert json.loads(request.content) == PAYLOAD
    assert inner.sent == []


async def test_texts_and_calls_go_to_the_wrapped_notifier(
    autojump_clock: trio.testing.MockClock,
) -> None:
    inner = Inner()
    notifier = WebhookNotifier(inner, transport=answering(500))

    assert await notifier.send(outgoing(Channel.SMS)) == "SM1"
    assert [m.channel for m in inner.sent] == [Channel.SMS]
    await notifier.aclose()
    assert inner.closed


@pytest.mark.parametrize("status", [429, 500, 503])
async def test_a_busy_or_failing_endpoint_is_retried(
    status: int, autojump_clock: trio.testing.MockClock
) -> None:
    notifier = WebhookNotifier(Inner(), transport=answering(status))

    with pytest.raises(TransientSendError, match=f"HTTP {status}"):
        await notifier.send(outgoing())


async def test_a_refusing_endpoint_is_failed_for_good_and_the_error_hides_the_token(
    autojump_clock: trio.testing.MockClock,
) -> None:
    notifier = WebhookNotifier(Inner(), transport=answering(404))

    with pytest.raises(PermanentSendError) as caught:
        await notifier.send(outgoing())
    assert "ops.example.org" in str(caught.value) and "s3cret" not in str(caught.value)


async def test_an_endpoint_that_cannot_be_reached_is_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    notifier = WebhookNotifier(Inner(), transport=httpx.MockTransport(refuse))

    with pytest.raises(TransientSendError, match="not connected"):
        await notifier.send(outgoing())


async def test_an_endpoint_that_stops_answering_midway_is_never_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def drop(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    notifier = WebhookNotifier(Inner(), transport=httpx.MockTransport(drop))

    with pytest.raises(SendOutcomeUnknown):
        await notifier.send(outgoing())


async def test_a_webhook_with_a_secret_is_signed_so_the_receiver_can_check_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[httpx.Request] = []
    secrets = {"coordinator:org-1": "whsec-test"}
    notifier = WebhookNotifier(Inner(), secrets=secrets, transport=answering(200, seen))

    await notifier.send(outgoing())

    [request] = seen
    stamp = request.headers["x-shiftd-timestamp"]
    assert stamp == str(int(datetime(2025, 7, 1, tzinfo=UTC).timestamp()))
    expected = hmac.new(b"whsec-test", stamp.encode() + b"." + request.content, hashlib.sha256)
    assert request.headers["x-shiftd-signature"] == f"sha256={expected.hexdigest()}"


async def test_a_webhook_without_a_secret_goes_unsigned(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[httpx.Request] = []
    notifier = WebhookNotifier(
        Inner(), secrets={"coordinator:other": "x"}, transport=answering(200, seen)
    )

    await notifier.send(outgoing())

    assert "x-shiftd-signature" not in seen[0].headers


async def test_an_unreadable_webhook_secret_stops_the_start_naming_the_key(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    coordinator = {"webhook": URL, "webhook_secret_file": str(tmp_path / "missing")}
    config = make_config(tmp_path, organizations={"org-1": {"coordinator": coordinator}})

    with pytest.raises(NotifierSetupError, match=r"organizations\.org-1\.coordinator"):
        with trio.fail_after(5):  # started instead of refusing: the test fails, not hangs
            await Engine(config).run()
