"""The board's stats page: the last days' fill rate, times and messages, as charts."""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request
from fastapi.responses import Response
from markupsafe import Markup

from .. import charts
from .site import PREFIX, board_of, router
from .views import daily

STATS_DAYS = 30


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
