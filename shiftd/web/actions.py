"""What a coordinator does from the board: add a shift, fan out, cancel, unassign."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response
from pydantic import ValidationError

from ..commands import COMMANDS, ShiftAddArgs, ShiftRequestArgs
from ..engine import NotFound
from ..shifts.mailbox import ActorUnavailable
from ..store.base import ConflictError, StoreError
from .boardpage import known_roles, organization_ids
from .sessions import Session
from .site import CONFIRM, PREFIX, SAYS, Board, board_of, log, refuse_unsafe, router, see_other


@router.get(f"{PREFIX}/new")
async def new_shift_form(request: Request) -> Response:
    board = board_of(request)
    session = board.session_of(request)
    if session is None:
        return board.sign_in_needed(request)
    return await _new_shift_page(request, board, session, {}, "")


async def _new_shift_page(
    request: Request,
    board: Board,
    session: Session,
    values: dict[str, str],
    message: str,
    status: int = 200,
) -> Response:
    engine = board.engine
    today = engine.clock.now().astimezone(engine.config.tz).date()
    defaults = {
        "organization_id": "default",
        "role": "",
        "day": today.isoformat(),
        "start": "07:00",
        "end": "15:00",
    }
    return board.page(
        request,
        "new.html",
        status=status,
        session=session,
        message=message,
        values={**defaults, **values},
        organizations=organization_ids(engine),
        roles=sorted(await known_roles(engine)),
    )


@router.post(f"{PREFIX}/shifts")
async def create_shift(request: Request) -> Response:
    board = board_of(request)
    session = board.session_of(request)
    if session is None:
        return board.sign_in_needed(request)
    refused = await refuse_unsafe(request, board, session)
    if refused is not None:
        return refused
    form = await request.form()
    values = {
        k: str(form.get(k, "")).strip()[:128]
        for k in ("organization_id", "role", "day", "start", "end")
    }
    engine = board.engine
    try:
        start, end = _local_window(
            values["day"],
            values["start"],
            values["end"],
            engine.organizations.get(values["organization_id"] or "default").tz,
        )
        args = ShiftAddArgs(
            organization_id=values["organization_id"] or "default",
            role_required=values["role"],
            start_time=start,
            end_time=end,
        )
    except (ValueError, ValidationError) as exc:
        return await _new_shift_page(request, board, session, values, _problem(exc), 422)
    try:
        result = await COMMANDS["shift.add"].run(engine, args)
    except (ValueError, ValidationError) as exc:  # the shift itself (too long, too far off)
        return await _new_shift_page(request, board, session, values, _problem(exc), 422)
    except ConflictError as exc:
        return await _new_shift_page(request, board, session, values, str(exc), 409)
    shift_id = result["shift"]["id"]
    log.info("board.shift_created", shift_id=shift_id, user=session.user)
    return see_other(f"{PREFIX}/shifts/{quote(shift_id, safe='')}?said=created")


def _local_window(day: str, start: str, end: str, tz: Any) -> tuple[datetime, datetime]:
    """The UTC instants of a local date and times; an end at or before the start is the
    next day (a night shift). Raises ValueError naming what is wrong."""
    try:
        on = date.fromisoformat(day)
    except ValueError:
        raise ValueError("Date: use the date picker (YYYY-MM-DD).") from None
    try:
        begins, ends = time.fromisoformat(start), time.fromisoformat(end)
    except ValueError:
        raise ValueError("Start and end: use the time pickers (HH:MM).") from None
    first = datetime.combine(on, begins, tz)
    last = datetime.combine(on + timedelta(days=1) if ends <= begins else on, ends, tz)
    return first, last


def _problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        parts = []
        for error in exc.errors(include_url=False, include_input=False)[:3]:
            where = ".".join(str(p) for p in error["loc"]).replace("role_required", "Role")
            parts.append(f"{where}: {error['msg']}" if where else error["msg"])
        return "; ".join(parts)
    return str(exc)


@router.post(f"{PREFIX}/shifts/{{shift_id}}/{{action}}")
async def shift_action(request: Request, shift_id: str, action: str) -> Response:
    board = board_of(request)
    session = board.session_of(request)
    if session is None:
        return board.sign_in_needed(request)
    if action not in SAYS:
        return board.error(request, 404, "No such action.", session)
    refused = await refuse_unsafe(request, board, session)
    if refused is not None:
        return refused
    form = await request.form()
    if action in CONFIRM and form.get("confirm") != "yes":
        return board.page(
            request,
            "confirm.html",
            session=session,
            shift_id=shift_id,
            action=action,
            question=CONFIRM[action],
        )
    try:
        args = ShiftRequestArgs(shift_id=shift_id)
        result = await COMMANDS[action].run(board.engine, args)
    except (NotFound, ValidationError):
        return board.error(request, 404, f"There is no shift {shift_id!r}.", session)
    except (ActorUnavailable, StoreError):
        log.exception("board.action_failed", shift_id=shift_id, action=action)
        return board.error(request, 503, "shiftd could not do that just now; try again.", session)
    log.info(
        "board.action", action=action, shift_id=shift_id, user=session.user, status=result["status"]
    )
    said = f"{action}:{result['status']}:{result.get('offered', '')}"
    return see_other(f"{PREFIX}/shifts/{quote(shift_id, safe='')}?said={quote(said)}")
