"""The `twilio` notifier against the fake provider: requests, answers, retries, rate limit,
credentials, logs and configuration."""

from __future__ import annotations

import base64
import io
import itertools
import json
import textwrap
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import structlog
import trio
import trio.testing

from shiftd.clock import Clock
from shiftd.config import Config, ConfigError, TwilioNotifierConfig, load_config
from shiftd.engine import Engine
from shiftd.logs import configure_logging
from shiftd.models import Channel, Purpose
from shiftd.notify import NotifierSetupError, Throttled, make_notifier
from shiftd.notify.base import (
    Outgoing,
    PermanentSendError,
    SendOutcomeUnknown,
    TransientSendError,
)
from shiftd.notify.twilio import TwilioNotifier, parse_retry_after, scrub_phones
from shiftd.outbox.sender import Sender
from shiftd.store.base import NewMessage
from shiftd.store.sqlite import SqliteStore
from shiftd.testing.engine import EPOCH, StartEngine, caregiver, make_config, phone, shift
from shiftd.testing.fakeprovider import FakeTwilio
from shiftd.testing.ports import reserved_port

SID = "AC" + "0123456789abcdef" * 2
TOKEN = "tw-auth-token-s3cr3t-0123456789abcdef"
NUMBERS = ("+15550100001", "+15550100002")
API = "https://api.twilio.test"
PUBLIC = "https://shifts.example.org"


@pytest.fixture
def fake() -> FakeTwilio:
    return FakeTwilio(account_sid=SID, auth_token=TOKEN)


def notifier_for(
    fake: FakeTwilio, transport: httpx.AsyncBaseTransport | None = None, **options: Any
) -> TwilioNotifier:
    settings: dict[str, Any] = {
        "account_sid": SID,
        "auth_token": TOKEN,
        "from_numbers": NUMBERS,
        "api_base": API,
        "transport": transport or fake.transport(),
    }
    settings.update(options)
    return TwilioNotifier(**settings)


def outgoing(
    n: int = 1,
    channel: Channel = Channel.SMS,
    purpose: Purpose = Purpose.OFFER,
    from_number: str | None = NUMBERS[0],
) -> Outgoing:
    return Outgoing(
        outbox_id=n,
        channel=channel,
        purpose=purpose,
        to=phone(n),
        body=f"Sunrise Care: open RN shift. Reply YES {n} <to> take it & go.",
        caregiver_id=f"cg-{n}",
        shift_id="shift-1",
        at=EPOCH,
        from_number=from_number,
    )


def outbox(engine: Engine) -> list[dict[str, Any]]:
    store = engine.store
    assert isinstance(store, SqliteStore)
    return [
        dict(r)
        for r in store._read(
            "SELECT id, caregiver_id, channel, purpose, state, attempts, provider_id, error"
            " FROM outbox ORDER BY id"
        )
    ]


async def engine_with(
    start_engine: StartEngine,
    tmp_path: Path,
    notifier: TwilioNotifier,
    caregivers: int,
    **config: Any,
) -> Engine:
    """A running engine sending through `notifier`, `caregivers` RNs and an open `shift-1`."""
    harness = await start_engine(make_config(tmp_path, **config), notifier)
    engine: Engine = harness.engine
    await engine.import_roster([caregiver(k) for k in range(1, caregivers + 1)], [shift()])
    return engine


class Breaking(httpx.AsyncBaseTransport):
    """Raises the given errors for the first requests (noting when), then delegates."""

    def __init__(self, inner: httpx.AsyncBaseTransport, *errors: Exception) -> None:
        self.inner = inner
        self.errors = list(errors)
        self.times: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.times.append(trio.current_time())
        if self.errors:
            raise self.errors.pop(0)
        return await self.inner.handle_async_request(request)


# ---- requests -----------------------------------------------------------------------------


