"""Helpers for the coordinator's page tests: the app over the harness's engine, a browser-like
httpx client (cookies, https so Secure cookies are sent), and a signed-in coordinator."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from ..http.app import create_app
from ..web.passwords import hash_password
from .api import settings
from .engine import Harness

NAME = "dana"
PASSWORD = "correct horse battery"
BASE = "https://shifts.example.org"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found[1]


@dataclass
class Page:
    """A browser-ish client of the board: keeps cookies, submits forms with their token."""

    client: httpx.AsyncClient
    harness: Harness
    csrf: str = ""

    async def sign_in(self, name: str = NAME, password: str = PASSWORD) -> httpx.Response:
        form = await self.client.get("/board/login")
        return await self.client.post(
            "/board/login",
            data={"name": name, "password": password, "csrf": csrf_of(form.text), "next": ""},
        )

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.client.get(path, **kwargs)
        if 'name="csrf"' in response.text:
            self.csrf = csrf_of(response.text)
        return response

    async def post(
        self, path: str, data: dict[str, str] | None = None, **kw: Any
    ) -> httpx.Response:
        """POST a form as the page would: with the session's CSRF token."""
        if not self.csrf:
            await self.get("/board")
        return await self.client.post(path, data={"csrf": self.csrf, **(data or {})}, **kw)


async def add_coordinator(harness: Harness, name: str = NAME, password: str = PASSWORD) -> None:
    """An account with a cheap hash (the cost is in the hash: tests need not pay it)."""
    engine = harness.engine
    await engine.store.put_coordinator(
        name, hash_password(password, n=2**10), at=engine.clock.now()
    )


@asynccontextmanager
async def open_page(harness: Harness, **overrides: Any) -> AsyncIterator[Page]:
    app = create_app(harness.engine, settings(**overrides), ready=True)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        yield Page(client, harness)
