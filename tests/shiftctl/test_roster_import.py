"""A roster from an agency's own export: CSV columns mapped to fields, roles normalised and
checked, every problem with its line and column, dry runs, and caregivers who leave.

(`shiftctl roster import FILE.csv` end to end, against a real daemon, is in the README tour:
tests/test_readme_tour.py.)
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shiftd.engine import InvalidInput
from shiftd.models import Caregiver
from shiftd.shiftctl.rosterfiles import parse_map, read_csv
from shiftd.testing.api import AUTH, open_api
from shiftd.testing.engine import Harness, StartEngine, caregiver, make_config, phone, shift

EXPORT = """\
Employee ID,Full Name,Discipline,Mobile Phone,Status,Address
cg-1,Ana Lima, rn ,(617) 555-0101,Active,1 Main St
cg-2,Bo Chen,Lpn,617-555-0102,inactive,2 Main St
"""
MAP = {
    "id": "Employee ID",
    "name": "full name",
    "role": "Discipline",
    "phone": "Mobile Phone",
    "active": "Status",
}


def test_mapped_columns_become_caregivers() -> None:
    roster = read_csv(EXPORT, MAP)
    assert roster.errors == []
    assert roster.caregivers == [
        {"id": "cg-1", "name": "Ana Lima", "role": "rn", "phone": "(617) 555-0101", "active": True},
        {"id": "cg-2", "name": "Bo Chen", "role": "Lpn", "phone": "617-555-0102", "active": False},
    ]
    assert roster.lines == [2, 3]


def test_a_column_no_field_takes_is_a_warning_naming_it() -> None:
    warnings = read_csv(EXPORT, MAP).warnings
    assert [str(w) for w in warnings] == [
        "line 1, column 'Address': not a roster field: ignored (use --map FIELD=Column to read it)"
    ]


def test_columns_named_like_fields_need_no_map() -> None:
    roster = read_csv("ID,Name,Role,Phone,Tags\ncg-1,Ana,RN,+16175550101,preferred; peds\n")
    assert roster.errors == [] and roster.warnings == []
    assert roster.caregivers[0]["tags"] == ["preferred", "peds"]


def test_language_is_a_known_column() -> None:
    roster = read_csv("id,name,role,phone,language\ncg-1,Ana,RN,+16175550101,es\n")
    assert roster.warnings == []
    assert roster.caregivers[0]["language"] == "es"


def test_every_problem_is_reported_with_its_line_and_column() -> None:
    text = EXPORT + "cg-3,,RN,abc,yes,x\ncg-1,Ana Again,RN,+16175550109,maybe,y\ncg-4,Short\n"
    problems = [str(p) for p in read_csv(text, MAP).errors]
    assert problems == [
        "line 4, column 'Full Name': String should have at least 1 character",
        "line 4, column 'Mobile Phone': not a phone number: 'abc'",
        "line 5, column 'Status': 'maybe' is not yes or no",
        "line 6: 2 cells, the header has 6",
    ]


def test_a_repeated_id_or_phone_is_an_error_at_its_second_line() -> None:
    text = (
        "id,name,role,phone\ncg-1,A,RN,6175550101\ncg-1,B,RN,6175550102\ncg-3,C,RN,+16175550101\n"
    )
    assert [str(p) for p in read_csv(text).errors] == [
        "line 3, column 'id': same id as line 2",
        "line 4, column 'phone': same phone as line 2",
    ]


def test_a_missing_required_column_or_a_map_to_nothing_is_an_error() -> None:
    problems = [str(p) for p in read_csv("id,name,role\ncg-1,A,RN\n", {"role": "Job"}).errors]
    assert problems == [
        "line 1, column 'Job': no such column (--map role=Job)",
        "line 1: no 'phone' column (name one with --map phone=Column)",
    ]


@pytest.mark.parametrize("pair", ["phone", "phone=", "colour=Eyes"])
def test_a_malformed_map_is_refused(pair: str) -> None:
    with pytest.raises(ValueError, match="--map"):
        parse_map([pair])


# ---- the daemon's side ----------------------------------------------------------------------


def _from_csv(text: str = EXPORT) -> list[Caregiver]:
    return [Caregiver.model_validate(c) for c in read_csv(text, MAP).caregivers]


async def test_roles_are_trimmed_and_matched_to_the_configured_spelling(
    start_engine: StartEngine, tmp_path: Path, autojump_clock: object
) -> None:
    h = await start_engine(make_config(tmp_path, roles=["RN", "LPN", "CNA"]))
    await h.engine.import_roster(_from_csv(), [])
    listed = await h.engine.store.list_caregivers()
    assert [(c.id, c.role) for c in listed] == [("cg-2", "LPN"), ("cg-1", "RN")]


async def test_an_unknown_role_names_each_item_and_imports_nothing(
    start_engine: StartEngine, tmp_path: Path, autojump_clock: object
) -> None:
    h = await start_engine(make_config(tmp_path, roles=["RN", "LPN"]))
    roster = [caregiver(1), caregiver(2, " plumber"), caregiver(3, "cna")]
    with pytest.raises(InvalidInput) as raised:
        await h.engine.import_roster(roster, [])
    assert str(raised.value) == (
        "caregivers[1].role: unknown role ' plumber' (roles: RN, LPN); "
        "caregivers[2].role: unknown role 'cna' (roles: RN, LPN)"
    )
    assert await h.engine.store.list_caregivers() == []


async def test_without_a_role_list_an_rn_caregiver_is_offered_an_rn_shift(
    start_engine: StartEngine, autojump_clock: object
) -> None:
    h = await start_engine()
    await h.engine.import_roster([caregiver(1, "rn "), caregiver(2, "Rn")], [shift(role="RN")])
    result = await h.engine.fanout("shift-1")
    assert result.offered == 2


async def test_import_counts_created_updated_unchanged_and_deactivated(
    harness: Harness, autojump_clock: object
) -> None:
    again = [
        caregiver(1),  # unchanged
        caregiver(2).model_copy(update={"name": "Renamed"}),
        caregiver(3).model_copy(update={"active": False}),
        caregiver(8),
    ]
    answer = await harness.engine.import_roster(again, [])
    assert answer["caregivers"] == {
        "created": 1,
        "updated": 1,
        "unchanged": 1,
        "deactivated": 1,
        "skipped": [],
    }


async def test_a_dry_run_lists_the_changes_and_changes_nothing(
    harness: Harness, autojump_clock: object
) -> None:
    again = [caregiver(2).model_copy(update={"name": "Renamed", "active": False}), caregiver(8)]
    answer = await harness.engine.import_roster(again, [], dry_run=True)
    assert answer["dry_run"] is True
    assert answer["caregivers"]["changes"] == [
        {"id": "cg-2", "change": "deactivated", "fields": ["name", "active"]},
        {"id": "cg-8", "change": "created"},
    ]
    stored = await harness.engine.store.caregiver("cg-2")
    assert stored is not None and stored.active and stored.name != "Renamed"
    assert await harness.engine.store.caregiver("cg-8") is None


async def test_a_field_nobody_knows_is_a_warning_never_dropped_silently(
    harness: Harness, autojump_clock: object
) -> None:
    odd = Caregiver.model_validate({**caregiver(9).model_dump(), "shoe_size": "42"})
    answer = await harness.engine.import_roster([caregiver(8), odd], [])
    assert answer["warnings"] == [
        {
            "kind": "caregivers",
            "index": 1,
            "field": "shoe_size",
            "message": "unknown field: ignored",
        }
    ]


async def test_an_inactive_caregiver_is_never_offered_a_shift_and_keeps_their_history(
    harness: Harness, autojump_clock: object
) -> None:
    await harness.engine.fanout("shift-1")
    await harness.settle()
    await harness.engine.set_caregiver_active("cg-1", False)
    await harness.engine.import_roster([], [shift("shift-2", start_in_h=40)])
    result = await harness.engine.fanout("shift-2")
    assert result.offered == 4
    contacts = (await harness.engine.store.shift_detail("shift-1"))["contacts"]
    assert "cg-1" in {c["caregiver_id"] for c in contacts}
    assert (await harness.engine.store.caregiver("cg-1")).active is False  # type: ignore[union-attr]


async def test_an_offer_made_before_deactivation_cannot_be_taken_after_it(
    harness: Harness, autojump_clock: object
) -> None:
    await harness.engine.fanout("shift-1")
    await harness.engine.set_caregiver_active("cg-1", False)
    answer = await harness.engine.inbound(phone(1), "YES")
    assert answer.outcome.value == "not_eligible"
    assert (await harness.engine.shift("shift-1")).claimed_by is None


async def test_a_reactivated_caregiver_is_offered_again(
    harness: Harness, autojump_clock: object
) -> None:
    await harness.engine.set_caregiver_active("cg-1", False)
    await harness.engine.set_caregiver_active("cg-1", True)
    assert (await harness.engine.fanout("shift-1")).offered == 5


# ---- REST -----------------------------------------------------------------------------------


def _query(dry_run: bool = False) -> list[tuple[str, str]]:
    return [("map", f"{k}={v}") for k, v in MAP.items()] + [("dry_run", str(dry_run).lower())]


async def test_rest_imports_a_csv_export_and_warns_of_the_ignored_column(
    start_engine: StartEngine, autojump_clock: object
) -> None:
    harness = await start_engine()
    async with open_api(harness) as api:
        headers = {**AUTH, "Content-Type": "text/csv"}
        response = await api.client.post(
            "/roster/csv", params=_query(), content=EXPORT, headers=headers
        )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["caregivers"]["created"] == 2 and body["dry_run"] is False
    assert body["warnings"] == [
        {
            "line": 1,
            "column": "Address",
            "message": "not a roster field: ignored (use --map FIELD=Column to read it)",
        }
    ]
    assert (await harness.engine.store.caregiver("cg-2")).active is False  # type: ignore[union-attr]


async def test_rest_answers_every_csv_problem_with_its_line_and_imports_nothing(
    start_engine: StartEngine, tmp_path: Path, autojump_clock: object
) -> None:
    h = await start_engine(make_config(tmp_path, roles=["RN"]))
    async with open_api(h) as api:
        headers = {**AUTH, "Content-Type": "text/csv"}
        response = await api.client.post(
            "/roster/csv",
            params=_query(),
            content=EXPORT + "cg-3,C,RN,abc,yes,z\n",
            headers=headers,
        )
    assert response.status_code == 422
    assert response.json()["error"]["message"] == (
        "2 problem(s), nothing imported: line 3, column 'Discipline': unknown role 'Lpn' "
        "(roles: RN); line 4, column 'Mobile Phone': not a phone number: 'abc'"
    )
    assert await h.engine.store.list_caregivers() == []


async def test_rest_dry_run_of_a_csv_changes_nothing(
    harness: Harness, autojump_clock: object
) -> None:
    async with open_api(harness) as api:
        headers = {**AUTH, "Content-Type": "text/csv"}
        response = await api.client.post(
            "/roster/csv", params=_query(dry_run=True), content=EXPORT, headers=headers
        )
    assert response.status_code == 200
    assert [c["id"] for c in response.json()["caregivers"]["changes"]] == ["cg-1", "cg-2"]
    assert await harness.engine.store.caregiver("cg-1") is not None  # the harness's own cg-1
    assert await harness.engine.store.caregiver("cg-2") is not None
    assert (await harness.engine.store.caregiver("cg-2")).active is True  # type: ignore[union-attr]


async def test_rest_deactivates_and_activates_a_caregiver(
    harness: Harness, autojump_clock: object
) -> None:
    async with open_api(harness) as api:
        off = await api.client.post("/caregivers/cg-1/deactivate", headers=AUTH)
        assert off.json() == {"caregiver_id": "cg-1", "active": False}
        assert (await harness.engine.fanout("shift-1")).offered == 4
        on = await api.client.post("/caregivers/cg-1/activate", headers=AUTH)
        missing = await api.client.post("/caregivers/nobody/activate", headers=AUTH)
    assert on.json() == {"caregiver_id": "cg-1", "active": True}
    assert missing.status_code == 404