async def test_an_offer_text_posts_to_messages_json_with_basic_auth_and_twilio_fields(
    fake: FakeTwilio, autojump_clock: trio.testing.MockClock
) -> None:
    seen: list[httpx.Request] = []

    class Spy(httpx.AsyncBaseTransport):
        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            await request.aread()
            seen.append(request)
            return await fake.transport().handle_async_request(request)

    notifier = notifier_for(fake, Spy(), public_url=PUBLIC + "/")
    sid = await notifier.send(outgoing(7, from_number=NUMBERS[1]))
    await notifier.aclose()

    [request] = seen
    assert str(request.url) == f"{API}/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.method == "POST"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    expected = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {expected}"
    [received] = fake.requests
    assert received.auth_ok and received.kind == "message" and received.status == 201
    assert received.form == {
        "To": phone(7),
        "From": NUMBERS[1],
        "Body": outgoing(7).body,
        "ValidityPeriod": "900",
        "StatusCallback": f"{PUBLIC}/webhooks/twilio/status",
    }
    assert sid == received.sid and sid is not None and sid.startswith("SM") and len(sid) == 34


async def test_only_offers_carry_a_validity_period_and_callbacks_need_a_public_url(
    fake: FakeTwilio, autojump_clock: trio.testing.MockClock
) -> None:
    notifier = notifier_for(fake, validity_period=timedelta(minutes=5))
    await notifier.send(outgoing(1, purpose=Purpose.OFFER))
    await notifier.send(outgoing(2, purpose=Purpose.CONFIRM))
    await notifier.aclose()
    offer, confirm = (r.form for r in fake.messages)
    assert offer["ValidityPeriod"] == "300"
    assert "ValidityPeriod" not in confirm
    assert "StatusCallback" not in offer and "StatusCallback" not in confirm


async def test_a_call_posts_to_calls_json_with_the_voice_url_and_status_callback(
    fake: FakeTwilio, autojump_clock: trio.testing.MockClock
) -> None:
    notifier = notifier_for(fake, public_url=PUBLIC)
    message = outgoing(3, channel=Channel.VOICE, from_number=None)
    sid = await notifier.send(message)
    await notifier.aclose()
    [call] = fake.calls
    assert call.path == f"/2010-04-01/Accounts/{SID}/Calls.json" and call.auth_ok
    assert call.form == {
        "To": phone(3),
        "From": notifier.caller_id(phone(3)),
        "Url": f"{PUBLIC}/webhooks/twilio/voice",
        "StatusCallback": f"{PUBLIC}/webhooks/twilio/status",
    }
    assert sid == call.sid and sid is not None and sid.startswith("CA") and len(sid) == 34


async def test_without_a_public_url_a_call_speaks_its_text_as_inline_twiml(
    fake: FakeTwilio, autojump_clock: trio.testing.MockClock
) -> None:
    notifier = notifier_for(fake)
    await notifier.send(outgoing(3, channel=Channel.VOICE))
    await notifier.aclose()
    [call] = fake.calls
    assert "Url" not in call.form and "StatusCallback" not in call.form
    assert call.form["Twiml"] == (
        "<Response><Say>Sunrise Care: open RN shift. Reply YES 3 &lt;to&gt; take it &amp; go."
        "</Say></Response>"
    )


async def test_calls_to_one_caregiver_always_come_from_the_same_number(
    fake: FakeTwilio, autojump_clock: trio.testing.MockClock
) -> None:
    notifier = notifier_for(fake)
    assert isinstance(notifier, Throttled)
    chosen = {phone(n): await notifier.acquire(outgoing(n, Channel.VOICE)) for n in range(1, 9)}
    assert set(chosen.values()) == set(NUMBERS)  # spread over the pool…
    for n in range(1, 9):  # …and stable per callee
        assert notifier.caller_id(phone(n)) == chosen[phone(n)]
    await notifier.aclose()


async def test_every_request_has_connect_read_write_and_pool_timeouts(
    fake: FakeTwilio, autojump_clock: trio.testing.MockClock
) -> None:
    notifier = notifier_for(
        fake, connect_timeout=timedelta(seconds=3), request_timeout=timedelta(seconds=7)
    )
    timeout = notifier._client.timeout
    assert (timeout.connect, timeout.read, timeout.write, timeout.pool) == (3, 7, 7, 3)
    await notifier.aclose()


# ---- through the engine and the sender ------------------------------------------------------


