"""What every route shares."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from ..engine import Engine
from .settings import HttpSettings


@dataclass
class HttpContext:
    """The engine, the settings, and what `/ready` reports."""

    engine: Engine
    settings: HttpSettings
    ready: bool = False
    """True once the daemon is fully up; False again as soon as it begins to stop."""
    stopping: bool = False


def context_of(request: Request) -> HttpContext:
    ctx: HttpContext = request.app.state.shiftd
    return ctx


async def context(request: Request) -> HttpContext:
    """The dependency (async: FastAPI runs sync dependencies in worker threads)."""
    return context_of(request)
