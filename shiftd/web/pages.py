"""The coordinator's page: sign-in, the board, a shift's story, actions, stats, live updates.

Everything lives under `/board` (the REST API owns `/shifts…`), server-rendered by Jinja2
with autoescaping, so a caregiver's reply reaches the page as text whatever it contains. The
pages load one stylesheet and one script from `/board/static/` and nothing else: the
Content-Security-Policy allows no inline script, no inline style and no other origin.

A coordinator signs in with an account made by `shiftctl user add` (see `sessions.py` for
the session cookie, idle timeout and the brakes on guessing). Every state change is a form
POST carrying the session's CSRF token (and, when the browser sends one, an `Origin` of this
site); it runs the control command of the same name (`shiftd.commands`), exactly as
`shiftctl` and the REST API do. Cancelling and unassigning ask for a confirmation first.

Routes are left out of the OpenAPI document: they are pages, not the integrators' API.
"""

from __future__ import annotations

import json
import secrets
from datetime import date, datetime, time, timedelta
from importlib import resources
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
import trio
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from markupsafe import Markup
from pydantic import ValidationError

from .. import charts
from ..commands import COMMANDS, ShiftAddArgs, ShiftIdArgs
from ..engine import Engine, NotFound
from ..logs import get_logger
from ..shifts.actor import ActorUnavailable
from ..store.base import CaregiverRow, ConflictError, StoreError
from .live import LiveFeed
from .passwords import verify
from .sessions import Session, SessionStore, SignInLimiter
from .views import board_groups, daily, story

log = get_logger(__name__)

PREFIX = "/board"
SESSION_COOKIE = "shiftd_session"
SIGNIN_COOKIE = "shiftd_signin"
FRAGMENT_HEADER = "x-board-fragment"
STATS_DAYS = 30
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_STATIC = {"board.css": "text/css; charset=utf-8", "board.js": "text/javascript; charset=utf-8"}
_SAYS = {
    "fanout": {
        "started": "Fanout started: {offered} offered.",
        "already_running": "The fanout is already running.",
        "already_filled": "The shift is already filled.",
        "cancelled": "The shift is cancelled.",
        "no_candidates": "Nobody can be offered this shift (no caregiver with the role).",
        "too_late": "Too late: offers for this shift have closed.",
        "unfilled": "Offers for this shift closed unfilled.",
    },
    "cancel": {
        "cancelled": "Shift cancelled; whoever held it is told.",
        "already_cancelled": "The shift was already cancelled.",
        "unfilled": "Offers for it have closed unfilled: nothing left to cancel.",
    },
    "unassign": {
        "released": "Unassigned: the holder is told, and the shift is offered again.",
        "released_unfilled": "Unassigned, too late to offer again: the shift is unfilled.",
        "not_claimed": "Nobody holds this shift.",
        "not_holder": "Nobody holds this shift.",
    },
}
_CONFIRM = {
    "cancel": "Cancel this shift? Nothing more is sent for it, and whoever holds it is told.",
    "unassign": "Take this shift off its holder? They are told, and it is offered again.",
}