async def test_a_fanout_reaches_the_provider_and_each_row_keeps_its_sid(
    fake: FakeTwilio,
    start_engine: StartEngine,
    tmp_path: Path,
    autojump_clock: trio.testing.MockClock,
) -> None:
    engine = await engine_with(start_engine, tmp_path, notifier_for(fake), caregivers=3)
    await engine.fanout("shift-1")
    await trio.sleep(10)
    assert sorted(r.form["To"] for r in fake.messages) == [phone(1), phone(2), phone(3)]
    assert all(r.auth_ok for r in fake.requests)
    rows = outbox(engine)
    assert [(r["state"], r["attempts"]) for r in rows] == [("sent", 1)] * 3
    sids = {r.form["To"]: r.sid for r in fake.messages}
    for row in rows:
        assert row["provider_id"] == sids[phone(int(row["caregiver_id"][3:]))]


async def test_429_then_success_delivers_exactly_once_after_retry_after(
    fake: FakeTwilio,
    start_engine: StartEngine,
    tmp_path: Path,
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake.fail_next(429, retry_after=30)
    engine = await engine_with(start_engine, tmp_path, notifier_for(fake), caregivers=1)
    await engine.fanout("shift-1")
    await trio.sleep(120)
    first, second = fake.requests
    assert (first.status, second.status) == (429, 201)
    assert second.at - first.at >= 30  # the backoff alone would be about a second
    assert len(fake.messages) == 1
    [row] = outbox(engine)
    assert (row["state"], row["attempts"], row["provider_id"]) == ("sent", 2, second.sid)


async def test_retry_after_as_an_http_date_is_honoured(
    fake: FakeTwilio,
    start_engine: StartEngine,
    tmp_path: Path,
    autojump_clock: trio.testing.MockClock,
) -> None:
    # The in-process fake sends no Date header: the date is measured from the send instant.
    fake.fail_next(503, retry_after=format_datetime(EPOCH + timedelta(seconds=45), usegmt=True))
    engine = await engine_with(start_engine, tmp_path, notifier_for(fake), caregivers=1)
    await engine.fanout("shift-1")
    await trio.sleep(120)
    first, second = fake.requests
    assert first.status == 503 and second.status == 201
    assert second.at - first.at >= 45 - 1  # the fanout itself started a moment after EPOCH


def test_retry_after_parsing() -> None:
    now = EPOCH
    assert parse_retry_after("120", now=now) == 120
    assert parse_retry_after(" 1.5 ", now=now) == 1.5
    assert parse_retry_after(format_datetime(now + timedelta(minutes=2), usegmt=True), now=now) == (
        120
    )
    assert parse_retry_after(format_datetime(now - timedelta(minutes=2), usegmt=True), now=now) == 0
    assert parse_retry_after("-5", now=now) == 0
    assert parse_retry_after("1e12", now=now) == 24 * 3600  # bounded
    for junk in (None, "", "soon", "nan", "inf"):
        assert parse_retry_after(junk, now=now) is None


async def test_500s_are_retried_with_backoff_then_given_up_at_max_attempts(
    fake: FakeTwilio,
    start_engine: StartEngine,
    tmp_path: Path,
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake.fail_next(500, times=10)
    engine = await engine_with(
        start_engine,
        tmp_path,
        notifier_for(fake),
        caregivers=1,
        sender={"max_attempts": 4, "backoff_initial": "2s"},
    )
    await engine.fanout("shift-1")
    await trio.sleep(600)
    assert [r.status for r in fake.requests] == [500] * 4
    gaps = [b.at - a.at for a, b in zip(fake.requests, fake.requests[1:], strict=False)]
    for gap, ceiling in zip(gaps, (2, 4, 8), strict=True):  # equal jitter: [ceiling/2, ceiling]
        assert ceiling / 2 <= gap <= ceiling
    [row] = outbox(engine)
    assert (row["state"], row["attempts"]) == ("failed", 4)
    assert "gave up after 4 attempts: HTTP 500" in row["error"]


async def test_a_400_with_a_twilio_error_is_failed_at_once_with_the_error_recorded(
    fake: FakeTwilio,
    start_engine: StartEngine,
    tmp_path: Path,
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake.fail_next(
        400, code=21211, message=f"The 'To' number {phone(1)} is not a valid phone number."
    )
    engine = await engine_with(start_engine, tmp_path, notifier_for(fake), caregivers=1)
    await engine.fanout("shift-1")
    await trio.sleep(600)
    assert [r.status for r in fake.requests] == [400]
    [row] = outbox(engine)
    assert (row["state"], row["attempts"]) == ("failed", 1)
    assert "Twilio error 21211" in row["error"] and "not a valid phone number" in row["error"]
    assert phone(1) not in row["error"] and "…01" in row["error"]  # the number is masked


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (429, TransientSendError),
        (500, TransientSendError),
        (503, TransientSendError),
        (400, PermanentSendError),
        (401, PermanentSendError),
        (404, PermanentSendError),
        (301, PermanentSendError),
    ],
)
async def test_429_and_5xx_are_transient_other_answers_final(
    fake: FakeTwilio, status: int, outcome: type[Exception], autojump_clock: trio.testing.MockClock
) -> None:
    fake.fail_next(status, retry_after=3, code=20000 + status, message="nope")
    notifier = notifier_for(fake)
    with pytest.raises(outcome) as info:
        await notifier.send(outgoing(1))
    await notifier.aclose()
    assert str(info.value) == f"HTTP {status}: Twilio error {20000 + status}: nope"
    if outcome is TransientSendError:
        assert info.value.retry_after == 3


async def test_an_accepted_answer_without_a_sid_still_counts_as_sent(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, text="not json")

    notifier = notifier_for(FakeTwilio(), httpx.MockTransport(handler))
    assert await notifier.send(outgoing(1)) is None
    await notifier.aclose()


@pytest.mark.parametrize(
    ("error", "outcome"),
    [
        (httpx.ConnectError("[Errno 111] Connection refused"), TransientSendError),
        (httpx.ConnectTimeout("timed out"), TransientSendError),
        (httpx.PoolTimeout("no connection free"), TransientSendError),
        (httpx.ReadTimeout("timed out"), SendOutcomeUnknown),
        (httpx.WriteTimeout("timed out"), SendOutcomeUnknown),
        (httpx.ReadError("connection reset"), SendOutcomeUnknown),
        (httpx.RemoteProtocolError("Server disconnected"), SendOutcomeUnknown),
    ],
)
async def test_transport_errors_are_transient_only_when_nothing_went_out(
    fake: FakeTwilio,
    error: Exception,
    outcome: type[Exception],
    autojump_clock: trio.testing.MockClock,
) -> None:
    notifier = notifier_for(fake, Breaking(fake.transport(), error))
    with pytest.raises(outcome):
        await notifier.send(outgoing(1))
    assert await notifier.send(outgoing(2))  # the client is still usable
    await notifier.aclose()


async def test_connection_refused_is_retried_and_delivered_once(
    fake: FakeTwilio,
    start_engine: StartEngine,
    tmp_path: Path,
    autojump_clock: trio.testing.MockClock,
) -> None:
    refused = httpx.ConnectError("[Errno 111] Connection refused")
    transport = Breaking(fake.transport(), refused, httpx.ConnectError("refused again"))
    engine = await engine_with(start_engine, tmp_path, notifier_for(fake, transport), caregivers=1)
    await engine.fanout("shift-1")
    await trio.sleep(60)
    assert len(transport.times) == 3 and len(fake.messages) == 1
    [row] = outbox(engine)
    assert (row["state"], row["attempts"], row["provider_id"]) == (
        "sent",
        3,
        fake.messages[0].sid,
    )


async def test_a_read_timeout_fails_the_row_and_never_resends_it(
    fake: FakeTwilio,
    start_engine: StartEngine,
    tmp_path: Path,
    autojump_clock: trio.testing.MockClock,
) -> None:
    transport = Breaking(fake.transport(), httpx.ReadTimeout("timed out"))
    engine = await engine_with(start_engine, tmp_path, notifier_for(fake, transport), caregivers=1)
    await engine.fanout("shift-1")
    await trio.sleep(600)
    assert len(transport.times) == 1
    [row] = outbox(engine)
    assert (row["state"], row["attempts"]) == ("failed", 1)
    assert "may have been sent, not retried" in row["error"]


async def test_over_real_sockets_refused_is_transient_and_a_slow_answer_is_unknown(
    fake: FakeTwilio, loopback_clock: trio.testing.MockClock
) -> None:
    with reserved_port() as closed:  # held: nobody can listen on it
        refused = TwilioNotifier(
            account_sid=SID,
            auth_token=TOKEN,
            from_numbers=NUMBERS,
            api_base=f"http://127.0.0.1:{closed}",
        )
        with trio.fail_after(30), pytest.raises(TransientSendError, match="not reached"):
            await refused.send(outgoing(1))
        await refused.aclose()

    async with trio.open_nursery() as nursery:
        base = await nursery.start(fake.serve, "127.0.0.1", 0)
        served = TwilioNotifier(
            account_sid=SID,
            auth_token=TOKEN,
            from_numbers=NUMBERS,
            api_base=base,
            request_timeout=timedelta(seconds=5),
        )
        with trio.fail_after(30):
            assert await served.send(outgoing(2)) == fake.messages[0].sid
            fake.slow_next(60)
            start = trio.current_time()
            with pytest.raises(SendOutcomeUnknown, match="ReadTimeout"):
                await served.send(outgoing(3))
        assert 5 <= trio.current_time() - start < 60
        assert len(fake.messages) == 2  # the fake did take the slow one: hence "unknown"
        await served.aclose()
        nursery.cancel_scope.cancel()


# ---- the rate limit -------------------------------------------------------------------------


async def test_a_200_caregiver_fanout_keeps_each_number_to_one_text_a_second(
    fake: FakeTwilio,
    start_engine: StartEngine,
    tmp_path: Path,
    autojump_clock: trio.testing.MockClock,
) -> None:
    engine = await engine_with(start_engine, tmp_path, notifier_for(fake), caregivers=200)
    start = trio.current_time()
    await engine.fanout("shift-1")
    await trio.sleep(150)
    offers = fake.messages
    assert len(offers) == 200 and len({r.form["To"] for r in offers}) == 200
    times = [r.at - start for r in offers]
    assert times == sorted(times)
    assert times[-1] <= 100  # 200 texts, 2 numbers, 1/s each
    # Overall at most 2 in any one-second window, at most 1 per number.
    assert all(b - a >= 1 - 1e-9 for a, b in zip(times, times[2:], strict=False))
    assert max(Counter(int(t) for t in times).values()) <= 2
    for number in NUMBERS:
        mine = [r.at for r in offers if r.form["From"] == number]
        assert len(mine) == 100
        assert all(b - a >= 1 - 1e-9 for a, b in itertools.pairwise(mine))
    assert [r["state"] for r in outbox(engine)] == ["sent"] * 200


async def test_offers_waiting_for_a_turn_when_the_shift_is_filled_are_never_sent(
    fake: FakeTwilio,
    start_engine: StartEngine,
    tmp_path: Path,
    autojump_clock: trio.testing.MockClock,
) -> None:
    notifier = notifier_for(fake, from_numbers=NUMBERS[:1])
    engine = await engine_with(start_engine, tmp_path, notifier, caregivers=40)
    start = trio.current_time()
    await engine.fanout("shift-1")
    await trio.sleep(5.5)  # six offers out (t=0…5); the rest queued or waiting for a turn
    winner = fake.messages[0].form["To"]
    result = await engine.inbound(winner, "YES")
    assert result.outcome.value == "claimed"
    claimed_at = trio.current_time()
    await trio.sleep(120)

    offers = [r for r in fake.messages if r.form["Body"].startswith("Sunrise Care: open")]
    assert len(offers) == 6
    assert all(r.at < claimed_at for r in offers)
    told = {r.form["To"] for r in fake.messages if r.at >= claimed_at}
    assert told == {r.form["To"] for r in offers}  # the winner's confirmation, "filled" to 5
    later = [r.at - start for r in fake.messages if r.at >= claimed_at]
    assert later[0] <= 7  # the turns of withdrawn offers were handed back, not wasted
    rows = outbox(engine)
    offer_states = Counter(r["state"] for r in rows if r["purpose"] == "offer")
    assert offer_states == {"sent": 6, "cancelled": 34}


# ---- credentials and logs -------------------------------------------------------------------


def twilio_config(tmp_path: Path, **notifier: Any) -> Config:
    settings: dict[str, Any] = {
        "kind": "twilio",
        "account_sid": SID,
        "auth_token_file": "twilio-token",
        "from_numbers": list(NUMBERS),
        "api_base": API,
    }
    settings.update(notifier)
    return make_config(tmp_path, notifier=settings)


async def test_the_auth_token_comes_from_the_credentials_directory(
    fake: FakeTwilio,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: trio.testing.MockClock,
) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "twilio-token").write_text(TOKEN + "\n")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(credentials))
    monkeypatch.chdir(tmp_path)  # no ./twilio-token to find by accident
    notifier = make_notifier(twilio_config(tmp_path), transport=fake.transport())
    assert isinstance(notifier, TwilioNotifier)
    assert await notifier.send(outgoing(1))
    await notifier.aclose()
    assert [r.auth_ok for r in fake.requests] == [True]
    assert TOKEN not in repr(notifier)


