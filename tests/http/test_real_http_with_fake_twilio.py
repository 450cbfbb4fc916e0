"""End to end through real HTTP on 127.0.0.1 with the fake Twilio on its own socket and the
daemon's `twilio` notifier pointed at it: texts reach the fake with basic auth and their
bodies, its signed webhooks claim by SMS and by key press, a replay has one effect, a 429
ends in one message, status callbacks never move backwards; and what the daemon serves (or
warns about) at start."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
import trio
import trio.testing

from shiftd.config import Config
from shiftd.daemon import run_daemon
from shiftd.engine import Engine
from shiftd.http.server import bind
from shiftd.models import Channel
from shiftd.testing.api import PUBLIC_URL
from shiftd.testing.fakeprovider import FakeTwilio

API_TOKEN = "api-token-for-real-http"
NUMBERS = ["+15550100001", "+15550100002"]
SMS = "/webhooks/twilio/sms"
GATHER = "/webhooks/twilio/voice/gather"
STATUS = "/webhooks/twilio/status"
BEARER = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="shiftd-i3-", dir="/tmp"))  # short: socket paths
    yield path
    shutil.rmtree(path, ignore_errors=True)


@dataclass
class Live:
    """The daemon serving HTTP on 127.0.0.1, sending through the fake Twilio on 127.0.0.1."""

    engine: Engine
    fake: FakeTwilio
    base: str
    """shiftd's own address (`http://127.0.0.1:PORT`); Twilio is told PUBLIC_URL."""
    client: httpx.AsyncClient


def live_config(workdir: Path, fake: FakeTwilio, api_base: str, **http: Any) -> Config:
    (workdir / "api-token").write_text(API_TOKEN + "\n")
    (workdir / "twilio-token").write_text(fake.auth_token + "\n")
    return Config.model_validate(
        {
            "state_dir": workdir / "state",
            "agency_name": "Sunrise Care",
            "escalation": {"delay": "1m"},
            "shutdown": {"grace": "5s"},
            "notifier": {
                "kind": "twilio",
                "account_sid": fake.account_sid,
                "auth_token_file": str(workdir / "twilio-token"),
                "from_numbers": NUMBERS,
                "api_base": api_base,
                "rate_per_second": 1,
            },
            "http": {
                "listen": "127.0.0.1:0",
                "public_url": PUBLIC_URL,
                "token_file": str(workdir / "api-token"),
                **http,
            },
        }
    )


def roster() -> dict[str, Any]:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    return {
        "caregivers": [
            {"id": f"rn-{n}", "name": f"Nurse {n}", "role": "RN", "phone": f"+1555040000{n}"}
            for n in range(1, 4)
        ],
        "shifts": [
            {
                "id": "day-rn",
                "role_required": "RN",
                "start_time": start.isoformat(),
                "end_time": (start + timedelta(hours=8)).isoformat(),
            }
        ],
    }


def rn_phone(n: int) -> str:
    return f"+1555040000{n}"


async def wait_until(condition: Callable[[], Any], what: str, seconds: float = 30) -> Any:
    with trio.move_on_after(seconds):
        # Virtual time moves only when all I/O has been idle (loopback_clock), so a coarse
        # poll costs no real time and few clock jumps.
        while not (value := condition()):  # noqa: ASYNC110  (the fake records from its own tasks)
            await trio.sleep(0.5)
        return value
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def live(workdir: Path, loopback_clock: trio.testing.MockClock) -> AsyncIterator[Live]:
    """Fake Twilio and the daemon, both on 127.0.0.1; the roster imported over REST."""
    fake = FakeTwilio()
    with trio.fail_after(600):  # virtual seconds: the whole test, escalation delay included
        async with trio.open_nursery() as nursery:
            api_base = await nursery.start(fake.serve, "127.0.0.1", 0)
            sock = bind("127.0.0.1:0")
            base = f"http://127.0.0.1:{sock.getsockname()[1]}"
            config = live_config(workdir, fake, api_base)
            engine = await nursery.start(partial(run_daemon, config, None, http_sockets=[sock]))
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                imported = await client.post("/roster", json=roster(), headers=BEARER)
                assert imported.status_code == 200, imported.text
                yield Live(engine, fake, base, client)
            nursery.cancel_scope.cancel()


