"""Signing in to the coordinator's page: accounts made by `shiftctl user add`, a session
cookie that scripts cannot read and other sites cannot send, an idle timeout, CSRF tokens on
every change, a lockout after wrong passwords, signing out. The REST API keeps its token."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import trio

from shiftd.control.server import handle_line
from shiftd.models import ShiftState
from shiftd.testing.board import NAME, PASSWORD, Page, add_coordinator, open_page
from shiftd.testing.engine import Harness
from shiftd.web.passwords import hash_password


@pytest.fixture
async def page(harness: Harness) -> AsyncIterator[Page]:
    await add_coordinator(harness)
    async with open_page(harness) as page:
        yield page


async def test_the_root_leads_to_the_board_and_the_board_to_sign_in(
    page: Page, autojump_clock: object
) -> None:
    root = await page.client.get("/")
    assert root.status_code == 303 and root.headers["location"] == "/board"
    board = await page.client.get("/board?role=RN")
    assert board.status_code == 303
    assert board.headers["location"] == "/board/login?next=%2Fboard%3Frole%3DRN"


async def test_signing_in_sets_an_httponly_strict_secure_session_cookie(
    page: Page, autojump_clock: object
) -> None:
    signed = await page.sign_in()
    assert signed.status_code == 303 and signed.headers["location"] == "/board"
    cookie = next(
        c for c in signed.headers.get_list("set-cookie") if c.startswith("shiftd_session=")
    )
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "secure", "path=/board"} <= attributes
    board = await page.get("/board")
    assert board.status_code == 200 and "Sign out dana" in board.text


async def test_the_cookie_is_not_secure_when_the_public_url_is_plain_http(
    harness: Harness, autojump_clock: object
) -> None:
    await add_coordinator(harness)
    async with open_page(harness, public_url="http://shifts.example.org") as page:
        signed = await page.sign_in()
    cookie = signed.headers["set-cookie"].lower()
    assert "httponly" in cookie and "secure" not in cookie.replace("samesite", "")


async def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(
    page: Page, autojump_clock: object
) -> None:
    wrong = await page.sign_in(password="not the password")
    unknown = await page.sign_in(name="nobody")
    for answer in (wrong, unknown):
        assert answer.status_code == 401
        assert "Wrong name or password." in answer.text
        assert "shiftd_session" not in answer.headers.get("set-cookie", "")


async def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(
    page: Page, autojump_clock: object
) -> None:
    for _ in range(4):
        assert (await page.sign_in(password="guess guess guess")).status_code == 401
    fifth = await page.sign_in(password="guess guess guess")
    assert "locked for 15 minutes" in fifth.text
    right = await page.sign_in()
    assert right.status_code == 429 and "Too many sign-in attempts" in right.text
    await trio.sleep(15 * 60)
    assert (await page.sign_in()).status_code == 303


async def test_a_sign_in_without_the_forms_token_is_refused(
    page: Page, autojump_clock: object
) -> None:
    forged = await page.client.post(
        "/board/login", data={"name": NAME, "password": PASSWORD, "csrf": "forged"}
    )
    assert forged.status_code == 403
    assert "shiftd_session" not in forged.headers.get("set-cookie", "")


async def test_a_change_without_the_csrf_token_is_refused_and_changes_nothing(
    page: Page, autojump_clock: object
) -> None:
    await page.sign_in()
    forged = await page.client.post("/board/shifts/shift-1/fanout", data={"csrf": "x"})
    assert forged.status_code == 403
    assert (await page.harness.engine.shift("shift-1")).state is ShiftState.OPEN
    assert page.harness.provider.sent == []


async def test_a_change_posted_from_another_site_is_refused(
    page: Page, autojump_clock: object
) -> None:
    await page.sign_in()
    other_site = await page.post(
        "/board/shifts/shift-1/fanout", headers={"Origin": "https://evil.example"}
    )
    assert other_site.status_code == 403
    same_site = await page.post(
        "/board/shifts/shift-1/fanout", headers={"Origin": "https://shifts.example.org"}
    )
    assert same_site.status_code == 303
    assert (await page.harness.engine.shift("shift-1")).state is ShiftState.OFFERING


async def test_a_session_unused_for_the_idle_timeout_ends(
    page: Page, autojump_clock: object
) -> None:
    await page.sign_in()
    await trio.sleep(59 * 60)
    assert (await page.get("/board")).status_code == 200  # used: the hour starts again
    await trio.sleep(60 * 60)
    assert (await page.get("/board")).status_code == 303


async def test_signing_out_ends_the_session(page: Page, autojump_clock: object) -> None:
    await page.sign_in()
    await page.get("/board")
    cookie = page.client.cookies.get("shiftd_session")
    out = await page.post("/board/logout")
    assert out.status_code == 303 and out.headers["location"] == "/board/login"
    page.client.cookies.set("shiftd_session", cookie or "", path="/board")
    assert (await page.client.get("/board")).status_code == 303


async def test_a_new_password_signs_the_accounts_sessions_out(
    page: Page, autojump_clock: object
) -> None:
    await page.sign_in()
    new_hash = hash_password("another long password", n=2**10)
    request = {"id": 1, "cmd": "user.add", "args": {"name": "dana", "password_hash": new_hash}}
    answer = await handle_line(page.harness.engine, json.dumps(request).encode() + b"\n")
    assert json.loads(answer)["result"] == {"name": "dana", "result": "password_changed"}
    assert (await page.client.get("/board")).status_code == 303
    assert (await page.sign_in()).status_code == 401
    assert (await page.sign_in(password="another long password")).status_code == 303


async def test_removing_an_account_signs_its_sessions_out(
    page: Page, autojump_clock: object
) -> None:
    await page.sign_in()
    line = b'{"id": 1, "cmd": "user.remove", "args": {"name": "dana"}}\n'
    assert json.loads(await handle_line(page.harness.engine, line))["ok"] is True
    assert (await page.client.get("/board")).status_code == 303
    assert (await page.sign_in()).status_code == 401


async def test_user_add_refuses_anything_but_a_password_hash(
    harness: Harness, autojump_clock: object
) -> None:
    line = b'{"id": 1, "cmd": "user.add", "args": {"name": "dana", "password_hash": "hunter2"}}\n'
    answer = await handle_line(harness.engine, line)
    assert b'"bad_args"' in answer and b"not a password hash" in answer
    assert await harness.engine.store.list_coordinators() == []


async def test_the_rest_api_still_wants_its_bearer_token_with_a_session(
    page: Page, autojump_clock: object
) -> None:
    await page.sign_in()
    assert (await page.client.get("/shifts")).status_code == 401
    assert (await page.client.post("/shifts/shift-1/fanout")).status_code == 401
