"""The REST API: the control commands over HTTP, for integrators' systems.

Each route validates with the command table's own argument model and runs the command's own
handler (`shiftd.commands.COMMANDS`), so `POST /shifts/X/fanout` and `shiftctl
fanout X` are the same operation with the same answer. Every route but `/health` and
`/ready` needs `Authorization: Bearer <token>` (checked by the guard middleware before the
body is read, and declared here so OpenAPI shows it).
"""

from __future__ import annotations

import contextlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError

from .. import __version__
from ..commands import (
    COMMANDS,
    CaregiverIdArgs,
    InboundArgs,
    NoArgs,
    RoleArgs,
    RosterArgs,
    ShiftAddArgs,
    ShiftIdArgs,
    ShiftListArgs,
    ShiftRequestArgs,
    shift_summary,
)
from ..engine import InvalidInput, NotFound
from ..models import (
    CancelStatus,
    Caregiver,
    FanoutStatus,
    Outcome,
    ReleaseStatus,
    Role,
    Roster,
    ShiftState,
)
from ..shiftctl import rosterfiles as rostercsv
from ..store.base import StoreError
from .context import HttpContext, context, context_of
from .errors import ApiError, describe_validation, error_responses
from .middleware import ADMIN, token_scope

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="The token in `http.token_file`, or an organization's (`organization_tokens`).",
)
ShiftId = Annotated[str, Path(min_length=1, max_length=128, description="The shift's id.")]


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
) -> None:
    """401 without a configured bearer token (the middleware has already checked; this is
    a second lock, and what puts the scheme in the OpenAPI document). Keeps whom the token
    speaks for in `request.state.scope` (`ADMIN` or an organization id)."""
    settings = context_of(request).settings
    header = f"Bearer {credentials.credentials}" if credentials is not None else None
    scope = token_scope(header, settings)
    if scope is None:
        raise ApiError(
            401, "unauthorized", "missing or invalid bearer token", {"WWW-Authenticate": "Bearer"}
        )
    request.state.scope = scope


async def admin_only(request: Request) -> None:
    """403 for an organization's token: caregivers, counts and replies are every
    organization's."""
    if request.state.scope != ADMIN:
        raise ApiError(
            403,
            "forbidden",
            "an organization's token reaches its shifts only; this needs "
            "the administrators' token (http.token_file)",
        )


async def own_shift(request: Request, shift_id: ShiftId) -> None:
    """404, as for a shift that does not exist, when an organization's token names
    another organization's shift."""
    scope = request.state.scope
    if scope != ADMIN:
        shift = await context_of(request).engine.shift(shift_id)  # NotFound: 404
        if shift.organization_id != scope:
            raise NotFound(f"no shift {shift_id!r}")


Admin = [Depends(admin_only)]
Own = [Depends(own_shift)]


Ctx = Annotated[HttpContext, Depends(context)]


_errors = error_responses

open_router = APIRouter(tags=["health"], responses=_errors(500, 503))
api_router = APIRouter(
    dependencies=[Depends(require_token)],
    responses=_errors(400, 401, 403, 413, 415, 422, 500, 503),
)

# ---- answer shapes (for OpenAPI; the dicts come from the command handlers) -----------------


class Health(BaseModel):
    status: Literal["ok"]
    version: str


class Ready(BaseModel):
    status: Literal["ready"]
    actors: int


class ShiftSummary(BaseModel):
    id: str
    organization_id: str
    role_required: str
    start_time: str
    end_time: str
    state: ShiftState
    claimed_by: str | None


class ShiftDetail(ShiftSummary):
    claimed_at: str | None
    fanout_started_at: str | None
    escalate_at: str | None
    contacts: list[dict[str, Any]]
    declines: list[dict[str, Any]]
    lost_notices: list[dict[str, Any]] = []
    """Holder notices (confirm, released, shift_cancelled) that ended failed; each was
    followed up (a call to the winner, the coordinator told)."""
    timeline: list[dict[str, Any]]


class ShiftShown(BaseModel):
    shift: ShiftDetail


class ShiftList(BaseModel):
    shifts: list[ShiftSummary]


