"""No input makes the HTTP interface answer 500 or stop serving.

Hypothesis sends sequences of requests — any method, the app's routes with odd ids and
random paths, random and well-shaped JSON, raw bytes, forms (validly signed half the time, so
the webhook handlers themselves run), any token — to one app over a real engine, asserting
that no answer is a 500, every error is the JSON error shape, and `/health` still answers.
The routes come from the app's own OpenAPI document, so a new route is fuzzed too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shiftd.clock import Clock
from shiftd.engine import Engine
from shiftd.http.signature import compute_signature
from shiftd.testing.api import AUTH, PUBLIC_URL, TOKEN, TWILIO_TOKEN, open_api
from shiftd.testing.engine import EPOCH, FakeProvider, Harness, caregiver, make_config, shift

METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH", "OPTIONS", "HEAD"]
FORM_KEYS = [
    "From",
    "To",
    "Body",
    "MessageSid",
    "SmsSid",
    "CallSid",
    "Digits",
    "MessageStatus",
    "CallStatus",
    "ErrorCode",
]

texts = st.text(max_size=40)
odd_ids = st.one_of(
    st.sampled_from(["shift-1", "cg-1", "", ".", "..", "%", "a/b", "x" * 129, "\x00", "é"]),
    texts,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=12,
)
times = st.one_of(
    st.sampled_from(["2025-07-04T08:00:00Z", "2025-07-04T16:00:00+02:00", "2025-07-04T08:00"]),
    texts,
)
shaped_json = st.one_of(
    st.fixed_dictionaries(
        {"from": st.one_of(st.just("+15550000001"), texts), "body": texts},
        optional={
            "channel": st.sampled_from(["sms", "voice", "fax"]),
            "shift_id": odd_ids,
            "provider_message_id": texts,
        },
    ),
    st.fixed_dictionaries(
        {
            "role_required": st.sampled_from(["RN", "LPN", ""]),
            "start_time": times,
            "end_time": times,
        },
        optional={"id": odd_ids, "organization_id": texts},
    ),
    st.fixed_dictionaries(
        {},
        optional={
            "caregivers": st.lists(
                st.fixed_dictionaries(
                    {"id": odd_ids, "name": texts, "role": texts, "phone": texts}
                ),
                max_size=3,
            ),
            "shifts": st.lists(
                st.fixed_dictionaries(
                    {"id": odd_ids, "role_required": texts, "start_time": times, "end_time": times}
                ),
                max_size=3,
            ),
        },
    ),
)
raw_bodies = st.one_of(
    st.binary(max_size=200),
    st.sampled_from([b'{"from": "\\ud800", "body": "x"}', b"[" * 3000, b"1" * 5000, b"{}"]),
)
form_values = st.one_of(
    st.sampled_from(
        ["+15550000001", "+15550000002", "yes", "no", "1", "2", "delivered", "sent", "completed"]
    ),
    st.integers(1, 6).map(lambda n: f"fake-{n}"),  # the ids the engine's provider hands out
    texts,
)
webhook_forms = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={key: form_values for key in FORM_KEYS},
    ),
    st.dictionaries(st.one_of(st.sampled_from(FORM_KEYS), texts), texts, max_size=6),
)


@st.composite
def requests(draw: st.DrawFn, operations: list[tuple[str, str]]) -> dict[str, Any]:
    """Mostly the app's real operations with plausible bodies (so handlers run), sometimes
    anything at all."""
    if draw(st.integers(0, 9)) < 8:
        method, template = draw(st.sampled_from(operations))
        path = template.replace("{shift_id}", quote(draw(odd_ids), safe=""))
        if draw(st.integers(0, 9)) == 0:
            method = draw(st.sampled_from(METHODS))
    else:
        method, path = draw(st.sampled_from(METHODS)), "/" + quote(draw(texts), safe="/")
    if draw(st.booleans()):
        path += "?" + draw(st.sampled_from(["state=open", "state=bogus", "role=RN", "x=%ff"]))
    headers: dict[str, str] = {}
    auth = draw(st.integers(0, 9))
    if auth < 8:
        headers["Authorization"] = f"Bearer {TOKEN}"
    elif auth == 8:
        headers["Authorization"] = draw(
            st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=30)
        )
    webhook = path.startswith("/webhooks/")
    kinds = (
        ["form", "form", "form", "none", "raw"] if webhook else ["shaped", "json", "none", "raw"]
    )
    kind = draw(st.sampled_from(kinds))
    request: dict[str, Any] = {"method": method, "url": path, "headers": headers}
    if kind == "json":
        request["content"] = json.dumps(draw(json_values)).encode()
        headers["Content-Type"] = "application/json"
    elif kind == "shaped":
        request["content"] = json.dumps(draw(shaped_json)).encode()
        headers["Content-Type"] = "application/json"
    elif kind == "raw":
        request["content"] = draw(raw_bodies)
        headers["Content-Type"] = draw(
            st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"])
        )
    elif kind == "form":
        form = draw(webhook_forms)
        request["data"] = form
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        if draw(st.integers(0, 9)) < 8:
            signature = compute_signature(TWILIO_TOKEN, PUBLIC_URL + path, form)
            headers["X-Twilio-Signature"] = signature
        else:
            headers["X-Twilio-Signature"] = draw(texts.filter(str.isascii))
    return request


def operations() -> list[tuple[str, str]]:
    from shiftd.http.app import create_app
    from shiftd.http.settings import HttpSettings

    app = create_app(None, HttpSettings())  # type: ignore[arg-type]  # only for the schema
    return sorted(
        (method.upper(), path) for path, ops in app.openapi()["paths"].items() for method in ops
    )


OPERATIONS = operations()
TEMPLATES = sorted({path for _, path in OPERATIONS})


@pytest.mark.slow
@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(requests(OPERATIONS), min_size=1, max_size=8))
async def test_no_request_makes_the_app_answer_500_or_stop_serving(
    tmp_path: Path, autojump_clock: object, batch: list[dict[str, Any]]
) -> None:
    # Each example runs in its own trio.run, so it starts its own engine (async fixtures
    # would outlive the run that made them). The database carries over between examples.
    async with trio.open_nursery() as nursery:
        config = make_config(tmp_path, escalation={"delay": "1s"})
        provider = FakeProvider()
        engine = Engine(config, clock=Clock(EPOCH), notifier=provider)
        await nursery.start(engine.run)
        await engine.import_roster([caregiver(1), caregiver(2)], [shift()])
        harness = Harness(engine, provider, nursery)
        async with open_api(harness) as api:
            await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
            await trio.sleep(2)  # escalated: calls placed, so voice webhooks find their rows
            for request in batch:
                response = await api.client.request(**request)
                assert response.status_code != 500, (request, response.text)
                assert response.status_code < 500 or response.status_code == 503, request
                if response.status_code >= 400 and request["method"] != "HEAD":
                    error = response.json()["error"]
                    assert isinstance(error["code"], str)
                    assert isinstance(error["message"], str)
            health = await api.client.get("/health")
            assert health.status_code == 200
        nursery.cancel_scope.cancel()


def test_the_fuzzer_knows_every_route() -> None:
    assert "/webhooks/twilio/voice/gather" in TEMPLATES
    assert "/shifts/{shift_id}/fanout" in TEMPLATES
    assert len(TEMPLATES) >= 12


def test_httpx_accepts_the_generated_urls() -> None:
    httpx.URL("http://x" + "/" + quote("é/\x00 %", safe="/"))
