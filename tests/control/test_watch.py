"""`watch`: the event bus, the streaming control command, and `shiftctl watch`.

Socket tests run server, engine and client on one Trio loop over a real Unix socket, bounded
by `fail_after` (virtual time). `shiftctl watch` itself is synchronous CLI code: it runs
against a scripted fake daemon in a background thread.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import trio

from shiftd.control.client import ControlClient, RemoteError
from shiftd.control.server import handle_line, serve_control
from shiftd.events import EventBus
from shiftd.models import Channel
from shiftd.shiftctl.cli import main
from shiftd.shiftctl.timeline import render_event
from shiftd.testing.engine import Harness, StartEngine, caregiver, make_config, phone, shift

IO_LIMIT = 30  # virtual seconds
MINUTE = 60.0
EVENT_KEYS = {"ts", "kind", "shift_id", "caregiver_id", "detail"}


# ---- the bus ---------------------------------------------------------------------------------


def test_a_subscriber_that_falls_behind_loses_events_and_is_told_where() -> None:
    async def main_() -> None:
        bus = EventBus()
        with bus.subscribe(buffer=3) as sub:
            for n in range(10):
                bus.publish("tick", n=n)  # never blocks, though nobody reads
            got = [sub.receive_nowait().detail["n"] for _ in range(3)]
            with pytest.raises(trio.WouldBlock):
                sub.receive_nowait()
            bus.publish("tick", n=10)
            marker, after = sub.receive_nowait(), sub.receive_nowait()
        assert got == [0, 1, 2]
        assert (marker.kind, marker.detail) == ("overflow", {"dropped": 7})
        assert after.detail == {"n": 10}
        assert bus.dropped == 7
        assert bus.subscribers == 0  # leaving the `with` unsubscribed it

    trio.run(main_)


def test_a_shift_filter_and_a_failing_listener() -> None:
    async def main_() -> None:
        bus = EventBus()
        seen: list[str] = []

        def broken(event: Any) -> None:
            raise RuntimeError("listener bug")

        bus.add_listener(broken)
        bus.add_listener(lambda e: seen.append(e.kind))
        with bus.subscribe(shift_id="a") as only_a:
            bus.publish("claimed", shift_id="b")
            bus.publish("claimed", shift_id="a", caregiver_id="cg-1")
            event = only_a.receive_nowait()
            with pytest.raises(trio.WouldBlock):
                only_a.receive_nowait()
        assert (event.shift_id, event.caregiver_id) == ("a", "cg-1")
        assert seen == ["claimed", "claimed"]  # a broken listener does not stop the others

    trio.run(main_)


def test_a_listener_hears_only_its_kinds_and_an_event_nobody_wants_is_not_built() -> None:
    async def main_() -> None:
        stamped: list[int] = []

        def now() -> Any:
            stamped.append(1)
            return datetime(2026, 11, 2, tzinfo=UTC)

        bus = EventBus(now)
        seen: list[str] = []
        bus.add_listener(lambda e: seen.append(e.kind), ("claimed",))
        assert bus.wants("claimed") and not bus.wants("sent")
        bus.publish("sent", shift_id="a")
        bus.publish("claimed", shift_id="a")
        assert seen == ["claimed"]
        assert len(stamped) == 1  # the "sent" nobody wanted was never made
        with bus.subscribe():
            assert bus.wants("sent")  # a subscriber takes every kind

    trio.run(main_)


# ---- over the control socket ------------------------------------------------------------------


class Conn:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buf = bytearray()
        self.raw: list[bytes] = []

    async def send(self, payload: dict[str, Any]) -> None:
        await self.stream.send_all(json.dumps(payload).encode() + b"\n")

    async def read(self) -> dict[str, Any] | None:
        while b"\n" not in self.buf:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, _, rest = bytes(self.buf).partition(b"\n")
        self.buf[:] = rest
        self.raw.append(line)
        return json.loads(line)

    async def events_until(self, kind: str) -> list[dict[str, Any]]:
        """Event objects up to and including the first of `kind`."""
        events = []
        while True:
            line = await self.read()
            assert line is not None, f"stream ended before a {kind!r} event"
            assert line["ok"] is True
            assert line["id"] == 1
            events.append(line["event"])
            if line["event"]["kind"] == kind:
                return events


@pytest.fixture
def sock_path() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="shw-", dir="/tmp"))
    yield directory / "control.sock"
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
async def served(harness: Harness, sock_path: Path) -> AsyncIterator[Path]:
    await harness.nursery.start(serve_control, sock_path, harness.engine)
    yield sock_path


async def watch(path: Path, **args: Any) -> Conn:
    conn = Conn(await trio.open_unix_socket(str(path)))
    await conn.send({"id": 1, "cmd": "watch", "args": args})
    ack = await conn.read()
    assert ack is not None
    assert ack == {
        "id": 1,
        "ok": True,
        "result": {
            "watching": True,
            "shift_id": args.get("shift_id"),
            "timezone": "America/New_York",  # the engine's; shiftctl shows times in it
        },
    }
    return conn


async def test_watch_streams_fanout_texts_escalation_replies_and_claim_in_order(
    harness: Harness, served: Path, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(IO_LIMIT + 20 * MINUTE):
        conn = await watch(served)
        await harness.engine.fanout("shift-1")
        await harness.settle()
        await harness.engine.inbound(phone(1), "no thanks")
        await trio.sleep(11 * MINUTE)  # escalation: calls to the four who did not decline
        await harness.settle()
        await harness.engine.inbound(phone(3), "1", Channel.VOICE)
        await harness.engine.inbound("+19998887766", "hello?")
        events = await conn.events_until("claimed")
        events += await conn.events_until("reply")  # the reply that claimed it
        events += await conn.events_until("reply")  # the stranger
        await conn.stream.aclose()

    for event in events:
        assert set(event) == EVENT_KEYS
        assert event["ts"].endswith("Z")
    assert not any(b"+1555" in line or b"+1999" in line for line in conn.raw)  # no phones
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "fanout_started"
    assert events[0]["shift_id"] == "shift-1"
    assert events[0]["detail"]["offered"] == 5
    escalated = kinds.index("escalated")
    assert kinds.index("declined") < escalated
    sms_offers = [
        e for e in events[:escalated] if e["kind"] == "sent" and e["detail"]["purpose"] == "offer"
    ]
    assert {e["caregiver_id"] for e in sms_offers} == {f"cg-{n}" for n in range(1, 6)}
    assert all(e["detail"]["channel"] == "sms" for e in sms_offers)
    assert events[escalated]["detail"] == {"calls": 4}
    claimed = events[kinds.index("claimed")]
    assert claimed["caregiver_id"] == "cg-3"
    assert claimed["detail"]["channel"] == "voice"
    assert claimed["detail"]["time_to_fill_s"] == pytest.approx(11 * MINUTE)
    calls = [e for e in events if e["kind"] == "sent" and e["detail"]["channel"] == "voice"]
    assert len(calls) == 4
    assert escalated < events.index(calls[0]) < kinds.index("claimed")
    replies = [e for e in events if e["kind"] == "reply"]
    assert [r["detail"]["outcome"] for r in replies] == ["declined", "claimed", "unknown_sender"]
    assert replies[-1]["caregiver_id"] is None
    assert replies[-1]["detail"]["from"] == "…66"  # masked, never the number


async def test_watch_of_one_shift_sees_only_that_shift(
    harness: Harness, served: Path, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.import_roster([], [_shift("shift-2")])
    with trio.fail_after(IO_LIMIT):
        conn = await watch(served, shift_id="shift-2")
        await harness.engine.fanout("shift-1")
        await harness.engine.fanout("shift-2")
        await harness.engine.cancel("shift-2")
        await harness.settle()
        events = await conn.events_until("cancelled")
        await conn.stream.aclose()
    assert {e["shift_id"] for e in events} == {"shift-2"}
    assert events[0]["kind"] == "fanout_started"


async def test_watching_an_unknown_shift_is_not_found_and_the_connection_stays_usable(
    served: Path, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(IO_LIMIT):
        conn = Conn(await trio.open_unix_socket(str(served)))
        await conn.send({"id": 1, "cmd": "watch", "args": {"shift_id": "nope"}})
        refused = await conn.read()
        await conn.send({"id": 2, "cmd": "ping", "args": {}})
        pong = await conn.read()
        await conn.stream.aclose()
    assert refused is not None
    assert refused["error"]["code"] == "not_found"
    assert pong is not None
    assert pong["ok"] is True


async def test_a_watcher_that_never_reads_does_not_hold_up_a_fanout_or_claim(
    harness: Harness, served: Path, autojump_clock: trio.testing.MockClock
) -> None:
    many = 1500  # ~1,500 "sent" events: more than a watcher's buffer and the socket's
    await harness.engine.import_roster([caregiver(n) for n in range(10, 10 + many)], [])
    bus = harness.engine.events
    with trio.fail_after(IO_LIMIT):
        stalled = await watch(served)  # reads nothing from here on
        unread = bus.subscribe(buffer=4)  # an in-process subscriber that never reads either
        result = await harness.engine.fanout("shift-1")
        await harness.settle()
        claim = await harness.engine.inbound(phone(10), "YES")
        await harness.settle()

    assert result.offered == many + 5
    assert claim.outcome.value == "claimed"
    shift = await harness.engine.shift("shift-1")
    assert shift.state.value == "filled"
    assert len(harness.provider.sent) == 2 * (many + 5)  # offers, then confirm + "filled"
    assert bus.dropped > 0
    assert unread.dropped_total > 0

    # Once the watcher reads again it gets what was buffered and, with the next event, the
    # marker of the gap.
    events: list[dict[str, Any]] = []

    async def catch_up() -> None:
        events.extend(await stalled.events_until("overflow"))

    with trio.fail_after(IO_LIMIT):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(catch_up)
            await trio.sleep(5)  # it drains what was buffered
            await harness.engine.inbound(phone(11), "YES")  # a late accept: one more event
        await stalled.stream.aclose()
    assert events[-1]["detail"]["dropped"] > 0
    assert events[0]["kind"] == "fanout_started"
    unread.close()


async def test_a_closed_watch_connection_unsubscribes(
    harness: Harness, served: Path, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(IO_LIMIT):
        conn = await watch(served)
        assert harness.engine.events.subscribers == 1
        await conn.stream.aclose()
        await harness.settle()
    assert harness.engine.events.subscribers == 0


async def test_a_transport_that_cannot_stream_refuses_watch(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    answer = json.loads(await handle_line(harness.engine, b'{"id": 9, "cmd": "watch"}'))
    assert answer["ok"] is False
    assert answer["error"]["code"] == "bad_request"
    assert harness.engine.events.subscribers == 0


def _shift(shift_id: str) -> Any:
    return shift(shift_id)


async def test_watch_streams_the_release_when_a_coordinator_unassigns(
    harness: Harness, served: Path, autojump_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(IO_LIMIT):
        conn = await watch(served, shift_id="shift-1")
        await harness.engine.fanout("shift-1")
        await harness.settle()
        await harness.engine.inbound(phone(2), "YES")
        await harness.engine.unassign("shift-1")
        events = await conn.events_until("released")
        await conn.stream.aclose()
    released = events[-1]
    assert released["caregiver_id"] == "cg-2"
    assert released["detail"] == {"by": "coordinator", "reopened": True}


async def test_watch_streams_a_later_policy_wave_and_the_shift_going_unfilled(
    start_engine: StartEngine,
    tmp_path: Path,
    sock_path: Path,
    autojump_clock: trio.testing.MockClock,
) -> None:
    policy = [{"at": "0s", "channel": "sms"}, {"at": "30m", "channel": "sms", "tags": ["night"]}]
    h: Harness = await start_engine(
        make_config(tmp_path, organizations={"org-1": {"policy": policy}})
    )
    await h.engine.import_roster([caregiver(n) for n in (1, 2)], [_shift("shift-1")])
    await h.nursery.start(serve_control, sock_path, h.engine)
    with trio.fail_after(IO_LIMIT + 20 * 3600):
        conn = await watch(sock_path)
        await h.engine.fanout("shift-1")
        wave = (await conn.events_until("wave"))[-1]
        unfilled = (await conn.events_until("unfilled"))[-1]  # 18 h on, the shift starts
        await conn.stream.aclose()
    assert wave["detail"] == {
        "step": 1,
        "round": 0,
        "channel": "sms",
        "audience": "all",
        "tags": ["night"],
        "contacted": 0,
    }
    assert wave["ts"] == "2025-07-01T14:30:00.000000Z"
    assert (unfilled["shift_id"], unfilled["ts"]) == ("shift-1", "2025-07-02T08:00:00.000000Z")


# ---- shiftctl watch against a fake daemon ------------------------------------------------------

EVENTS = [
    {
        "ts": "2025-07-01T14:00:00.000000Z",
        "kind": "fanout_started",
        "shift_id": "shift-1",
        "caregiver_id": None,
        "detail": {"offered": 5, "escalate_at": "2025-07-01T14:10:00.000000Z"},
    },
    {
        "ts": "2025-07-01T14:00:01.000000Z",
        "kind": "sent",
        "shift_id": "shift-1",
        "caregiver_id": "cg-1",
        "detail": {"channel": "sms", "purpose": "offer", "outbox_id": 1},
    },
    {
        "ts": "2025-07-01T14:04:30.000000Z",
        "kind": "claimed",
        "shift_id": "shift-1",
        "caregiver_id": "cg-1",
        "detail": {"channel": "sms", "time_to_fill_s": 270.0},
    },
    {
        "ts": "2025-07-01T14:04:31.000000Z",
        "kind": "overflow",
        "shift_id": None,
        "caregiver_id": None,
        "detail": {"dropped": 12},
    },
]


class StreamingFake:
    """Answers one `watch` request with an ack and the scripted event lines, then closes."""

    def __init__(self, path: str, ack: dict[str, Any], lines: list[dict[str, Any]]) -> None:
        self.requests: list[dict[str, Any]] = []
        self._srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._srv.bind(path)
        self._srv.listen(1)
        self._srv.settimeout(5)
        self._ack, self._lines = ack, lines
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._srv.accept()
        with conn:
            conn.settimeout(5)
            buf = b""
            while b"\n" not in buf:
                buf += conn.recv(65536)
            request = json.loads(buf.split(b"\n", 1)[0])
            self.requests.append(request)
            out = [{"id": request["id"], **self._ack}]
            out += [{"id": request["id"], **line} for line in self._lines]
            conn.sendall(b"".join(json.dumps(o).encode() + b"\n" for o in out))

    def join(self) -> None:
        self._thread.join(5)
        self._srv.close()
        assert not self._thread.is_alive()


@pytest.fixture
def fake_path() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="shw-", dir="/tmp")
    yield f"{directory}/ctl.sock"
    shutil.rmtree(directory, ignore_errors=True)


def _fake(path: str, lines: list[dict[str, Any]] | None = None) -> StreamingFake:
    ack = {"ok": True, "result": {"watching": True, "shift_id": None}}
    return StreamingFake(path, ack, [{"ok": True, "event": e} for e in EVENTS] + (lines or []))


def test_client_stream_yields_each_event_until_the_daemon_closes(fake_path: str) -> None:
    fake = _fake(fake_path)
    with ControlClient(fake_path, timeout=5) as client:
        events = list(client.stream("watch", {"shift_id": "shift-1"}))
        assert client.ack == {"watching": True, "shift_id": None}
    fake.join()
    assert events == EVENTS
    assert fake.requests[0]["cmd"] == "watch"
    assert fake.requests[0]["args"] == {"shift_id": "shift-1"}


def test_client_stream_raises_an_error_line_mid_stream(fake_path: str) -> None:
    fake = _fake(fake_path, [{"ok": False, "error": {"code": "internal", "message": "boom"}}])
    with ControlClient(fake_path, timeout=5) as client:
        stream = client.stream("watch")
        received = []
        with pytest.raises(RemoteError) as caught:
            for event in stream:
                received.append(event)
    fake.join()
    assert len(received) == len(EVENTS)
    assert caught.value.code == "internal"


def test_shiftctl_watch_json_prints_one_event_object_per_line(
    fake_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = _fake(fake_path)
    code = main(["--socket", fake_path, "--timeout", "5", "watch", "--json", "--shift", "s-1"])
    fake.join()
    out, err = capsys.readouterr()
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == EVENTS
    assert "closed the event stream" in err
    assert fake.requests[0]["args"] == {"shift_id": "s-1"}


def test_shiftctl_watch_prints_readable_lines(
    fake_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = _fake(fake_path)
    assert main(["--socket", fake_path, "--timeout", "5", "watch"]) == 0
    fake.join()
    out, _ = capsys.readouterr()
    assert out.splitlines() == [
        "2025-07-01 14:00:00  fanout_started  shift shift-1: 5 offered, escalates at"
        " 2025-07-01 14:10:00",
        "2025-07-01 14:00:01  sent            sms offer to cg-1 (shift shift-1)",
        "2025-07-01 14:04:30  claimed         shift shift-1 by cg-1 (sms) after 4m 30s",
        "2025-07-01 14:04:31  overflow        12 events lost: this watch fell behind",
    ]


def test_render_event_covers_replies_and_escapes_control_characters() -> None:
    reply = {
        "ts": "2025-07-01T14:02:00.000000Z",
        "kind": "reply",
        "shift_id": None,
        "caregiver_id": None,
        "detail": {"channel": "sms", "outcome": "unknown_sender", "from": "…66"},
    }
    assert render_event(reply).endswith("reply           sms from unknown …66: unknown_sender")
    odd = {"ts": "x", "kind": "new_kind\x1b[31m", "shift_id": "s", "detail": {"k": "v"}}
    line = render_event(odd)
    assert "\x1b" not in line
    assert "shift s" in line
    assert "k=v" in line


def _event(kind: str, caregiver_id: str | None = None, **detail: Any) -> dict[str, Any]:
    return {
        "ts": "2025-07-01T14:30:00.000000Z",
        "kind": kind,
        "shift_id": "shift-1",
        "caregiver_id": caregiver_id,
        "detail": detail,
    }


@pytest.mark.parametrize(
    ("event", "line"),
    [
        pytest.param(
            _event(
                "wave",
                step=2,
                round=1,
                channel="sms",
                audience="all",
                tags=["night"],
                contacted=3,
            ),
            "wave            shift shift-1: step 2 round 1: sms to everyone with the role"
            " tagged night, 3 contacted",
            id="wave",
        ),
        pytest.param(
            _event(
                "wave", step=1, round=0, channel="voice", audience="offered", tags=[], contacted=1
            ),
            "wave            shift shift-1: step 1: voice to those offered already, 1 contacted",
            id="wave-first-round",
        ),
        pytest.param(
            _event("wave_held", step=1, until="2025-07-01T11:00:00.000000Z"),
            "wave_held       shift shift-1: step 1 held for quiet hours until 2025-07-01 11:00:00",
            id="wave_held",
        ),
        pytest.param(
            _event("unfilled"),
            "unfilled        shift shift-1: offers closed with nobody claiming it",
            id="unfilled",
        ),
        pytest.param(
            _event("released", "cg-2", by="coordinator", reopened=True),
            "released        shift shift-1: cg-2 unassigned by the coordinator; offering it again",
            id="unassigned",
        ),
        pytest.param(
            _event("released", "cg-2", by="caregiver", reopened=False),
            "released        shift shift-1: cg-2 released it; too late to offer it again",
            id="released-too-late",
        ),
        pytest.param(
            _event("send_suppressed", "cg-2", channel="sms", purpose="offer", outbox_id=7),
            "send_suppressed  sms offer to cg-2 (shift shift-1)",
            id="send_suppressed",
        ),
    ],
)
def test_render_event_describes_waves_holds_releases_and_unfilled_shifts(
    event: dict[str, Any], line: str
) -> None:
    assert render_event(event) == f"2025-07-01 14:30:00  {line}"
