"""Per-organization API tokens: each reaches its own organization's shifts and nothing else;
the `token_file` token stays the administrators' and reaches everything."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shiftd.http.settings import HttpSettings
from shiftd.testing.api import AUTH, Api, open_api
from shiftd.testing.engine import Harness, make_config, shift

NORTH = {"Authorization": "Bearer north-token"}
SOUTH = {"Authorization": "Bearer south-token"}


@pytest.fixture
async def api(harness: Harness) -> AsyncIterator[Api]:
    north = shift("north-1").model_copy(update={"organization_id": "north"})
    south = shift("south-1").model_copy(update={"organization_id": "south"})
    await harness.engine.import_roster([], [north, south])
    tokens = (("north", "north-token"), ("south", "south-token"))
    async with open_api(harness, organization_tokens=tokens) as api:
        yield api


async def test_an_organization_lists_only_its_own_shifts(api: Api, autojump_clock: object) -> None:
    north = await api.client.get("/shifts", headers=NORTH)
    admin = await api.client.get("/shifts", headers=AUTH)
    assert [s["id"] for s in north.json()["shifts"]] == ["north-1"]
    assert {s["id"] for s in admin.json()["shifts"]} == {"shift-1", "north-1", "south-1"}


async def test_another_organizations_shift_is_not_found_and_untouched(
    api: Api, autojump_clock: object
) -> None:
    for method, path in (
        ("GET", "/shifts/south-1"),
        ("POST", "/shifts/south-1/fanout"),
        ("DELETE", "/shifts/south-1"),
        ("DELETE", "/shifts/south-1/claim"),
    ):
        response = await api.client.request(method, path, headers=NORTH)
        assert response.status_code == 404, (method, path)
    assert (await api.harness.engine.shift("south-1")).state.value == "open"
    own = await api.client.post("/shifts/north-1/fanout", headers=NORTH)
    assert own.status_code == 200 and own.json()["status"] == "started"


async def test_a_shift_created_with_an_organizations_token_is_that_organizations(
    api: Api, autojump_clock: object
) -> None:
    body = {"role_required": "RN", "start_in": "30h", "length": "8h"}
    created = await api.client.post("/shifts", headers=NORTH, json=body)
    assert created.status_code == 201
    assert created.json()["shift"]["organization_id"] == "north"
    other = await api.client.post(
        "/shifts", headers=NORTH, json={**body, "organization_id": "south"}
    )
    taken = await api.client.post("/shifts", headers=NORTH, json={**body, "id": "south-1"})
    assert (other.status_code, taken.status_code) == (403, 409)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/status"),
        ("GET", "/metrics"),
        ("GET", "/caregivers"),
        ("POST", "/caregivers/cg-1/deactivate"),
    ],
)
async def test_what_every_organization_shares_needs_the_administrators_token(
    api: Api, autojump_clock: object, method: str, path: str
) -> None:
    response = await api.client.request(method, path, headers=SOUTH)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


async def test_an_unknown_token_is_still_refused(api: Api, autojump_clock: object) -> None:
    response = await api.client.get("/shifts", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401


def test_tokens_are_read_from_their_files(tmp_path: Path) -> None:
    (tmp_path / "north").write_text("north-token\n")
    config = make_config(tmp_path, http={"organization_tokens": {"north": str(tmp_path / "north")}})
    settings = HttpSettings.from_config(config)
    assert settings.organization_tokens == (("north", "north-token"),)
    assert "north-token" not in repr(settings)
