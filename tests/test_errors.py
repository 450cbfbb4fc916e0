"""One error table (`shiftd.errors`): each error the core raises is answered with the same
code on the control socket and over HTTP (with the table's status), and shiftctl exits with
the table's status for each code."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from shiftd.control.server import serve_control
from shiftd.errors import CODES, ERRORS, code_of, status_code
from shiftd.shiftctl.cli import main as shiftctl
from shiftd.testing.api import AUTH, open_api
from shiftd.testing.control import IO_LIMIT, connect
from shiftd.testing.engine import Harness
from shiftd.testing.shiftctl import FakeDaemon, fake_daemon

RAISED = [pytest.param(cls, code, id=cls.__name__) for cls, code in ERRORS]


def _raising(exc: Exception) -> Any:
    async def fanout(shift_id: str, *, request_id: str | None = None) -> Any:
        raise exc

    return fanout


@pytest.fixture
def sock_path() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="she-", dir="/tmp"))  # short: sun_path
    yield directory / "control.sock"
    shutil.rmtree(directory, ignore_errors=True)


@pytest.mark.parametrize(("cls", "code"), RAISED)
async def test_the_control_socket_answers_each_error_with_its_code(
    harness: Harness,
    sock_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    cls: type[Exception],
    code: str,
    autojump_clock: trio.testing.MockClock,
) -> None:
    monkeypatch.setattr(harness.engine, "fanout", _raising(cls("said so")))
    await harness.nursery.start(serve_control, sock_path, harness.engine)
    with trio.fail_after(IO_LIMIT):
        conn = await connect(sock_path)
        answer = await conn.request("fanout", {"shift_id": "shift-1"})
        await conn.stream.aclose()
    assert answer["ok"] is False
    assert answer["error"]["code"] == code


@pytest.mark.parametrize(("cls", "code"), RAISED)
async def test_http_answers_each_error_with_its_status_and_code(
    harness: Harness,
    monkeypatch: pytest.MonkeyPatch,
    cls: type[Exception],
    code: str,
    autojump_clock: trio.testing.MockClock,
) -> None:
    monkeypatch.setattr(harness.engine, "fanout", _raising(cls("said so")))
    async with open_api(harness) as api:
        answer = await api.client.post("/shifts/shift-1/fanout", headers=AUTH)
    assert answer.status_code == CODES[code].http_status
    assert answer.json()["error"]["code"] == code


@pytest.fixture
def fake() -> Iterator[FakeDaemon]:
    with fake_daemon() as daemon:
        yield daemon


@pytest.mark.parametrize("code", sorted(CODES))
def test_shiftctl_exits_with_each_codes_exit_status(
    fake: FakeDaemon, code: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["ping"] = {"error": {"code": code, "message": "said so"}}
    assert shiftctl(["--socket", fake.path, "ping"]) == CODES[code].exit_status
    assert f"error: {code}: said so" in capsys.readouterr().err


def test_an_error_in_no_row_is_internal() -> None:
    assert code_of(RuntimeError("a bug")) is None


def test_each_http_status_of_the_table_maps_back_to_a_code_with_that_status() -> None:
    for known in CODES.values():
        assert CODES[status_code(known.http_status)].http_status == known.http_status