class ShiftPut(BaseModel):
    result: Literal["created", "updated", "unchanged"]
    shift: ShiftSummary


class FanoutAnswer(BaseModel):
    shift_id: str
    status: FanoutStatus
    offered: int
    escalate_at: str | None


class CancelAnswer(BaseModel):
    shift_id: str
    status: CancelStatus


class UnassignAnswer(BaseModel):
    shift_id: str
    status: ReleaseStatus
    reply: str | None
    """What the holder was told (None when nobody was)."""


class InboundAnswer(BaseModel):
    outcome: Outcome
    shift_id: str | None
    caregiver_id: str | None
    reply: str | None
    """The text queued for the caregiver in answer (None when nothing goes out)."""
    sent: bool
    """Whether this request queued `reply` (False on a replay, which sends nothing)."""
    replayed: bool


class Counts(BaseModel):
    created: int
    updated: int
    unchanged: int
    deactivated: int = 0
    skipped: list[dict[str, str]] = []
    changes: list[dict[str, Any]] | None = None
    """With `dry_run`: each change the import would make."""


class RosterImported(BaseModel):
    caregivers: Counts
    shifts: Counts
    warnings: list[dict[str, Any]] = []
    """Fields (JSON) or columns (CSV) no roster field takes: ignored, never silently."""
    dry_run: bool = False


class CaregiverOut(BaseModel):
    id: str
    name: str
    role: str
    phone: str
    tags: list[str]
    language: str | None = None
    """BCP 47, as in the roster; null: the organization's language."""


class CaregiverList(BaseModel):
    caregivers: list[CaregiverOut]


# ---- open -----------------------------------------------------------------------------------


@open_router.get("/health", response_model=Health, summary="Liveness: the process answers")
async def health() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


@open_router.get(
    "/ready",
    response_model=Ready,
    responses=_errors(503),
    summary="Readiness: store open, actors recovered, not stopping",
)
async def ready(ctx: Ctx) -> dict[str, Any]:
    if ctx.stopping or not ctx.ready:
        raise ApiError(503, "unavailable", "stopping" if ctx.stopping else "starting")
    try:
        actors = await ctx.engine.ready()
    except StoreError as exc:
        raise ApiError(503, "unavailable", "the store is not running") from exc
    return {"status": "ready", "actors": actors}


# ---- token ------------------------------------------------------------------------------------


async def _run(ctx: HttpContext, name: str, args: BaseModel) -> dict[str, Any]:
    return await COMMANDS[name].run(ctx.engine, args)


@api_router.get(
    "/metrics",
    dependencies=Admin,
    response_class=Response,
    summary="Prometheus metrics in the text exposition format (as `shiftctl metrics`)",
)
async def metrics(ctx: Ctx) -> Response:
    body, content_type = await ctx.engine.metrics.exposition()
    return Response(body, media_type=content_type)


@api_router.get(
    "/status", dependencies=Admin, summary="Counts, uptime, actors (as `shiftctl status`)"
)
async def status(ctx: Ctx) -> dict[str, Any]:
    return await _run(ctx, "status", NoArgs())


@api_router.get(
    "/caregivers",
    response_model=CaregiverList,
    dependencies=Admin,
    summary="The roster's caregivers",
)
async def caregivers(ctx: Ctx, role: Annotated[Role | None, Query()] = None) -> dict[str, Any]:
    return await _run(ctx, "caregiver.list", RoleArgs(role=role))


CaregiverId = Annotated[str, Path(min_length=1, max_length=128, description="The caregiver's id.")]


@api_router.post(
    "/caregivers/{caregiver_id}/deactivate",
    dependencies=Admin,
    responses=_errors(404),
    summary="Never offer this caregiver a shift again; their history stays",
)
async def deactivate(ctx: Ctx, caregiver_id: CaregiverId) -> dict[str, Any]:
    return await _run(ctx, "caregiver.deactivate", CaregiverIdArgs(caregiver_id=caregiver_id))


