"""The ASGI application: REST API, Twilio webhooks and the board over one engine, inside the
daemon's `trio.run` (hypercorn's trio worker, `server.py`): handlers call the engine directly.

Routes take the command table's argument models (`shiftd.commands`), so a route and a
`shiftctl` command mean the same, and FastAPI documents them at `/openapi.json`; our error
shapes replace FastAPI's (`errors.install_handlers`). Every handler and dependency is
`async` (FastAPI would run sync ones in threads).
"""

from __future__ import annotations

from fastapi import FastAPI

from .. import __version__
from ..engine import Engine
from ..web import pages
from . import rest, webhooks
from .context import HttpContext
from .errors import install_handlers
from .fastpath import FastRoutes
from .methods import AllowedMethods
from .middleware import CountingMiddleware, GuardMiddleware
from .settings import HttpSettings


def create_app(engine: Engine, settings: HttpSettings, *, ready: bool = False) -> FastAPI:
    """The app for `engine`. `ready` is what `/ready` reports until the server changes it
    (`app.state.shiftd.ready`); the daemon sets it once everything is up."""
    app = FastAPI(
        title="shiftd",
        version=__version__,
        summary="Fills open home-health shifts: REST API and Twilio-compatible webhooks.",
        docs_url=None,  # no pages that load scripts from a CDN; /openapi.json is the contract
        redoc_url=None,
    )
    app.state.shiftd = HttpContext(engine, settings, ready=ready)
    install_handlers(app)
    # Innermost: where FastAPI's router would be, inside the guard and the counting.
    app.add_middleware(FastRoutes, owner=app)
    app.add_middleware(
        GuardMiddleware,
        settings=lambda: app.state.shiftd.settings,
        on_crash=lambda: app.state.shiftd.engine.metrics.observe_internal_error("http"),
        methods=_allowed_methods(app),
    )
    app.add_middleware(
        CountingMiddleware,
        observe=lambda route, method, status: app.state.shiftd.engine.metrics.observe_http(
            route, method, status
        ),
    )
    # Webhooks first: routes are matched in order, and the provider's callbacks are the
    # busiest traffic (matching every REST route first took ~15% of the app's CPU per
    # webhook; bench/web.py measures it).
    app.include_router(webhooks.router)
    app.include_router(rest.router)
    # The coordinator's page (cookie sessions, HTML; left out of the OpenAPI document).
    app.state.board = pages.Board(engine, settings)
    app.include_router(pages.router)
    return app


_ALLOWED: AllowedMethods | None = None


def _allowed_methods(app: FastAPI) -> AllowedMethods:
    """Which methods each documented path takes, read from the first app's OpenAPI document:
    every app `create_app` makes has the same routes (the modules' routers), hence the same
    document, and FastAPI takes about 0.3 s of CPU to build it, which each app (a test's)
    would pay again at its first request."""
    global _ALLOWED
    if _ALLOWED is None:
        _ALLOWED = AllowedMethods(app.openapi)
    return _ALLOWED
