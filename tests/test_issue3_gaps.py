"""Issue 3, points a review found not yet shown by a test.

- End to end through real HTTP on 127.0.0.1 with the *fake Twilio* on its own socket and the
  daemon's `twilio` notifier pointed at it (the other real-HTTP tests use the `record`
  notifier; the other fake-Twilio tests run in-process): texts reach the fake with basic
  auth and their bodies, its signed webhooks claim by SMS and by key press, a replay has one
  effect, a 429 ends in one message, status callbacks never move backwards.
- REST: a repeated fanout of a filled shift, `shift_id` narrowing an inbound message,
  `/ready` with the store down, the 64 KiB default body limit.
- Webhooks: a digit is attributed by `CallSid` even when the caregiver has two open offers;
  every token is compared in constant time; the daemon warns at start when checks are off.
- Webhooks: a `no-answer` call is recorded and logged as `delivery.failed`, and is no answer.
- Provider: call sids stored on outbox rows; `rate_per_second` reaching the rate pool; retry
  delays that are exponential, jittered and never shorter than `Retry-After`.
- `shiftctl shift show` / `GET /shifts/{id}` show each contact's provider status.
"""

from __future__ import annotations

import argparse
import hmac
import io
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

from shiftd import ctl
from shiftd.config import Config
from shiftd.daemon import run_daemon
from shiftd.engine import Engine
from shiftd.fakeprovider import FakeTwilio
from shiftd.http import signature
from shiftd.http.server import bind
from shiftd.models import Channel, Purpose
from shiftd.notify import make_notifier
from shiftd.notify.twilio import TwilioNotifier
from shiftd.sender import Sender
from shiftd.testing.api import AUTH, PUBLIC_URL, TWILIO_TOKEN, SidProvider, open_api, sign
from shiftd.testing.engine import Harness, make_config, phone, shift

API_TOKEN = "issue3-api-token"
NUMBERS = ["+15550100001", "+15550100002"]
SMS = "/webhooks/twilio/sms"
GATHER = "/webhooks/twilio/voice/gather"
STATUS = "/webhooks/twilio/status"
BEARER = {"Authorization": f"Bearer {API_TOKEN}"}


# ---- real HTTP on 127.0.0.1: the daemon, its twilio notifier, and the fake Twilio ----------------


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


# ---- REST, in-process ----------------------------------------------------------------------------


@pytest.fixture
def provider() -> SidProvider:
    return SidProvider()


