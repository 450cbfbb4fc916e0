"""The control socket server, driven in-process over a real Unix socket with Trio's own client.

Everything (server, engine, client) runs on the Trio loop, so the autojump clock only moves
when every task waits; every conversation is bounded by `fail_after` (virtual time).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from shiftd.commands import COMMANDS, Command, NoArgs
from shiftd.control.server import MAX_LINE, ControlSocketError, serve_control
from shiftd.testing.control import IO_LIMIT, Conn, connect, line
from shiftd.testing.engine import Harness, shift

SAMPLE = Path(__file__).parents[1] / "data" / "sample_data.json"  # ../shared/reference, copied
ALICE_PHONE = "+15550001"  # the sample's RN Alice: not a valid NANP number, still accepted
ALICE_ID = "27e8d156-7fee-4f79-94d7-b45d306724d4"
SAMPLE_RN_SHIFT = "f5a9d844-ecff-4f7a-8ef7-d091f22ad77e"


# Filesystem checks are instant local syscalls; plain helpers keep them out of async code.
def _stat(path: Path) -> os.stat_result:
    return path.stat()


def _exists(path: Path) -> bool:
    return path.exists()


def _is_socket(path: Path) -> bool:
    return path.is_socket()


def _read(path: Path) -> str:
    return path.read_text()


def _write(path: Path, text: str) -> None:
    path.write_text(text)


@pytest.fixture
def sock_dir() -> Iterator[Path]:
    """A short directory for sockets (sun_path is limited to 108 bytes; tmp_path is long)."""
    directory = Path(tempfile.mkdtemp(prefix="shc-", dir="/tmp"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def sock_path(sock_dir: Path) -> Path:
    return sock_dir / "control.sock"


@pytest.fixture
async def served(harness: Harness, sock_path: Path) -> AsyncIterator[Path]:
    """The control server for the harness's engine, listening at `sock_path`."""
    await harness.nursery.start(serve_control, sock_path, harness.engine)
    yield sock_path


@pytest.fixture
async def conn(served: Path) -> AsyncIterator[Conn]:
    c = await connect(served)
    yield c
    await c.stream.aclose()


# --------------------------------------------------------------------------- protocol


async def test_ping_answers_pong_with_the_version(conn: Conn, autojump_clock: Any) -> None:
    with trio.fail_after(IO_LIMIT):
        response = await conn.request("ping")
    assert response["ok"] is True
    assert response["result"]["pong"] is True
    assert response["result"]["version"]


async def test_the_request_id_is_echoed_in_the_response(conn: Conn, autojump_clock: Any) -> None:
    with trio.fail_after(IO_LIMIT):
        await conn.send(b'{"id": 7, "cmd": "ping", "args": {}}\n')
        response = await conn.read()
    assert response is not None
    assert response["id"] == 7
    assert response["ok"] is True


async def test_malformed_json_is_answered_bad_json_and_the_connection_stays_usable(
    conn: Conn, autojump_clock: Any
) -> None:
    with trio.fail_after(IO_LIMIT):
        await conn.send(b'{"id": 1, "cmd": "ping"\n')
        bad = await conn.read()
        good = await conn.request("ping")
    assert bad is not None
    assert bad["ok"] is False
    assert bad["error"]["code"] == "bad_json"
    assert good["ok"] is True


async def test_deeply_nested_json_is_answered_bad_json_and_the_server_keeps_serving(
    served: Path, conn: Conn, autojump_clock: Any
) -> None:
    with trio.fail_after(IO_LIMIT):
        await conn.send(b"[" * 50_000 + b"\n")  # json.loads raises RecursionError on this
        bad = await conn.read()
        same = await conn.request("ping")
        other = await connect(served)
        fresh = await other.request("ping")
        await other.stream.aclose()
    assert bad is not None
    assert bad["error"]["code"] == "bad_json"
    assert same["ok"] is True
    assert fresh["ok"] is True


