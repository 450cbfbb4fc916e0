"""Every HTTP error is JSON: `{"error": {"code": "...", "message": "..."}}`.

Codes and statuses come from the one error table (`shiftd.errors`) that the control socket
and shiftctl use too.
FastAPI's own 404/405/422 answers are replaced by this shape (see `install_handlers`), and
nothing answers with a traceback or an exception's text unless it was written for the caller.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Send

from ..errors import CODES, ERRORS, ErrorCode, status_code
from ..logs import get_logger
from ..store.base import StoreError

log = get_logger(__name__)


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    """The body of every error answer."""

    error: ErrorDetail


ERROR_STATUSES: dict[int, str] = {
    400: "`bad_json` (the body is not JSON) or `bad_request`",
    401: "`unauthorized`: no or a wrong bearer token",
    403: "`forbidden`: a webhook's signature does not match, or an organization's token asks"
    " for what only the administrators' token may (caregivers, other organizations)",
    404: "`not_found`: no such shift",
    409: "`conflict`: the shift cannot be changed now (in a fanout, or closed)",
    413: "`payload_too_large`: the body is over `http.max_body`",
    415: "`unsupported_media_type`: not the content type the route takes",
    422: "`bad_args`: a field breaks a rule (named in the message, see shiftd/limits.py),"
    " including the rules no schema states: a shift ends after it starts and lasts at most"
    " 48 hours, a date must exist (not 2025-02-30), a duration is at most 3660d, a new"
    " shift has exactly one of `start_time` and `start_in` and one of `end_time` and"
    " a positive `length`",
    500: "`internal`: a failure of shiftd's own code; the message quotes a ref that the log"
    " line carries (also in `X-Request-Ref`), and the daemon goes on",
    503: "`unavailable` (starting, stopping, the store or the shift's actor not available)"
    " or `timeout` (the request took longer than `http.request_timeout`)",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses: the error body and what each means."""
    return {
        status: {"model": ErrorBody, "description": ERROR_STATUSES[status]} for status in statuses
    }


class ApiError(Exception):
    """Raise to answer `status` with `{"error": {"code": code, "message": message}}`."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


_STATUS_MESSAGES = {
    404: "no such route",
    405: "method not allowed on this route",
}


def error_body(code: str, message: str) -> bytes:
    return json.dumps(
        {"error": {"code": code, "message": message}}, ensure_ascii=True, separators=(",", ":")
    ).encode()


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    return Response(
        error_body(code, message),
        status_code=status,
        media_type="application/json",
        headers=dict(headers or {}),
    )


async def send_error(
    send: Send,
    status: int,
    code: str,
    message: str,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Answer from raw ASGI (the middleware, before or instead of the app)."""
    body = error_body(code, message)
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    raw += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def describe_validation(errors: Any) -> str:
    """`where: what; where: what` for up to ten pydantic errors, without the input values."""
    parts = []
    for error in list(errors)[:10]:
        loc = [str(p) for p in error.get("loc", ())]
        if loc and loc[0] in ("body", "path", "query", "header"):
            loc = loc[1:] or loc
        where = ".".join(loc) or "(request)"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_handlers(app: FastAPI) -> None:
    """Answer FastAPI's and the engine's errors in the one JSON shape."""

    async def api_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    async def http_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        status = exc.status_code
        code = status_code(status)
        message = _STATUS_MESSAGES.get(status) or (
            exc.detail if isinstance(exc.detail, str) else code
        )
        return error_response(status, code, message, exc.headers)

    async def validation_error(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "bad_json", "the body is not valid JSON")
        return error_response(422, "bad_args", describe_validation(errors))

    def answer(known: ErrorCode) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handler(_: Request, exc: Exception) -> Response:
            return error_response(known.http_status, known.code, str(exc))

        return handler

    async def store_error(request: Request, exc: Exception) -> Response:
        # A damaged database's text names files and SQL: logged, not told to a caller.
        known = CODES["unavailable"]
        log.error("http.store_failed", path=request.url.path, error=str(exc))
        return error_response(
            known.http_status, known.code, "the store is not available; try again"
        )

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    # The one error table (shiftd.errors); Starlette picks the handler of the nearest
    # class in an error's MRO, so ConflictError and StoreUnavailable keep their own rows.
    for cls, code in ERRORS:
        app.add_exception_handler(cls, answer(CODES[code]))
    app.add_exception_handler(StoreError, store_error)
