"""Idle or slow clients cannot lock others out of the control socket: a connection that
completes no request line within `control.idle_timeout` (idle, or dribbling half a line) is
answered `idle_timeout` and closed, so a new client gets a slot."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from shiftd.control.server import serve_control
from shiftd.testing.control import Conn, connect
from shiftd.testing.engine import Harness, make_config

LIMIT = 3
IDLE = 5.0  # seconds (virtual)


@pytest.fixture
def sock_path() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="shidle-", dir="/tmp"))
    yield directory / "control.sock"
    shutil.rmtree(directory, ignore_errors=True)


async def serve(h: Harness, path: Path) -> None:
    async def run(task_status: Any) -> None:
        await serve_control(
            path, h.engine, max_connections=LIMIT, idle_timeout=IDLE, task_status=task_status
        )

    await h.nursery.start(run)


async def test_a_full_house_of_idle_connections_is_closed_and_a_new_client_is_served(
    harness: Harness, sock_path: Path, autojump_clock: object
) -> None:
    await serve(harness, sock_path)
    with trio.fail_after(60):
        idle = [await connect(sock_path) for _ in range(LIMIT - 1)]
        half = await connect(sock_path)
        await half.send(b'{"id": 1, "cmd": "pi')  # half a request line, never finished
        await trio.sleep(0.1)
        refused = await connect(sock_path)
        assert (await refused.read())["error"]["code"] == "too_many_connections"

        await trio.sleep(IDLE + 1)
        newcomer = await connect(sock_path)
        answer = await newcomer.request("ping")
        told = [await c.read() for c in (*idle, half)]
        closed = [await c.read() for c in (*idle, half)]

    assert answer["ok"] is True
    assert [t["error"]["code"] for t in told] == ["idle_timeout"] * LIMIT
    assert closed == [None] * LIMIT


async def test_half_a_line_sent_a_byte_at_a_time_does_not_keep_a_connection_open(
    harness: Harness, sock_path: Path, autojump_clock: object
) -> None:
    await serve(harness, sock_path)
    with trio.fail_after(60):
        slow = await connect(sock_path)
        started = trio.current_time()
        with pytest.raises(trio.BrokenResourceError):
            for byte in b'{"id": 1, "cmd": "ping", "args": {}}':
                await slow.send(bytes([byte]))
                await trio.sleep(IDLE / 4)
        closed_after = trio.current_time() - started
        told = await slow.read()

    assert told["error"]["code"] == "idle_timeout"
    assert closed_after < 2 * IDLE


async def test_a_client_that_asks_now_and_then_within_the_deadline_keeps_its_connection(
    harness: Harness, sock_path: Path, autojump_clock: object
) -> None:
    await serve(harness, sock_path)
    with trio.fail_after(60):
        conn: Conn = await connect(sock_path)
        answers = []
        for _ in range(4):
            await trio.sleep(IDLE * 0.8)
            answers.append(await conn.request("ping"))

    assert all(a["ok"] for a in answers)


def test_the_idle_timeout_is_configured_under_control(tmp_path: Path) -> None:
    config = make_config(tmp_path, control={"idle_timeout": "30s"})
    assert config.control.idle_timeout.total_seconds() == 30
    assert make_config(tmp_path).control.idle_timeout.total_seconds() == 60