class Board:
    """What the pages share: the engine, sessions, the sign-in limiter, the live feed."""

    def __init__(self, engine: Engine, settings: Any) -> None:
        self.engine = engine
        self.settings = settings
        now = lambda: engine.clock.now()  # noqa: E731  (the clock exists once the engine runs)
        self.sessions = SessionStore(now, settings.session_idle)
        self.limiter = SignInLimiter(
            now, max_failures=settings.signin_max_failures, lockout=settings.signin_lockout
        )
        self.feed = LiveFeed()
        self.hashing = trio.CapacityLimiter(2)
        self.rendered: dict[tuple[Any, ...], Markup] = {}  # see board_page
        self._rows: dict[str, tuple[int, dict[str, str]]] = {}  # see rows_payload
        self.secure = (settings.public_url or "").startswith("https://")
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("shiftd.web", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,  # templates ship with the package: no stat per row's include
        )
        self.templates.filters["iso"] = lambda at: at.isoformat() if at else ""
        self.templates.globals["said_text"] = said_text
        self._static = {
            name: (resources.files("shiftd.web").joinpath("static", name).read_bytes(), kind)
            for name, kind in _STATIC.items()
        }
        # No bus: an app built only for its OpenAPI document, or a benchmark's bare engine.
        events = getattr(engine, "events", None)
        if events is not None:
            events.add_listener(self.feed.on_event)
            events.add_listener(self._on_account_change)

    def _on_account_change(self, event: Any) -> None:
        if event.kind == "coordinator_changed":
            self.sessions.close_user(str(event.detail.get("name")))

    # ---- answers --------------------------------------------------------------------

    def page(
        self,
        request: Request,
        template: str,
        *,
        status: int = 200,
        session: Session | None = None,
        **values: Any,
    ) -> Response:
        fragment = request.headers.get(FRAGMENT_HEADER) == "1"
        html = self.templates.get_template(template).render(
            session=session,
            fragment=fragment,
            prefix=PREFIX,
            request_path=request.url.path,
            **values,
        )
        return secure(Response(html, status, media_type="text/html; charset=utf-8"))

    async def rows_payload(self, shift_ids: list[str]) -> str:
        """The board's `change` data: for each shift, its row as rendered (and escaped) here
        and the state section it goes in, or `state` "" when it has left the board. A row is
        rendered once per change of its shift, whatever the number of boards watching."""
        rows = []
        for shift_id in shift_ids:
            cached = self._rows.get(shift_id)
            if cached is None or cached[0] < self.feed.last_change(shift_id):
                if len(self._rows) > 4096:
                    self._rows.clear()
                seq = self.feed.seq  # before the reads: a change during them renders again
                cached = self._rows[shift_id] = (seq, await self._row(shift_id))
            rows.append(cached[1])
        return json.dumps({"rows": rows}, separators=(",", ":"))

    async def _row(self, shift_id: str) -> dict[str, str]:
        try:
            row = await self.engine.shift(shift_id)
        except NotFound:
            return {"id": shift_id, "state": ""}
        holder = await _caregiver(self.engine, row.claimed_by) if row.claimed_by else None
        groups = board_groups(
            [(row, holder.name if holder else None)],
            tz_of=lambda org_id: self.engine.organizations.get(org_id).tz,
            now=self.engine.clock.now(),
            organization=None,
            role=None,
        )
        for state, shifts in groups:
            if shifts:
                html = self.templates.get_template("row.html").render(s=shifts[0], prefix=PREFIX)
                return {"id": shift_id, "state": state, "html": html}
        return {"id": shift_id, "state": ""}

    def render_main(self, template: str, **values: Any) -> Markup:
        """Only the main region of `template` (what a live page fetches), already escaped."""
        html = self.templates.get_template(template).render(
            session=None, fragment=True, prefix=PREFIX, request_path="", **values
        )
        return Markup(html)

    def error(
        self, request: Request, status: int, message: str, session: Session | None = None
    ) -> Response:
        return self.page(request, "error.html", status=status, session=session, message=message)

    def static(self, name: str) -> Response:
        found = self._static.get(name)
        if found is None:
            return secure(Response("not found", 404, media_type="text/plain"))
        body, kind = found
        response = secure(Response(body, media_type=kind))
        response.headers["Cache-Control"] = "public, max-age=300"
        return response

    # ---- sessions -------------------------------------------------------------------

    def session_of(self, request: Request, *, touch: bool = True) -> Session | None:
        return self.sessions.get(request.cookies.get(SESSION_COOKIE), touch=touch)

    def sign_in_needed(self, request: Request) -> Response:
        if request.headers.get(FRAGMENT_HEADER) == "1":
            return secure(Response("signed out", 401, media_type="text/plain"))
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return see_other(f"{PREFIX}/login?next={quote(target, safe='')}")

    def set_cookie(self, response: Response, name: str, value: str, path: str) -> None:
        response.set_cookie(
            name, value, path=path, httponly=True, samesite="strict", secure=self.secure
        )

    def same_origin(self, request: Request) -> bool:
        """False when the browser says the form came from another site (`Origin`)."""
        origin = request.headers.get("origin")
        if origin is None:
            return True
        ours = {request.headers.get("host", "")}
        if self.settings.public_url:
            ours.add(urlsplit(self.settings.public_url).netloc)
        return urlsplit(origin).netloc in ours


