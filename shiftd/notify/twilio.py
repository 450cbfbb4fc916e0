"""`twilio`: texts and calls through Twilio's REST API, with httpx under Trio.

Each message is one `POST {api_base}/2010-04-01/Accounts/{sid}/Messages.json` (a call:
`…/Calls.json`) with HTTP basic auth (account SID, auth token). The answer decides what the
sender does with the outbox row:

- 2xx: the `sid` from the JSON answer (`SM…`, `CA…`) is returned; the row is sent and keeps
  it as `provider_id` (the voice and status webhooks find the row by it);
- 429 or 5xx: `TransientSendError` carrying `Retry-After` (seconds or an HTTP date): retried;
- connection refused, connect or pool timeout: `TransientSendError` (nothing went out);
- any other 4xx (and 3xx): `PermanentSendError` with Twilio's error code and message: failed;
- read or write timeout, connection lost after the request went out: `SendOutcomeUnknown`,
  failed and never re-sent (Twilio may have taken it: at-most-once).

Every request has connect, read, write and pool timeouts; answers are read up to 64 KiB.
Texts are rate limited per from-number (`RatePool`, a token bucket each; the pool hands the
next text to the number that frees first); calls share one account-wide bucket (Twilio's
"calls per second") and come from a number chosen per callee, so a caregiver always sees the
same caller ID. Offers carry Twilio's `ValidityPeriod`, so an offer stuck in Twilio's queue is
dropped rather than arriving after the shift is long filled.

When an HTTP `public_url` is configured, texts and calls ask for status callbacks at
`{public_url}/webhooks/twilio/status` and calls fetch their script from
`{public_url}/webhooks/twilio/voice` (where the caregiver can press 1 or 2). Without one, a
call just speaks its text (inline TwiML) and nobody is told about delivery.

Nothing here logs the auth token (it lives only inside the httpx client's auth) or a whole
phone number (`mask_phone`; Twilio's error messages are scrubbed of numbers too).
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from xml.sax.saxutils import escape

import httpx

from .. import __version__
from ..config import TwilioNotifierConfig
from ..logs import get_logger, mask_phone
from ..models import Channel, Purpose
from ..outbox.ratelimit import RatePool
from ..paths import TWILIO_STATUS, TWILIO_VOICE
from .base import Outgoing, PermanentSendError, SendOutcomeUnknown, TransientSendError

__all__ = ["DEFAULT_API_BASE", "TwilioNotifier", "parse_retry_after", "scrub_phones"]

log = get_logger(__name__)

DEFAULT_API_BASE = "https://api.twilio.com"
API_VERSION = "2010-04-01"
MAX_ANSWER_BYTES = 64 * 1024
"""Longest answer body read from the API; the rest is ignored."""
MAX_RETRY_AFTER = 24 * 3600.0
"""A longer `Retry-After` is cut to this (it keeps the retry instant representable)."""

_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError)
_PHONE_RE = re.compile(r"\+?\d[\d\s().-]{5,}\d")


def scrub_phones(text: str) -> str:
    """`text` with every phone-number-like run of digits masked (`…34`)."""
    return _PHONE_RE.sub(lambda m: mask_phone(m.group()), text)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP date.

    `now` is the instant the date is measured from (best: the answer's own `Date` header,
    which shares the server's clock). None for a missing or unreadable value; never negative;
    at most `MAX_RETRY_AFTER`.
    """
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - now).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


