"""Coordinator webhooks: outbox rows on the `webhook` channel, POSTed as JSON.

The outbox gives webhooks what it gives texts: a row per notification with a unique key
(never two), retries with backoff for failures known not to have been taken (connection
refused, HTTP 429 or 5xx), and at-most-once for the rest. The wrapper hands every other
channel to the SMS/voice notifier it wraps, rate limits included.

With a secret for the recipient, each POST carries `X-Shiftd-Timestamp` (Unix seconds) and
`X-Shiftd-Signature: sha256=<hex>`, the HMAC-SHA256 of `"<timestamp>.<body>"` under the
secret: the receiver recomputes it, compares in constant time and refuses old timestamps.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import timedelta
from urllib.parse import urlsplit

import httpx

from .. import __version__
from ..logs import get_logger
from ..models import Channel
from .base import (
    Notifier,
    OneChannel,
    Outgoing,
    PermanentSendError,
    SendOutcomeUnknown,
    TransientSendError,
)

log = get_logger(__name__)


class WebhookNotifier(OneChannel):
    """Sends `webhook` rows itself and everything else through `inner`."""

    channel = Channel.WEBHOOK

    def __init__(
        self,
        inner: Notifier,
        *,
        secrets: Mapping[str, str] | None = None,
        timeout: timedelta = timedelta(seconds=10),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """`secrets` maps a recipient (an outbox row's `caregiver_id`, such as
        `coordinator:<organization>`) to the secret its webhooks are signed with."""
        super().__init__(inner)
        self._secrets = {k: v.encode() for k, v in (secrets or {}).items()}
        seconds = timeout.total_seconds()
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(seconds, connect=min(seconds, 5.0)),
            transport=transport,
            follow_redirects=False,
            headers={"User-Agent": f"shiftd/{__version__}", "Content-Type": "application/json"},
        )

    async def _send_own(self, message: Outgoing) -> str | None:
        """POST a webhook row's body to its URL.

        Raises TransientSendError (not connected, 429, 5xx), PermanentSendError (another
        4xx or 3xx) or SendOutcomeUnknown (sent, but no answer in time).
        """
        host = urlsplit(message.to).netloc  # never the path: it may hold a token
        body = message.body.encode()
        headers = {"X-Shiftd-Delivery": str(message.outbox_id)}
        secret = self._secrets.get(message.caregiver_id)
        if secret is not None:
            stamp = str(int(message.at.timestamp()))
            digest = hmac.new(secret, stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
            headers |= {"X-Shiftd-Timestamp": stamp, "X-Shiftd-Signature": f"sha256={digest}"}
        try:
            response = await self._client.post(message.to, content=body, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransientSendError(f"webhook {host}: not connected ({exc})") from None
        except httpx.HTTPError as exc:
            raise SendOutcomeUnknown(f"webhook {host}: {type(exc).__name__}") from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise TransientSendError(f"webhook {host}: HTTP {status}")
        if not 200 <= status < 300:
            raise PermanentSendError(f"webhook {host}: HTTP {status}")
        log.info("webhook.delivered", host=host, shift_id=message.shift_id, status=status)
        return None

    async def aclose(self) -> None:
        try:
            await self._client.aclose()
        finally:
            await self._inner.aclose()