async def fan_out(live: Live, offers: int = 3) -> None:
    answer = await live.client.post("/shifts/day-rn/fanout", headers=BEARER)
    assert answer.status_code == 200 and answer.json()["status"] == "started", answer.text
    await wait_until(lambda: len(live.fake.messages) >= offers, f"{offers} offers at the fake")


async def test_real_http_rest_fanout_reaches_the_fake_twilio_with_basic_auth_and_offer_bodies(
    live: Live, loopback_clock: trio.testing.MockClock
) -> None:
    await fan_out(live)
    offers = live.fake.messages
    assert sorted(r.form["To"] for r in offers) == [rn_phone(1), rn_phone(2), rn_phone(3)]
    assert all(r.auth_ok for r in live.fake.requests)  # basic auth with the account sid/token
    for r in offers:
        assert r.path == f"/2010-04-01/Accounts/{live.fake.account_sid}/Messages.json"
        assert r.form["From"] in NUMBERS
        assert r.form["Body"].startswith("Sunrise Care: open RN shift")
        assert "Reply YES" in r.form["Body"]
        assert r.form["ValidityPeriod"] == "900"
        assert r.form["StatusCallback"] == PUBLIC_URL + STATUS


async def test_real_http_signed_sms_yes_claims_and_confirm_and_filled_reach_the_fake(
    live: Live, loopback_clock: trio.testing.MockClock
) -> None:
    await fan_out(live)
    answer = await live.fake.reply_sms(rn_phone(2), "yes", live.base, public_url=PUBLIC_URL)
    assert answer.status_code == 200 and answer.text.endswith("<Response/>")
    shown = (await live.client.get("/shifts/day-rn", headers=BEARER)).json()["shift"]
    assert (shown["state"], shown["claimed_by"]) == ("filled", "rn-2")
    await wait_until(lambda: len(live.fake.messages) == 6, "confirmation and filled texts")
    later = {r.form["To"]: r.form["Body"] for r in live.fake.messages[3:]}
    assert "confirmed" in later[rn_phone(2)]
    assert "filled" in later[rn_phone(1)] and "filled" in later[rn_phone(3)]


async def test_real_http_a_forged_sms_webhook_is_403_and_claims_nothing(
    live: Live, loopback_clock: trio.testing.MockClock
) -> None:
    await fan_out(live)
    forged = await live.fake.reply_sms(
        rn_phone(2), "yes", live.base, "not-the-auth-token", public_url=PUBLIC_URL
    )
    await trio.sleep(3)
    assert forged.status_code == 403
    assert forged.json()["error"]["code"] == "forbidden"
    assert (await live.engine.shift("day-rn")).state == "offering"
    assert len(live.fake.messages) == 3  # only the offers


async def test_real_http_voice_call_fetches_twiml_and_digit_1_claims(
    live: Live, loopback_clock: trio.testing.MockClock
) -> None:
    await fan_out(live)
    await trio.sleep(61)  # the escalation delay: the fake is asked to place calls
    calls = await wait_until(lambda: len(live.fake.calls) == 3 and live.fake.calls, "3 calls")
    call = next(c for c in calls if c.form["To"] == rn_phone(3))
    assert call.form["Url"] == PUBLIC_URL + "/webhooks/twilio/voice"
    assert call.sid is not None
    script = await live.fake.connect_call(call.sid, live.base)
    assert script.status_code == 200
    assert 'numDigits="1"' in script.text and f'action="{PUBLIC_URL}{GATHER}"' in script.text
    pressed = await live.fake.answer_call(call.sid, "1", live.base)
    assert pressed.status_code == 200 and "The shift is yours" in pressed.text
    shift_row = await live.engine.shift("day-rn")
    assert (shift_row.state, shift_row.claimed_by) == ("filled", "rn-3")


