"""Twilio-compatible webhooks: SMS replies, the voice call script, digits, status callbacks.

Every webhook is a form POST signed by the provider (`X-Twilio-Signature`, see
`signature.py`): the signature is checked against `http.public_url` + the request's path and
query, with the current and (during rotation) previous auth token, before anything is read
from the form. A bad or missing signature is answered 403, logged without the signature or
any token, and nothing is processed.

Answers are TwiML. **SMS replies are not put in the TwiML**: the engine has already queued
its reply in the outbox (persist, then act), and the outbox sends it through the provider
like every other text: with the same rate limit, retries, at-most-once bookkeeping and
audit trail. Answering it in TwiML as well would text the caregiver twice, so the SMS webhook
answers an empty `<Response/>`.

Replays are processed once: the SMS webhook passes `MessageSid` as the inbound provider id,
and a digit is keyed `CallSid:Digits`; the engine remembers both and answers a repeat with
the first outcome without doing anything again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape, quoteattr

import trio
from fastapi import APIRouter, Request, Response

from ..engine import NotFound
from ..logs import get_logger
from ..messages import Messages
from ..models import Channel, Outcome, Purpose
from ..paths import TWILIO_GATHER, TWILIO_SMS, TWILIO_STATUS, TWILIO_VOICE
from ..store.base import ProviderMessageRow, ShiftRow
from .context import HttpContext, context_of
from .errors import ApiError, error_responses
from .signature import valid_signature

log = get_logger(__name__)

MAX_FIELDS = 200
MAX_SID = 64
_CALL_LOOKUP_TRIES = 5  # the call's sid is stored when the provider accepts the call; the
_CALL_LOOKUP_PAUSE = 0.2  # callee answering first is rare but possible: look a few times

_FORM_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {"type": "object", "additionalProperties": {"type": "string"}}
            }
        },
    },
    "parameters": [
        {
            "name": "X-Twilio-Signature",
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": "Base64 HMAC-SHA1 of the URL and sorted parameters.",
        }
    ],
}
_TWIML: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/xml": {"schema": {"type": "string"}}}, "description": "TwiML"},
    **error_responses(400, 403, 413, 415, 500, 503),
}

router = APIRouter(tags=["twilio webhooks"])


# ---- signed forms ---------------------------------------------------------------------------


def signed_url(request: Request, public_url: str | None) -> str:
    """The URL the provider signed: the configured public base URL (else the URL the request
    reached) + the path as sent + the query string."""
    scope = request.scope
    raw_path: bytes | None = scope.get("raw_path")
    path: str = raw_path.decode("latin-1") if raw_path else scope.get("path", "")
    base = public_url or f"{request.url.scheme}://{request.url.netloc}"
    query_string: bytes = scope.get("query_string", b"")
    query = query_string.decode("latin-1")
    return base.rstrip("/") + path + (f"?{query}" if query else "")


async def signed_form(request: Request) -> dict[str, str]:
    """The webhook's form parameters, once its signature is verified; else 403 (or 400 for a
    form that cannot be read)."""
    ctx: HttpContext = context_of(request)
    settings = ctx.settings
    body = await request.body()
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError) as exc:
        # Unreadable, so it cannot be signed either: with checks on, unauthenticated input
        # never gets further than a 403.
        log.warning("webhook.bad_form", path=request.url.path)
        if settings.verify_signatures:
            raise ApiError(403, "forbidden", "invalid X-Twilio-Signature") from exc
        raise ApiError(400, "bad_request", "the form cannot be read") from exc
    if settings.verify_signatures:
        signature = request.headers.get("x-twilio-signature")
        url = signed_url(request, settings.public_url)
        if not settings.twilio_tokens:
            log.warning("webhook.refused", path=request.url.path, reason="no auth token configured")
            raise ApiError(403, "forbidden", "webhook signatures cannot be checked here")
        if not valid_signature(settings.twilio_tokens, url, pairs, signature):
            log.warning(
                "webhook.bad_signature",
                path=request.url.path,
                reason="missing" if not signature else "mismatch",
            )
            raise ApiError(403, "forbidden", "invalid X-Twilio-Signature")
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


async def _signed(request: Request) -> tuple[HttpContext, dict[str, str]]:
    """The context and the verified form, for a webhook handler to call first thing.

    Not FastAPI dependencies (`Depends`): resolving those two took more CPU per webhook
    than checking the signature does (bench/web.py measures the webhook stack)."""
    return context_of(request), await signed_form(request)


def _field(form: dict[str, str], name: str, *, max_length: int = MAX_SID) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise ApiError(400, "bad_request", f"missing form field {name}")
    if len(value) > max_length:
        raise ApiError(400, "bad_request", f"form field {name} is too long")
    return value


# ---- TwiML ------------------------------------------------------------------------------------


def twiml(*verbs: str) -> Response:
    body = '<?xml version="1.0" encoding="UTF-8"?>'
    body += f"<Response>{''.join(verbs)}</Response>" if verbs else "<Response/>"
    return Response(body, media_type="text/xml")


def say(text: str, language: str | None = None) -> str:
    """A `<Say>` of `text`, read in `language` (e.g. ``es-US``) when given."""
    attrs = f" language={quoteattr(language)}" if language else ""
    return f"<Say{attrs}>{escape(text)}</Say>"


def gather(action: str, *inner: str, timeout: int = 8) -> str:
    attrs = f'numDigits="1" method="POST" timeout="{timeout}" action={quoteattr(action)}'
    return f"<Gather {attrs}>{''.join(inner)}</Gather>"


HANGUP = "<Hangup/>"
_SPOKEN: dict[Outcome, str] = {
    Outcome.CLAIMED: "claimed",
    Outcome.DECLINED: "declined",
    Outcome.ALREADY_FILLED: "already_filled",
    Outcome.NO_OPEN_OFFER: "no_open_offer",
    Outcome.UNKNOWN_SENDER: "unknown_sender",
    Outcome.AMBIGUOUS: "ambiguous",
    Outcome.NOT_ELIGIBLE: "not_eligible",
    Outcome.NOT_OFFERED: "not_eligible",
}
"""The voice prompt (``voice_<name>`` template) that answers each outcome on a call; any
other outcome is answered ``voice_otherwise``."""


class _Voice:
    """What a call says, in the callee's language (her roster ``language``, else her
    organization's), with the matching TwiML ``<Say language>``."""

    def __init__(self, messages: Messages) -> None:
        self.messages = messages

    @classmethod
    async def of(cls, ctx: HttpContext, row: ProviderMessageRow | None) -> _Voice:
        engine = ctx.engine
        org, language = "default", None
        if row is not None:
            with contextlib.suppress(NotFound):
                language = (await engine.caregiver(row.caregiver_id)).language
            if row.shift_id:
                with contextlib.suppress(NotFound):
                    org = (await engine.shift(row.shift_id)).organization_id
        return cls(engine.organizations.get(org).messages_for(language))

    def say(self, text: str) -> str:
        return say(text, self.messages.voice_language)

    def prompt(self, name: str) -> str:
        return self.say(self.messages.spoken(name))

    def answer(self, outcome: Outcome) -> str:
        return self.prompt(_SPOKEN.get(outcome, "otherwise"))