def secure(response: Response) -> Response:
    """The security headers every board answer carries."""
    headers = response.headers
    headers["Content-Security-Policy"] = CSP
    headers["X-Content-Type-Options"] = "nosniff"
    headers["X-Frame-Options"] = "DENY"
    headers["Referrer-Policy"] = "same-origin"
    headers.setdefault("Cache-Control", "no-store")
    return response


def see_other(url: str) -> Response:
    return secure(RedirectResponse(url, 303))


def board_of(request: Request) -> Board:
    board: Board = request.app.state.board
    return board


def _safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of this board, never another site."""
    if target and target.startswith(PREFIX) and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX


router = APIRouter(include_in_schema=False)


@router.get("/")
async def root() -> Response:
    return see_other(PREFIX)


@router.get(f"{PREFIX}/static/{{name}}")
async def static(request: Request, name: str) -> Response:
    return board_of(request).static(name)


# ---- sign-in -------------------------------------------------------------------------------


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
    refused = await _refused(request, board, session)
    if refused is not None:
        return refused
    board.sessions.close(request.cookies.get(SESSION_COOKIE))
    log.info("board.signed_out", user=session.user)
    response = see_other(f"{PREFIX}/login")
    response.delete_cookie(SESSION_COOKIE, path=PREFIX)
    return response


async def _refused(request: Request, board: Board, session: Session) -> Response | None:
    """403 unless the form carries the session's CSRF token and comes from this site."""
    form = await request.form()
    if board.same_origin(request) and session.csrf_ok(str(form.get("csrf", "")) or None):
        return None
    log.warning("board.csrf_refused", path=request.url.path, user=session.user)
    return board.error(
        request,
        403,
        "This form has expired or did not come from this page. Reload and try again.",
        session,
    )


# ---- the board -------------------------------------------------------------------------


def _organizations(engine: Engine) -> list[str]:
    return sorted({"default", *engine.config.organizations})


@router.get(PREFIX)
async def board_page(request: Request, org: str | None = None, role: str | None = None) -> Response:
    board = board_of(request)
    session = board.session_of(request)
    if session is None:
        return board.sign_in_needed(request)
    engine = board.engine
    now = engine.clock.now()
    seq = board.feed.seq
    # Every open board asks again after each change: pages at the same point of the feed,
    # with the same filters, in the same minute share one rendering.
    key = (seq, org or "", role or "", now.replace(second=0, microsecond=0))
    main = board.rendered.get(key)
    if main is None:
        rows = await engine.board_shifts(now - timedelta(days=1))
        groups = board_groups(
            rows,
            tz_of=lambda org_id: engine.organizations.get(org_id).tz,
            now=now,
            organization=org or None,
            role=role or None,
        )
        organizations = {r.organization_id for r, _ in rows} | set(_organizations(engine))
        main = board.render_main(
            "board.html",
            groups=groups,
            organizations=sorted(organizations),
            roles=sorted({r.role_required for r, _ in rows} | await _roles(engine)),
            org=org or "",
            role=role or "",
        )
        board.rendered[key] = main
        while len(board.rendered) > 32:
            del board.rendered[next(iter(board.rendered))]
    return board.page(
        request, "board.html", session=session, main=main, seq=seq, live=f"{PREFIX}/events"
    )


async def _roles(engine: Engine) -> set[str]:
    return set(await engine.roles_in_use())


async def _caregiver(engine: Engine, caregiver_id: str) -> CaregiverRow | None:
    try:
        return await engine.caregiver(caregiver_id)
    except NotFound:
        return None