@api_router.post(
    "/caregivers/{caregiver_id}/activate",
    dependencies=Admin,
    responses=_errors(404),
    summary="Offer shifts to a deactivated caregiver again",
)
async def activate(ctx: Ctx, caregiver_id: CaregiverId) -> dict[str, Any]:
    return await _run(ctx, "caregiver.activate", CaregiverIdArgs(caregiver_id=caregiver_id))


@api_router.post(
    "/roster",
    response_model=RosterImported,
    summary="Import caregivers and shifts (the roster file's shape); upsert by id",
)
async def roster(ctx: Ctx, request: Request, body: Roster, dry_run: bool = False) -> dict[str, Any]:
    scope = request.state.scope
    if scope != ADMIN:
        if body.caregivers:
            await admin_only(request)
        if any(s.organization_id != scope for s in body.shifts):
            raise ApiError(403, "forbidden", f"this token reaches organization {scope!r} only")
    args = RosterArgs(caregivers=body.caregivers, shifts=body.shifts, dry_run=dry_run)
    return await _run(ctx, "roster.import", args)


@api_router.post(
    "/roster/csv",
    dependencies=Admin,
    response_model=RosterImported,
    responses=_errors(400),
    summary="Import caregivers from a CSV export (as `shiftctl roster import FILE.csv`)",
    description=(
        "A `text/csv` body with a header row. `map=field=Column` (repeatable) names the "
        "column a field is read from. Any problem (each with its line and column, in the "
        "422 message) and nothing is imported; `dry_run=true` changes nothing either way."
    ),
    openapi_extra={
        "requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}
    },
)
async def roster_csv(
    ctx: Ctx,
    request: Request,
    columns: Annotated[list[str], Query(alias="map", max_length=len(rostercsv.FIELDS))] = [],  # noqa: B006
    dry_run: bool = False,
) -> dict[str, Any]:
    try:
        text = (await request.body()).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ApiError(400, "bad_request", f"the body is not UTF-8 ({exc.reason})") from None
    try:
        mapping = rostercsv.parse_map(columns)
    except ValueError as exc:
        raise ApiError(422, "bad_args", str(exc)) from None
    parsed = rostercsv.read_csv(text, mapping)
    problems = list(parsed.errors)
    caregivers = [Caregiver.model_validate(c) for c in parsed.caregivers]
    engine = ctx.engine
    answer: dict[str, Any] = {}
    if caregivers:
        try:
            answer = await engine.import_roster(caregivers, [], dry_run=True)
        except InvalidInput as exc:
            problems += rostercsv.locate(str(exc), parsed)
    problems += rostercsv.unknown_fields(parsed, answer.get("warnings", []))
    if problems:
        problems.sort(key=lambda p: p.line)
        listed = "; ".join(map(str, problems))
        raise ApiError(422, "bad_args", f"{len(problems)} problem(s), nothing imported: {listed}")
    if not dry_run:
        answer = await engine.import_roster(caregivers, [])
    answer = answer or {
        "caregivers": {"created": 0, "updated": 0, "unchanged": 0},
        "shifts": {"created": 0, "updated": 0, "unchanged": 0},
        "dry_run": dry_run,
    }
    warnings = [{"line": w.line, "column": w.column, "message": w.message} for w in parsed.warnings]
    return {**answer, "warnings": warnings}


@api_router.get("/shifts", response_model=ShiftList, summary="Shifts, optionally of one state")
async def shifts(
    ctx: Ctx, request: Request, state: Annotated[ShiftState | None, Query()] = None
) -> dict[str, Any]:
    listed = await _run(ctx, "shift.list", ShiftListArgs(state=state))
    scope = request.state.scope
    if scope != ADMIN:
        listed["shifts"] = [s for s in listed["shifts"] if s["organization_id"] == scope]
    return listed