async def test_a_number_too_long_to_convert_is_answered_bad_json(
    conn: Conn, autojump_clock: Any
) -> None:
    with trio.fail_after(IO_LIMIT):
        await conn.send(b'{"id": ' + b"1" * 5000 + b', "cmd": "ping"}\n')  # ValueError in json
        bad = await conn.read()
        good = await conn.request("ping")
    assert bad is not None
    assert bad["error"]["code"] == "bad_json"
    assert good["ok"] is True


async def test_a_lone_surrogate_in_the_request_id_is_still_answered(
    conn: Conn, autojump_clock: Any
) -> None:
    with trio.fail_after(IO_LIMIT):
        await conn.send(b'{"id": "\\ud800", "cmd": "ping", "args": {}}\n')
        response = await conn.read()
        good = await conn.request("ping")
    assert response is not None
    assert response["id"] == "\ud800"
    assert response["ok"] is True
    assert good["ok"] is True


async def test_an_unknown_command_is_answered_unknown_command(
    conn: Conn, autojump_clock: Any
) -> None:
    with trio.fail_after(IO_LIMIT):
        assert await conn.error("shift.explode") == "unknown_command"


@pytest.mark.parametrize(
    ("cmd", "args"),
    [
        pytest.param("fanout", {}, id="missing-shift_id"),
        pytest.param("fanout", {"shift_id": "shift-1", "force": True}, id="extra-key"),
        pytest.param("fanout", {"shift_id": 123}, id="wrong-type"),
        pytest.param("ping", {"verbose": True}, id="args-to-a-command-without-any"),
    ],
)
async def test_bad_arguments_are_answered_bad_args(
    conn: Conn, cmd: str, args: dict[str, Any], autojump_clock: Any
) -> None:
    with trio.fail_after(IO_LIMIT):
        assert await conn.error(cmd, args) == "bad_args"


async def test_a_shift_that_ends_before_it_starts_is_answered_bad_args(
    conn: Conn, autojump_clock: Any
) -> None:
    args = {
        "role_required": "RN",
        "start_time": "2025-07-02T16:00:00Z",
        "end_time": "2025-07-02T08:00:00Z",
    }
    with trio.fail_after(IO_LIMIT):
        assert await conn.error("shift.add", args) == "bad_args"


async def test_an_unknown_shift_is_answered_not_found(conn: Conn, autojump_clock: Any) -> None:
    with trio.fail_after(IO_LIMIT):
        assert await conn.error("fanout", {"shift_id": "no-such-shift"}) == "not_found"
        assert await conn.error("shift.show", {"shift_id": "no-such-shift"}) == "not_found"
        assert await conn.error("cancel", {"shift_id": "no-such-shift"}) == "not_found"
        assert await conn.error("unassign", {"shift_id": "no-such-shift"}) == "not_found"


async def test_a_line_of_exactly_64_kib_is_still_served(conn: Conn, autojump_clock: Any) -> None:
    request = b'{"id": 1, "cmd": "ping", "args": {}}'
    with trio.fail_after(IO_LIMIT):
        await conn.send(request.ljust(MAX_LINE) + b"\n")  # JSON allows trailing blanks
        response = await conn.read()
    assert response is not None
    assert response["ok"] is True


async def test_a_line_over_64_kib_is_answered_line_too_long_and_the_connection_closed(
    conn: Conn, autojump_clock: Any
) -> None:
    with trio.fail_after(IO_LIMIT):
        await conn.send(b'{"id": 1, "cmd": "ping", "args": {"x": "' + b"a" * MAX_LINE)
        response = await conn.read()
        after = await conn.read()
    assert response is not None
    assert response["ok"] is False
    assert response["error"]["code"] == "line_too_long"
    assert after is None  # end of stream: the server hung up