@router.get(f"{PREFIX}/shifts/{{shift_id}}")
async def story_page(request: Request, shift_id: str, said: str | None = None) -> Response:
    board = board_of(request)
    session = board.session_of(request)
    if session is None:
        return board.sign_in_needed(request)
    engine = board.engine
    seq = board.feed.seq
    try:
        detail = await engine.shift_detail(shift_id)
    except NotFound:
        return board.error(request, 404, f"There is no shift {shift_id!r}.", session)
    row = detail["shift"]
    names = {c["caregiver_id"]: c["name"] for c in detail["contacts"] if c.get("name")}
    wanted = {e["caregiver_id"] for e in detail["timeline"] if e["caregiver_id"]}
    wanted |= {row.claimed_by} if row.claimed_by else set()
    for caregiver_id in wanted - names.keys():
        found = await _caregiver(engine, caregiver_id)
        if found is not None:
            names[caregiver_id] = found.name
    tz = engine.organizations.get(row.organization_id).tz
    return board.page(
        request,
        "shift.html",
        session=session,
        story=story(detail, names, tz),
        seq=seq,
        said=said or "",
        live=f"{PREFIX}/events?shift={quote(shift_id, safe='')}",
        confirm=None,
    )


# ---- actions ---------------------------------------------------------------------------


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
        organizations=_organizations(engine),
        roles=sorted(await _roles(engine)),
    )


@router.post(f"{PREFIX}/shifts")
async def create_shift(request: Request) -> Response:
    board = board_of(request)
    session = board.session_of(request)
    if session is None:
        return board.sign_in_needed(request)
    refused = await _refused(request, board, session)
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
    if action not in _SAYS:
        return board.error(request, 404, "No such action.", session)
    refused = await _refused(request, board, session)
    if refused is not None:
        return refused
    form = await request.form()
    if action in _CONFIRM and form.get("confirm") != "yes":
        return board.page(
            request,
            "confirm.html",
            session=session,
            shift_id=shift_id,
            action=action,
            question=_CONFIRM[action],
        )
    try:
        args = ShiftIdArgs(shift_id=shift_id)
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


def said_text(said: str) -> str:
    """The sentence for an action's outcome (`action:status:offered`), or ''."""
    if said == "created":
        return "Shift created. Start its fanout when you are ready."
    action, _, rest = said.partition(":")
    status, _, offered = rest.partition(":")
    line = _SAYS.get(action, {}).get(status)
    return line.format(offered=offered or "0") if line else ""


# ---- stats -----------------------------------------------------------------------------


@router.get(f"{PREFIX}/stats")
async def stats_page(request: Request) -> Response:
    board = board_of(request)
    session = board.session_of(request)
    if session is None:
        return board.sign_in_needed(request)
    engine = board.engine
    now = engine.clock.now()
    since = now - timedelta(days=STATS_DAYS)
    summary = await engine.stats(timedelta(days=STATS_DAYS))
    figures = daily(
        *await engine.history(since),
        until=now,
        days=STATS_DAYS,
        tz=engine.config.tz,
    )
    labels = [
        f"{d.day}" if d.day != 1 and i else f"{d:%b} {d.day}" for i, d in enumerate(figures.days)
    ]
    messages = [
        (channel, float(sum(states.values())))
        for channel, states in sorted(summary["messages"].items())
    ]
    svgs = {
        "fill_rate": charts.bar_chart(
            list(zip(labels, figures.fill_rate, strict=True)),
            title="Fill rate by day (% of fanouts filled)",
            value_label="%",
            value_format=lambda v: f"{v:.0f}",
        ),
        "time_to_fill": charts.bar_chart(
            list(zip(labels, figures.minutes_to_fill, strict=True)),
            title="Median time to fill by day (minutes)",
            value_label="min",
            value_format=lambda v: f"{v:.0f}",
        ),
        "messages": charts.bar_chart(
            messages,
            title=f"Messages by channel, last {STATS_DAYS} days",
            value_label="messages",
            value_format=lambda v: f"{v:.0f}",
        ),
        "declines": charts.bar_chart(
            list(zip(labels, [float(n) for n in figures.declines], strict=True)),
            title="Declines by day",
            value_label="declines",
            value_format=lambda v: f"{v:.0f}",
        ),
    }
    return board.page(
        request,
        "stats.html",
        session=session,
        summary=summary,
        days=STATS_DAYS,
        svgs={k: Markup(v) for k, v in svgs.items()},
        declines_total=sum(figures.declines),
    )


# ---- live ------------------------------------------------------------------------------


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


__all__ = ["PREFIX", "Board", "router", "said_text"]
