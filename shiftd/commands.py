"""The application's commands: name → argument model → engine operation → JSON-able result.

One table serves every transport (the control socket, HTTP's REST routes, the board's
actions), so a command means the same wherever it arrives. Argument models forbid unknown
keys: a typo is an error, not a silently ignored option.

`STREAMS` holds the commands that answer with an acknowledgement and then a stream of
events until the client goes away (`watch`); only transports that can stream serve them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from . import __version__
from .clock import local_iso, relocal
from .config import Duration
from .engine import Engine
from .events import Subscription
from .limits import WallTime
from .models import CaregiverChannel, Channel, Id, Role, Roster, Shift, ShiftState
from .store.base import ShiftRow
from .web.passwords import valid_hash

CoordinatorName = Annotated[
    str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]*$")
]
"""A coordinator's sign-in name: letters, digits and `._@-`, starting with a letter or digit."""


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoArgs(_Args):
    pass


class RoleArgs(_Args):
    role: Role | None = None


class ShiftAddArgs(_Args):
    """A shift to create. Times without an offset (`2027-01-05 07:00`) are local times in
    the organization's zone; `start_in` is a start relative to now (rounded up to the
    minute), `length` an end relative to the start."""

    id: Id | None = None
    organization_id: Id = "default"
    role_required: Role
    start_time: WallTime | None = None
    end_time: WallTime | None = None
    start_in: Duration | None = None
    length: Duration | None = None

    @model_validator(mode="after")
    def _one_start_one_end(self) -> ShiftAddArgs:
        if (self.start_time is None) == (self.start_in is None):
            raise ValueError("give exactly one of start_time and start_in")
        if (self.end_time is None) == (self.length is None):
            raise ValueError("give exactly one of end_time and length")
        if self.length is not None and self.length <= timedelta(0):
            raise ValueError("length must be positive")
        return self

    def to_shift(self, shift_id: str, now: datetime, tz: tzinfo) -> Shift:
        """The shift these arguments mean at `now` in zone `tz`; ValueError (pydantic's
        ValidationError) when it is not a valid shift."""
        if self.start_in is not None:
            start = now + self.start_in
            start = start.replace(second=0, microsecond=0) + (
                timedelta(minutes=1) if (start.second or start.microsecond) else timedelta(0)
            )
        else:
            start = _in_zone(self.start_time, tz)
        end = start + self.length if self.length is not None else _in_zone(self.end_time, tz)
        fields = self.model_dump(include={"organization_id", "role_required"})
        return Shift.model_validate(
            {**fields, "id": shift_id, "start_time": start, "end_time": end}
        )


def _in_zone(value: datetime | None, tz: tzinfo) -> datetime:
    assert value is not None
    return value if value.tzinfo is not None else value.replace(tzinfo=tz)


class ShiftListArgs(_Args):
    state: ShiftState | None = None


class ShiftIdArgs(_Args):
    shift_id: Id


class ShiftRequestArgs(ShiftIdArgs):
    """A command to a shift's actor. `request_id`: a key the client chooses and sends
    again when it retries (after `unavailable`, or a timeout); in a cluster, a command
    forwarded to the shift's owner with a key it has seen is answered with the first
    outcome instead of being applied again."""

    request_id: Id | None = None


def _request_key(cmd: str, args: ShiftRequestArgs) -> str | None:
    """The request's name across retries: the client's key, kept apart per command and
    shift (a key reused for another command or shift names another request) and from the
    names inbound texts use (`inbound:<provider id>`)."""
    if args.request_id is None:
        return None
    return f"control:{cmd}:{args.shift_id}:{args.request_id}"


class InboundArgs(_Args):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from", min_length=1, max_length=64)
    body: str = Field(max_length=1600)
    channel: CaregiverChannel = "sms"
    provider_message_id: str | None = Field(default=None, min_length=1, max_length=128)
    shift_id: Id | None = None


class UserAddArgs(_Args):
    name: CoordinatorName
    password_hash: str = Field(min_length=1, max_length=256)
    """What `shiftd.web.passwords.hash_password` made of the password (never the password)."""

    @field_validator("password_hash")
    @classmethod
    def _a_hash(cls, text: str) -> str:
        if not valid_hash(text):
            raise ValueError("not a password hash made by shiftctl user add")
        return text


class UserNameArgs(_Args):
    name: CoordinatorName


class StatsArgs(_Args):
    since: Duration = timedelta(hours=24)


class WatchArgs(_Args):
    shift_id: Id | None = None


def shift_summary(row: ShiftRow, tz: tzinfo) -> dict[str, Any]:
    """A shift as lists and REST show it: times local to `tz`, with their offset."""
    return {
        "id": row.id,
        "organization_id": row.organization_id,
        "role_required": row.role_required,
        "start_time": local_iso(row.start_time, tz),
        "end_time": local_iso(row.end_time, tz),
        "state": row.state.value,
        "claimed_by": row.claimed_by,
    }


