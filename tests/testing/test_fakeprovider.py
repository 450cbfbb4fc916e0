"""The fake Twilio: its REST slice, its misbehaviour on demand, and the caregiver it plays."""

from __future__ import annotations

import functools
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from shiftd.http.app import create_app
from shiftd.http.settings import HttpSettings
from shiftd.http.signature import valid_signature
from shiftd.models import Channel, Purpose
from shiftd.notify.base import Outgoing
from shiftd.notify.twilio import TwilioNotifier
from shiftd.testing.engine import EPOCH, StartEngine, caregiver, make_config, phone, shift
from shiftd.testing.fakeprovider import DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN, FakeTwilio

API = "http://fake-twilio.test"
MESSAGES = f"/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Messages.json"
CALLS = f"/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Calls.json"
AUTH = (DEFAULT_ACCOUNT_SID, DEFAULT_AUTH_TOKEN)
TEXT = {"To": "+15550000001", "From": "+15550100001", "Body": "open shift"}


def client(fake: FakeTwilio, **options: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=fake.transport(), base_url=API, **options)


# ---- the REST slice -----------------------------------------------------------------------


async def test_a_message_is_created_recorded_and_answered_like_twilio(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeTwilio()
    async with client(fake, auth=AUTH) as http:
        await trio.sleep(3)
        answer = await http.post(MESSAGES, data=TEXT)
    assert answer.status_code == 201
    body = answer.json()
    assert re.fullmatch(r"SM[0-9a-f]{32}", body["sid"])
    assert (body["to"], body["from"], body["body"], body["status"]) == (
        "+15550000001",
        "+15550100001",
        "open shift",
        "queued",
    )
    [seen] = fake.requests
    assert (seen.kind, seen.auth_ok, seen.status, seen.sid, seen.form) == (
        "message",
        True,
        201,
        body["sid"],
        TEXT,
    )
    assert seen.at == pytest.approx(trio.current_time())
    assert fake.messages == [seen] and fake.to("+15550000001") == [seen]
    assert fake.find(body["sid"]) is seen


async def test_calls_get_ca_sids_and_need_a_url_or_twiml(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeTwilio()
    async with client(fake, auth=AUTH) as http:
        ok = await http.post(CALLS, data={**TEXT, "Url": "https://x.test/voice"})
        bad = await http.post(CALLS, data={"To": "+15550000001", "From": "+15550100001"})
    assert ok.status_code == 201 and re.fullmatch(r"CA[0-9a-f]{32}", ok.json()["sid"])
    assert bad.status_code == 400 and bad.json()["code"] == 21205
    assert [c.sid for c in fake.calls] == [ok.json()["sid"]]


async def test_wrong_credentials_are_refused_with_twilio_error_20003(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeTwilio()
    other_account = f"/2010-04-01/Accounts/AC{'1' * 32}/Messages.json"
    async with client(fake) as http:
        no_auth = await http.post(MESSAGES, data=TEXT)
        wrong = await http.post(MESSAGES, data=TEXT, auth=(DEFAULT_ACCOUNT_SID, "nope"))
        elsewhere = await http.post(other_account, data=TEXT, auth=AUTH)
    for answer in (no_auth, wrong, elsewhere):
        assert answer.status_code == 401
        assert answer.json()["code"] == 20003
    assert answer.headers["www-authenticate"].startswith("Basic")
    assert [r.auth_ok for r in fake.requests] == [False, False, False]
    assert fake.messages == []


async def test_missing_fields_get_twilio_400s(autojump_clock: trio.testing.MockClock) -> None:
    fake = FakeTwilio()
    async with client(fake, auth=AUTH) as http:
        codes = [
            (await http.post(MESSAGES, data={k: v for k, v in TEXT.items() if k != key})).json()[
                "code"
            ]
            for key in ("To", "From", "Body")
        ]
        unknown = await http.get(f"/2010-04-01/Accounts/{DEFAULT_ACCOUNT_SID}/Nope.json")
    assert codes == [21604, 21603, 21602]
    assert unknown.status_code == 404 and unknown.json()["code"] == 20404


# ---- misbehaving on demand ------------------------------------------------------------------


async def test_it_answers_429_with_retry_after_then_500_then_normally(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeTwilio()
    fake.fail_next(429, retry_after=7)
    fake.fail_next(500)
    async with client(fake, auth=AUTH) as http:
        answers = [await http.post(MESSAGES, data=TEXT) for _ in range(3)]
    throttled, broken, fine = answers
    assert throttled.status_code == 429 and throttled.headers["retry-after"] == "7"
    assert throttled.json()["code"] == 20429
    assert broken.status_code == 500 and "retry-after" not in broken.headers
    assert fine.status_code == 201
    assert [r.status for r in fake.requests] == [429, 500, 201]
    assert len(fake.messages) == 1


async def test_a_plan_for_calls_leaves_messages_alone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeTwilio()
    fake.fail_next(503, kind="call", code=20503, message="Service unavailable")
    async with client(fake, auth=AUTH) as http:
        text = await http.post(MESSAGES, data=TEXT)
        call = await http.post(CALLS, data={**TEXT, "Twiml": "<Response/>"})
    assert (text.status_code, call.status_code) == (201, 503)
    assert call.json() == {
        "code": 20503,
        "message": "Service unavailable",
        "more_info": "https://www.twilio.com/docs/errors/20503",
        "status": 503,
    }


async def test_a_slow_answer_takes_the_message_at_once_and_answers_late(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeTwilio(latency=0.25)
    fake.slow_next(30)
    async with client(fake, auth=AUTH, timeout=None) as http:
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(functools.partial(http.post, MESSAGES, data=TEXT))
            await trio.sleep(1)
            assert len(fake.messages) == 1  # taken (recorded) before the answer
        assert trio.current_time() - start == 30.25
        await http.post(MESSAGES, data=TEXT)
        assert trio.current_time() - start == 30.5  # only the plain latency now


# ---- serving ------------------------------------------------------------------------------


async def test_it_serves_on_127_0_0_1_for_the_twilio_notifier(
    loopback_clock: trio.testing.MockClock,
) -> None:
    fake = FakeTwilio()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            base = await nursery.start(fake.serve, "127.0.0.1", 0)
            assert re.fullmatch(r"http://127\.0\.0\.1:\d+", base) and fake.api_base == base
            notifier = TwilioNotifier(
                account_sid=DEFAULT_ACCOUNT_SID,
                auth_token=DEFAULT_AUTH_TOKEN,
                from_numbers=["+15550100001"],
                api_base=base,
                connect_timeout=timedelta(seconds=5),
            )
            sid = await notifier.send(
                Outgoing(1, Channel.SMS, Purpose.OFFER, "+15550000001", "hi", "cg-1", None, EPOCH)
            )
            await notifier.aclose()
            nursery.cancel_scope.cancel()
    [seen] = fake.requests
    assert seen.auth_ok and seen.sid == sid and seen.form["To"] == "+15550000001"


# ---- playing the caregiver ------------------------------------------------------------------


class Shiftd:
    """A stand-in for shiftd's webhook endpoints: keeps what arrived, checks the signature."""

    def __init__(self, public_url: str, token: str = DEFAULT_AUTH_TOKEN) -> None:
        self.public_url = public_url
        self.token = token
        self.got: list[tuple[str, dict[str, str], bool]] = []
        self.app = Starlette(routes=[Route("/{rest:path}", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        form = {k: str(v) for k, v in (await request.form()).multi_items()}
        url = self.public_url + request.url.path
        ok = valid_signature([self.token], url, form, request.headers.get("x-twilio-signature"))
        self.got.append((request.url.path, form, ok))
        return Response("<Response/>", status_code=200 if ok else 403, media_type="text/xml")

    def transport(self) -> httpx.ASGITransport:
        return httpx.ASGITransport(app=self.app)


async def test_reply_sms_posts_a_signed_inbound_sms_from_the_caregiver(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeTwilio()
    shiftd = Shiftd("https://shifts.example.org")
    async with client(fake, auth=AUTH) as http:
        await http.post(MESSAGES, data={**TEXT, "From": "+15550100002"})
    answer = await fake.reply_sms(
        "+15550000001",
        "YES 12",
        "http://shiftd.test",
        public_url="https://shifts.example.org",
        transport=shiftd.transport(),
    )
    assert answer.status_code == 200 and answer.text == "<Response/>"
    [(path, form, signed)] = shiftd.got
    assert path == "/webhooks/twilio/sms" and signed
    assert form["From"] == "+15550000001" and form["Body"] == "YES 12"
    assert form["To"] == "+15550100002"  # the number that texted this caregiver
    assert re.fullmatch(r"SM[0-9a-f]{32}", form["MessageSid"])
    assert form["AccountSid"] == DEFAULT_ACCOUNT_SID
    [post] = fake.webhooks
    assert post.url == "http://shiftd.test/webhooks/twilio/sms"
    assert post.signed_url == "https://shifts.example.org/webhooks/twilio/sms"
    assert post.status == 200

    # Signed with another token, or for another URL: refused.
    bad = await fake.reply_sms(
        "+15550000001", "YES", "http://shiftd.test", "wrong-token", transport=shiftd.transport()
    )
    assert bad.status_code == 403 and shiftd.got[-1][2] is False
    forged = await fake.reply_sms(
        "+15550000001", "YES", "http://shiftd.test", signature="Zm9v", transport=shiftd.transport()
    )
    assert forged.status_code == 403


async def test_a_call_is_connected_and_answered_with_digits_by_call_sid(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeTwilio()
    public = "https://shifts.example.org"
    shiftd = Shiftd(public)
    call = {
        "To": "+15550000001",
        "From": "+15550100001",
        "Url": f"{public}/webhooks/twilio/voice",
        "StatusCallback": f"{public}/webhooks/twilio/status",
    }
    async with client(fake, auth=AUTH) as http:
        sid = (await http.post(CALLS, data=call)).json()["sid"]
    # No public_url given: signed for the URLs the call was created with, as Twilio does.
    await fake.connect_call(sid, "http://shiftd.test", transport=shiftd.transport())
    await fake.answer_call(
        sid, "1", "http://shiftd.test", public_url=public, transport=shiftd.transport()
    )
    await fake.send_status(sid, "completed", "http://shiftd.test", transport=shiftd.transport())
    voice, gather, status = shiftd.got
    assert [path for path, _, _ in shiftd.got] == [
        "/webhooks/twilio/voice",
        "/webhooks/twilio/voice/gather",
        "/webhooks/twilio/status",
    ]
    assert all(ok for _, _, ok in shiftd.got)
    assert voice[1]["CallSid"] == sid and voice[1]["CallStatus"] == "in-progress"
    assert (gather[1]["Digits"], gather[1]["To"], gather[1]["From"]) == (
        "1",
        "+15550000001",
        "+15550100001",
    )
    assert (status[1]["CallStatus"], status[1]["CallDuration"]) == ("completed", "0")


async def test_message_status_callbacks_follow_the_recorded_status_callback(
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake = FakeTwilio()
    shiftd = Shiftd("https://shifts.example.org")
    text = {**TEXT, "StatusCallback": "https://shifts.example.org/webhooks/twilio/status"}
    async with client(fake, auth=AUTH) as http:
        sid = (await http.post(MESSAGES, data=text)).json()["sid"]
    for status in ("sent", "undelivered"):
        await fake.send_status(
            sid,
            status,
            "http://shiftd.test",
            error_code=30003 if status == "undelivered" else None,
            transport=shiftd.transport(),
        )
    sent, undelivered = (form for _, form, ok in shiftd.got if ok)
    assert (sent["MessageSid"], sent["MessageStatus"], sent["To"]) == (sid, "sent", TEXT["To"])
    assert "ErrorCode" not in sent
    assert (undelivered["MessageStatus"], undelivered["ErrorCode"]) == ("undelivered", "30003")


# ---- with shiftd's own webhooks ---------------------------------------------------------------


async def test_shiftd_and_the_fake_speak_the_same_twilio_end_to_end(
    start_engine: StartEngine, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Offers reach the fake through the twilio notifier; the fake's signed replies reach
    shiftd's webhooks; a text claims one shift, a key press on a call another."""
    public = "https://shifts.example.org"
    fake = FakeTwilio()
    notifier = TwilioNotifier(
        account_sid=fake.account_sid,
        auth_token=fake.auth_token,
        from_numbers=["+15550100001", "+15550100002"],
        public_url=public,
        transport=fake.transport(),
    )
    config = make_config(tmp_path, escalation={"delay": "1m"})
    engine = (await start_engine(config, notifier)).engine
    await engine.import_roster(
        [caregiver(k) for k in range(1, 4)], [shift("shift-1"), shift("shift-2", start_in_h=30)]
    )
    app = create_app(engine, HttpSettings(twilio_tokens=(fake.auth_token,), public_url=public))
    shiftd = httpx.ASGITransport(app=app)
    base = "http://shiftd.test"

    await engine.fanout("shift-1")
    await trio.sleep(5)
    assert sorted(m.form["To"] for m in fake.messages) == [phone(1), phone(2), phone(3)]
    assert all(
        m.auth_ok and m.form["StatusCallback"] == f"{public}/webhooks/twilio/status"
        for m in fake.messages
    )

    answer = await fake.reply_sms(phone(2), "YES", base, public_url=public, transport=shiftd)
    assert answer.status_code == 200, answer.text
    assert (await engine.shift("shift-1")).claimed_by == "cg-2"
    await trio.sleep(5)
    assert len(fake.to(phone(2))) == 2  # the offer, then the confirmation
    assert all(len(fake.to(phone(k))) == 2 for k in (1, 3))  # the offer, then "filled"
    first_offer = fake.to(phone(1))[0].sid
    assert first_offer is not None
    delivered = await fake.send_status(first_offer, "delivered", base, transport=shiftd)
    assert delivered.status_code < 300, delivered.text

    await engine.fanout("shift-2")
    await trio.sleep(70)  # escalation after a minute: everybody is called
    assert sorted(c.form["To"] for c in fake.calls) == [phone(1), phone(2), phone(3)]
    call = fake.calls[0]
    assert call.sid is not None
    script = await fake.connect_call(call.sid, base, transport=shiftd)
    assert script.status_code == 200 and "<Gather" in script.text, script.text
    pressed = await fake.answer_call(call.sid, "1", base, transport=shiftd)
    assert pressed.status_code == 200, pressed.text
    winner = (await engine.shift("shift-2")).claimed_by
    assert winner is not None and phone(int(winner[3:])) == call.form["To"]
    await notifier.aclose()