async def test_pipelined_requests_in_one_write_are_all_answered_in_order(
    conn: Conn, autojump_clock: Any
) -> None:
    requests = [
        {"id": 1, "cmd": "ping", "args": {}},
        {"id": 2, "cmd": "shift.list", "args": {}},
        {"id": 3, "cmd": "nope", "args": {}},
        {"id": 4, "cmd": "shift.show", "args": {"shift_id": "shift-1"}},
        {"id": 5, "cmd": "status", "args": {}},
    ]
    with trio.fail_after(IO_LIMIT):
        await conn.send(b"".join(line(r) for r in requests))
        responses = [await conn.read() for _ in requests]
    assert [r["id"] for r in responses if r] == [1, 2, 3, 4, 5]
    assert [r["ok"] for r in responses if r] == [True, True, False, True, True]


async def test_blank_lines_are_ignored(conn: Conn, autojump_clock: Any) -> None:
    with trio.fail_after(IO_LIMIT):
        await conn.send(b"\n   \n\r\n")
        response = await conn.request("ping")
    assert response["ok"] is True
    assert response["id"] == 1  # the first answer is the ping's: nothing for the blanks


async def test_connections_beyond_max_connections_are_refused_too_many_connections(
    harness: Harness, sock_path: Path, autojump_clock: Any
) -> None:
    await harness.nursery.start(
        lambda task_status: serve_control(
            sock_path, harness.engine, max_connections=1, task_status=task_status
        )
    )
    with trio.fail_after(IO_LIMIT):
        first = await connect(sock_path)
        await first.call("ping")  # the only slot is taken
        second = await connect(sock_path)
        refused = await second.read()
        closed = await second.read()
        still = await first.request("ping")
    assert refused is not None
    assert refused["error"]["code"] == "too_many_connections"
    assert closed is None
    assert still["ok"] is True


async def test_a_request_not_answered_within_the_request_timeout_closes_its_connection(
    harness: Harness, sock_path: Path, monkeypatch: pytest.MonkeyPatch, autojump_clock: Any
) -> None:
    async def hang(engine: Any, args: NoArgs) -> dict[str, Any]:
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    monkeypatch.setitem(COMMANDS, "test.hang", Command(NoArgs, hang))
    await harness.nursery.start(
        lambda task_status: serve_control(
            sock_path, harness.engine, request_timeout=5.0, task_status=task_status
        )
    )
    with trio.fail_after(IO_LIMIT):
        c = await connect(sock_path)
        await c.send(line({"id": 1, "cmd": "test.hang"}) + line({"id": 2, "cmd": "ping"}))
        answer = await c.read()
        other = await connect(sock_path)
        fresh = await other.request("ping")
    assert answer is None  # no answer, no half line, no answer to the request behind it
    assert fresh["ok"] is True


async def test_running_out_of_file_descriptors_pauses_accepting_instead_of_stopping(
    served: Path, monkeypatch: pytest.MonkeyPatch, autojump_clock: Any
) -> None:
    real_accept = trio.SocketListener.accept
    failures = [OSError(errno.EMFILE, "Too many open files")]

    async def accept(self: trio.SocketListener) -> trio.SocketStream:
        if failures:
            raise failures.pop()
        return await real_accept(self)

    with trio.fail_after(IO_LIMIT):
        first = await connect(served)  # the server is already waiting in the real accept
        monkeypatch.setattr(trio.SocketListener, "accept", accept)
        await first.call("ping")
        second = await connect(served)  # its accept fails once, then succeeds
        response = await second.request("ping")
    assert not failures
    assert response["ok"] is True


# --------------------------------------------------------------------------- the socket file


async def test_the_socket_file_is_created_with_mode_0660(served: Path, autojump_clock: Any) -> None:
    mode = _stat(served).st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o660