class TwilioNotifier:
    """Sends `Outgoing` messages through Twilio; implements `Notifier` and `Throttled`.

    `transport` replaces the network (tests pass the fake provider's in-process transport).
    Create inside `trio.run`; `aclose()` closes the connection pool.
    """

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_numbers: Sequence[str],
        api_base: str = DEFAULT_API_BASE,
        public_url: str | None = None,
        validity_period: timedelta | None = timedelta(minutes=15),
        rate_per_second: float = 1.0,
        burst: int = 1,
        calls_per_second: float = 1.0,
        connect_timeout: timedelta = timedelta(seconds=5),
        request_timeout: timedelta = timedelta(seconds=8),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not from_numbers:
            raise ValueError("TwilioNotifier needs at least one from-number")
        self.account_sid = account_sid
        self.from_numbers = tuple(from_numbers)
        self.api_base = api_base.rstrip("/")
        self.public_url = public_url.rstrip("/") if public_url else None
        self.validity_period = validity_period
        account = f"{self.api_base}/{API_VERSION}/Accounts/{account_sid}"
        self.messages_url = f"{account}/Messages.json"
        self.calls_url = f"{account}/Calls.json"
        self.texts = RatePool(self.from_numbers, rate_per_second, burst)
        self.calls = RatePool(["account"], calls_per_second, 1)
        connect = connect_timeout.total_seconds()
        self._client = httpx.AsyncClient(
            auth=httpx.BasicAuth(account_sid, auth_token),
            timeout=httpx.Timeout(request_timeout.total_seconds(), connect=connect, pool=connect),
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": f"shiftd/{__version__}", "Accept": "application/json"},
        )

    @classmethod
    def from_config(
        cls,
        config: TwilioNotifierConfig,
        auth_token: str,
        *,
        public_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> TwilioNotifier:
        return cls(
            account_sid=config.account_sid,
            auth_token=auth_token,
            from_numbers=config.from_numbers,
            api_base=config.api_base,
            public_url=public_url,
            validity_period=config.validity_period,
            rate_per_second=config.rate_per_second,
            burst=config.burst,
            calls_per_second=config.calls_per_second,
            connect_timeout=config.connect_timeout,
            request_timeout=config.request_timeout,
            transport=transport,
        )

    def __repr__(self) -> str:  # never the token
        return (
            f"TwilioNotifier(account_sid={self.account_sid!r}, api_base={self.api_base!r},"
            f" numbers={len(self.from_numbers)})"
        )

    # ---- Throttled -----------------------------------------------------------------------

    async def acquire(self, message: Outgoing) -> str:
        """Wait for a turn (texts: per number; calls: per account); the number to send from."""
        if message.channel is Channel.VOICE:
            await self.calls.acquire()
            return self.caller_id(message.to)
        return await self.texts.acquire()

    def release(self, message: Outgoing) -> None:
        if message.channel is Channel.VOICE:
            self.calls.release("account")
        elif message.from_number in self.from_numbers:
            self.texts.release(message.from_number)

    def caller_id(self, to: str) -> str:
        """The number calls to `to` come from: the same one every time."""
        return self.from_numbers[zlib.crc32(to.encode("utf-8")) % len(self.from_numbers)]

    # ---- Notifier ------------------------------------------------------------------------

    async def send(self, message: Outgoing) -> str | None:
        """POST the message; the Twilio sid. Raises as in the module docstring."""
        if message.channel is Channel.VOICE:
            url, form = self.calls_url, self.call_form(message)
        else:
            url, form = self.messages_url, self.message_form(message)
        sid = await self._post(url, form, message)
        log.debug(
            "twilio.accepted",
            outbox_id=message.outbox_id,
            channel=message.channel.value,
            sid=sid,
            to=mask_phone(message.to),
        )
        return sid

    async def aclose(self) -> None:
        await self._client.aclose()

    # ---- requests ------------------------------------------------------------------------

    def message_form(self, message: Outgoing) -> dict[str, str]:
        form = {
            "To": message.to,
            "From": message.from_number or self.from_numbers[0],
            "Body": message.body,
        }
        if message.purpose is Purpose.OFFER and self.validity_period is not None:
            form["ValidityPeriod"] = str(max(1, int(self.validity_period.total_seconds())))
        if self.public_url:
            form["StatusCallback"] = self.public_url + TWILIO_STATUS
        return form

    def call_form(self, message: Outgoing) -> dict[str, str]:
        form = {"To": message.to, "From": message.from_number or self.caller_id(message.to)}
        if self.public_url:
            form["Url"] = self.public_url + TWILIO_VOICE
            form["StatusCallback"] = self.public_url + TWILIO_STATUS
        else:
            form["Twiml"] = f"<Response><Say>{escape(message.body)}</Say></Response>"
        return form

    async def _post(self, url: str, form: dict[str, str], message: Outgoing) -> str | None:
        try:
            async with self._client.stream("POST", url, data=form) as response:
                try:
                    body: bytes | None = await _read_bounded(response)
                except httpx.TransportError:
                    body = None  # the status line is in: it decides alone
                return self._judge(response.status_code, response.headers, body, message)
        except _NOT_SENT as exc:
            raise TransientSendError(f"Twilio not reached: {_describe(exc)}") from None
        except (httpx.UnsupportedProtocol, httpx.LocalProtocolError) as exc:
            raise PermanentSendError(f"request not sendable: {_describe(exc)}") from None
        except httpx.TransportError as exc:
            # Read/write timeout, connection reset or closed after the request went out:
            # Twilio may have taken it. At-most-once: never retried.
            raise SendOutcomeUnknown(
                f"no answer from Twilio after the request went out ({_describe(exc)})"
            ) from None

    def _judge(
        self, status: int, headers: httpx.Headers, body: bytes | None, message: Outgoing
    ) -> str | None:
        if 200 <= status < 300:
            sid = _json(body).get("sid")
            if isinstance(sid, str) and sid:
                return sid
            log.warning("twilio.no_sid", outbox_id=message.outbox_id, status=status)
            return None  # accepted all the same
        error = _error_text(status, body)
        if status == 429 or 500 <= status <= 599:
            now = _http_date(headers.get("Date")) or message.at
            retry_after = parse_retry_after(headers.get("Retry-After"), now=now)
            raise TransientSendError(error, retry_after=retry_after)
        if status in (401, 403):
            log.error(
                "twilio.unauthorized",
                status=status,
                account_sid=self.account_sid,
                hint="check notifier.account_sid and the token in notifier.auth_token_file",
            )
        raise PermanentSendError(error)


async def _read_bounded(response: httpx.Response) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk[: MAX_ANSWER_BYTES - size])
        size += len(chunks[-1])
        if size >= MAX_ANSWER_BYTES:
            break
    return b"".join(chunks)


def _json(body: bytes | None) -> dict[str, object]:
    if not body:
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _error_text(status: int, body: bytes | None) -> str:
    """`HTTP 400: Twilio error 21211: Invalid 'To' Phone Number (…67)`, phones masked."""
    data = _json(body)
    code, text = data.get("code"), data.get("message")
    parts = [f"HTTP {status}"]
    if code is not None:
        parts.append(f"Twilio error {code}")
    if isinstance(text, str) and text:
        parts.append(scrub_phones(text)[:300])
    elif code is None and body:
        parts.append(scrub_phones(body[:200].decode("utf-8", "replace")).strip())
    return ": ".join(parts)


def _http_date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__