async def test_a_repeated_fanout_of_a_filled_shift_answers_already_filled_and_sends_nothing(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_api(harness) as api:
        await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
        await api.sms(phone(1), "yes", "SM-claim")
        await harness.settle()
        sent = len(harness.provider.sent)
        again = await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
        await harness.settle()
    assert again.status_code == 200
    assert again.json()["status"] == "already_filled"
    assert len(harness.provider.sent) == sent


async def test_inbound_shift_id_picks_one_of_two_open_offers(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.import_roster([], [shift("shift-2", start_in_h=30)])
    async with open_api(harness) as api:
        for shift_id in ("shift-1", "shift-2"):
            await api.client.post(f"/shifts/{shift_id}/fanout", headers=AUTH)
        bare = await api.client.post(
            "/messages/inbound", headers=AUTH, json={"from": phone(3), "body": "yes"}
        )
        narrowed = await api.client.post(
            "/messages/inbound",
            headers=AUTH,
            json={"from": phone(3), "body": "yes", "shift_id": "shift-2"},
        )
    assert bare.json()["outcome"] == "ambiguous"
    assert (narrowed.json()["outcome"], narrowed.json()["shift_id"]) == ("claimed", "shift-2")
    assert (await harness.engine.shift("shift-2")).claimed_by == "cg-3"
    assert (await harness.engine.shift("shift-1")).state == "offering"


async def test_ready_is_503_when_the_store_is_not_running(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_api(harness) as api:
        assert (await api.client.get("/ready")).status_code == 200
        harness.engine.stop()
        await trio.sleep(30)  # past shutdown.grace: the store is closed
        response = await api.client.get("/ready")
        health = await api.client.get("/health")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    assert health.status_code == 200  # liveness is not readiness


def inbound_of_size(size: int) -> bytes:
    head, tail = b'{"from":"+15550000001","body":"', b'"}'
    return head + b"x" * (size - len(head) - len(tail)) + tail


async def test_the_default_body_limit_is_64_kib(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    headers = {**AUTH, "Content-Type": "application/json"}
    async with open_api(harness) as api:  # HttpSettings' defaults: max_body not set
        assert api.app.state.shiftd.settings.max_body == 64 * 1024
        over = await api.client.post(
            "/messages/inbound", headers=headers, content=inbound_of_size(64 * 1024 + 1)
        )
        at = await api.client.post(
            "/messages/inbound", headers=headers, content=inbound_of_size(64 * 1024)
        )
    assert over.status_code == 413
    assert over.json()["error"]["code"] == "payload_too_large"
    assert at.status_code != 413


# ---- webhooks, in-process ------------------------------------------------------------------------


async def test_a_digit_is_attributed_by_call_sid_even_with_two_open_offers(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.import_roster([], [shift("shift-2", start_in_h=30)])
    async with open_api(harness) as api:
        for shift_id in ("shift-1", "shift-2"):
            await api.client.post(f"/shifts/{shift_id}/fanout", headers=AUTH)
        # Both escalate; cg-1 is called about each shift, the second call a call gap later.
        await trio.sleep(10 * 60 + 2 * 60 + 1)
        await harness.settle()
        provider = harness.provider
        assert isinstance(provider, SidProvider)
        [(_, call_sid)] = [
            (m, sid)
            for m, sid in provider.calls()
            if m.caregiver_id == "cg-1" and m.shift_id == "shift-2"
        ]
        text = await api.sms(phone(2), "yes", "SM-bare-yes")  # by text: which shift?
        pressed = await api.webhook(GATHER, {"CallSid": call_sid, "Digits": "1"})
    assert text.status_code == 200
    assert (await harness.engine.shift("shift-1")).claimed_by is None  # the text was ambiguous
    assert "The shift is yours" in pressed.text
    assert (await harness.engine.shift("shift-2")).claimed_by == "cg-1"
    assert (await harness.engine.shift("shift-1")).state == "escalated"


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


# ---- provider configuration ----------------------------------------------------------------------


async def test_rate_per_second_and_burst_from_the_config_reach_the_rate_pool(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    (tmp_path / "token").write_text("t0ken")
    config = make_config(
        tmp_path,
        notifier={
            "kind": "twilio",
            "account_sid": "AC" + "0" * 32,
            "auth_token_file": str(tmp_path / "token"),
            "from_numbers": NUMBERS,
            "rate_per_second": 3,
            "burst": 2,
        },
    )
    notifier = make_notifier(config)
    assert isinstance(notifier, TwilioNotifier)
    assert notifier.texts.keys == NUMBERS  # one bucket per from-number
    assert (notifier.texts.rate, notifier.texts.burst) == (3, 2)
    await notifier.aclose()


# ---- provider status on the shift ----------------------------------------------------------------


async def test_get_shift_shows_each_contacts_provider_status(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_api(harness) as api:
        await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
        await harness.settle()
        provider = harness.provider
        assert isinstance(provider, SidProvider)
        [to_cg1] = provider.to("cg-1", Purpose.OFFER)
        [to_cg2] = provider.to("cg-2", Purpose.OFFER)
        await api.webhook(
            STATUS, {"MessageSid": provider.sid_of(to_cg1), "MessageStatus": "delivered"}
        )
        await api.webhook(
            STATUS, {"MessageSid": provider.sid_of(to_cg2), "MessageStatus": "undelivered"}
        )
        shown = (await api.client.get("/shifts/shift-1", headers=AUTH)).json()["shift"]
    by_caregiver = {c["caregiver_id"]: c["provider_status"] for c in shown["contacts"]}
    assert by_caregiver["cg-1"] == "delivered"
    assert by_caregiver["cg-2"] == "undelivered"
    assert by_caregiver["cg-3"] is None  # no report yet


class _ScriptedClient:
    def __init__(self, result: dict[str, Any]) -> None:
        self.result = result

    def call(self, cmd: str, args: dict[str, Any]) -> dict[str, Any]:
        assert cmd == "shift.show"
        return self.result


def test_shiftctl_shift_show_has_a_delivery_column() -> None:
    contact = {
        "caregiver_id": "cg-1",
        "name": "Alice",
        "channel": "sms",
        "purpose": "offer",
        "state": "sent",
        "at": "2025-07-02T07:00:01Z",
    }
    result = {
        "shift": {
            "id": "s1",
            "state": "offering",
            "contacts": [
                {**contact, "provider_status": "delivered"},
                {**contact, "caregiver_id": "cg-2", "provider_status": "failed"},
                {**contact, "caregiver_id": "cg-3", "provider_status": None},
            ],
        }
    }
    ns = argparse.Namespace(shift_id="s1")
    answer, render = ctl._cmd_shift_show(_ScriptedClient(result), ns)  # type: ignore[arg-type]
    out = io.StringIO()
    render(answer, out)
    lines = out.getvalue().splitlines()
    table = lines[lines.index("Contacts") + 1 :]
    assert table[0].split() == [
        "CAREGIVER",
        "NAME",
        "CHANNEL",
        "PURPOSE",
        "STATE",
        "DELIVERY",
        "AT",
    ]
    assert [row.split()[5] for row in table[1:4]] == ["delivered", "failed", "-"]


async def test_a_no_answer_call_is_recorded_logged_and_not_an_answer(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    async with open_api(harness) as api:
        await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
        await trio.sleep(10 * 60 + 1)
        await harness.settle()
        provider = harness.provider
        assert isinstance(provider, SidProvider)
        message, call_sid = provider.calls()[0]
        with structlog.testing.capture_logs() as logs:
            for status in ("initiated", "ringing", "no-answer"):
                await api.webhook(STATUS, {"CallSid": call_sid, "CallStatus": status})
        row = await harness.engine.store.outbox_by_provider_id(call_sid)
        detail = await harness.engine.store.shift_detail("shift-1")
    assert row is not None and row.provider_status == "no-answer"
    [failed] = [e for e in logs if e["event"] == "delivery.failed"]
    assert (failed["status"], failed["caregiver_id"]) == ("no-answer", message.caregiver_id)
    assert (await harness.engine.shift("shift-1")).state == "escalated"
    assert detail is not None and detail["declines"] == []


def test_retry_delays_are_jittered_exponential_and_never_before_retry_after() -> None:
    sender = Sender(
        None,  # type: ignore[arg-type]  # only the backoff arithmetic is used
        harness_free_notifier(),
        None,  # type: ignore[arg-type]
        backoff_initial=timedelta(seconds=1),
        backoff_max=timedelta(minutes=5),
    )
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0)):
        delays = [sender._backoff(attempt, None) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)  # exponential, equal jitter
        assert len(set(delays)) > 100  # jittered, not one fixed delay
    assert sender._backoff(20, None) <= 300  # capped at backoff_max
    assert sender._backoff(1, 30.0) == 30.0  # Retry-After wins over a shorter backoff


def harness_free_notifier() -> Any:
    class Plain:
        async def send(self, message: object) -> str | None:
            return None

        async def aclose(self) -> None:
            return None

    return Plain()
