"""Twilio webhooks in-process against a real engine: signed SMS replies, the voice script
and its digits, status callbacks — and everything that must be refused or done only once."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import structlog
import trio

from shiftd.http.webhooks import gather, say, twiml
from shiftd.models import Channel, Purpose
from shiftd.testing.api import AUTH, PUBLIC_URL, TWILIO_TOKEN, Api, SidProvider, open_api, sign
from shiftd.testing.engine import Harness, caregiver

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
SMS = "/webhooks/twilio/sms"
VOICE = "/webhooks/twilio/voice"
GATHER = "/webhooks/twilio/voice/gather"
STATUS = "/webhooks/twilio/status"


@pytest.fixture
def provider() -> SidProvider:
    return SidProvider()


@pytest.fixture
async def api(harness: Harness) -> AsyncIterator[Api]:
    async with open_api(harness) as api:
        yield api


async def fanned_out(api: Api) -> None:
    assert (await api.client.post("/shifts/shift-1/fanout", headers=AUTH)).status_code == 200
    await api.harness.settle()


async def escalated(api: Api) -> list[tuple[object, str]]:
    """Fan out, let the escalation delay pass: the offer calls placed, with their sids."""
    await fanned_out(api)
    await trio.sleep(10 * 60 + 1)
    await api.harness.settle()
    provider = api.harness.provider
    assert isinstance(provider, SidProvider)
    calls = provider.calls()
    assert calls, "escalation placed no calls"
    return calls  # type: ignore[return-value]


def provider_of(api: Api) -> SidProvider:
    provider = api.harness.provider
    assert isinstance(provider, SidProvider)
    return provider


# ---- SMS ----------------------------------------------------------------------------------------


async def test_a_signed_yes_by_sms_claims_the_shift(api: Api, autojump_clock: object) -> None:
    await fanned_out(api)
    response = await api.sms("+15550000002", "yes", "SM-yes-1")
    await api.harness.settle()
    assert response.status_code == 200
    shift = await api.harness.engine.shift("shift-1")
    assert (shift.state, shift.claimed_by) == ("filled", "cg-2")
    provider = provider_of(api)
    assert len(provider.to("cg-2", Purpose.CONFIRM)) == 1
    assert {m.caregiver_id for m in provider.of(Purpose.FILLED)} == {"cg-1", "cg-3", "cg-4", "cg-5"}


async def test_the_sms_answer_is_empty_twiml_because_the_outbox_sends_the_reply(
    api: Api, autojump_clock: object
) -> None:
    await fanned_out(api)
    response = await api.sms("+15550000002", "yes", "SM-yes-1")
    await api.harness.settle()
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text == EMPTY_TWIML
    assert len(provider_of(api).to("cg-2", Purpose.CONFIRM)) == 1  # one reply, by the outbox


async def test_a_bad_signature_is_403_and_claims_nothing(api: Api, autojump_clock: object) -> None:
    await fanned_out(api)
    form = {"From": "+15550000002", "Body": "yes", "MessageSid": "SM-forged"}
    forged = sign(SMS, form, token="not-the-auth-token")
    response = await api.client.post(SMS, data=form, headers=forged)
    await api.harness.settle()
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert (await api.harness.engine.shift("shift-1")).state == "offering"
    assert provider_of(api).of(Purpose.CONFIRM) == []


async def test_a_missing_signature_is_403(api: Api, autojump_clock: object) -> None:
    await fanned_out(api)
    form = {"From": "+15550000002", "Body": "yes", "MessageSid": "SM-unsigned"}
    response = await api.client.post(SMS, data=form)
    assert response.status_code == 403
    assert (await api.harness.engine.shift("shift-1")).state == "offering"


async def test_a_signature_for_other_parameters_is_403(api: Api, autojump_clock: object) -> None:
    await fanned_out(api)
    signed = {"From": "+15550000002", "Body": "no", "MessageSid": "SM-1"}
    sent = {**signed, "Body": "yes"}
    response = await api.client.post(SMS, data=sent, headers=sign(SMS, signed))
    assert response.status_code == 403


async def test_a_signature_for_another_url_is_403(api: Api, autojump_clock: object) -> None:
    form = {"From": "+15550000002", "Body": "yes", "MessageSid": "SM-1"}
    response = await api.client.post(SMS, data=form, headers=sign("/webhooks/twilio/voice", form))
    assert response.status_code == 403


async def test_the_previous_auth_token_is_accepted_during_rotation(
    harness: Harness, autojump_clock: object
) -> None:
    async with open_api(harness, twilio_tokens=("new-token", TWILIO_TOKEN)) as api:
        await fanned_out(api)
        response = await api.sms("+15550000001", "yes", "SM-rotated")
    assert response.status_code == 200
    assert (await harness.engine.shift("shift-1")).claimed_by == "cg-1"


async def test_without_an_auth_token_every_webhook_is_403(
    harness: Harness, autojump_clock: object
) -> None:
    async with open_api(harness, twilio_tokens=()) as api:
        await fanned_out(api)
        response = await api.sms("+15550000001", "yes", "SM-1")
    assert response.status_code == 403
    assert (await harness.engine.shift("shift-1")).state == "offering"


async def test_with_verification_switched_off_unsigned_webhooks_are_handled(
    harness: Harness, autojump_clock: object
) -> None:
    async with open_api(harness, verify_signatures=False, twilio_tokens=()) as api:
        await fanned_out(api)
        form = {"From": "+15550000001", "Body": "yes", "MessageSid": "SM-1"}
        response = await api.client.post(SMS, data=form)
    assert response.status_code == 200
    assert (await harness.engine.shift("shift-1")).claimed_by == "cg-1"


async def test_without_public_url_the_url_the_request_reached_is_signed(
    harness: Harness, autojump_clock: object
) -> None:
    from shiftd.http.signature import compute_signature

    async with open_api(harness, public_url=None) as api:
        await fanned_out(api)
        form = {"From": "+15550000001", "Body": "yes", "MessageSid": "SM-1"}
        url = "http://shiftd.test" + SMS
        headers = {"X-Twilio-Signature": compute_signature(TWILIO_TOKEN, url, form)}
        response = await api.client.post(SMS, data=form, headers=headers)
    assert response.status_code == 200


async def test_a_signed_query_string_is_part_of_the_url(api: Api, autojump_clock: object) -> None:
    await fanned_out(api)
    form = {"From": "+15550000001", "Body": "yes", "MessageSid": "SM-1"}
    path = SMS + "?agency=sunrise"
    response = await api.client.post(path, data=form, headers=sign(path, form))
    unsigned_query = await api.client.post(
        SMS + "?agency=other", data=form, headers=sign(path, form)
    )
    assert response.status_code == 200
    assert unsigned_query.status_code == 403


async def test_a_replayed_sms_webhook_has_one_effect(api: Api, autojump_clock: object) -> None:
    await fanned_out(api)
    first = await api.sms("+15550000003", "no", "SM-decline")
    second = await api.sms("+15550000003", "no", "SM-decline")
    await api.harness.settle()
    assert first.status_code == second.status_code == 200
    assert len(provider_of(api).to("cg-3", Purpose.DECLINED)) == 1
    detail = await api.harness.engine.store.shift_detail("shift-1")
    assert detail is not None
    assert [r["kind"] for r in detail["timeline"]].count("reply") == 1


async def test_an_sms_from_an_unknown_number_gets_no_text_back(
    api: Api, autojump_clock: object
) -> None:
    await fanned_out(api)
    before = len(provider_of(api).sent)
    response = await api.sms("+19995550123", "yes", "SM-stranger")
    await api.harness.settle()
    assert response.status_code == 200
    assert response.text == EMPTY_TWIML
    assert len(provider_of(api).sent) == before


async def test_a_signed_sms_without_message_sid_is_400(api: Api, autojump_clock: object) -> None:
    response = await api.webhook(SMS, {"From": "+15550000001", "Body": "yes"})
    assert response.status_code == 400
    assert "MessageSid" in response.json()["error"]["message"]


# ---- voice --------------------------------------------------------------------------------------


async def test_an_answered_call_hears_the_offer_and_is_asked_for_one_digit(
    api: Api, autojump_clock: object
) -> None:
    calls = await escalated(api)
    _, call_sid = calls[0]
    response = await api.webhook(VOICE, {"CallSid": call_sid, "CallStatus": "in-progress"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    text = response.text
    assert f'action="{PUBLIC_URL}{GATHER}"' in text
    assert 'numDigits="1"' in text
    assert re.search(
        r'<Gather [^>]*><Say language="en-US">Hello, this is Sunrise Care\..*Press 1', text
    )
    assert text.endswith("<Hangup/></Response>")


async def test_a_spanish_speaking_caregivers_call_is_read_and_answered_in_spanish(
    api: Api, autojump_clock: object
) -> None:
    await api.harness.engine.import_roster([caregiver(1).model_copy(update={"language": "es"})], [])
    calls = await escalated(api)
    [(_, call_sid)] = [(m, sid) for m, sid in calls if m.caregiver_id == "cg-1"]  # type: ignore[attr-defined]

    offer = await api.webhook(VOICE, {"CallSid": call_sid})
    answer = await api.webhook(GATHER, {"CallSid": call_sid, "Digits": "2"})

    assert '<Say language="es-US">Hola, le llama Sunrise Care.' in offer.text
    assert '<Say language="es-US">Gracias. Anotamos que no puede tomar este turno.' in answer.text


async def test_pressing_1_on_the_call_claims_the_shift(api: Api, autojump_clock: object) -> None:
    calls = await escalated(api)
    message, call_sid = calls[1]
    await api.webhook(VOICE, {"CallSid": call_sid})
    response = await api.webhook(GATHER, {"CallSid": call_sid, "Digits": "1"})
    await api.harness.settle()
    assert response.status_code == 200
    assert '<Say language="en-US">Thank you. The shift is yours.' in response.text
    shift = await api.harness.engine.shift("shift-1")
    assert (shift.state, shift.claimed_by) == ("filled", message.caregiver_id)  # type: ignore[attr-defined]
    assert len(provider_of(api).of(Purpose.CONFIRM)) == 1


async def test_pressing_1_when_no_longer_eligible_is_told_so_not_an_error(
    api: Api, autojump_clock: object
) -> None:
    calls = await escalated(api)
    message, call_sid = calls[0]
    number = int(message.caregiver_id.removeprefix("cg-"))  # type: ignore[attr-defined]
    await api.harness.engine.import_roster([caregiver(number, "LPN")], [])  # not an RN now

    response = await api.webhook(GATHER, {"CallSid": call_sid, "Digits": "1"})

    assert response.status_code == 200
    assert "cannot take this shift" in response.text
    assert (await api.harness.engine.shift("shift-1")).state == "escalated"


async def test_pressing_2_on_the_call_declines(api: Api, autojump_clock: object) -> None:
    calls = await escalated(api)
    message, call_sid = calls[0]
    response = await api.webhook(GATHER, {"CallSid": call_sid, "Digits": "2"})
    assert "cannot take this shift" in response.text
    detail = await api.harness.engine.store.shift_detail("shift-1")
    assert detail is not None
    assert [d["caregiver_id"] for d in detail["declines"]] == [message.caregiver_id]  # type: ignore[attr-defined]


async def test_a_replayed_digit_has_one_effect(api: Api, autojump_clock: object) -> None:
    calls = await escalated(api)
    _, call_sid = calls[0]
    first = await api.webhook(GATHER, {"CallSid": call_sid, "Digits": "1"})
    second = await api.webhook(GATHER, {"CallSid": call_sid, "Digits": "1"})
    await api.harness.settle()
    assert first.text == second.text
    assert len(provider_of(api).of(Purpose.CONFIRM)) == 1
    detail = await api.harness.engine.store.shift_detail("shift-1")
    assert detail is not None
    assert [r["kind"] for r in detail["timeline"]].count("reply") == 1


async def test_another_digit_asks_again(api: Api, autojump_clock: object) -> None:
    calls = await escalated(api)
    _, call_sid = calls[0]
    response = await api.webhook(GATHER, {"CallSid": call_sid, "Digits": "7"})
    assert "<Gather " in response.text
    assert "Press 1 to accept" in response.text
    assert (await api.harness.engine.shift("shift-1")).state == "escalated"


async def test_a_call_that_ends_without_a_digit_is_not_an_answer(
    api: Api, autojump_clock: object
) -> None:
    calls = await escalated(api)
    _, call_sid = calls[0]
    response = await api.webhook(GATHER, {"CallSid": call_sid, "Digits": ""})
    await api.webhook(STATUS, {"CallSid": call_sid, "CallStatus": "completed"})
    assert "<Hangup/>" in response.text
    shift = await api.harness.engine.shift("shift-1")
    assert shift.state == "escalated"
    detail = await api.harness.engine.store.shift_detail("shift-1")
    assert detail is not None
    assert detail["declines"] == []


async def test_a_call_for_an_unknown_sid_hears_an_apology_and_no_gather(
    api: Api, autojump_clock: object
) -> None:
    response = await api.webhook(VOICE, {"CallSid": "CA-unknown"})
    assert response.status_code == 200
    assert "<Gather" not in response.text
    assert response.text.endswith("<Hangup/></Response>")


async def test_a_call_answered_after_the_shift_was_filled_offers_nothing(
    api: Api, autojump_clock: object
) -> None:
    calls = await escalated(api)
    _, call_sid = calls[0]
    await api.sms(calls[1][0].to, "yes", "SM-winner")  # type: ignore[attr-defined]
    response = await api.webhook(VOICE, {"CallSid": call_sid})
    assert "<Gather" not in response.text
    assert "no longer available" in response.text


async def test_voice_webhooks_need_a_valid_signature(api: Api, autojump_clock: object) -> None:
    calls = await escalated(api)
    _, call_sid = calls[0]
    form = {"CallSid": call_sid, "Digits": "1"}
    response = await api.client.post(GATHER, data=form, headers=sign(GATHER, form, "wrong"))
    assert response.status_code == 403
    assert (await api.harness.engine.shift("shift-1")).state == "escalated"


# ---- status callbacks ---------------------------------------------------------------------------


async def test_a_late_sent_never_overwrites_delivered(api: Api, autojump_clock: object) -> None:
    await fanned_out(api)
    provider = provider_of(api)
    sid = provider.sid_of(provider.of(Purpose.OFFER, Channel.SMS)[0])
    for status in ("sending", "delivered", "sent", "queued"):
        response = await api.webhook(STATUS, {"MessageSid": sid, "MessageStatus": status})
        assert response.status_code == 200
        assert response.text == EMPTY_TWIML
    row = await api.harness.engine.store.outbox_by_provider_id(sid)
    assert row is not None
    assert row.provider_status == "delivered"


async def test_call_statuses_move_forward_only(api: Api, autojump_clock: object) -> None:
    calls = await escalated(api)
    _, call_sid = calls[0]
    for status in ("ringing", "completed", "in-progress", "initiated"):
        await api.webhook(STATUS, {"CallSid": call_sid, "CallStatus": status})
    row = await api.harness.engine.store.outbox_by_provider_id(call_sid)
    assert row is not None
    assert row.provider_status == "completed"


async def test_a_failed_delivery_is_recorded(api: Api, autojump_clock: object) -> None:
    await fanned_out(api)
    provider = provider_of(api)
    sid = provider.sid_of(provider.of(Purpose.OFFER, Channel.SMS)[0])
    await api.webhook(STATUS, {"MessageSid": sid, "MessageStatus": "sent"})
    await api.webhook(STATUS, {"MessageSid": sid, "MessageStatus": "undelivered"})
    await api.webhook(STATUS, {"MessageSid": sid, "MessageStatus": "delivered"})
    row = await api.harness.engine.store.outbox_by_provider_id(sid)
    assert row is not None
    assert row.provider_status == "undelivered"  # the first final status stays


async def test_a_status_for_an_unknown_sid_or_status_is_accepted_and_ignored(
    api: Api, autojump_clock: object
) -> None:
    unknown = await api.webhook(STATUS, {"MessageSid": "SM-nope", "MessageStatus": "delivered"})
    odd = await api.webhook(STATUS, {"MessageSid": "SM-nope", "MessageStatus": "teleported"})
    assert unknown.status_code == odd.status_code == 200


async def test_a_status_callback_with_a_bad_signature_changes_nothing(
    api: Api, autojump_clock: object
) -> None:
    await fanned_out(api)
    provider = provider_of(api)
    sid = provider.sid_of(provider.of(Purpose.OFFER, Channel.SMS)[0])
    form = {"MessageSid": sid, "MessageStatus": "failed"}
    response = await api.client.post(STATUS, data=form, headers=sign(STATUS, form, "wrong"))
    row = await api.harness.engine.store.outbox_by_provider_id(sid)
    assert response.status_code == 403
    assert row is not None
    assert row.provider_status is None


# ---- TwiML --------------------------------------------------------------------------------------


def test_twiml_escapes_what_it_speaks() -> None:
    response = twiml(gather("/g?a=1&b=2", say('Tom & Jerry <RN> "now"')))
    body = bytes(response.body).decode()
    assert 'action="/g?a=1&amp;b=2"' in body
    assert '<Say>Tom &amp; Jerry &lt;RN&gt; "now"</Say>' in body


async def test_a_refused_webhook_is_logged_without_signature_or_token(
    api: Api, autojump_clock: object
) -> None:
    form = {"From": "+15550000002", "Body": "yes", "MessageSid": "SM-forged"}
    forged = sign(SMS, form, token="not-the-auth-token")
    with structlog.testing.capture_logs() as logs:
        await api.client.post(SMS, data=form, headers=forged)
    [event] = [e for e in logs if e["event"] == "webhook.bad_signature"]
    assert event["log_level"] == "warning"
    assert event["reason"] == "mismatch"
    text = repr(logs)
    for secret in (forged["X-Twilio-Signature"], TWILIO_TOKEN, "+15550000002"):
        assert secret not in text


async def test_someone_calling_our_number_hears_an_apology_at_once(
    api: Api, autojump_clock: object
) -> None:
    started = trio.current_time()
    response = await api.webhook(VOICE, {"CallSid": "CA-incoming", "Direction": "inbound"})
    assert trio.current_time() == started  # no waiting for a sid that will never be stored
    assert "only calls about open shifts" in response.text
    assert "<Gather" not in response.text


async def test_an_unreadable_form_is_403_when_signatures_are_checked(
    api: Api, autojump_clock: object
) -> None:
    response = await api.client.post(
        SMS,
        content=b"From=%ff%fe&Body=yes",
        headers={"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"},
    )
    assert response.status_code == 403