async def test_an_unreadable_token_file_is_a_setup_error_naming_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    config = twilio_config(tmp_path, auth_token_file=str(tmp_path / "missing"))
    with pytest.raises(NotifierSetupError, match=r"notifier\.auth_token_file: .*missing"):
        make_notifier(config)
    assert issubclass(NotifierSetupError, ValueError)  # `shiftd run` reports it and exits 1


async def test_callbacks_use_the_http_public_url_when_one_is_configured(
    fake: FakeTwilio,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: trio.testing.MockClock,
) -> None:
    (tmp_path / "token").write_text(TOKEN)
    base = twilio_config(tmp_path, auth_token_file=str(tmp_path / "token"))
    config = SimpleNamespace(notifier=base.notifier, http=SimpleNamespace(public_url=PUBLIC))
    notifier = make_notifier(config, transport=fake.transport())
    await notifier.send(outgoing(1, Channel.VOICE))
    await notifier.aclose()
    assert fake.calls[0].form["Url"] == f"{PUBLIC}/webhooks/twilio/voice"


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    yield stream
    structlog.reset_defaults()


@asynccontextmanager
async def sending(tmp_path: Path, notifier: TwilioNotifier, n: int) -> AsyncIterator[SqliteStore]:
    async with trio.open_nursery() as nursery:
        store: SqliteStore = await nursery.start(SqliteStore(tmp_path / "s.sqlite3").run)
        await store.import_roster([caregiver(k) for k in range(1, n + 1)], [shift()], EPOCH)
        await store.queue(
            [
                NewMessage(f"m{k}", f"cg-{k}", Channel.SMS, Purpose.OFFER, "hello", "shift-1")
                for k in range(1, n + 1)
            ],
            at=EPOCH,
        )
        sender = Sender(store, notifier, Clock(EPOCH), max_attempts=2)
        await nursery.start(sender.run)
        yield store
        nursery.cancel_scope.cancel()


