"""The one error table: what each error the core raises is called on every door.

`ERRORS` maps an error class to its code; `CODES` gives each code its HTTP status and the
exit status of `shiftctl` when the daemon answers it. The control socket answers
`{"ok": false, "error": {"code": ...}}`, HTTP answers the status with the same code in its
JSON body, and shiftctl exits with the code's exit status. A failure of shiftd's own code
(an exception in no row) is `internal`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .engine import InvalidInput, NotFound
from .shifts.mailbox import ActorUnavailable
from .store.base import ConflictError, StoreError, StoreUnavailable


@dataclass(frozen=True)
class ErrorCode:
    """One code of the error answers: its HTTP status and shiftctl's exit status."""

    code: str
    http_status: int
    exit_status: int
    meaning: str


def _codes(*codes: ErrorCode) -> dict[str, ErrorCode]:
    return {c.code: c for c in codes}


CODES: dict[str, ErrorCode] = _codes(
    # Where several codes share an HTTP status, the first is the status's default code.
    ErrorCode("bad_request", 400, 1, "the request cannot be read"),
    ErrorCode("bad_json", 400, 1, "the body or line is not JSON"),
    ErrorCode("unauthorized", 401, 1, "no or a wrong bearer token"),
    ErrorCode("forbidden", 403, 1, "not allowed: a webhook's signature, a peer, a token's reach"),
    ErrorCode("not_found", 404, 1, "no such shift, caregiver or route"),
    ErrorCode("unknown_command", 404, 1, "no such control command"),
    ErrorCode("method_not_allowed", 405, 1, "the route does not take this method"),
    ErrorCode("conflict", 409, 1, "the shift or roster cannot be changed that way now"),
    ErrorCode("payload_too_large", 413, 1, "the body is over `http.max_body`"),
    ErrorCode("line_too_long", 413, 1, "a control line is over its limit"),
    ErrorCode("unsupported_media_type", 415, 1, "not the content type the route takes"),
    ErrorCode("bad_args", 422, 1, "a field breaks a rule"),
    ErrorCode("internal", 500, 1, "a failure of shiftd's own code; the log line has its ref"),
    ErrorCode("unavailable", 503, 1, "starting, stopping, the store or the actor unavailable"),
    ErrorCode("timeout", 503, 1, "the request took longer than its limit"),
    ErrorCode("idle_timeout", 408, 1, "no complete control line in time"),
    ErrorCode("too_many_connections", 503, 1, "every control connection slot is taken"),
)

# Matched in order: the first class the error is an instance of gives its code.
ERRORS: tuple[tuple[type[Exception], str], ...] = (
    (InvalidInput, "bad_args"),
    (NotFound, "not_found"),
    (ConflictError, "conflict"),  # before StoreError: it is one
    (ActorUnavailable, "unavailable"),
    (StoreUnavailable, "unavailable"),  # disk full, read-only: its text says why
    (StoreError, "unavailable"),  # a damaged database: said so, not `internal`
)


def code_of(exc: BaseException) -> ErrorCode | None:
    """The code of an error the core raises on purpose; None for anything else (a failure
    of shiftd's own code, answered `internal`)."""
    for cls, code in ERRORS:
        if isinstance(exc, cls):
            return CODES[code]
    return None


def status_code(status: int) -> str:
    """The code an HTTP status is answered with when nothing more precise is known."""
    for code in CODES.values():
        if code.http_status == status:
            return code.code
    return "internal" if status >= 500 else "bad_request"


def exit_status(code: str) -> int:
    """shiftctl's exit status when the daemon answers `code` (1 for a code it does not know)."""
    known = CODES.get(code)
    return known.exit_status if known is not None else 1
