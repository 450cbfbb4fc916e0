"""A failure handling one request never ends the daemon: whatever a handler raises is
answered `internal` with a reference that the log line carries, counted in the metrics, and
the next request is served."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import trio
from fastapi import APIRouter
from pydantic import BaseModel, field_validator

from shiftd.commands import COMMANDS, Command, NoArgs
from shiftd.control.server import serve_control
from shiftd.testing.api import AUTH, open_api
from shiftd.testing.control import IO_LIMIT, Conn, connect
from shiftd.testing.engine import Harness


def _deep_recursion() -> None:
    _deep_recursion()


FAILURES: list[Any] = [
    OverflowError("date value out of range"),
    RecursionError("maximum recursion depth exceeded"),
    KeyError("missing"),
    ValueError("bad"),
    TypeError("wrong"),
    ZeroDivisionError("zero"),
    AssertionError("invariant"),
    MemoryError(),
    ExceptionGroup("several", [RuntimeError("a"), LookupError("b")]),
    _deep_recursion,  # a real RecursionError from deep in the stack
]


def _name(failure: Any) -> str:
    return getattr(failure, "__name__", type(failure).__name__)


def _raise(failure: Any) -> None:
    if callable(failure) and not isinstance(failure, BaseException):
        failure()
    raise failure


@pytest.fixture
def sock_path() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="shi-", dir="/tmp"))
    yield directory / "control.sock"
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
async def conn(harness: Harness, sock_path: Path) -> AsyncIterator[Conn]:
    await harness.nursery.start(serve_control, sock_path, harness.engine)
    c = await connect(sock_path)
    yield c
    await c.stream.aclose()


def internal_errors(h: Harness, where: str) -> float:
    value = h.engine.metrics.registry.get_sample_value(
        "shiftd_internal_errors_total", {"where": where}
    )
    return value or 0.0


@pytest.mark.parametrize("failure", FAILURES, ids=_name)
async def test_a_command_that_raises_is_answered_internal_and_the_socket_goes_on(
    harness: Harness,
    conn: Conn,
    sock_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: object,
    failure: Any,
) -> None:
    async def broken(engine: Any, args: NoArgs) -> dict[str, Any]:
        _raise(failure)
        return {}

    monkeypatch.setitem(COMMANDS, "test.broken", Command(NoArgs, broken))
    with structlog.testing.capture_logs() as logs, trio.fail_after(IO_LIMIT):
        answer = await conn.request("test.broken")
        after = await conn.request("ping")
        other = await connect(sock_path)
        fresh = await other.request("ping")
        await other.stream.aclose()

    assert answer["ok"] is False
    assert answer["error"]["code"] == "internal"
    [crash] = [e for e in logs if e["event"] == "control.crashed"]
    assert crash["cmd"] == "test.broken"
    assert crash["request_id"] == answer["id"]
    assert f"(ref {crash['ref']})" in answer["error"]["message"]
    assert internal_errors(harness, "control") == 1
    assert after["ok"] is True
    assert fresh["ok"] is True


class _ExplodingArgs(BaseModel):
    when: str = ""

    @field_validator("when")
    @classmethod
    def _explode(cls, value: str) -> str:
        raise OverflowError("date value out of range")  # pydantic does not wrap this one


async def test_an_argument_validator_that_raises_is_answered_internal(
    harness: Harness, conn: Conn, monkeypatch: pytest.MonkeyPatch, autojump_clock: object
) -> None:
    async def never(engine: Any, args: _ExplodingArgs) -> dict[str, Any]:
        raise AssertionError("not reached")

    monkeypatch.setitem(COMMANDS, "test.validate", Command(_ExplodingArgs, never))
    with trio.fail_after(IO_LIMIT):
        answer = await conn.request("test.validate", {"when": "x"})
        after = await conn.request("ping")

    assert answer["error"]["code"] == "internal"
    assert after["ok"] is True


@pytest.mark.parametrize("failure", FAILURES, ids=_name)
async def test_a_route_that_raises_is_answered_500_internal_and_the_app_goes_on(
    harness: Harness, autojump_clock: object, failure: Any
) -> None:
    router = APIRouter()

    @router.get("/test/broken")
    async def broken() -> dict[str, Any]:
        _raise(failure)
        return {}

    async with open_api(harness) as api:
        api.app.include_router(router)
        with structlog.testing.capture_logs() as logs:
            response = await api.client.get("/test/broken", headers=AUTH)
        health = await api.client.get("/health")
        status = await api.client.get("/status", headers=AUTH)

    assert response.status_code == 500
    ref = response.headers["X-Request-Ref"]
    assert response.json()["error"]["code"] == "internal"
    assert ref in response.json()["error"]["message"]
    [crash] = [e for e in logs if e["event"] == "http.crashed"]
    assert crash["ref"] == ref
    assert internal_errors(harness, "http") == 1
    assert health.status_code == 200
    assert status.status_code == 200
