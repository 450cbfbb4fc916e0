"""Local time where a person looks: shifts are entered and shown in the organization's zone.

Stored instants stay UTC; `shift.add` reads times without an offset as local to the shift's
organization, and lists, `shift show` and REST answer ISO 8601 to the second with the offset.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import trio
from pydantic import ValidationError

from shiftd.commands import COMMANDS, STREAMS, WatchArgs
from shiftd.shiftctl.cli import _leaf_parsers, build_parser
from shiftd.shiftctl.timeline import render_event
from shiftd.testing.engine import EPOCH, Harness, StartEngine, make_config


async def _call(h: Harness, name: str, args: dict[str, Any]) -> dict[str, Any]:
    command = COMMANDS[name]
    return await command.run(h.engine, command.args.model_validate(args))


async def test_a_start_without_offset_is_local_to_the_organization(
    harness: Harness, autojump_clock: object
) -> None:
    added = await _call(
        harness,
        "shift.add",
        {"id": "lpn-1", "role_required": "LPN", "start_time": "2027-01-05 07:00"}
        | {"end_time": "2027-01-05 15:00"},
    )
    assert added["shift"]["start_time"] == "2027-01-05T07:00:00-05:00"
    assert added["shift"]["end_time"] == "2027-01-05T15:00:00-05:00"
    stored = await harness.engine.shift("lpn-1")
    assert stored.start_time == datetime(2027, 1, 5, 12, 0, tzinfo=UTC)


async def test_a_start_with_an_offset_is_taken_as_given(
    harness: Harness, autojump_clock: object
) -> None:
    added = await _call(
        harness,
        "shift.add",
        {"id": "rn-z", "role_required": "RN", "start_time": "2027-07-05T12:00:00Z"}
        | {"length": "8h"},
    )
    assert added["shift"]["start_time"] == "2027-07-05T08:00:00-04:00"  # summer time
    assert added["shift"]["end_time"] == "2027-07-05T16:00:00-04:00"


async def test_in_starts_relative_to_now_rounded_up_to_the_minute(
    harness: Harness, autojump_clock: object
) -> None:
    await trio.sleep(30)  # now is 14:00:30Z
    added = await _call(
        harness, "shift.add", {"role_required": "RN", "start_in": "2h", "length": "8h"}
    )
    stored = await harness.engine.shift(added["shift"]["id"])
    assert stored.start_time == EPOCH.replace(hour=16, minute=1)
    assert (stored.end_time - stored.start_time).total_seconds() == 8 * 3600


async def test_each_organization_uses_its_own_zone(
    start_engine: StartEngine, tmp_path: Path, autojump_clock: object
) -> None:
    config = make_config(tmp_path, organizations={"berlin": {"timezone": "Europe/Berlin"}})
    h = await start_engine(config)
    added = await _call(
        h,
        "shift.add",
        {"organization_id": "berlin", "role_required": "RN", "start_time": "2027-01-05 07:00"}
        | {"length": "8h"},
    )
    assert added["shift"]["start_time"] == "2027-01-05T07:00:00+01:00"
    listed = await _call(h, "shift.list", {})
    assert [s["start_time"] for s in listed["shifts"]] == ["2027-01-05T07:00:00+01:00"]


@pytest.mark.parametrize(
    "times",
    [
        {"start_time": "2027-01-05 07:00", "start_in": "2h", "length": "8h"},
        {"start_time": "2027-01-05 07:00"},
        {"start_in": "2h", "end_time": "2027-01-05 07:00", "length": "1h"},
        {"start_in": "2h", "length": "0s"},
    ],
)
def test_one_start_and_one_end_or_the_arguments_are_refused(times: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        COMMANDS["shift.add"].args.model_validate({"role_required": "RN", **times})


async def test_shift_show_gives_every_instant_locally_to_the_second(
    harness: Harness, autojump_clock: object
) -> None:
    await harness.engine.fanout("shift-1")
    shown = (await _call(harness, "shift.show", {"shift_id": "shift-1"}))["shift"]
    instants = [shown["fanout_started_at"], shown["escalate_at"]]
    instants += [e["ts"] for e in shown["timeline"]] + [c["at"] for c in shown["contacts"]]
    assert instants and all(t.endswith("-04:00") and "." not in t for t in instants)
    assert shown["fanout_started_at"] == "2025-07-01T10:00:00-04:00"


def test_every_subcommand_takes_json_after_its_name() -> None:
    parser = build_parser()
    leaves = list(_leaf_parsers(parser))
    progs = {leaf.prog for leaf in leaves}
    assert {"shiftctl shift list", "shiftctl caregiver deactivate", "shiftctl stats"} <= progs
    for leaf in leaves:
        assert "--json" in leaf._option_string_actions, leaf.prog
    ns = parser.parse_args(["shift", "list", "--json"])
    assert ns.json is True


def test_watch_lines_show_the_daemons_local_time() -> None:
    event = {"ts": "2025-07-01T14:00:05.123456Z", "kind": "fanout_started", "shift_id": "s1"}
    event["detail"] = {"offered": 2, "escalate_at": "2025-07-01T14:10:00.000000Z"}
    line = render_event(event, ZoneInfo("America/New_York"))
    assert line.startswith("2025-07-01 10:00:05  fanout_started")
    assert line.endswith("escalates at 2025-07-01 10:10:00")


async def test_the_watch_acknowledgement_names_the_zone(
    harness: Harness, autojump_clock: object
) -> None:
    ack, subscription = await STREAMS["watch"].open(harness.engine, WatchArgs())
    subscription.close()
    assert ack["timezone"] == "America/New_York"