async def test_a_stale_socket_file_is_replaced(
    harness: Harness, sock_path: Path, autojump_clock: Any
) -> None:
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(sock_path))
    dead.close()  # leaves the file behind, with nobody listening
    assert _is_socket(sock_path)

    await harness.nursery.start(serve_control, sock_path, harness.engine)

    assert stat.S_IMODE(_stat(sock_path).st_mode) == 0o660  # our file, not the stale one
    with trio.fail_after(IO_LIMIT):
        c = await connect(sock_path)
        assert (await c.call("ping"))["pong"] is True
        await c.stream.aclose()


async def test_a_live_socket_is_refused_and_left_intact(
    harness: Harness, served: Path, autojump_clock: Any
) -> None:
    inode = _stat(served).st_ino

    with pytest.raises(ControlSocketError, match="another shiftd"):
        await harness.nursery.start(serve_control, served, harness.engine)

    assert _stat(served).st_ino == inode
    with trio.fail_after(IO_LIMIT):
        c = await connect(served)  # the first server still answers
        assert (await c.call("ping"))["pong"] is True
        await c.stream.aclose()


async def test_a_regular_file_at_the_path_is_refused_and_not_deleted(
    harness: Harness, sock_path: Path, autojump_clock: Any
) -> None:
    _write(sock_path, "precious\n")

    with pytest.raises(ControlSocketError, match="not a socket"):
        await harness.nursery.start(serve_control, sock_path, harness.engine)

    assert _read(sock_path) == "precious\n"


async def test_the_socket_file_is_removed_on_shutdown(
    harness: Harness, sock_path: Path, autojump_clock: Any
) -> None:
    with trio.fail_after(IO_LIMIT):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_control, sock_path, harness.engine)
            assert _exists(sock_path)
            nursery.cancel_scope.cancel()
    assert not _exists(sock_path)


async def test_a_request_in_hand_at_shutdown_is_still_answered(
    harness: Harness, sock_path: Path, monkeypatch: pytest.MonkeyPatch, autojump_clock: Any
) -> None:
    handling = trio.Event()

    async def slow(engine: Any, args: NoArgs) -> dict[str, Any]:
        handling.set()
        await trio.sleep(3)
        return {"done": True}

    monkeypatch.setitem(COMMANDS, "test.slow", Command(NoArgs, slow))
    with trio.fail_after(IO_LIMIT):
        async with trio.open_nursery() as nursery:
            await nursery.start(serve_control, sock_path, harness.engine)
            c = await connect(sock_path)
            await c.send(line({"id": 1, "cmd": "test.slow"}))
            await handling.wait()
            nursery.cancel_scope.cancel()
        # the server has stopped; the answer was written before the connection closed
        answer = await c.read()
        after = await c.read()
    assert answer == {"id": 1, "ok": True, "result": {"done": True}}
    assert after is None
    assert not _exists(sock_path)


# --------------------------------------------------------------------------- commands


@pytest.fixture
def sample() -> dict[str, Any]:
    return json.loads(SAMPLE.read_text())


async def test_a_sample_roster_is_imported_fanned_out_and_claimed_over_the_socket(
    harness: Harness, conn: Conn, sample: dict[str, Any], autojump_clock: Any
) -> None:
    with trio.fail_after(IO_LIMIT):
        imported = await conn.call("roster.import", sample)
        listed = await conn.call("shift.list")
        fanout = await conn.call("fanout", {"shift_id": SAMPLE_RN_SHIFT})
        await harness.settle()
        inbound = await conn.call("inbound", {"from": ALICE_PHONE, "body": "yes"})
        await harness.settle()
        shown = (await conn.call("shift.show", {"shift_id": SAMPLE_RN_SHIFT}))["shift"]

    assert imported["caregivers"] and imported["shifts"]
    assert {s["id"] for s in sample["shifts"]} <= {s["id"] for s in listed["shifts"]}
    assert fanout["status"] == "started"
    assert fanout["offered"] == 6  # harness RNs cg-1..cg-5 and the sample's Alice
    assert inbound["outcome"] == "claimed"
    assert inbound["shift_id"] == SAMPLE_RN_SHIFT
    assert inbound["caregiver_id"] == ALICE_ID
    assert shown["state"] == "filled"
    assert shown["claimed_by"] == ALICE_ID
    assert shown["claimed_at"] is not None
    assert {c["caregiver_id"] for c in shown["contacts"]} >= {ALICE_ID, "cg-1"}
    assert all(c["state"] == "sent" for c in shown["contacts"])
    assert shown["timeline"]
    assert any(e["kind"] == "reply" and e["caregiver_id"] == ALICE_ID for e in shown["timeline"])