def _zone(engine: Engine, org_id: str) -> tzinfo:
    return engine.organizations.get(org_id).tz


async def _ping(engine: Engine, _: NoArgs) -> dict[str, Any]:
    return {"pong": True, "version": __version__}


async def _status(engine: Engine, _: NoArgs) -> dict[str, Any]:
    return {"version": __version__, **await engine.status()}


class RosterArgs(Roster):
    dry_run: bool = False
    """Check and count only: nothing changes."""


class CaregiverIdArgs(_Args):
    caregiver_id: Id


async def _roster_import(engine: Engine, args: RosterArgs) -> dict[str, Any]:
    return await engine.import_roster(args.caregivers, args.shifts, dry_run=args.dry_run)


async def _caregiver_list(engine: Engine, args: RoleArgs) -> dict[str, Any]:
    rows = await engine.caregivers(args.role)
    return {
        "caregivers": [
            {"id": r.id, "name": r.name, "role": r.role, "phone": r.phone, "tags": list(r.tags)}
            | {"active": r.active, "language": r.language}
            for r in rows
        ]
    }


async def _caregiver_activate(engine: Engine, args: CaregiverIdArgs) -> dict[str, Any]:
    await engine.set_caregiver_active(args.caregiver_id, True)
    return {"caregiver_id": args.caregiver_id, "active": True}


async def _caregiver_deactivate(engine: Engine, args: CaregiverIdArgs) -> dict[str, Any]:
    await engine.set_caregiver_active(args.caregiver_id, False)
    return {"caregiver_id": args.caregiver_id, "active": False}


async def _shift_add(engine: Engine, args: ShiftAddArgs) -> dict[str, Any]:
    tz = _zone(engine, args.organization_id)
    shift = args.to_shift(args.id or engine.new_shift_id(), engine.clock.now(), tz)
    return {"shift": shift_summary(await engine.add_shift(shift), tz)}


async def _shift_list(engine: Engine, args: ShiftListArgs) -> dict[str, Any]:
    rows = await engine.shifts(args.state)
    return {"shifts": [shift_summary(r, _zone(engine, r.organization_id)) for r in rows]}


async def _shift_show(engine: Engine, args: ShiftIdArgs) -> dict[str, Any]:
    detail = await engine.shift_detail(args.shift_id)
    row: ShiftRow = detail["shift"]
    tz = _zone(engine, row.organization_id)
    return {
        "shift": {
            **shift_summary(row, tz),
            "claimed_at": local_iso(row.claimed_at, tz),
            "fanout_started_at": local_iso(row.fanout_started_at, tz),
            "escalate_at": local_iso(row.escalate_at, tz),
            "contacts": [{**c, "at": relocal(c["at"], tz)} for c in detail["contacts"]],
            "declines": [{**d, "at": relocal(d["at"], tz)} for d in detail["declines"]],
            "lost_notices": [{**n, "at": relocal(n["at"], tz)} for n in detail["lost_notices"]],
            "timeline": [
                {**e, "ts": relocal(e["ts"], tz), "detail": _local_detail(e["detail"], tz)}
                for e in detail["timeline"]
            ],
        }
    }


def _local_detail(detail: dict[str, Any] | None, tz: tzinfo) -> dict[str, Any] | None:
    """A timeline detail with its instants (`expires_at`, `until`…) in local time."""
    if not detail:
        return detail
    return {
        k: relocal(v, tz) if isinstance(v, str) and (k.endswith("_at") or k == "until") else v
        for k, v in detail.items()
    }


async def _fanout(engine: Engine, args: ShiftRequestArgs) -> dict[str, Any]:
    result = await engine.fanout(args.shift_id, request_id=_request_key("fanout", args))
    tz = _zone(engine, (await engine.shift(args.shift_id)).organization_id)
    return {
        "shift_id": args.shift_id,
        "status": result.status.value,
        "offered": result.offered,
        "escalate_at": relocal(result.escalate_at, tz),
    }


async def _inbound(engine: Engine, args: InboundArgs) -> dict[str, Any]:
    result = await engine.inbound(
        args.from_,
        args.body,
        Channel(args.channel),
        provider_id=args.provider_message_id,
        shift_id=args.shift_id,
    )
    return result.as_dict()


async def _cancel(engine: Engine, args: ShiftRequestArgs) -> dict[str, Any]:
    status = await engine.cancel(args.shift_id, request_id=_request_key("cancel", args))
    return {"shift_id": args.shift_id, "status": status.value}


async def _unassign(engine: Engine, args: ShiftRequestArgs) -> dict[str, Any]:
    result = await engine.unassign(args.shift_id, request_id=_request_key("unassign", args))
    return {"shift_id": args.shift_id, "status": result.status.value, "reply": result.reply}


