"""The guard in front of every route: bearer token, body size, content type, time limit, and
the last line against a 500 that leaks.

A pure ASGI middleware (not Starlette's `BaseHTTPMiddleware`, which buffers responses in a
task group) so it sees the raw byte stream. In order, for each HTTP request:

0. **Method**: a documented path asked with a method its OpenAPI operations do not list →
   405 with `Allow` (`methods(path)`, see `shiftd.http.methods`), before anything else.
1. **Bearer token** for every path except `/health`, `/ready`, `/openapi.json`, the
   webhooks (which carry a Twilio signature instead) and the coordinator's page (`/` and
   `/board…`, which has its own sign-in): missing or wrong → 401, before a byte of the
   body is read.
2. **Body size**: a `Content-Length` over `max_body` → 413 at once; otherwise the body is
   read and *counted* (so a chunked body without a length is caught too) and 413 answered
   the moment it passes `max_body`. Bodies are small, so the whole body is buffered and
   handed to the app as one message.
3. **Content type**: webhook and board POSTs must be `application/x-www-form-urlencoded`
   (what Twilio and HTML forms send), `POST /roster/csv` a `text/csv` one; any other
   non-empty body must be JSON (`application/json` or `+json`), and is checked to parse
   (`bad_json` otherwise) → 415 / 400.
4. **Time limit**: the whole request, body included, within `request_timeout`; then 503
   `timeout` if nothing was answered yet.
5. **Catch-all**: an exception from a route (any class) is logged (`http.crashed` with a
   fresh `ref`, no locals), counted (`on_crash`) and answered 500 `{"error": {"code":
   "internal"}}` quoting the ref (also in `X-Request-Ref`); nothing else of it reaches the
   client, and the server goes on.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

import trio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..logs import get_logger, new_ref
from .errors import send_error
from .methods import allow_header

log = get_logger(__name__)

OPEN_PATHS = frozenset({"/health", "/ready", "/openapi.json"})
WEBHOOK_PREFIX = "/webhooks/"
FORM_TYPE = "application/x-www-form-urlencoded"
CSV_PATH = "/roster/csv"


class _TooLarge(Exception):
    pass


BOARD_PREFIX = "/board"
"""The coordinator's page: its own sign-in (session cookie, CSRF), form POSTs."""


def _is_board(path: str) -> bool:
    return path == "/" or path == BOARD_PREFIX or path.startswith(BOARD_PREFIX + "/")


def needs_token(path: str) -> bool:
    return path not in OPEN_PATHS and not path.startswith(WEBHOOK_PREFIX) and not _is_board(path)


ADMIN = ""
"""`token_scope` of the `http.token_file` token: every organization."""


def token_scope(header: str | None, settings: Any) -> str | None:
    """Whom an `Authorization` header speaks for: ADMIN (the `token_file` token), an
    organization id (one of `organization_tokens`), or None (no valid token). Every token is
    compared, in constant time, whatever matches."""
    found = ADMIN if bearer_ok(header, settings.api_token) else None
    for org, token in settings.organization_tokens:
        if bearer_ok(header, token) and found is None:
            found = org
    return found


def bearer_ok(header: str | None, token: str | None) -> bool:
    """Whether an `Authorization` header carries `token` (constant-time compare)."""
    if token is None or header is None:
        return False
    scheme, _, given = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"), token.encode("utf-8"))


def media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def is_json_type(content_type: str | None) -> bool:
    kind = media_type(content_type)
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


