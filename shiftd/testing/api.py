"""Helpers for the HTTP tests: an app over the harness's engine, an httpx client on it
(in-process, no sockets), Twilio-style signing, and a provider that hands out Twilio-like
sids so webhooks can find their outbox rows."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from ..http.app import create_app
from ..http.settings import HttpSettings
from ..http.signature import compute_signature
from ..models import Channel, Purpose
from ..notify.base import Outgoing
from ..paths import TWILIO_SMS
from .engine import FakeProvider, Harness

TOKEN = "api-token-for-tests"
TWILIO_TOKEN = "twilio-auth-token-for-tests"
PUBLIC_URL = "https://shifts.example.org"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def settings(**overrides: Any) -> HttpSettings:
    values: dict[str, Any] = {
        "api_token": TOKEN,
        "twilio_tokens": (TWILIO_TOKEN,),
        "public_url": PUBLIC_URL,
    }
    values.update(overrides)
    return HttpSettings(**values)


@dataclass
class SidProvider(FakeProvider):
    """A FakeProvider whose ids look like Twilio's: `SM…` for texts, `CA…` for calls."""

    sids: dict[int, str] = field(default_factory=dict)

    async def send(self, message: Outgoing) -> str | None:
        await super().send(message)
        prefix = "CA" if message.channel is Channel.VOICE else "SM"
        sid = f"{prefix}{message.outbox_id:032x}"
        self.sids[message.outbox_id] = sid
        return sid

    def calls(self) -> list[tuple[Outgoing, str]]:
        """Every offer call placed, with its call sid."""
        return [(m, self.sids[m.outbox_id]) for m in self.of(Purpose.OFFER, Channel.VOICE)]

    def sid_of(self, message: Outgoing) -> str:
        return self.sids[message.outbox_id]


def sign(path: str, form: Mapping[str, str], token: str = TWILIO_TOKEN) -> dict[str, str]:
    """Headers Twilio would send with `form` posted to PUBLIC_URL + path."""
    return {"X-Twilio-Signature": compute_signature(token, PUBLIC_URL + path, form)}


@dataclass
class Api:
    """An httpx client on the app, with the harness underneath."""

    client: httpx.AsyncClient
    app: FastAPI
    harness: Harness

    async def webhook(
        self, path: str, form: Mapping[str, str], *, token: str = TWILIO_TOKEN
    ) -> httpx.Response:
        """POST a correctly signed Twilio webhook."""
        return await self.client.post(path, data=dict(form), headers=sign(path, form, token))

    async def sms(self, phone: str, body: str, sid: str) -> httpx.Response:
        form = {"From": phone, "To": "+15550100001", "Body": body, "MessageSid": sid}
        return await self.webhook(TWILIO_SMS, form)


@asynccontextmanager
async def open_api(harness: Harness, **overrides: Any) -> AsyncIterator[Api]:
    app = create_app(harness.engine, settings(**overrides), ready=True)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://shiftd.test") as client:
        yield Api(client, app, harness)