async def test_fifty_concurrent_fanouts_on_fifty_connections_start_exactly_one(
    served: Path, autojump_clock: Any
) -> None:
    statuses: list[str] = []

    async def one() -> None:
        c = await connect(served)
        async with c.stream:
            statuses.append((await c.call("fanout", {"shift_id": "shift-1"}))["status"])

    with trio.fail_after(IO_LIMIT):
        async with trio.open_nursery() as nursery:
            for _ in range(50):
                nursery.start_soon(one)

    assert len(statuses) == 50
    assert statuses.count("started") == 1
    assert set(statuses) == {"started", "already_running"}


async def test_status_counts_shifts_caregivers_and_outbox(
    harness: Harness, conn: Conn, autojump_clock: Any
) -> None:
    with trio.fail_after(IO_LIMIT):
        before = await conn.call("status")
        await conn.call("fanout", {"shift_id": "shift-1"})
        await harness.settle()
        after = await conn.call("status")

    assert before["caregivers"] == 7
    assert before["shifts"]["open"] == 1
    assert sum(before["outbox"].values()) == 0
    assert before["actors"] == 0
    assert after["shifts"]["open"] == 0
    assert after["shifts"]["offering"] == 1
    assert after["outbox"]["sent"] == 5  # one offer SMS to each RN
    assert after["actors"] == 1
    assert after["version"]


async def test_fanout_of_a_shift_that_has_started_answers_too_late_and_sends_nothing(
    harness: Harness, conn: Conn, autojump_clock: Any
) -> None:
    await harness.engine.import_roster([], [shift("started", start_in_h=-1)])
    with trio.fail_after(IO_LIMIT):
        result = await conn.call("fanout", {"shift_id": "started"})
        await harness.settle()
        shown = (await conn.call("shift.show", {"shift_id": "started"}))["shift"]
    assert result == {
        "shift_id": "started",
        "status": "too_late",
        "offered": 0,
        "escalate_at": None,
    }
    assert harness.provider.sent == []
    assert shown["state"] == "open"


async def let_offers_close_unclaimed(conn: Conn) -> None:
    with trio.fail_after(IO_LIMIT):
        await conn.call("fanout", {"shift_id": "shift-1"})
    await trio.sleep(19 * 3600)  # past the start (lead time 0): nobody claimed it


async def test_a_shift_whose_offers_closed_unclaimed_is_listed_and_counted_unfilled(
    conn: Conn, autojump_clock: Any
) -> None:
    await let_offers_close_unclaimed(conn)
    with trio.fail_after(IO_LIMIT):
        listed = await conn.call("shift.list", {"state": "unfilled"})
        status = await conn.call("status")
    assert [s["id"] for s in listed["shifts"]] == ["shift-1"]
    assert status["shifts"]["unfilled"] == 1
    assert status["shifts"]["offering"] == 0


async def test_cancelling_or_fanning_out_an_unfilled_shift_answers_unfilled(
    conn: Conn, autojump_clock: Any
) -> None:
    await let_offers_close_unclaimed(conn)
    with trio.fail_after(IO_LIMIT):
        cancelled = await conn.call("cancel", {"shift_id": "shift-1"})
        fanout = await conn.call("fanout", {"shift_id": "shift-1"})
    assert cancelled == {"shift_id": "shift-1", "status": "unfilled"}
    assert fanout["status"] == "unfilled"