async def test_neither_the_token_nor_a_whole_phone_number_reaches_the_logs(
    fake: FakeTwilio,
    tmp_path: Path,
    log_stream: io.StringIO,
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake.fail_next(401, code=20003, message="Authenticate")
    fake.fail_next(400, code=21211, message=f"The 'To' number {phone(2)} is not valid.")
    fake.fail_next(500, times=2, message=f"trouble sending to {phone(3)}")
    lost = httpx.ReadTimeout("timed out")  # the first answer is lost
    notifier = notifier_for(fake, Breaking(fake.transport(), lost))
    async with sending(tmp_path, notifier, 6) as store:
        await trio.sleep(60)
        states = Counter(r["state"] for r in store._read("SELECT state FROM outbox"))
    await notifier.aclose()
    # Lost, 401 and 400 fail; the two 500s succeed on their second attempt.
    assert states == {"sent": 3, "failed": 3}
    text = log_stream.getvalue()
    events = {json.loads(line)["event"] for line in text.splitlines()}
    assert {"twilio.accepted", "twilio.unauthorized", "send.retry", "send.failed"} <= events
    assert TOKEN not in text
    assert base64.b64encode(f"{SID}:{TOKEN}".encode()).decode() not in text
    for n in range(1, 7):
        assert phone(n) not in text and phone(n)[1:] not in text


def test_phone_numbers_in_provider_messages_are_masked() -> None:
    assert scrub_phones("To +1 (555) 000-1234 and 5550001234, code 21211") == (
        "To …34 and …34, code 21211"
    )


# ---- configuration --------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shiftd.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def test_the_documented_twilio_shape_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        notifier:
          kind: twilio
          account_sid: AC00000000000000000000000000000000
          auth_token_file: /etc/shiftd/twilio-token
          from_numbers: ["+15550100001", "+15550100002"]
          api_base: https://api.twilio.com           # the default
          rate_per_second: 1                         # per from-number
        """,
    )
    notifier = load_config(path).notifier
    assert notifier == TwilioNotifierConfig(
        account_sid="AC00000000000000000000000000000000",
        auth_token_file="/etc/shiftd/twilio-token",
        from_numbers=("+15550100001", "+15550100002"),
    )
    assert (notifier.rate_per_second, notifier.burst, notifier.calls_per_second) == (1, 1, 1)
    assert notifier.validity_period == timedelta(minutes=15)
    assert notifier.api_base == "https://api.twilio.com"


def test_twilio_settings_are_validated_with_file_and_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        notifier:
          kind: twilio
          account_sid: AC1234
          auth_token: hunter2-in-clear
          auth_token_file: twilio-token
          from_numbers:
            - "+15550100001"
            - 15550100002
          api_base: ftp://example.org
          rate_per_second: 0
          validity_period: "11h"
        """,
    )
    found = problems(path)
    assert found[0] == (
        f"{path}:3: notifier.account_sid: must be AC followed by 32 hexadecimal digits"
        " (got 'AC1234')"
    )
    assert found[1].startswith(f"{path}:4: notifier.auth_token: unknown key (allowed: kind,")
    assert "auth_token_file" in found[1] and "hunter2" not in "\n".join(found)
    assert found[2] == (
        f"{path}:8: notifier.from_numbers.1: expected a string, got the number 15550100002"
        " (quote it so YAML keeps it as text)"
    )
    assert found[3].startswith(f"{path}:9: notifier.api_base: must be an http(s) URL")
    assert found[4].startswith(f"{path}:10: notifier.rate_per_second: ")
    assert found[5].startswith(f"{path}:11: notifier.validity_period: must be between 1s and 10h")
    assert len(found) == 6


@pytest.mark.parametrize(
    ("numbers", "problem"),
    [
        ("[]", "list between 1 and 1000 numbers (got 0)"),
        ('["5550100001"]', "'5550100001' is not an E.164 number"),
        ('["+15550100001", "+15550100001"]', "each number may be listed only once"),
        ('"+15550100001"', "must be a list of quoted numbers"),
    ],
)
def test_from_numbers_must_be_a_non_empty_list_of_distinct_e164_strings(
    tmp_path: Path, numbers: str, problem: str
) -> None:
    path = write(
        tmp_path,
        f"""\
        notifier:
          kind: twilio
          account_sid: AC00000000000000000000000000000000
          auth_token_file: twilio-token
          from_numbers: {numbers}
        """,
    )
    [found] = problems(path)
    assert found.startswith(f"{path}:5: notifier.from_numbers: ") and problem in found


def test_an_account_sid_and_token_file_are_required(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        notifier:
          kind: twilio
          from_numbers: ["+15550100001"]
        """,
    )
    assert problems(path) == [
        f"{path}:1: notifier.account_sid: missing required key",
        f"{path}:1: notifier.auth_token_file: missing required key",
    ]