async def test_real_http_a_call_sid_is_stored_on_its_outbox_row(
    live: Live, loopback_clock: trio.testing.MockClock
) -> None:
    await fan_out(live)
    await trio.sleep(61)
    calls = await wait_until(lambda: len(live.fake.calls) == 3 and live.fake.calls, "3 calls")
    for call in calls:
        assert call.sid is not None
        row = await live.engine.store.outbox_by_provider_id(call.sid)
        assert row is not None and row.channel is Channel.VOICE
        assert row.to_phone == call.form["To"]


async def test_real_http_a_replayed_sms_webhook_has_one_effect(
    live: Live, loopback_clock: trio.testing.MockClock
) -> None:
    await fan_out(live)
    first = await live.fake.reply_sms(rn_phone(1), "no", live.base, public_url=PUBLIC_URL)
    form = live.fake.webhooks[-1].form  # Twilio retrying the same MessageSid
    again = await live.fake.post_webhook(SMS, form, live.base, public_url=PUBLIC_URL)
    assert first.status_code == again.status_code == 200
    await wait_until(lambda: len(live.fake.to(rn_phone(1))) >= 2, "the decline acknowledged")
    await trio.sleep(3)
    assert len(live.fake.to(rn_phone(1))) == 2  # the offer, one acknowledgement
    shown = (await live.client.get("/shifts/day-rn", headers=BEARER)).json()["shift"]
    assert [e["kind"] for e in shown["timeline"]].count("reply") == 1
    assert [d["caregiver_id"] for d in shown["declines"]] == ["rn-1"]


async def test_real_http_429_then_success_sends_one_message(
    live: Live, loopback_clock: trio.testing.MockClock
) -> None:
    live.fake.fail_next(429, retry_after=3)
    await fan_out(live)
    await trio.sleep(10)
    statuses = [r.status for r in live.fake.requests if r.kind == "message"]
    assert sorted(statuses) == [201, 201, 201, 429]
    refused = next(r for r in live.fake.requests if r.status == 429)
    taken = live.fake.to(refused.form["To"])
    assert len(taken) == 1  # retried, delivered once
    assert taken[0].at - refused.at >= 3  # not before Retry-After
    row = await live.engine.store.outbox_by_provider_id(taken[0].sid or "")
    assert row is not None and row.state == "sent"


async def test_real_http_status_callbacks_never_move_backwards_and_show_on_the_shift(
    live: Live, loopback_clock: trio.testing.MockClock
) -> None:
    await fan_out(live)
    offer = live.fake.to(rn_phone(1))[0]
    assert offer.sid is not None
    for status in ("sent", "delivered", "sending", "queued", "sent"):
        answer = await live.fake.send_status(offer.sid, status, live.base)
        assert answer.status_code == 200, answer.text
    row = await live.engine.store.outbox_by_provider_id(offer.sid)
    assert row is not None and row.provider_status == "delivered"
    shown = (await live.client.get("/shifts/day-rn", headers=BEARER)).json()["shift"]
    [contact] = [c for c in shown["contacts"] if c["caregiver_id"] == "rn-1"]
    assert contact["provider_status"] == "delivered"


async def test_the_daemon_warns_at_start_when_signature_checks_are_switched_off(
    workdir: Path, loopback_clock: trio.testing.MockClock
) -> None:
    fake = FakeTwilio()
    config = live_config(workdir, fake, "http://127.0.0.1:9", verify_signatures=False)
    with structlog.testing.capture_logs() as logs, trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            sock = bind("127.0.0.1:0")
            await nursery.start(partial(run_daemon, config, None, http_sockets=[sock]))
            nursery.cancel_scope.cancel()
    [warning] = [e for e in logs if e["event"] == "http.signatures_unchecked"]
    assert warning["log_level"] == "warning"


async def test_without_an_http_section_the_daemon_serves_no_http(
    workdir: Path, loopback_clock: trio.testing.MockClock
) -> None:
    config = Config.model_validate(
        {"state_dir": workdir / "state", "notifier": {"kind": "console"}}
    )
    with structlog.testing.capture_logs() as logs, trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(run_daemon, config, None))
            nursery.cancel_scope.cancel()
    events = [e["event"] for e in logs]
    assert "daemon.ready" in events and "http.listening" not in events
    [ready] = [e for e in logs if e["event"] == "daemon.ready"]
    assert ready["http"] is None
