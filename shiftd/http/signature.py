"""Twilio's request signature (`X-Twilio-Signature`), computed and checked.

Twilio signs each webhook with the account's auth token: HMAC-SHA1 over the full URL it
requested (scheme, host, path and query, exactly as configured in the console) followed by
every POST parameter as `key + value`, keys sorted; the digest is base64-encoded. See
https://www.twilio.com/docs/usage/webhooks/webhooks-security.

`compute_signature` is used by the fake provider to sign the webhooks it sends, and
`valid_signature` by the webhook endpoints to check them. Neither logs nor keeps anything.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

__all__ = ["compute_signature", "valid_signature"]

_DEFAULT_PORTS = {"https": 443, "http": 80}


def _signed_params(params: Mapping[str, str] | Iterable[tuple[str, str]]) -> str:
    """What follows the URL in the signed text: every `key + value`, sorted."""
    items = params.items() if isinstance(params, Mapping) else params
    # Twilio sorts by key, then (for a repeated key) by value.
    pairs = sorted((str(k), str(v)) for k, v in items)
    return "".join(k + v for k, v in pairs)


def _sign(auth_token: str, text: str) -> bytes:
    digest = hmac.new(auth_token.encode("utf-8"), text.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest)


def compute_signature(
    auth_token: str, url: str, params: Mapping[str, str] | Iterable[tuple[str, str]]
) -> str:
    """The base64 HMAC-SHA1 signature Twilio sends for a POST of `params` to `url`."""
    return _sign(auth_token, url + _signed_params(params)).decode("ascii")


@functools.lru_cache(maxsize=32)  # one URL per webhook route, in practice
def _url_variants(url: str) -> tuple[str, ...]:
    """`url` as given, plus with the default port added or removed (Twilio may sign either)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return (url,)
    default = _DEFAULT_PORTS.get(parts.scheme)
    if default is None or parts.hostname is None:
        return (url,)
    host = parts.hostname
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    if port is None:
        netloc = f"{prefix}{host}:{default}"
    elif port == default:
        netloc = f"{prefix}{host}"
    else:
        return (url,)
    return (url, urlunsplit(parts._replace(netloc=netloc)))


def valid_signature(
    tokens: Sequence[str],
    url: str,
    params: Mapping[str, str] | Iterable[tuple[str, str]],
    signature: str | None,
) -> bool:
    """Whether `signature` was made by any of `tokens` (current and previous, during rotation).

    Every comparison is constant-time and every token is tried, so timing says nothing about
    which token (if any) matched. A missing or empty signature, or no tokens, is never valid.
    """
    if not signature or not tokens:
        return False
    signed_params = _signed_params(params)
    given = signature.strip().encode("ascii", "replace")
    ok = False
    for candidate_url in _url_variants(url):
        for token in tokens:
            if not token:
                continue
            ok |= hmac.compare_digest(_sign(token, candidate_url + signed_params), given)
    return ok
