"""The one error table: what each error the core raises is called on every door.

`ERRORS` maps an error class to its code; `CODES` gives each code its HTTP status and the
exit status of `shiftctl` when the daemon answers it. The control socket answers
`{"ok": false, "error": {"code": ...}}`, HTTP answers the status with the same code in its
JSON body, and shiftctl exits with the code's exit status. A failure of shiftd's own code
(an exception in no row) is `internal`.

shiftctl's exit statuses (`Exit`) are one per family of outcomes, sysexits-like: small numbers
for what a script branches on (2 usage as argparse has it, 3 not found, 4 conflict), and
`sysexits.h`'s numbers where it has one (69 no daemon, 70 internal, 75 try again, 76 the
conversation broke off, 77 not allowed).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from .engine import InvalidInput, NotFound
from .shifts.mailbox import ActorUnavailable
from .store.base import ConflictError, StoreError, StoreUnavailable


class Exit(IntEnum):
    """shiftctl's exit statuses, one per family of outcomes."""

    OK = 0
    FAILURE = 1
    USAGE = 2
    NOT_FOUND = 3
    CONFLICT = 4
    UNAVAILABLE = 69  # EX_UNAVAILABLE
    INTERNAL = 70  # EX_SOFTWARE
    TEMPFAIL = 75  # EX_TEMPFAIL
    PROTOCOL = 76  # EX_PROTOCOL
    NOPERM = 77  # EX_NOPERM
    INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it


EXIT_MEANINGS: dict[Exit, str] = {
    Exit.OK: "success",
    Exit.FAILURE: "any other failure (the output was closed early)",
    Exit.USAGE: "usage: a wrong command line, input file or field (bad_args, bad_request, ...)",
    Exit.NOT_FOUND: "no such shift, caregiver or account (not_found)",
    Exit.CONFLICT: "the shift or roster cannot be changed that way now (conflict)",
    Exit.UNAVAILABLE: "no shiftd answering at the socket",
    Exit.INTERNAL: "a failure of shiftd's own code (internal)",
    Exit.TEMPFAIL: "shiftd is starting, stopping, busy or slow: try again (unavailable, ...)",
    Exit.PROTOCOL: "the conversation with shiftd broke off: no answer in time, closed, garbled",
    Exit.NOPERM: "not allowed: the socket's permissions, or forbidden",
    Exit.INTERRUPTED: "interrupted (Ctrl-C)",
}
"""What each exit status means, for `shiftctl --help` (the README has the same table)."""


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
    ErrorCode("bad_request", 400, Exit.USAGE, "the request cannot be read"),
    ErrorCode("bad_json", 400, Exit.USAGE, "the body or line is not JSON"),
    ErrorCode("unauthorized", 401, Exit.NOPERM, "no or a wrong bearer token"),
    ErrorCode(
        "forbidden", 403, Exit.NOPERM, "not allowed: a webhook's signature, a peer, a token's reach"
    ),
    ErrorCode("not_found", 404, Exit.NOT_FOUND, "no such shift, caregiver or route"),
    ErrorCode("unknown_command", 404, Exit.USAGE, "no such control command"),
    ErrorCode("method_not_allowed", 405, Exit.USAGE, "the route does not take this method"),
    ErrorCode("conflict", 409, Exit.CONFLICT, "the shift or roster cannot be changed that way now"),
    ErrorCode("payload_too_large", 413, Exit.USAGE, "the body is over `http.max_body`"),
    ErrorCode("line_too_long", 413, Exit.USAGE, "a control line is over its limit"),
    ErrorCode("unsupported_media_type", 415, Exit.USAGE, "not the content type the route takes"),
    ErrorCode("bad_args", 422, Exit.USAGE, "a field breaks a rule"),
    ErrorCode(
        "internal", 500, Exit.INTERNAL, "a failure of shiftd's own code; the log line has its ref"
    ),
    ErrorCode(
        "unavailable", 503, Exit.TEMPFAIL, "starting, stopping, the store or the actor unavailable"
    ),
    ErrorCode("timeout", 503, Exit.TEMPFAIL, "the request took longer than its limit"),
    ErrorCode("idle_timeout", 408, Exit.TEMPFAIL, "no complete control line in time"),
    ErrorCode("too_many_connections", 503, Exit.TEMPFAIL, "every control connection slot is taken"),
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
    """shiftctl's exit status when the daemon answers `code` (`Exit.FAILURE` for a code it
    does not know)."""
    known = CODES.get(code)
    return known.exit_status if known is not None else Exit.FAILURE
