"""Live updates: the board's server-sent events."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response, StreamingResponse

from .site import PREFIX, SESSION_COOKIE, board_of, router, secure


@router.get(f"{PREFIX}/events")
async def events(request: Request, after: int = 0, shift: str | None = None) -> Response:
    board = board_of(request)
    token = request.cookies.get(SESSION_COOKIE)
    if board.sessions.get(token, touch=False) is None:
        return secure(Response("signed out", 401, media_type="text/plain"))
    last = request.headers.get("last-event-id", "")
    start = max(after, int(last) if last.isdigit() else 0)
    start = min(start, board.feed.seq)
    # End before hypercorn's idle-read limit (request_timeout) cuts the connection.
    lifetime = max(1.0, board.settings.request_timeout * 0.8)
    response = StreamingResponse(
        board.feed.stream(
            start,
            shift,
            lifetime=lifetime,
            alive=lambda: board.sessions.get(token, touch=False) is not None,
            payload=board.rows_payload if shift is None else None,
        ),
        media_type="text/event-stream",
        headers={"X-Accel-Buffering": "no"},
    )
    return secure(response)
