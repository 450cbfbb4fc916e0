"""Signing in and out of the board."""

from __future__ import annotations

import secrets

import trio
from fastapi import Request
from fastapi.responses import Response

from .passwords import verify
from .site import (
    PREFIX,
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    Board,
    board_of,
    log,
    refuse_unsafe,
    router,
    see_other,
)


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this board, never another site."""
    if target and target.startswith(PREFIX) and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX


@router.get(f"{PREFIX}/login")
async def login_form(request: Request, next: str | None = None) -> Response:
    board = board_of(request)
    if board.session_of(request) is not None:
        return see_other(_safe_next(next))
    return _login_page(request, board, next=next)


def _login_page(
    request: Request,
    board: Board,
    *,
    next: str | None,
    status: int = 200,
    message: str = "",
    name: str = "",
) -> Response:
    token = secrets.token_urlsafe(24)
    response = board.page(
        request,
        "login.html",
        status=status,
        next=_safe_next(next),
        csrf=token,
        message=message,
        name=name,
    )
    board.set_cookie(response, SIGNIN_COOKIE, token, f"{PREFIX}/login")
    return response


@router.post(f"{PREFIX}/login")
async def login(request: Request) -> Response:
    board = board_of(request)
    form = await request.form()
    name = str(form.get("name", ""))[:64]
    password = str(form.get("password", ""))
    target = str(form.get("next", ""))
    given = str(form.get("csrf", ""))
    expected = request.cookies.get(SIGNIN_COOKIE, "")
    if not board.same_origin(request) or not expected or given != expected:
        log.warning("board.csrf_refused", path=request.url.path)
        return _login_page(
            request,
            board,
            next=target,
            status=403,
            message="This sign-in form has expired. Please try again.",
        )
    address = request.client.host if request.client else "-"
    wait = board.limiter.refused_for(name, address)
    if wait is not None:
        minutes = max(1, round(wait.total_seconds() / 60))
        log.warning("board.signin_refused", user=name, reason="locked", minutes=minutes)
        return _login_page(
            request,
            board,
            next=target,
            status=429,
            name=name,
            message=f"Too many sign-in attempts. Try again in {minutes} minute"
            f"{'' if minutes == 1 else 's'}.",
        )
    stored = await board.engine.coordinator_hash(name)
    ok = await trio.to_thread.run_sync(verify, password, stored, limiter=board.hashing)
    if not ok:
        locked = board.limiter.failed(name)
        log.warning("board.signin_failed", user=name, locked=locked)
        message = "Wrong name or password."
        if locked:
            minutes = max(1, round(board.limiter.lockout.total_seconds() / 60))
            message += f" Too many attempts: this account is locked for {minutes} minutes."
        return _login_page(request, board, next=target, status=401, message=message, name=name)
    board.limiter.succeeded(name)
    token, _ = board.sessions.open(name)
    log.info("board.signed_in", user=name)
    response = see_other(_safe_next(target))
    board.set_cookie(response, SESSION_COOKIE, token, PREFIX)
    response.delete_cookie(SIGNIN_COOKIE, path=f"{PREFIX}/login")
    return response


@router.post(f"{PREFIX}/logout")
async def logout(request: Request) -> Response:
    board = board_of(request)
    session = board.session_of(request)
    if session is None:
        return see_other(f"{PREFIX}/login")
    refused = await refuse_unsafe(request, board, session)
    if refused is not None:
        return refused
    board.sessions.close(request.cookies.get(SESSION_COOKIE))
    log.info("board.signed_out", user=session.user)
    response = see_other(f"{PREFIX}/login")
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response