def _gather_url(request: Request, public_url: str | None) -> str:
    """Where the caregiver's digit goes: absolute under the public URL, else relative to
    this document (the provider resolves it against the URL it fetched)."""
    return public_url.rstrip("/") + TWILIO_GATHER if public_url else TWILIO_GATHER


async def _find_call(
    ctx: HttpContext, call_sid: str, form: dict[str, str]
) -> ProviderMessageRow | None:
    """The outbox row of the call `call_sid`. Someone calling our number (`Direction:
    inbound`) has none; for our own calls the sid may be stored a moment after the callee
    answers, so it is looked up a few times."""
    tries = 1 if form.get("Direction") == "inbound" else _CALL_LOOKUP_TRIES
    for attempt in range(tries):
        row = await ctx.engine.sent_message(call_sid)
        if row is not None or attempt == tries - 1:
            return row
        await trio.sleep(_CALL_LOOKUP_PAUSE)
    return None


# ---- routes -----------------------------------------------------------------------------------


@router.post(
    TWILIO_SMS,
    openapi_extra=_FORM_DOC,
    responses=_TWIML,
    response_class=Response,
    summary="An SMS reply (From, To, Body, MessageSid); answered with an empty TwiML response",
)
async def sms(request: Request) -> Response:
    ctx, form = await _signed(request)
    sid = _field(form, "MessageSid")
    sender = _field(form, "From")
    body = form.get("Body", "")[:1600]
    result = await ctx.engine.inbound(sender, body, Channel.SMS, provider_id=sid)
    log.info(
        "webhook.sms",
        outcome=result.outcome,
        shift_id=result.shift_id,
        caregiver_id=result.caregiver_id,
        replayed=result.replayed,
    )
    return twiml()  # the reply, if any, is already queued in the outbox


