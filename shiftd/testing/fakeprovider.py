"""A fake Twilio for tests and local trials: the slice of its REST API that shiftd uses.

`FakeTwilio` is an ASGI app (Starlette: a few plain routes, no OpenAPI needed) serving

- `POST /2010-04-01/Accounts/{AccountSid}/Messages.json` (`To`, `From`, `Body`, …) → 201 and
  a message resource with a fresh `SM…` sid;
- `POST /2010-04-01/Accounts/{AccountSid}/Calls.json` (`To`, `From`, `Url` or `Twiml`, …) → 201
  and a call resource with a fresh `CA…` sid;

with HTTP basic auth checked against its account SID and auth token (401 and Twilio error
20003 otherwise) and Twilio-shaped error bodies (`{"code", "message", "more_info",
"status"}`). Every request is recorded (`requests`: time on Trio's clock, parsed form, whether
auth was right, the status answered, the sid). On demand it answers 429 with `Retry-After`,
500, or any other error (`fail_next`), or takes the message and answers late (`slow_next`,
`latency`: the "did it go out?" case).

It also plays the caregivers' side: `reply_sms`, `connect_call`, `answer_call` and
`send_status` post form webhooks to shiftd signed with `X-Twilio-Signature` exactly as Twilio
does (`shiftd.http.signature.compute_signature` over the URL Twilio would have been given).

Use it in-process (`transport()` gives an `httpx.ASGITransport` for the notifier) or on a
real socket (`await nursery.start(fake.serve, "127.0.0.1", 0)` → its base URL). For a local
trial:
`python -m shiftd.testing.fakeprovider --listen 127.0.0.1:8099 --token-file /tmp/twilio-token`.
"""

from __future__ import annotations

import argparse
import functools
import html
import json
import re
import ssl
import sys
from collections.abc import Sequence
from urllib.parse import urljoin, urlsplit

import httpx
import trio

from ..http.signature import compute_signature
from ..logs import mask_phone
from ..paths import TWILIO_GATHER, TWILIO_SMS, TWILIO_STATUS, TWILIO_VOICE
from .fakeapi import (
    API_VERSION,
    DEFAULT_ACCOUNT_SID,
    DEFAULT_AUTH_TOKEN,
    ApiRequest,
    FakeTwilioApi,
    WebhookPost,
)

__all__ = [
    "DEFAULT_ACCOUNT_SID",
    "DEFAULT_AUTH_TOKEN",
    "ApiRequest",
    "FakeTwilio",
    "WebhookPost",
    "main",
]

_GATHER_ACTION_RE = re.compile(r"<Gather\b[^>]*\baction=\"([^\"]*)\"")


