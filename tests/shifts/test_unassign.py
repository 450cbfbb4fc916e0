"""`unassign`: a coordinator takes a filled shift off its holder, over a real control socket.

The harness roster: RN cg-1..cg-5, LPN cg-6..cg-7, one open RN shift `shift-1` starting 18 h
after EPOCH (the organization's offer lead time is 0: offers close when the shift starts).
Server, engine and client run on one Trio loop, bounded by `fail_after` (virtual time).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from shiftd.control.server import serve_control
from shiftd.models import Purpose
from shiftd.testing.engine import Harness, phone

IO_LIMIT = 30  # virtual seconds; nothing here should need more than an instant
HOUR = 3600.0


class Conn:
    """One client connection: requests in, answers out."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._buf = bytearray()
        self._next_id = 1

    async def request(self, cmd: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        request_id = self._next_id
        self._next_id += 1
        payload = {"id": request_id, "cmd": cmd, "args": args or {}}
        await self.stream.send_all(json.dumps(payload).encode() + b"\n")
        while b"\n" not in self._buf:
            chunk = await self.stream.receive_some(65536)
            assert chunk, f"connection closed instead of answering {cmd}"
            self._buf += chunk
        line, _, rest = bytes(self._buf).partition(b"\n")
        self._buf[:] = rest
        response: dict[str, Any] = json.loads(line)
        assert response["id"] == request_id
        return response

    async def call(self, cmd: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.request(cmd, args)
        assert response["ok"], response
        result: dict[str, Any] = response["result"]
        return result


@pytest.fixture
def sock_path() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="shu-", dir="/tmp"))
    yield directory / "control.sock"
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
async def conn(harness: Harness, sock_path: Path) -> AsyncIterator[Conn]:
    await harness.nursery.start(serve_control, sock_path, harness.engine)
    c = Conn(await trio.open_unix_socket(str(sock_path)))
    yield c
    await c.stream.aclose()


async def fill(h: Harness, by: int = 2) -> None:
    """Fan out `shift-1` and let cg-`by` claim it."""
    await h.engine.fanout("shift-1")
    await h.settle()
    result = await h.engine.inbound(phone(by), "YES")
    assert result.outcome.value == "claimed"
    await h.settle()


async def test_unassigning_a_filled_shift_answers_released_with_what_the_holder_was_told(
    harness: Harness, conn: Conn, autojump_clock: trio.testing.MockClock
) -> None:
    await fill(harness)
    with trio.fail_after(IO_LIMIT):
        result = await conn.call("unassign", {"shift_id": "shift-1"})
    await harness.settle()

    told = harness.provider.to("cg-2", Purpose.RELEASED)
    assert result == {"shift_id": "shift-1", "status": "released", "reply": told[0].body}
    assert len(told) == 1
    assert "taken you off" in told[0].body  # the `unassigned` text, not the holder's own


async def test_an_unassigned_shift_is_offered_again_without_its_former_holder(
    harness: Harness, conn: Conn, autojump_clock: trio.testing.MockClock
) -> None:
    await fill(harness)
    before = len(harness.provider.sent)
    with trio.fail_after(IO_LIMIT):
        await conn.call("unassign", {"shift_id": "shift-1"})
        await harness.settle()
        shown = (await conn.call("shift.show", {"shift_id": "shift-1"}))["shift"]

    reoffered = [m for m in harness.provider.sent[before:] if m.purpose is Purpose.OFFER]
    assert sorted(m.caregiver_id for m in reoffered) == ["cg-1", "cg-3", "cg-4", "cg-5"]
    assert shown["state"] == "offering"
    assert shown["claimed_by"] is None
    released = [e for e in shown["timeline"] if e["kind"] == "released"]
    assert released == [
        {
            "ts": released[0]["ts"],
            "kind": "released",
            "caregiver_id": "cg-2",
            "detail": {"by": "coordinator", "reopened": True},
        }
    ]


async def test_unassigning_once_offers_have_closed_leaves_the_shift_unfilled(
    harness: Harness, conn: Conn, autojump_clock: trio.testing.MockClock
) -> None:
    await fill(harness)
    await trio.sleep(19 * HOUR)  # the shift has started
    with trio.fail_after(IO_LIMIT):
        result = await conn.call("unassign", {"shift_id": "shift-1"})
        await harness.settle()
        listed = await conn.call("shift.list", {"state": "unfilled"})

    assert result["status"] == "released_unfilled"
    assert result["reply"] == harness.provider.to("cg-2", Purpose.RELEASED)[0].body
    assert [s["id"] for s in listed["shifts"]] == ["shift-1"]


async def test_unassigning_a_shift_nobody_holds_answers_not_claimed_and_sends_nothing(
    harness: Harness, conn: Conn, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(IO_LIMIT):
        result = await conn.call("unassign", {"shift_id": "shift-1"})
    await harness.settle()

    assert result == {"shift_id": "shift-1", "status": "not_claimed", "reply": None}
    assert harness.provider.sent == []
    assert (await harness.engine.shift("shift-1")).state == "open"


async def test_unassigning_an_unknown_shift_is_answered_not_found(
    conn: Conn, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(IO_LIMIT):
        response = await conn.request("unassign", {"shift_id": "no-such-shift"})
    assert response["ok"] is False
    assert response["error"] == {"code": "not_found", "message": "no shift 'no-such-shift'"}


async def test_unassign_arguments_are_checked_like_cancels(
    conn: Conn, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(IO_LIMIT):
        missing = await conn.request("unassign", {})
        extra = await conn.request("unassign", {"shift_id": "shift-1", "caregiver_id": "cg-2"})
    assert missing["error"]["code"] == "bad_args"
    assert extra["error"]["code"] == "bad_args"
