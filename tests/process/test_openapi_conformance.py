"""The OpenAPI document tells the truth: schemathesis generates requests from it (valid and
invalid), sends them to the real daemon over loopback, and checks every answer against it —
status listed, body of the declared shape, valid requests accepted, invalid ones refused,
unsupported methods answered 405 with `Allow` — and the daemon still serves afterwards.

`SHIFTD_FUZZ=long` (`make fuzz`) runs many more examples per route and prints the count.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance, use_after_free

from shiftd.http.app import create_app
from shiftd.http.settings import HttpSettings
from shiftd.testing.daemon import AUTH, Daemon, sample_roster

pytestmark = pytest.mark.process

LONG = os.environ.get("SHIFTD_FUZZ") == "long"
EXAMPLES = 600 if LONG else 5
LONG_REQUESTS = int(os.environ.get("SHIFTD_FUZZ_REQUESTS", "10000"))
SENT: list[int] = [0]

# Rules no JSON schema (or a pattern) states: a shift's end after its start and at most 48
# hours later, a date that exists, a duration of at most 3660d, one start and one end. The
# document says so in words (its 422 answers); a schema-valid body that breaks one of them
# is answered 422 naming the rule, the one refusal of schema-valid data allowed here.
CROSS_FIELD_RULES = (
    "end_time must be after start_time",
    "a shift lasts at most",
    "not a valid time: day is out of range",
    "durations are at most",
    "too long a duration",
    "give exactly one of",
    "length must be positive",
)


def _without_security(document: dict[str, Any]) -> dict[str, Any]:
    """The document without its bearer scheme: every request here carries the token, so the
    fuzzer must not think it can make a request invalid by leaving the token out (the
    token's own 401s are tested in test_http_api.py)."""
    document = json.loads(json.dumps(document))
    document.get("components", {}).pop("securitySchemes", None)
    for operations in document["paths"].values():
        for operation in operations.values():
            operation.pop("security", None)
    return document


schema = schemathesis.openapi.from_dict(
    _without_security(create_app(None, HttpSettings()).openapi())  # type: ignore[arg-type]
)


def _live_daemon() -> Daemon:
    workdir = Path(tempfile.mkdtemp(prefix="shlive-", dir="/tmp"))  # short: socket paths
    return Daemon(workdir, http=True, grace="3s", log_level="warning").start()


@pytest.fixture(scope="module")
def live() -> Iterator[Daemon]:
    daemon = _live_daemon()
    daemon.call("roster.import", **sample_roster())
    daemon.call("fanout", shift_id="shift-1")
    try:
        yield daemon
        assert daemon.alive(), daemon.log_text()
        assert daemon.ping()
    finally:
        code = daemon.stop()
        if LONG:
            print(f"\nopenapi conformance: {SENT[0]} HTTP requests, daemon exit {code}")
        daemon.remove()


def _cross_field_refusal(response: Any) -> bool:
    if response.status_code != 422:
        return False
    if response.request.url.split("?")[0].endswith("/roster/csv"):
        return True  # the CSV's columns and `map=field=Column`: its route describes them
    return any(rule in response.text for rule in CROSS_FIELD_RULES)


def _check(case: Any, live: Daemon) -> None:
    SENT[0] += 1
    response = case.call(base_url=live.url, headers=AUTH, timeout=10)
    # Cancelling is DELETE /shifts/{id}, and the cancelled shift stays readable (state
    # "cancelled"), as the document says; use_after_free would call that a bug.
    excluded = [use_after_free]
    if _cross_field_refusal(response):
        excluded.append(positive_data_acceptance)
    case.validate_response(
        response,
        excluded_checks=excluded,
        headers=AUTH,
        transport_kwargs={"base_url": live.url, "headers": AUTH},
    )


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=not LONG,
)
def test_every_answer_is_what_the_openapi_document_says(case: Any, live: Daemon) -> None:
    _check(case, live)


@pytest.mark.skipif(not LONG, reason="the long run is `make fuzz`")
def test_the_long_run_sends_at_least_ten_thousand_requests(live: Daemon) -> None:
    """Rounds over every operation, valid and invalid data, until LONG_REQUESTS were sent
    (operations without parameters give hypothesis little to vary, so one pass is short)."""
    operations = [result.ok() for result in schema.get_all_operations()]
    rounds = 0
    while SENT[0] < LONG_REQUESTS:
        rounds += 1
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

                @settings(
                    max_examples=100,
                    deadline=None,
                    suppress_health_check=list(HealthCheck),
                    database=None,
                )
                @given(case=operation.as_strategy(generation_mode=mode))
                def one(case: Any) -> None:
                    _check(case, live)

                with contextlib.suppress(Unsatisfiable):  # nothing to make invalid there
                    one()
        print(f"openapi conformance: round {rounds}, {SENT[0]} requests so far", flush=True)
