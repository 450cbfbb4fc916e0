"""The control commands: name → argument model → engine operation → JSON-able result.

One table serves every transport (the Unix socket now, HTTP later), so a command means the
same wherever it arrives. Argument models forbid unknown keys: a typo is an error, not a
silently ignored option.

`STREAMS` holds the commands that answer with an acknowledgement and then a stream of
events until the client goes away (`watch`); only transports that can stream serve them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .. import __version__
from ..clock import iso
from ..config import Duration
from ..engine import Engine, NotFound
from ..events import Subscription
from ..models import Channel, Id, Role, Roster, Shift, ShiftState, UtcDatetime
from ..store.base import ShiftRow


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NoArgs(_Args):
    pass


class RoleArgs(_Args):
    role: Role | None = None


class ShiftAddArgs(_Args):
    id: Id | None = None
    organization_id: str = Field(default="default", max_length=128)
    role_required: Role
    start_time: UtcDatetime
    end_time: UtcDatetime

    @model_validator(mode="after")
    def _ends_after_start(self) -> ShiftAddArgs:  # as Shift does, but answered as bad_args
        if self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        return self


class ShiftListArgs(_Args):
    state: ShiftState | None = None


class ShiftIdArgs(_Args):
    shift_id: Id


class InboundArgs(_Args):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: str = Field(alias="from", min_length=1, max_length=64)
    body: str = Field(max_length=1600)
    channel: Literal["sms", "voice"] = "sms"
    provider_message_id: str | None = Field(default=None, min_length=1, max_length=128)
    shift_id: Id | None = None


class StatsArgs(_Args):
    since: Duration = timedelta(hours=24)


class WatchArgs(_Args):
    shift_id: Id | None = None


def shift_summary(row: ShiftRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "organization_id": row.organization_id,
        "role_required": row.role_required,
        "start_time": iso(row.start_time),
        "end_time": iso(row.end_time),
        "state": row.state.value,
        "claimed_by": row.claimed_by,
    }


async def _ping(engine: Engine, _: NoArgs) -> dict[str, Any]:
    return {"pong": True, "version": __version__}


async def _status(engine: Engine, _: NoArgs) -> dict[str, Any]:
    return {"version": __version__, **await engine.status()}


async def _roster_import(engine: Engine, args: Roster) -> dict[str, Any]:
    return await engine.import_roster(args.caregivers, args.shifts)


async def _caregiver_list(engine: Engine, args: RoleArgs) -> dict[str, Any]:
    rows = await engine.store.list_caregivers(args.role)
    return {
        "caregivers": [
            {"id": r.id, "name": r.name, "role": r.role, "phone": r.phone, "tags": list(r.tags)}
            for r in rows
        ]
    }


async def _shift_add(engine: Engine, args: ShiftAddArgs) -> dict[str, Any]:
    fields = args.model_dump()
    if fields["id"] is None:
        fields["id"] = engine.new_shift_id()
    row = await engine.add_shift(Shift.model_validate(fields))
    return {"shift": shift_summary(row)}


async def _shift_list(engine: Engine, args: ShiftListArgs) -> dict[str, Any]:
    return {"shifts": [shift_summary(r) for r in await engine.shifts(args.state)]}


async def _shift_show(engine: Engine, args: ShiftIdArgs) -> dict[str, Any]:
    detail = await engine.store.shift_detail(args.shift_id)
    if detail is None:
        raise NotFound(f"no shift {args.shift_id!r}")
    row: ShiftRow = detail["shift"]
    return {
        "shift": {
            **shift_summary(row),
            "claimed_at": iso(row.claimed_at),
            "fanout_started_at": iso(row.fanout_started_at),
            "escalate_at": iso(row.escalate_at),
            "contacts": detail["contacts"],
            "declines": detail["declines"],
            "timeline": detail["timeline"],
        }
    }


async def _fanout(engine: Engine, args: ShiftIdArgs) -> dict[str, Any]:
    result = await engine.fanout(args.shift_id)
    return {
        "shift_id": args.shift_id,
        "status": result.status.value,
        "offered": result.offered,
        "escalate_at": result.escalate_at,
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


async def _cancel(engine: Engine, args: ShiftIdArgs) -> dict[str, Any]:
    status = await engine.cancel(args.shift_id)
    return {"shift_id": args.shift_id, "status": status.value}


async def _unassign(engine: Engine, args: ShiftIdArgs) -> dict[str, Any]:
    result = await engine.unassign(args.shift_id)
    return {"shift_id": args.shift_id, "status": result.status.value, "reply": result.reply}


async def _metrics(engine: Engine, _: NoArgs) -> dict[str, Any]:
    body, content_type = await engine.metrics.exposition()
    return {"text": body.decode(), "content_type": content_type}


async def _stats(engine: Engine, args: StatsArgs) -> dict[str, Any]:
    return {"window_s": args.since.total_seconds(), **await engine.stats(args.since)}


async def _watch(engine: Engine, args: WatchArgs) -> tuple[dict[str, Any], Subscription]:
    if args.shift_id is not None:
        await engine.shift(args.shift_id)  # NotFound for a typo, rather than silence
    subscription = engine.events.subscribe(shift_id=args.shift_id)
    return {"watching": True, "shift_id": args.shift_id}, subscription


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
    "roster.import": Command(Roster, _roster_import),
    "caregiver.list": Command(RoleArgs, _caregiver_list),
    "shift.add": Command(ShiftAddArgs, _shift_add),
    "shift.list": Command(ShiftListArgs, _shift_list),
    "shift.show": Command(ShiftIdArgs, _shift_show),
    "fanout": Command(ShiftIdArgs, _fanout),
    "inbound": Command(InboundArgs, _inbound),
    "cancel": Command(ShiftIdArgs, _cancel),
    "unassign": Command(ShiftIdArgs, _unassign),
    "metrics": Command(NoArgs, _metrics),
    "stats": Command(StatsArgs, _stats),
}

STREAMS: dict[str, StreamCommand] = {
    "watch": StreamCommand(WatchArgs, _watch),
}

__all__ = ["COMMANDS", "STREAMS", "Command", "StreamCommand", "shift_summary"]