class GuardMiddleware:
    """See the module docstring. `settings()` returns the current HttpSettings."""

    def __init__(
        self,
        app: ASGIApp,
        settings: Callable[[], Any],
        on_crash: Callable[[], None] | None = None,
        methods: Callable[[str], frozenset[str] | None] | None = None,
    ) -> None:
        self.app = app
        self._settings = settings
        self._on_crash = on_crash
        self._methods = methods

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = self._settings()
        started = False

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            with trio.move_on_after(settings.request_timeout) as timer:
                await self._guarded(scope, receive, tracked_send, settings)
            if timer.cancelled_caught:
                log.warning("http.timed_out", path=scope.get("path"), answered=started)
                if not started:
                    await send_error(send, 503, "timeout", "the request took too long")
        except Exception:
            # structlog is configured without locals in tracebacks: no tokens or phones.
            ref = new_ref()
            log.exception(
                "http.crashed", ref=ref, method=scope.get("method"), path=scope.get("path")
            )
            if self._on_crash is not None:
                self._on_crash()
            if not started:
                message = f"internal error (ref {ref}); see the daemon's log"
                await send_error(send, 500, "internal", message, {"X-Request-Ref": ref})

    async def _guarded(self, scope: Scope, receive: Receive, send: Send, settings: Any) -> None:
        path: str = scope.get("path", "")
        method: str = scope.get("method", "GET")
        headers = _headers(scope)

        allowed = self._methods(path) if self._methods is not None else None
        if allowed is not None and method not in allowed:
            await send_error(
                send,
                405,
                "method_not_allowed",
                f"{method} is not allowed here; allowed: {allow_header(allowed)}",
                {"Allow": allow_header(allowed)},
            )
            return

        if needs_token(path) and token_scope(headers.get("authorization"), settings) is None:
            message = (
                "missing or invalid bearer token"
                if settings.api_token is not None or settings.organization_tokens
                else "the REST API is off: set http.token_file"
            )
            await send_error(send, 401, "unauthorized", message, {"WWW-Authenticate": "Bearer"})
            return

        limit = settings.max_body
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                await send_error(send, 400, "bad_request", "Content-Length is not a number")
                return
            if int(length) > limit:
                await _too_large(send, limit)
                return
        try:
            body = await _read_body(receive, limit)
        except _TooLarge:
            await _too_large(send, limit)
            return
        if body is None:  # the client went away
            return

        content_type = headers.get("content-type")
        if (path.startswith(WEBHOOK_PREFIX) or _is_board(path)) and method == "POST":
            if media_type(content_type) != FORM_TYPE:
                await send_error(
                    send, 415, "unsupported_media_type", f"webhooks and forms take {FORM_TYPE}"
                )
                return
        elif body and path == CSV_PATH and method == "POST":
            if media_type(content_type) != "text/csv":
                await send_error(
                    send, 415, "unsupported_media_type", f"{CSV_PATH} takes text/csv bodies"
                )
                return
        elif body:
            if not is_json_type(content_type):
                await send_error(
                    send, 415, "unsupported_media_type", "request bodies must be application/json"
                )
                return
            problem = _json_problem(body)
            if problem is not None:
                await send_error(send, 400, "bad_json", problem)
                return

        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # only a disconnect can follow

        await self.app(scope, replay, send)


def _headers(scope: Scope) -> dict[str, str]:
    """Request headers, lower-cased names; a repeated header keeps its first value."""
    out: dict[str, str] = {}
    for name, value in scope.get("headers", ()):
        out.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return out


def _json_problem(body: bytes) -> str | None:
    """Why `body` is not usable JSON, or None. A lone surrogate escape (`"\\ud800"`) parses
    but has no UTF-8 form, so nothing could store or answer it: refused here, once."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # bad syntax or bytes, 5,000-digit numbers, nesting
        return "the body is not valid JSON"
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return "the body is not valid JSON: a string holds a lone surrogate escape"
    except (ValueError, RecursionError):
        return "the body is not valid JSON"
    return None


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, counted as it arrives; None if the client disconnected."""
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        if message["type"] != "http.request":
            continue
        chunk = message.get("body", b"")
        total += len(chunk)
        if total > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _too_large(send: Send, limit: int) -> None:
    await send_error(
        send,
        413,
        "payload_too_large",
        f"request bodies are limited to {limit} bytes",
        {"Connection": "close"},
    )


class CountingMiddleware:
    """Counts every HTTP request by route template, method and status for the metrics.

    The route template (`/shifts/{shift_id}`), never the raw path, is the label, so callers
    cannot mint label values; requests that match no route count as `unmatched`.
    """

    def __init__(self, app: ASGIApp, observe: Callable[[str, str, int], None]) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.observe(template, scope.get("method", "-"), status)
