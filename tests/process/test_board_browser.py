"""The coordinator's page in a real browser: Debian's chromium, headless, driven by Playwright,
against the real daemon (a subprocess on a loopback port, the `record` notifier).

A coordinator signs in, creates a shift in local time, starts its fanout, and watches the
board and the shift's story turn "filled" when a caregiver's signed "yes" webhook arrives —
without reloading. Also: a forged form is refused, wrong passwords lock the account, hostile
replies stay text, and the board fits a 375-px phone. Screenshots go to `.artifacts/browser/`
(or `$SHIFTD_ARTIFACTS`).

Skipped, with one line saying so, where /usr/bin/chromium or Playwright is missing (`.ci/run`
installs chromium). Playwright's own browser download is never used.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from shiftd.http.signature import compute_signature
from shiftd.testing.ports import reserve_port
from shiftd.testing.waiting import wait_for

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        "browser tests: /usr/bin/chromium is absent (apt-get install chromium)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="browser tests: no playwright")

pytestmark = [pytest.mark.process, pytest.mark.browser, pytest.mark.slow]

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
API_TOKEN = "browser-test-api-token"
TWILIO_TOKEN = "browser-test-twilio-token"
NAME, PASSWORD = "dana", "correct horse battery"
TZ = ZoneInfo("America/New_York")
WAIT_MS = 15_000  # bound on every wait for the page (generous: the machine may be loaded)
ROSTER = {
    "caregivers": [
        {"id": "cg-ana", "name": "Ana Reyes", "role": "RN", "phone": "+15550300001"},
        {"id": "cg-ben", "name": "Ben Okafor", "role": "RN", "phone": "+15550300002"},
        {"id": "cg-cy", "name": "Cy Lindqvist", "role": "RN", "phone": "+15550300003"},
        {"id": "cg-dee", "name": "Dee Park", "role": "LPN", "phone": "+15550300004"},
    ],
    "shifts": [],
}
ARTIFACTS = Path(
    os.environ.get("SHIFTD_ARTIFACTS") or Path(__file__).parents[2] / ".artifacts" / "browser"
)


@dataclass
class Daemon:
    workdir: Path
    base: str
    proc: subprocess.Popen[bytes]

    def rest(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {API_TOKEN}"}
        return httpx.request(method, self.base + path, headers=headers, timeout=10, **kwargs)

    def sms(self, phone: str, body: str) -> httpx.Response:
        """A caregiver's text, as Twilio posts it: a form signed with the auth token."""
        url = self.base + "/webhooks/twilio/sms"
        form = {
            "From": phone,
            "To": "+15550100000",
            "Body": body,
            "MessageSid": f"SM{time.monotonic_ns():032x}",
        }
        signature = compute_signature(TWILIO_TOKEN, url, form)
        return httpx.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=10)

    def delivered(self, provider_id: str) -> httpx.Response:
        url = self.base + "/webhooks/twilio/status"
        form = {"MessageSid": provider_id, "MessageStatus": "delivered"}
        signature = compute_signature(TWILIO_TOKEN, url, form)
        return httpx.post(url, data=form, headers={"X-Twilio-Signature": signature}, timeout=10)

    def sent(self) -> list[dict[str, Any]]:
        record = self.workdir / "state" / "messages.jsonl"
        return [json.loads(x) for x in record.read_text().splitlines()] if record.exists() else []

    def log(self) -> str:
        return (self.workdir / "daemon.log").read_text(errors="replace")


