"""What every board page shares: `Board`, the security headers, the one router."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
import trio
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from ..engine import Engine, NotFound
from ..logs import get_logger
from ..models import EventKind
from ..store.base import CaregiverRow
from .live import LISTENED, LiveFeed
from .sessions import Session, SessionStore, SignInLimiter
from .views import board_groups

log = get_logger("shiftd.web.pages")  # one logger for the board, as before its split

PREFIX = "/board"
SESSION_COOKIE = "shiftd_session"
SIGNIN_COOKIE = "shiftd_signin"
FRAGMENT_HEADER = "x-board-fragment"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_STATIC = {"board.css": "text/css; charset=utf-8", "board.js": "text/javascript; charset=utf-8"}
SAYS = {
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
CONFIRM = {
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
            events.add_listener(self.feed.on_event, LISTENED)
            events.add_listener(self._on_account_change, (EventKind.COORDINATOR_CHANGED,))

    def _on_account_change(self, event: Any) -> None:
        if event.kind == EventKind.COORDINATOR_CHANGED:
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
        holder = await caregiver_or_none(self.engine, row.claimed_by) if row.claimed_by else None
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


router = APIRouter(include_in_schema=False)


@router.get("/")
async def root() -> Response:
    return see_other(PREFIX)


@router.get(f"{PREFIX}/static/{{name}}")
async def static(request: Request, name: str) -> Response:
    return board_of(request).static(name)


async def refuse_unsafe(request: Request, board: Board, session: Session) -> Response | None:
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


async def caregiver_or_none(engine: Engine, caregiver_id: str) -> CaregiverRow | None:
    """The caregiver `caregiver_id`, or None when the roster has no such caregiver."""
    try:
        return await engine.caregiver(caregiver_id)
    except NotFound:
        return None


def said_text(said: str) -> str:
    """The sentence for an action's outcome (`action:status:offered`), or ''."""
    if said == "created":
        return "Shift created. Start its fanout when you are ready."
    action, _, rest = said.partition(":")
    status, _, offered = rest.partition(":")
    line = SAYS.get(action, {}).get(status)
    return line.format(offered=offered or "0") if line else ""
