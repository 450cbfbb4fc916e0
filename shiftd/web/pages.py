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

from . import actions, boardpage, signin, statspage, stream
from .site import (
    CSP,
    FRAGMENT_HEADER,
    PREFIX,
    SESSION_COOKIE,
    SIGNIN_COOKIE,
    Board,
    board_of,
    router,
    said_text,
    secure,
    see_other,
)
from .statspage import STATS_DAYS

PAGES = (signin, boardpage, actions, statspage, stream)
"""The modules whose routes `router` holds: each registers its routes as it loads."""

__all__ = [
    "CSP",
    "FRAGMENT_HEADER",
    "PAGES",
    "PREFIX",
    "SESSION_COOKIE",
    "SIGNIN_COOKIE",
    "STATS_DAYS",
    "Board",
    "board_of",
    "router",
    "said_text",
    "secure",
    "see_other",
]
