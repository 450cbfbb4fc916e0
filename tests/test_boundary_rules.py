"""One set of boundary rules (`shiftd.limits`) for every way a value comes in: the control
socket, the REST API, roster files and the configuration. Out of range is refused as a bad
argument naming the field; nothing out of range reaches date arithmetic."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from shiftd.config import ConfigError, parse_config
from shiftd.control.server import handle_line
from shiftd.limits import MAX_SHIFT_LENGTH, check_instant
from shiftd.models import Caregiver, Shift
from shiftd.testing.api import AUTH, open_api
from shiftd.testing.engine import EPOCH, Harness

HOSTILE_TIMES = [
    "9999-12-31T23:59:59-10:00",
    "0001-01-01T00:00:00+14:00",
    "1999-12-31T23:59:59Z",
    "2100-01-01T00:00:00Z",
    "2025-02-30T08:00:00Z",
    "2025-07-04T08:00:00+24:00",
    "+275760-09-13T00:00:00Z",
    "1e400",
]
NO_OFFSET = "2025-07-04T08:00:00"  # local time to `shift.add`, refused in a roster file
START = "2025-07-04T08:00:00Z"
END = "2025-07-04T16:00:00Z"


async def control(h: Harness, cmd: str, args: dict[str, Any]) -> dict[str, Any]:
    line = json.dumps({"id": 1, "cmd": cmd, "args": args}).encode()
    return json.loads(await handle_line(h.engine, line))


def shift_args(**overrides: Any) -> dict[str, Any]:
    return {"id": "s-x", "role_required": "RN", "start_time": START, "end_time": END, **overrides}


@pytest.mark.parametrize("when", HOSTILE_TIMES)
async def test_shift_add_with_a_time_out_of_range_is_bad_args_naming_the_field(
    harness: Harness, autojump_clock: object, when: str
) -> None:
    answer = await control(harness, "shift.add", shift_args(start_time=when))

    assert answer["error"]["code"] == "bad_args"
    assert answer["error"]["message"].startswith("start_time: ")
    assert (await control(harness, "ping", {}))["ok"] is True


@pytest.mark.parametrize("when", [*HOSTILE_TIMES, NO_OFFSET])
async def test_roster_import_with_a_time_out_of_range_is_bad_args_naming_the_field(
    harness: Harness, autojump_clock: object, when: str
) -> None:
    answer = await control(harness, "roster.import", {"shifts": [shift_args(end_time=when)]})

    assert answer["error"]["code"] == "bad_args"
    assert answer["error"]["message"].startswith("shifts.0.end_time: ")
    assert await harness.engine.store.shift("s-x") is None


async def test_a_local_start_whose_length_ends_past_the_window_is_refused_naming_end_time(
    harness: Harness, autojump_clock: object
) -> None:
    args = shift_args(start_time="2099-12-31 23:00", length="48h")
    del args["end_time"]
    answer = await control(harness, "shift.add", args)

    assert answer["error"]["code"] == "bad_args"
    assert "end_time" in answer["error"]["message"]
    assert (await control(harness, "ping", {}))["ok"] is True


async def test_a_shift_longer_than_the_maximum_is_refused(
    harness: Harness, autojump_clock: object
) -> None:
    end = datetime.fromisoformat(START) + MAX_SHIFT_LENGTH + timedelta(seconds=1)
    answer = await control(harness, "shift.add", shift_args(end_time=end.isoformat()))

    assert answer["error"]["code"] == "bad_args"
    assert "at most 48 hours" in answer["error"]["message"]


async def test_a_shift_of_exactly_the_maximum_length_is_accepted(
    harness: Harness, autojump_clock: object
) -> None:
    end = datetime.fromisoformat(START) + MAX_SHIFT_LENGTH
    answer = await control(harness, "shift.add", shift_args(end_time=end.isoformat()))

    assert answer["ok"] is True, answer


@pytest.mark.parametrize("since", ["99999999d", "3661d", "999999999999999999999999d"])
async def test_stats_since_an_absurd_duration_is_bad_args_naming_since(
    harness: Harness, autojump_clock: object, since: str
) -> None:
    answer = await control(harness, "stats", {"since": since})

    assert answer["error"]["code"] == "bad_args"
    assert answer["error"]["message"].startswith("since: ")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "x" * 129),
        ("name", ""),
        ("name", "n" * 201),
        ("role", "r" * 33),
        ("phone", "12"),
        ("phone", "1" * 21),
        ("tags", ["t"] * 33),
        ("tags", ["x" * 33]),
    ],
)
async def test_caregiver_fields_out_of_their_limits_are_bad_args_naming_the_field(
    harness: Harness, autojump_clock: object, field: str, value: Any
) -> None:
    caregiver = {"id": "cg-x", "name": "Ann", "role": "RN", "phone": "+15550009999"}
    answer = await control(harness, "roster.import", {"caregivers": [{**caregiver, field: value}]})

    assert answer["error"]["code"] == "bad_args"
    assert answer["error"]["message"].startswith(f"caregivers.0.{field}")


async def test_a_request_id_of_a_thousand_digits_is_refused_and_the_socket_goes_on(
    harness: Harness, autojump_clock: object
) -> None:
    answer = json.loads(
        await handle_line(harness.engine, b'{"id": ' + b"9" * 1000 + b', "cmd": "ping"}')
    )
    assert answer["error"]["code"] == "bad_request"
    assert (await control(harness, "ping", {}))["ok"] is True


@pytest.mark.parametrize("when", HOSTILE_TIMES)
async def test_http_shift_and_roster_with_a_time_out_of_range_answer_422_naming_the_field(
    harness: Harness, autojump_clock: object, when: str
) -> None:
    async with open_api(harness) as api:
        one = await api.client.post("/shifts", json=shift_args(start_time=when), headers=AUTH)
        roster = {"shifts": [shift_args(start_time=when)]}
        many = await api.client.post("/roster", json=roster, headers=AUTH)

    assert one.status_code == 422, one.text
    assert one.json()["error"]["message"].startswith("start_time: ")
    assert many.status_code == 422, many.text
    assert many.json()["error"]["message"].startswith("shifts.0.start_time: ")


@pytest.mark.parametrize("duration", ['"99999999d"', '"3661d"'])
def test_a_configured_duration_past_the_maximum_is_a_config_error_naming_the_key(
    duration: str,
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(f"escalation:\n  delay: {duration}\n", "shiftd.yaml")
    (problem,) = info.value.problems
    assert problem.startswith("shiftd.yaml:2: escalation.delay: ")
    assert "at most 3660d" in problem


def test_an_instant_is_kept_in_utc_whatever_offset_it_was_written_with() -> None:
    assert check_instant("2025-07-04T08:00:00-10:00") == datetime(2025, 7, 4, 18, tzinfo=UTC)
    assert check_instant("2099-12-31T23:59:59-12:00").year == 2100  # dated 2099 as written


def test_the_models_apply_the_same_rules_to_python_values() -> None:
    with pytest.raises(ValidationError, match="dated 2000 to 2099"):
        Shift(
            id="s",
            role_required="RN",
            start_time=datetime(1, 1, 1, tzinfo=UTC),
            end_time=EPOCH,
        )
    with pytest.raises(ValidationError, match="phone"):
        Caregiver(id="c", name="n", role="RN", phone="+" + "1" * 30)


def test_the_roster_in_the_repository_passes_the_rules() -> None:
    sample = json.loads((Path(__file__).parent / "data" / "sample_data.json").read_text())
    for item in sample.get("caregivers", []):
        Caregiver.model_validate(item)
    for item in sample.get("shifts", []):
        Shift.model_validate(item)