@pytest.fixture(scope="module")
def daemon() -> Iterator[Daemon]:
    workdir = Path(tempfile.mkdtemp(prefix="shiftd-web-", dir="/tmp"))
    (workdir / "api-token").write_text(API_TOKEN + "\n")
    (workdir / "twilio-token").write_text(TWILIO_TOKEN + "\n")
    held = reserve_port()  # until the daemon is gone: nobody else is given its port meanwhile
    port = held.getsockname()[1]
    (workdir / "shiftd.yaml").write_text(
        "state_dir: ./state\n"
        "timezone: America/New_York\n"
        "escalation:\n  delay: 10m\n"
        "notifier:\n  kind: record\n  path: ./state/messages.jsonl\n"
        "shutdown:\n  grace: 3s\n"
        "http:\n"
        f'  listen: "127.0.0.1:{port}"\n'
        "  token_file: ./api-token\n"
        "  twilio_auth_token_file: ./twilio-token\n"
    )
    with (workdir / "daemon.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "shiftd.cli", "run", "--config", "shiftd.yaml"],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    d = Daemon(workdir, f"http://127.0.0.1:{port}", proc)
    try:
        # One client for the whole wait: `httpx.get` makes a client, and its TLS context,
        # each time (about 0.1 s of CPU, taken from the daemon being waited for).
        with httpx.Client(timeout=2) as client:

            def ready() -> bool:
                assert proc.poll() is None, d.log()
                try:
                    return client.get(d.base + "/ready").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(ready, 20, "the daemon to be ready")
        assert d.rest("POST", "/roster", json=ROSTER).status_code == 200
        added = subprocess.run(
            [
                sys.executable,
                "-m",
                "shiftd.shiftctl.cli",
                "--socket",
                str(workdir / "state/control.sock"),
                "user",
                "add",
                NAME,
                "--password-stdin",
            ],
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert added.returncode == 0, added.stderr
        yield d
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        held.close()
        if os.environ.get("KEEP") is None:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def new_page(browser: Any, daemon: Daemon, **context: Any) -> Any:
    page = browser.new_context(base_url=daemon.base, **context).new_page()
    page.set_default_timeout(WAIT_MS)
    page.dialogs = []  # type: ignore[attr-defined]
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    return page


def sign_in(page: Any, name: str = NAME, password: str = PASSWORD) -> None:
    page.goto("/board")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def create_shift(page: Any, role: str, day: datetime, start: str, end: str) -> str:
    """Through the page's form; returns the new shift's id (from the story page's URL)."""
    page.get_by_role("link", name="New shift").click()
    page.get_by_label("Role").fill(role)
    page.get_by_label("Date").fill(day.strftime("%Y-%m-%d"))
    page.get_by_label("Starts").fill(start)
    page.get_by_label("Ends").fill(end)
    page.get_by_role("button", name="Create shift").click()
    page.wait_for_url("**/board/shifts/*")
    return str(page.url.split("/board/shifts/")[1].split("?")[0])


def screenshot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def test_a_shift_turns_filled_on_the_open_pages_without_a_reload(
    browser: Any, daemon: Daemon
) -> None:
    page = new_page(browser, daemon, viewport={"width": 1100, "height": 900})
    sign_in(page)
    page.wait_for_url("**/board")
    tomorrow = datetime.now(TZ) + timedelta(days=1)
    shift_id = create_shift(page, "RN", tomorrow, "07:00", "15:00")
    assert "Shift created" in page.inner_text("main")
    page.get_by_role("button", name="Start fanout").click()
    page.get_by_text("Fanout started: 3 offered.").wait_for()
    wait_for(lambda: len(daemon.sent()) >= 3, 10, "three offer texts")
    for message in daemon.sent():
        assert daemon.delivered(f"rec-{message['outbox_id']}").status_code == 200
    assert daemon.sms("+15550300002", "no, sorry - at my daughter's recital").status_code == 200

    story = page
    story.goto(f"/board/shifts/{shift_id}")
    story.locator("#shift-state", has_text="offering").wait_for()
    board = new_page(browser, daemon, viewport={"width": 1100, "height": 900})
    board.context.add_cookies(story.context.cookies())
    board.goto("/board")
    row = f'tr[data-shift="{shift_id}"]'
    board.locator(f"#state-offering {row}").wait_for()
    assert "calls to those offered already" in board.inner_text(f"#state-offering {row}")
    for live in (story, board):
        live.get_by_text("● live").wait_for()
        live.evaluate("window.notReloaded = true")

    assert daemon.sms("+15550300003", "yes").status_code == 200

    board.locator(f"#state-filled {row}", has_text="Cy Lindqvist").wait_for()
    story.locator("#shift-state", has_text="filled").wait_for()
    for live in (story, board):
        assert live.evaluate("window.notReloaded") is True
    story_text = story.inner_text("main")
    assert "Cy Lindqvist" in story_text and "at my daughter's recital" in story_text
    assert "delivered" in story.inner_text("#h-contacts + table")
    screenshot(board, "board.png")
    screenshot(story, "story.png")


def test_a_forged_form_is_refused(browser: Any, daemon: Daemon) -> None:
    page = new_page(browser, daemon)
    sign_in(page)
    page.wait_for_url("**/board")
    shift_id = create_shift(page, "LPN", datetime.now(TZ) + timedelta(days=2), "08:00", "16:00")
    page.evaluate("document.querySelectorAll('input[name=csrf]').forEach(i => i.value = 'forged')")
    page.get_by_role("button", name="Start fanout").click()
    page.get_by_text("This form has expired").wait_for()
    assert daemon.rest("GET", f"/shifts/{shift_id}").json()["shift"]["state"] == "open"


def test_wrong_passwords_lock_the_account(browser: Any, daemon: Daemon) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "shiftd.shiftctl.cli",
            "--socket",
            str(daemon.workdir / "state/control.sock"),
            "user",
            "add",
            "lee",
            "--password-stdin",
        ],
        input="lee's long password\n",
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    page = new_page(browser, daemon)
    for _ in range(5):
        sign_in(page, "lee", "a wrong guess")
        page.get_by_text("Wrong name or password.").wait_for()
    assert "locked for 15 minutes" in page.inner_text("main")
    sign_in(page, "lee", "lee's long password")
    page.get_by_text("Too many sign-in attempts").wait_for()
    assert "/board/login" in page.url


def test_hostile_replies_render_as_text(browser: Any, daemon: Daemon) -> None:
    page = new_page(browser, daemon)
    sign_in(page)
    page.wait_for_url("**/board")
    shift_id = create_shift(page, "RN", datetime.now(TZ) + timedelta(days=3), "19:00", "07:00")
    page.get_by_role("button", name="Start fanout").click()
    page.get_by_text("Fanout started: 3 offered.").wait_for()
    hostile = ["<script>alert('x')</script>", '"><img src=x onerror=alert(1)>']
    for phone, body in zip(("+15550300001", "+15550300002"), hostile, strict=True):
        assert daemon.sms(phone, body).status_code == 200
    page.goto(f"/board/shifts/{shift_id}")
    replies = page.locator("blockquote.reply")
    replies.nth(1).wait_for()
    assert replies.all_inner_texts() == hostile
    assert page.locator("main img").count() == 0 and page.locator("main script").count() == 0
    page.wait_for_timeout(300)
    assert page.dialogs == []  # type: ignore[attr-defined]


def test_the_board_fits_a_phone_and_works_from_the_keyboard(browser: Any, daemon: Daemon) -> None:
    page = new_page(
        browser,
        daemon,
        viewport={"width": 375, "height": 812},
        is_mobile=True,
        device_scale_factor=2,
        has_touch=True,
    )
    sign_in(page)
    page.wait_for_url("**/board")
    page.locator("#state-filled tr[data-shift]").first.wait_for()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(page, "board-phone.png")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.id")
    assert focused in ("f-org", "f-role")
    page.goto("/board/stats")
    assert page.locator("main svg").count() == 4
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
