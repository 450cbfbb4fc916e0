"""The ASGI application: REST API and Twilio webhooks over one engine.

Why FastAPI (over bare Starlette): the request and answer shapes are pydantic models — the
very argument models of the control command table (`shiftd.commands`), so a route
and a `shiftctl` command mean the same — and FastAPI turns them into validation *and* an
OpenAPI document at `/openapi.json` for free. Integrators generate clients from it, and the
fuzz test (tests/http/test_http_fuzz.py) walks every route it lists. The price is FastAPI's own
error shapes, which `errors.install_handlers` replaces, and its habit of running sync
handlers in threads, which is why every handler and dependency here is `async`.

The app runs inside the daemon's `trio.run` (hypercorn's trio worker, see `server.py`):
handlers call the engine directly; no threads, no second event loop.
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
        methods=AllowedMethods(app.openapi),
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
