"""The board (open shifts by state, in local time) and a shift's story."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import Response

from ..engine import Engine, NotFound
from .site import PREFIX, board_of, caregiver_or_none, router
from .views import board_groups, story


def organization_ids(engine: Engine) -> list[str]:
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
        organizations = {r.organization_id for r, _ in rows} | set(organization_ids(engine))
        main = board.render_main(
            "board.html",
            groups=groups,
            organizations=sorted(organizations),
            roles=sorted({r.role_required for r, _ in rows} | await known_roles(engine)),
            org=org or "",
            role=role or "",
        )
        board.rendered[key] = main
        while len(board.rendered) > 32:
            del board.rendered[next(iter(board.rendered))]
    return board.page(
        request, "board.html", session=session, main=main, seq=seq, live=f"{PREFIX}/events"
    )


async def known_roles(engine: Engine) -> set[str]:
    return set(await engine.roles_in_use())


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
        found = await caregiver_or_none(engine, caregiver_id)
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
