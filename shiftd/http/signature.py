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
import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit

__all__ = ["compute_signature", "valid_signature"]

_DEFAULT_PORTS = {"https": 443, "http": 80}


def _payload(url: str, params: Mapping[str, str] | Iterable[tuple[str, str]]) -> bytes:
    items = params.items() if isinstance(params, Mapping) else params
    # Twilio sorts by key, then (for a repeated key) by value.
    pairs = sorted((str(k), str(v)) for k, v in items)
    return (url + "".join(k + v for k, v in pairs)).encode("utf-8")


def compute_signature(
    auth_token: str, url: str, params: Mapping[str, str] | Iterable[tuple[str, str]]
) -> str:
    """The base64 HMAC-SHA1 signature Twilio sends for a POST of `params` to `url`."""
    digest = hmac.new(auth_token.encode("utf-8"), _payload(url, params), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _url_variants(url: str) -> list[str]:
    """`url` as given, plus with the default port added or removed (Twilio may sign either)."""
    variants = [url]
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return variants
    default = _DEFAULT_PORTS.get(parts.scheme)
    if default is None or parts.hostname is None:
        return variants
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
        return variants
    variants.append(urlunsplit(parts._replace(netloc=netloc)))
    return variants


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
    items = list(params.items() if isinstance(params, Mapping) else params)
    given = signature.strip().encode("ascii", "replace")
    ok = False
    for candidate_url in _url_variants(url):
        for token in tokens:
            if not token:
                continue
            expected = compute_signature(token, candidate_url, items).encode("ascii")
            ok |= hmac.compare_digest(expected, given)
    return ok