@router.post(
    TWILIO_VOICE,
    openapi_extra=_FORM_DOC,
    responses=_TWIML,
    response_class=Response,
    summary="An outbound call was answered (CallSid): speak the offer, gather one digit",
)
async def voice(request: Request) -> Response:
    ctx, form = await _signed(request)
    call_sid = _field(form, "CallSid")
    row = await _find_call(ctx, call_sid, form)
    if row is None or row.channel is not Channel.VOICE or row.shift_id is None:
        log.warning("webhook.voice_unknown_call", found=row is not None)
        return twiml((await _Voice.of(ctx, None)).prompt("unknown_call"), HANGUP)
    if row.purpose is not Purpose.OFFER:  # a notice by phone (a lost confirmation's call)
        log.info("webhook.voice_notice", shift_id=row.shift_id, caregiver_id=row.caregiver_id)
        return twiml(say(row.body), HANGUP)
    voice = await _Voice.of(ctx, row)
    try:
        shift: ShiftRow | None = await ctx.engine.shift(row.shift_id)
    except NotFound:
        shift = None
    if shift is None or not shift.state.in_progress:
        log.info("webhook.voice_closed", shift_id=row.shift_id, caregiver_id=row.caregiver_id)
        return twiml(voice.answer(Outcome.NO_OPEN_OFFER), HANGUP)
    log.info("webhook.voice", shift_id=row.shift_id, caregiver_id=row.caregiver_id)
    action = _gather_url(request, ctx.settings.public_url)
    return twiml(gather(action, voice.say(row.body)), voice.prompt("no_answer"), HANGUP)


@router.post(
    TWILIO_GATHER,
    openapi_extra=_FORM_DOC,
    responses=_TWIML,
    response_class=Response,
    summary="The digit pressed on a call (CallSid, Digits): 1 accepts, 2 declines",
)
async def voice_gather(request: Request) -> Response:
    ctx, form = await _signed(request)
    call_sid = _field(form, "CallSid")
    digits = form.get("Digits", "").strip()
    if len(digits) > 8:
        raise ApiError(400, "bad_request", "form field Digits is too long")
    row = await _find_call(ctx, call_sid, form)
    if row is None or row.channel is not Channel.VOICE or row.shift_id is None:
        log.warning("webhook.gather_unknown_call", found=row is not None)
        return twiml((await _Voice.of(ctx, None)).answer(Outcome.UNKNOWN_SENDER), HANGUP)
    voice = await _Voice.of(ctx, row)
    if not digits:  # the gather timed out: not an answer
        return twiml(voice.prompt("no_answer"), HANGUP)
    try:
        phone = (await ctx.engine.caregiver(row.caregiver_id)).phone
    except NotFound:
        phone = row.to_phone
    result = await ctx.engine.inbound(
        phone,
        digits,
        Channel.VOICE,
        provider_id=f"{call_sid}:{digits}",
        shift_id=row.shift_id,
    )
    log.info(
        "webhook.gather",
        outcome=result.outcome,
        shift_id=row.shift_id,
        caregiver_id=row.caregiver_id,
        replayed=result.replayed,
    )
    if result.outcome is Outcome.UNKNOWN_INTENT:
        action = _gather_url(request, ctx.settings.public_url)
        return twiml(gather(action, voice.prompt("press_again")), voice.prompt("no_answer"))
    return twiml(voice.answer(result.outcome), HANGUP)


@router.post(
    TWILIO_STATUS,
    openapi_extra=_FORM_DOC,
    responses=_TWIML,
    response_class=Response,
    summary="Delivery status: MessageSid + MessageStatus, or CallSid + CallStatus",
)
async def status(request: Request) -> Response:
    ctx, form = await _signed(request)
    if form.get("CallStatus"):
        sid, state = _field(form, "CallSid"), _field(form, "CallStatus", max_length=32)
    else:
        sid = form.get("MessageSid") or form.get("SmsSid") or ""
        sid = _field({"MessageSid": sid}, "MessageSid")
        state = _field(form, "MessageStatus", max_length=32)
    state = state.lower()
    outcome, row = await ctx.engine.delivery_status(sid, state)
    log.info("webhook.status", status=state, result=outcome)
    if row is not None and state in _FAILED:
        log.warning(
            "delivery.failed",
            status=state,
            shift_id=row.shift_id,
            caregiver_id=row.caregiver_id,
            channel=row.channel,
            purpose=row.purpose,
            error_code=form.get("ErrorCode", "")[:16] or None,
        )
    return twiml()


_FAILED: Sequence[str] = ("failed", "undelivered", "busy", "no-answer", "canceled")
