"""What the OpenAPI document promises, held one promise at a time: unsupported methods get
405 with the documented methods in `Allow`, every error status a route answers is listed
with the error body, request schemas carry the validation's limits, and a cancelled shift
answers as the document says."""

from __future__ import annotations

from typing import Any

from shiftd.http.app import create_app
from shiftd.http.settings import HttpSettings
from shiftd.testing.api import AUTH, open_api
from shiftd.testing.engine import Harness

DOCUMENT: dict[str, Any] = create_app(None, HttpSettings()).openapi()  # type: ignore[arg-type]
PATHS: dict[str, dict[str, Any]] = DOCUMENT["paths"]
OTHER_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]


def _concrete(template: str) -> str:
    return template.replace("{shift_id}", "shift-1")


def _undocumented() -> list[tuple[str, str]]:
    return [
        (template, method)
        for template, operations in PATHS.items()
        for method in OTHER_METHODS
        if method.lower() not in operations and not (method == "HEAD" and "get" in operations)
    ]


async def test_a_method_the_document_does_not_list_is_405_with_allow(
    harness: Harness, autojump_clock: object
) -> None:
    async with open_api(harness) as api:
        for template, method in _undocumented():
            response = await api.client.request(
                method,
                _concrete(template),
                headers={**AUTH, "Content-Type": "text/plain"},
                content=b"anything",
            )

            documented = {m.upper() for m in PATHS[template]}
            allowed = {m.strip() for m in response.headers["Allow"].split(",")}
            assert response.status_code == 405, (method, template, response.text)
            assert response.json()["error"]["code"] == "method_not_allowed"
            assert allowed - {"HEAD"} == documented, (method, template)
            assert ("HEAD" in allowed) == ("GET" in documented)


def test_every_operation_lists_its_error_statuses_with_the_error_body() -> None:
    for template, operations in PATHS.items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert {"500", "503"} <= statuses, (method, template)
            if template.startswith("/webhooks/"):
                assert {"400", "403", "413", "415"} <= statuses, (method, template)
            elif template not in ("/health", "/ready"):
                assert {"400", "401", "413", "415", "422"} <= statuses, (method, template)
            for status, answer in operation["responses"].items():
                if status.startswith(("4", "5")):
                    schema = answer["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, status
                    assert answer["description"], status


def test_request_schemas_carry_the_limits_of_the_validation() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    caregiver = schemas["Caregiver"]["properties"]
    assert caregiver["id"]["maxLength"] == 128
    assert caregiver["name"]["maxLength"] == 200
    assert caregiver["role"]["maxLength"] == 32
    assert caregiver["phone"]["pattern"]
    assert caregiver["tags"]["maxItems"] == 32
    shift = schemas["Shift"]["properties"]
    assert shift["start_time"]["format"] == "date-time"
    assert shift["start_time"]["pattern"].startswith("^20")
    assert shift["location"]["anyOf"][0]["maxLength"] == 60
    added = schemas["ShiftAddArgs"]["properties"]
    assert added["start_time"]["anyOf"][0]["pattern"].startswith("^20")
    assert added["length"]["anyOf"][0]["pattern"]
    path = PATHS["/shifts/{shift_id}"]["get"]["parameters"][0]["schema"]
    assert (path["minLength"], path["maxLength"]) == (1, 128)


async def test_a_cancelled_shift_answers_as_the_document_says(
    harness: Harness, autojump_clock: object
) -> None:
    async with open_api(harness) as api:
        cancelled = await api.client.delete("/shifts/shift-1", headers=AUTH)
        shown = await api.client.get("/shifts/shift-1", headers=AUTH)
        again = await api.client.delete("/shifts/shift-1", headers=AUTH)
        fanout = await api.client.post("/shifts/shift-1/fanout", headers=AUTH)

    assert cancelled.json()["status"] == "cancelled"
    assert shown.status_code == 200
    assert shown.json()["shift"]["state"] == "cancelled"
    assert again.json()["status"] == "already_cancelled"
    assert fanout.json()["status"] == "cancelled"
    described = PATHS["/shifts/{shift_id}"]["delete"]["description"]
    assert "state `cancelled`" in described and "already_cancelled" in described