@api_router.post(
    "/shifts",
    response_model=ShiftPut,
    status_code=200,
    responses={201: {"model": ShiftPut, "description": "Created"}, **_errors(409)},
    summary="Create or update one shift (by id; a new id when none is given)",
)
async def put_shift(
    ctx: Ctx, request: Request, body: ShiftAddArgs, response: Response
) -> dict[str, Any]:
    scope = request.state.scope
    if scope != ADMIN:
        if "organization_id" not in body.model_fields_set:
            body = body.model_copy(update={"organization_id": scope})
        elif body.organization_id != scope:
            raise ApiError(403, "forbidden", f"this token reaches organization {scope!r} only")
        if body.id is not None:
            with contextlib.suppress(NotFound):
                existing = await ctx.engine.shift(body.id)
                if existing.organization_id != scope:
                    raise ApiError(409, "conflict", f"shift {body.id!r} exists already")
    engine = ctx.engine
    tz = engine.organizations.get(body.organization_id).tz
    try:
        shift = body.to_shift(body.id or engine.new_shift_id(), engine.clock.now(), tz)
    except ValidationError as exc:
        raise ApiError(422, "bad_args", describe_validation(exc.errors())) from None
    counts = (await ctx.engine.import_roster([], [shift]))["shifts"]
    if counts["skipped"]:
        raise ApiError(409, "conflict", f"shift {shift.id!r}: {counts['skipped'][0]['reason']}")
    result = "created" if counts["created"] else "updated" if counts["updated"] else "unchanged"
    if result == "created":
        response.status_code = 201
    return {"result": result, "shift": shift_summary(await ctx.engine.shift(shift.id), tz)}


@api_router.get(
    "/shifts/{shift_id}",
    dependencies=Own,
    response_model=ShiftShown,
    responses=_errors(404),
    summary="One shift with contacts, declines and timeline (as `shiftctl shift show`)",
    description="A cancelled shift stays readable (state `cancelled`), as do filled and"
    " unfilled ones: shifts are never deleted.",
)
async def show_shift(ctx: Ctx, shift_id: ShiftId) -> dict[str, Any]:
    return await _run(ctx, "shift.show", ShiftIdArgs(shift_id=shift_id))


@api_router.post(
    "/shifts/{shift_id}/fanout",
    dependencies=Own,
    response_model=FanoutAnswer,
    responses=_errors(404),
    summary="Start the fanout; a repeat starts nothing and says why",
)
async def fanout(ctx: Ctx, shift_id: ShiftId) -> dict[str, Any]:
    return await _run(ctx, "fanout", ShiftRequestArgs(shift_id=shift_id))


@api_router.delete(
    "/shifts/{shift_id}/fanout",
    dependencies=Own,
    response_model=CancelAnswer,
    responses=_errors(404),
    summary="Cancel the shift (kept for compatibility; the same as `DELETE /shifts/{shift_id}`)",
)
@api_router.delete(
    "/shifts/{shift_id}",
    dependencies=Own,
    response_model=CancelAnswer,
    responses=_errors(404),
    summary="Cancel the shift (as `shiftctl cancel`): nothing more is sent, the holder is told",
    description="The shift is cancelled, not removed: `GET /shifts/{shift_id}` goes on"
    " answering 200 with state `cancelled`; cancelling again answers `already_cancelled`,"
    " a fanout of it `cancelled`.",
)
async def cancel(ctx: Ctx, shift_id: ShiftId) -> dict[str, Any]:
    return await _run(ctx, "cancel", ShiftRequestArgs(shift_id=shift_id))


@api_router.delete(
    "/shifts/{shift_id}/claim",
    dependencies=Own,
    response_model=UnassignAnswer,
    responses=_errors(404),
    summary="Unassign a filled shift (as `shiftctl unassign`): the holder is told, and it is"
    " offered again, or ends unfilled when too late for that",
)
async def unassign(ctx: Ctx, shift_id: ShiftId) -> dict[str, Any]:
    return await _run(ctx, "unassign", ShiftRequestArgs(shift_id=shift_id))


@api_router.post(
    "/messages/inbound",
    dependencies=Admin,
    response_model=InboundAnswer,
    summary="A caregiver's reply from another channel (as `shiftctl inbound`)",
)
async def inbound(ctx: Ctx, body: InboundArgs) -> dict[str, Any]:
    return await _run(ctx, "inbound", body)


router = APIRouter()
router.include_router(open_router)
router.include_router(api_router)