async def _user_add(engine: Engine, args: UserAddArgs) -> dict[str, Any]:
    created = await engine.put_coordinator(args.name, args.password_hash)
    return {"name": args.name, "result": "created" if created else "password_changed"}


async def _user_remove(engine: Engine, args: UserNameArgs) -> dict[str, Any]:
    await engine.remove_coordinator(args.name)
    return {"name": args.name, "result": "removed"}


async def _user_list(engine: Engine, _: NoArgs) -> dict[str, Any]:
    return {"users": await engine.coordinators()}


async def _metrics(engine: Engine, _: NoArgs) -> dict[str, Any]:
    body, content_type = await engine.metrics.exposition()
    return {"text": body.decode(), "content_type": content_type}


async def _stats(engine: Engine, args: StatsArgs) -> dict[str, Any]:
    return {"window_s": args.since.total_seconds(), **await engine.stats(args.since)}


async def _watch(engine: Engine, args: WatchArgs) -> tuple[dict[str, Any], Subscription]:
    if args.shift_id is not None:
        await engine.shift(args.shift_id)  # NotFound for a typo, rather than silence
    subscription = engine.events.subscribe(shift_id=args.shift_id)
    zone = getattr(_zone(engine, "default"), "key", "UTC")  # for showing events' times
    ack = {"watching": True, "shift_id": args.shift_id, "timezone": zone}
    return ack, subscription


class ExportArgs(_Args):
    """A page of the audit record: `since`/`until` are instants (local to the default
    organization's zone without an offset) or, for `since`, a span back from now (`7d`)."""

    kind: Literal["messages", "timeline"]
    since: Duration | WallTime = timedelta(days=1)
    until: WallTime | None = None
    after: tuple[str, str, int] | None = None
    limit: int = Field(default=500, ge=1, le=1000)


async def _export(engine: Engine, args: ExportArgs) -> dict[str, Any]:
    now, tz = engine.clock.now(), _zone(engine, "default")
    since = now - args.since if isinstance(args.since, timedelta) else _in_zone(args.since, tz)
    until = None if args.until is None else _in_zone(args.until, tz)
    rows = await engine.export(args.kind, since, until, args.after, args.limit)
    last = rows[-1] if len(rows) == args.limit else None
    for row in rows:
        del row["tag"]
        if row.get("detail"):
            row["detail"] = json.loads(row["detail"])
    return {
        "kind": args.kind,
        "since": local_iso(since, tz),
        "until": local_iso(until, tz),  # None: up to now, whatever comes meanwhile
        "rows": rows,
        "next": None if last is None else [last["ts"], _tag(args.kind, last), last["id"]],
    }


def _tag(kind: str, row: dict[str, Any]) -> str:
    return str(row["direction"] if kind == "messages" else row["kind"])


@dataclass(frozen=True, slots=True)
class Command:
    args: type[BaseModel]
    run: Callable[[Engine, Any], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class StreamCommand:
    """Answered by an acknowledgement (`result`), then one line per event (`event`) from the
    subscription `open` returns, until the client disconnects. The caller closes it."""

    args: type[BaseModel]
    open: Callable[[Engine, Any], Awaitable[tuple[dict[str, Any], Subscription]]]


COMMANDS: dict[str, Command] = {
    "ping": Command(NoArgs, _ping),
    "status": Command(NoArgs, _status),
    "roster.import": Command(RosterArgs, _roster_import),
    "caregiver.list": Command(RoleArgs, _caregiver_list),
    "caregiver.activate": Command(CaregiverIdArgs, _caregiver_activate),
    "caregiver.deactivate": Command(CaregiverIdArgs, _caregiver_deactivate),
    "shift.add": Command(ShiftAddArgs, _shift_add),
    "shift.list": Command(ShiftListArgs, _shift_list),
    "shift.show": Command(ShiftIdArgs, _shift_show),
    "fanout": Command(ShiftRequestArgs, _fanout),
    "inbound": Command(InboundArgs, _inbound),
    "cancel": Command(ShiftRequestArgs, _cancel),
    "unassign": Command(ShiftRequestArgs, _unassign),
    "user.add": Command(UserAddArgs, _user_add),
    "user.remove": Command(UserNameArgs, _user_remove),
    "user.list": Command(NoArgs, _user_list),
    "metrics": Command(NoArgs, _metrics),
    "stats": Command(StatsArgs, _stats),
    "export": Command(ExportArgs, _export),
}

STREAMS: dict[str, StreamCommand] = {
    "watch": StreamCommand(WatchArgs, _watch),
}

__all__ = ["COMMANDS", "STREAMS", "Command", "StreamCommand", "shift_summary"]