class FakeTwilio(FakeTwilioApi):
    """The fake provider. Create inside or outside `trio.run`; use `app` or `transport()`.

    Beside its API (`FakeTwilioApi`) it plays the caregivers: texts, calls picked up and
    answered, status callbacks, posted to shiftd signed as Twilio signs them.
    """

    async def reply_sms(
        self,
        from_phone: str,
        body: str,
        webhook_base_url: str,
        auth_token: str | None = None,
        *,
        to: str | None = None,
        public_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """A caregiver texts `body`: POST Twilio's inbound-SMS webhook to
        `{webhook_base_url}/webhooks/twilio/sms`, signed for `{public_url or
        webhook_base_url}/webhooks/twilio/sms` with `auth_token` (default: the fake's).

        `to` defaults to the number that last texted `from_phone`. `signature` replaces the
        real one (to test refusals). The answer (TwiML) is returned and kept in `webhooks`.
        """
        sid = self._new_sid("SM", inbound=True)
        form = {
            "ToCountry": "US",
            "SmsMessageSid": sid,
            "NumMedia": "0",
            "SmsSid": sid,
            "SmsStatus": "received",
            "Body": body,
            "To": to or self._our_number_for(from_phone),
            "NumSegments": "1",
            "MessageSid": sid,
            "AccountSid": self.account_sid,
            "From": from_phone,
            "ApiVersion": API_VERSION,
        }
        return await self.post_webhook(
            TWILIO_SMS,
            form,
            webhook_base_url,
            auth_token=auth_token,
            public_url=public_url,
            transport=transport,
            signature=signature,
        )

    async def connect_call(
        self,
        call_sid: str,
        webhook_base_url: str,
        auth_token: str | None = None,
        *,
        public_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """The callee picks up: POST the call's `Url` (path taken from the recorded call,
        default `/webhooks/twilio/voice`) as Twilio does; returns shiftd's TwiML. A
        `<Gather action="…">` in it is where `answer_call` then posts, as Twilio would."""
        call = self.find(call_sid)
        recorded = call.form.get("Url") if call else None
        response = await self.post_webhook(
            recorded or TWILIO_VOICE,
            self._call_form(call_sid, "in-progress"),
            webhook_base_url,
            auth_token=auth_token,
            public_url=public_url,
            transport=transport,
            signature=signature,
        )
        action = _GATHER_ACTION_RE.search(response.text)
        if action is not None:
            self._actions[call_sid] = html.unescape(action.group(1))
        return response

    async def answer_call(
        self,
        call_sid: str,
        digits: str,
        webhook_base_url: str,
        auth_token: str | None = None,
        *,
        path: str | None = None,
        public_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """The callee presses `digits`: POST the gather result with `CallSid` and `Digits`;
        returns shiftd's TwiML.

        It goes to `path` if given, else to the `<Gather action>` of the script
        `connect_call` fetched, else to `/webhooks/twilio/voice/gather` on the host of the
        call's `Url`; it is signed for that full URL (or for `public_url` + its path)."""
        call = self.find(call_sid)
        target = path or self._actions.get(call_sid)
        if target is None:
            voice_url = call.form.get("Url") if call else None
            target = urljoin(voice_url, TWILIO_GATHER) if voice_url else TWILIO_GATHER
        form = self._call_form(call_sid, "in-progress")
        form.update({"Digits": digits, "FinishedOnKey": ""})
        return await self.post_webhook(
            target,
            form,
            webhook_base_url,
            auth_token=auth_token,
            public_url=public_url,
            transport=transport,
            signature=signature,
        )

    async def send_status(
        self,
        sid: str,
        status: str,
        webhook_base_url: str,
        auth_token: str | None = None,
        *,
        error_code: int | None = None,
        public_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """A status callback for message or call `sid` (`delivered`, `undelivered`,
        `no-answer`, `completed`…), posted to the path of the `StatusCallback` it was created
        with (default `/webhooks/twilio/status`) and signed for that URL."""
        created = self.find(sid)
        if sid.startswith("CA"):
            form = self._call_form(sid, status)
            if status == "completed":
                form["CallDuration"] = "0"
        else:
            form = {
                "MessageSid": sid,
                "SmsSid": sid,
                "MessageStatus": status,
                "SmsStatus": status,
                "AccountSid": self.account_sid,
                "From": created.form.get("From", "") if created else "",
                "To": created.form.get("To", "") if created else "",
                "ApiVersion": API_VERSION,
            }
        if error_code is not None:
            form["ErrorCode"] = str(error_code)
        recorded = created.form.get("StatusCallback") if created else None
        return await self.post_webhook(
            recorded or TWILIO_STATUS,
            form,
            webhook_base_url,
            auth_token=auth_token,
            public_url=public_url,
            transport=transport,
            signature=signature,
        )

    async def post_webhook(
        self,
        path_or_url: str,
        form: dict[str, str],
        webhook_base_url: str,
        *,
        auth_token: str | None = None,
        public_url: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        signature: str | None = None,
    ) -> httpx.Response:
        """POST `form` to `webhook_base_url` + the path of `path_or_url`, signed as Twilio signs.

        The signed URL is `public_url` + path when given, else `path_or_url` itself when it is
        a full URL (what Twilio was told), else the URL posted to.
        """
        parts = urlsplit(path_or_url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        url = webhook_base_url.rstrip("/") + path
        if public_url:
            signed_url = public_url.rstrip("/") + path
        elif parts.scheme:
            signed_url = path_or_url
        else:
            signed_url = url
        token = auth_token if auth_token is not None else self.auth_token
        headers = {
            "X-Twilio-Signature": signature
            if signature is not None
            else compute_signature(token, signed_url, form),
            "User-Agent": "TwilioProxy/1.1",
        }
        async with httpx.AsyncClient(transport=transport, timeout=15.0, verify=_tls()) as client:
            response = await client.post(url, data=form, headers=headers)
        self.webhooks.append(
            WebhookPost(
                trio.current_time(),
                url,
                signed_url,
                dict(form),
                response.status_code,
                response.text,
            )
        )
        return response


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every webhook this process posts: a client made without one
    loads the CA bundle again (about 0.1 s of CPU), and the crash run posts hundreds."""
    return httpx.create_ssl_context()


# ---- python -m shiftd.testing.fakeprovider -------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Serve the fake on a local port for trying shiftd's `twilio` notifier by hand."""
    parser = argparse.ArgumentParser(
        prog="python -m shiftd.testing.fakeprovider", description=__doc__
    )
    parser.add_argument(
        "--listen", default="127.0.0.1:8099", help="host:port (default %(default)s)"
    )
    parser.add_argument("--token-file", help="write the fake's auth token here (for shiftd)")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    fake = FakeTwilio()
    if args.token_file:
        with open(args.token_file, "w", encoding="utf-8") as file:
            file.write(fake.auth_token + "\n")

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            base = await nursery.start(fake.serve, host or "127.0.0.1", int(port))
            print(
                json.dumps({"api_base": base, "account_sid": fake.account_sid}),
                file=sys.stdout,
                flush=True,
            )
            seen = 0
            while True:
                await trio.sleep(0.2)
                for r in fake.requests[seen:]:
                    to = mask_phone(r.form.get("To"))
                    print(f"{r.status} {r.kind:<7} to={to} {r.form.get('Body', '')}", flush=True)
                seen = len(fake.requests)

    try:
        trio.run(run)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
