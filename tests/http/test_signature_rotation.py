"""Webhook signatures: every token and URL form is compared in constant time; a rotated-out
token is accepted only for the public URL."""

from __future__ import annotations

import hmac

import pytest
import trio
import trio.testing

from shiftd.http import signature
from shiftd.testing.api import AUTH, PUBLIC_URL, TWILIO_TOKEN, open_api, sign
from shiftd.testing.engine import Harness, phone

API_TOKEN = "api-token-for-real-http"
SMS = "/webhooks/twilio/sms"


def test_every_token_and_url_form_is_compared_in_constant_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, params = PUBLIC_URL + SMS, {"From": phone(1), "Body": "yes", "MessageSid": "SM1"}
    good = signature.compute_signature("current", url, params)
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert signature.valid_signature(["current", "previous"], url, params, good)
    # Two tokens, times the URL with and without :443; no early exit on the first match.
    assert len(compared) == 4
    assert all(given == good.encode() for _, given in compared)


async def test_rotation_accepts_the_previous_token_only_for_the_public_url(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    """Rotation accepts the previous token, but only for the configured public URL."""
    async with open_api(harness, twilio_tokens=("new-token", TWILIO_TOKEN)) as api:
        await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
        form = {"From": phone(1), "Body": "yes", "MessageSid": "SM-rot"}
        elsewhere = {
            "X-Twilio-Signature": signature.compute_signature(
                TWILIO_TOKEN, "https://evil.example.org" + SMS, form
            )
        }
        refused = await api.client.post(SMS, data=form, headers=elsewhere)
        accepted = await api.client.post(SMS, data=form, headers=sign(SMS, form))
    assert refused.status_code == 403
    assert accepted.status_code == 200
