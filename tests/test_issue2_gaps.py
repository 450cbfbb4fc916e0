"""Issue 2, point by point: behaviours the rest of the suite did not yet show directly.

Engine scenarios run on the autojump clock; control-socket scenarios over a real Unix socket
on `loopback_clock`; the daemon itself as a subprocess (real time, every wait bounded) for
signals, logs, the watchdog and a `shiftctl` session; the systemd unit through
`systemd-analyze verify` where it is installed.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
import trio
import trio.testing

from shiftd.actor import ShiftActor
from shiftd.clock import Clock, parse_iso
from shiftd.config import Config
from shiftd.control import server as control_server
from shiftd.control.server import serve_control
from shiftd.demo import run_demo
from shiftd.engine import Engine
from shiftd.intent import Classified, Intent
from shiftd.models import Channel, FanoutStatus, Outcome, Purpose, ShiftState
from shiftd.notify.base import Outgoing
from shiftd.testing.daemon import Daemon
from shiftd.testing.engine import EPOCH, FakeProvider, Harness, caregiver, make_config, phone, shift
from shiftd.testing.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = Path(__file__).parent / "data" / "sample_data.json"
UNIT = ROOT / "systemd" / "shiftd.service"
MINUTE = 60
IO_LIMIT = 30


# ==== 1. roster: re-import by id, phones through the index ===================================


async def test_reimporting_an_open_shift_with_new_times_updates_it_in_place(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    moved = shift(start_in_h=20)

    counts = await harness.engine.import_roster([], [moved])

    assert counts["shifts"]["updated"] == 1 and counts["shifts"]["created"] == 0
    [row] = await harness.engine.shifts()
    assert (row.id, row.start_time, row.end_time) == ("shift-1", moved.start_time, moved.end_time)


async def test_reimporting_a_caregiver_with_a_new_phone_moves_them_to_that_phone(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.fanout("shift-1")
    new_phone = "+15557770001"

    counts = await harness.engine.import_roster(
        [caregiver(1).model_copy(update={"phone": new_phone})], []
    )

    assert counts["caregivers"]["updated"] == 1 and counts["caregivers"]["created"] == 0
    assert len(await harness.engine.store.list_caregivers()) == 7
    assert (await harness.engine.inbound(phone(1), "yes")).outcome is Outcome.UNKNOWN_SENDER
    found = await harness.engine.inbound(new_phone, "yes")
    assert (found.outcome, found.caregiver_id) == (Outcome.CLAIMED, "cg-1")


async def test_the_phone_lookups_an_inbound_text_runs_use_the_index_not_a_scan(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.fanout("shift-1")
    conn: sqlite3.Connection = harness.engine.store._conn  # type: ignore[attr-defined]
    executed: list[str] = []
    conn.set_trace_callback(executed.append)
    try:
        result = await harness.engine.inbound("(555) 000-0003", "yes")
    finally:
        conn.set_trace_callback(None)

    assert result.outcome is Outcome.CLAIMED
    by_phone = [s for s in executed if re.search(r"FROM caregivers\s+WHERE phone =", s)]
    assert by_phone, executed  # the statements actually run, with their values bound
    for statement in by_phone:
        plan = " ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + statement))
        assert "INDEX" in plan and "SCAN" not in plan, (statement, plan)


# ==== 2-3. messages, pluggable classifier ===================================================


class OuiClassifier:
    """A classifier plugged in by configuration: French yes/no."""

    def classify(self, body: str, channel: Channel) -> Classified:
        word = body.strip().lower()
        if word == "oui":
            return Classified(Intent.ACCEPT)
        if word == "non":
            return Classified(Intent.DECLINE)
        return Classified(Intent.UNKNOWN)


async def test_replies_go_through_the_classifier_named_in_the_configuration(
    start_engine, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine(
        make_config(tmp_path, classifier="test_issue2_gaps:OuiClassifier")
    )
    await h.engine.import_roster([caregiver(1), caregiver(2)], [shift()])
    await h.engine.fanout("shift-1")

    assert (await h.engine.inbound(phone(1), "yes")).outcome is Outcome.UNKNOWN_INTENT
    assert (await h.engine.inbound(phone(2), "oui")).outcome is Outcome.CLAIMED


# ==== 4-5. actors, persist-then-act, deadlines ==============================================


def _committed(db: Path, outbox_id: int) -> dict[str, Any]:
    """What another reader (or a restart after a crash) sees in the database file now."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        row = conn.execute(
            "SELECT o.state, s.state, s.claimed_by, f.declined_at FROM outbox o"
            " JOIN shifts s ON s.id = o.shift_id"
            " LEFT JOIN offers f ON f.shift_id = o.shift_id AND f.caregiver_id = o.caregiver_id"
            " WHERE o.id = ?",
            (outbox_id,),
        ).fetchone()
    return dict(zip(("row", "shift", "claimed_by", "declined_at"), row, strict=True))


class CheckingProvider(FakeProvider):
    """Notes, for each message it is handed, what was already committed at that moment."""

    def __init__(self, db: Path) -> None:
        super().__init__()
        self.db = db
        self.seen: list[tuple[Outgoing, dict[str, Any]]] = []

    async def send(self, message: Outgoing) -> str | None:
        self.seen.append((message, _committed(self.db, message.outbox_id)))
        return await super().send(message)


async def test_each_transition_is_committed_before_the_provider_hears_of_it(
    start_engine, config: Config, autojump_clock: trio.testing.MockClock
) -> None:
    provider = CheckingProvider(Path(config.state_dir) / "shiftd.sqlite3")
    h: Harness = await start_engine(prov=provider)
    await h.engine.import_roster([caregiver(n) for n in (1, 2, 3)], [shift()])
    await h.engine.fanout("shift-1")
    await h.settle()
    await h.engine.inbound(phone(2), "no")
    await trio.sleep(10 * MINUTE)
    await h.settle()  # the calls go out before anybody accepts
    await h.engine.inbound(phone(1), "yes")
    await h.settle()

    seen = {(m.purpose, m.channel, m.caregiver_id): state for m, state in provider.seen}
    assert all(state["row"] == "sending" for state in seen.values())
    assert seen[(Purpose.OFFER, Channel.SMS, "cg-1")]["shift"] == "offering"
    assert seen[(Purpose.DECLINED, Channel.SMS, "cg-2")]["declined_at"] is not None
    assert seen[(Purpose.OFFER, Channel.VOICE, "cg-3")]["shift"] == "escalated"
    confirm = seen[(Purpose.CONFIRM, Channel.SMS, "cg-1")]
    assert (confirm["shift"], confirm["claimed_by"]) == ("filled", "cg-1")
    assert seen[(Purpose.FILLED, Channel.SMS, "cg-3")]["shift"] == "filled"


async def test_a_claim_still_being_committed_when_the_deadline_passes_is_finished_and_nobody_is_called(  # noqa: E501
    harness: Harness, monkeypatch: pytest.MonkeyPatch, autojump_clock: trio.testing.MockClock
) -> None:
    store = harness.engine.store
    original = store.persist

    async def slow_write(*args: Any, **kwargs: Any) -> Any:
        if any(r.kind == "claimed" for r in args[2].records):
            await trio.sleep(2)  # still writing the claim at the escalation deadline
        return await original(*args, **kwargs)

    monkeypatch.setattr(store, "persist", slow_write)
    await harness.engine.fanout("shift-1")
    await trio.sleep(10 * MINUTE - 1)

    with trio.fail_after(60):  # a claim cut off by the timer would never be answered
        result = await harness.engine.inbound(phone(4), "yes")
    await trio.sleep(30 * MINUTE)
    await harness.settle()

    assert result.outcome is Outcome.CLAIMED
    row = await harness.engine.shift("shift-1")
    assert (row.state, row.claimed_by) == (ShiftState.FILLED, "cg-4")
    assert row.claimed_at == EPOCH + timedelta(minutes=9, seconds=59)  # stamped on receipt
    assert harness.provider.of(Purpose.OFFER, Channel.VOICE) == []


class Boom(RuntimeError):
    """The injected fault."""


async def test_an_actor_failing_while_it_is_cancelled_is_logged_and_the_engine_still_stops(
    config: Config,
    provider: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: trio.testing.MockClock,
) -> None:
    clock = Clock(EPOCH)
    async with trio.open_nursery() as nursery:
        first = await nursery.start(Engine(config, clock=clock, notifier=provider).run)
        await first.import_roster([caregiver(1)], [shift()])
        assert (await first.fanout("shift-1")).status is FanoutStatus.STARTED
        first.stop()

    async def cleanup_that_fails() -> None:
        try:
            await trio.sleep_forever()
        finally:
            raise Boom("a child of the actor failed while being cancelled")

    async def actor_run(self: ShiftActor) -> None:
        # Cancelled at shutdown: the body's Cancelled and the child's Boom arrive together,
        # as a BaseExceptionGroup that `except Exception` would not catch.
        async with trio.open_nursery() as children:
            children.start_soon(cleanup_that_fails)
            await trio.sleep_forever()

    monkeypatch.setattr(ShiftActor, "run", actor_run)
    with structlog.testing.capture_logs() as logs, trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            second = await nursery.start(Engine(config, clock=clock, notifier=provider).run)
            assert second.supervisor.actors == 1  # recovered from the store
            second.stop()

    crashed = [entry for entry in logs if entry["event"] == "actor.crashed"]
    assert [entry["shift_id"] for entry in crashed] == ["shift-1"]
    assert any(entry["event"] == "engine.stopped" for entry in logs)


# ==== 7. the control socket ===================================================================


class Conn:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._buf = bytearray()
        self._next_id = 0

    async def read(self) -> dict[str, Any] | None:
        while b"\n" not in self._buf:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                return None
            self._buf += chunk
        line, _, rest = bytes(self._buf).partition(b"\n")
        self._buf[:] = rest
        return json.loads(line)

    async def request(self, cmd: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        self._next_id += 1
        line = {"id": self._next_id, "cmd": cmd, "args": args or {}}
        await self.stream.send_all(json.dumps(line).encode() + b"\n")
        response = await self.read()
        assert response is not None, f"connection closed instead of answering {cmd}"
        assert response["id"] == self._next_id
        return response

    async def call(self, cmd: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.request(cmd, args)
        assert response["ok"], response
        return response["result"]


@pytest.fixture
def sock_path() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="shg-", dir="/tmp"))  # sun_path is short
    yield directory / "control.sock"
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
async def conn(harness: Harness, sock_path: Path) -> AsyncIterator[Conn]:
    await harness.nursery.start(serve_control, sock_path, harness.engine)
    c = Conn(await trio.open_unix_socket(str(sock_path)))
    yield c
    await c.stream.aclose()


async def test_after_an_unknown_command_the_connection_still_serves(
    conn: Conn, loopback_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(IO_LIMIT):
        unknown = await conn.request("shift.explode")
        after = await conn.request("ping")
    assert (unknown["ok"], unknown["error"]["code"]) == (False, "unknown_command")
    assert after["ok"] is True


async def test_after_bad_arguments_the_connection_still_serves(
    conn: Conn, loopback_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(IO_LIMIT):
        bad = await conn.request("fanout", {"shift_id": 42, "force": True})
        after = await conn.request("fanout", {"shift_id": "shift-1"})
    assert (bad["ok"], bad["error"]["code"]) == (False, "bad_args")
    assert after["ok"] is True and after["result"]["status"] == "started"


async def test_caregiver_list_over_the_socket_lists_the_roster_and_filters_by_role(
    conn: Conn, loopback_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(IO_LIMIT):
        everyone = await conn.call("caregiver.list")
        lpns = await conn.call("caregiver.list", {"role": "LPN"})
    assert len(everyone["caregivers"]) == 7
    assert [(c["id"], c["phone"]) for c in lpns["caregivers"]] == [
        ("cg-6", phone(6)),
        ("cg-7", phone(7)),
    ]


async def test_shift_add_over_the_socket_creates_one_open_shift(
    conn: Conn, loopback_clock: trio.testing.MockClock
) -> None:
    args = {
        "role_required": "LPN",
        "start_time": "2025-07-04T08:00:00Z",
        "end_time": "2025-07-04T16:00:00Z",
    }
    with trio.fail_after(IO_LIMIT):
        added = (await conn.call("shift.add", args))["shift"]
        listed = (await conn.call("shift.list", {"state": "open"}))["shifts"]
    assert added["state"] == "open" and added["role_required"] == "LPN"
    assert added["id"]  # an opaque id was made for it
    assert sorted(s["id"] for s in listed) == sorted(["shift-1", added["id"]])


async def test_cancel_over_the_socket_ends_the_fanout_and_nothing_more_is_sent(
    harness: Harness, conn: Conn, loopback_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(IO_LIMIT):
        await conn.call("fanout", {"shift_id": "shift-1"})
        await harness.settle()
        cancelled = await conn.call("cancel", {"shift_id": "shift-1"})
    sent = len(harness.provider.sent)
    await trio.sleep(60 * MINUTE)
    await harness.settle()

    assert cancelled == {"shift_id": "shift-1", "status": "cancelled"}
    assert len(harness.provider.sent) == sent
    assert (await harness.engine.shift("shift-1")).state is ShiftState.CANCELLED


async def test_shift_show_over_the_socket_tells_who_was_contacted_how_and_when_and_who_declined(
    harness: Harness, conn: Conn, loopback_clock: trio.testing.MockClock
) -> None:
    with trio.fail_after(IO_LIMIT):
        await conn.call("fanout", {"shift_id": "shift-1"})
        await harness.settle()
    await trio.sleep(1 * MINUTE)
    with trio.fail_after(IO_LIMIT):
        await conn.call("inbound", {"from": phone(2), "body": "no"})
    await trio.sleep(10 * MINUTE)
    await harness.settle()
    with trio.fail_after(IO_LIMIT):
        shown = (await conn.call("shift.show", {"shift_id": "shift-1"}))["shift"]

    assert shown["state"] == "escalated" and shown["claimed_by"] is None
    started, escalate_at = parse_iso(shown["fanout_started_at"]), parse_iso(shown["escalate_at"])
    assert started is not None and escalate_at == started + timedelta(minutes=10)
    offers = [c for c in shown["contacts"] if c["purpose"] == "offer"]
    texts = {c["caregiver_id"]: c for c in offers if c["channel"] == "sms"}
    calls = [c for c in offers if c["channel"] == "voice"]
    assert set(texts) == {f"cg-{n}" for n in range(1, 6)}
    assert all(parse_iso(c["at"]) == started for c in texts.values())
    assert sorted(c["caregiver_id"] for c in calls) == ["cg-1", "cg-3", "cg-4", "cg-5"]
    assert all(c["state"] == "sent" and parse_iso(c["at"]) == escalate_at for c in calls)
    [declined] = shown["declines"]
    assert declined["caregiver_id"] == "cg-2"
    assert started < parse_iso(declined["at"]) < escalate_at  # type: ignore[operator]
    kinds = [e["kind"] for e in shown["timeline"]]
    assert kinds.index("fanout_started") < kinds.index("declined") < kinds.index("escalated")
    assert "reply" in kinds


# ---- who may connect: SO_PEERCRED, and the mode the socket is born with ----------------------


def test_peer_credentials_are_read_from_so_peercred() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    with a, b:
        peer = control_server._peer(SimpleNamespace(socket=a))  # type: ignore[arg-type]
    assert peer == (os.getpid(), os.getuid(), os.getgid())


def test_root_our_own_user_and_the_sockets_group_may_connect_others_may_not(
    tmp_path: Path,
) -> None:
    path = tmp_path / "control.sock"
    path.write_text("")
    group = path.stat().st_gid
    stranger_uid, other_gid = 4242, group + 4242

    assert control_server._allowed((1, 0, other_gid), path)
    assert control_server._allowed((1, os.getuid(), other_gid), path)
    assert control_server._allowed((1, stranger_uid, group), path)
    assert not control_server._allowed((1, stranger_uid, other_gid), path)


async def test_a_peer_that_may_not_connect_is_answered_forbidden_and_disconnected(
    harness: Harness,
    sock_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    loopback_clock: trio.testing.MockClock,
) -> None:
    monkeypatch.setattr(control_server, "_peer", lambda stream: (99999, 4242, 4242 + 1))
    await harness.nursery.start(serve_control, sock_path, harness.engine)
    with trio.fail_after(IO_LIMIT):
        c = Conn(await trio.open_unix_socket(str(sock_path)))
        refused = await c.read()
        after = await c.read()
    assert refused is not None and refused["error"]["code"] == "forbidden"
    assert after is None


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_socket_is_born_0660_even_under_a_permissive_umask(
    harness: Harness, sock_path: Path, loopback_clock: trio.testing.MockClock
) -> None:
    previous = os.umask(0)
    try:
        await harness.nursery.start(serve_control, sock_path, harness.engine)
        after_bind = os.umask(0)
    finally:
        os.umask(previous)
    assert _mode(sock_path) == 0o660
    assert after_bind == 0  # the daemon's own umask is put back once the socket exists


# ==== 10. the demo's summary ====================================================================


def test_the_demo_ends_with_a_summary_counting_messages_by_channel() -> None:
    out = io.StringIO()
    try:
        assert run_demo(out=out) == 0
    finally:
        structlog.reset_defaults()
    transcript = out.getvalue()
    timeline, summary = transcript.split("\nSummary\n", 1)
    texts = len(re.findall(r"  →  SMS  ", timeline))
    calls = len(re.findall(r"  →  CALL ", timeline))

    assert texts > 0 and calls > 0
    assert f"  messages: {texts} SMS, {calls} calls (" in summary
    assert re.search(r"  time to fill: \d+m \d\ds\n", summary)
    assert transcript.rstrip().splitlines()[-1].startswith("  every message went out")


# ==== 12. the systemd unit ========================================================================


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_analyze_verify_passes_when_execstart_is_an_existing_binary(
    tmp_path: Path,
) -> None:
    unit = tmp_path / "shiftd.service"
    text = UNIT.read_text()
    assert re.search(r"^ExecStart=/opt/shiftd/bin/shiftd run ", text, re.M)
    unit.write_text(re.sub(r"^ExecStart=\S+", "ExecStart=/bin/true", text, flags=re.M))

    checked = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )

    assert checked.returncode == 0, checked.stderr
    assert "shiftd.service" not in checked.stderr, checked.stderr


def test_the_unit_is_type_notify_with_a_watchdog_and_a_hardened_sandbox() -> None:
    settings = dict(
        line.split("=", 1)
        for line in UNIT.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )

    assert settings["Type"] == "notify"
    assert settings["NotifyAccess"] == "main"
    assert settings["WatchdogSec"]
    assert settings["User"] == "shiftd"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
        "UMask": "0007",
        "SystemCallFilter": "@system-service",
    }.items():
        assert settings[key] == value, key


# ==== 8-9. the real daemon and shiftctl =====================================================


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="shiftd-", dir="/tmp"))  # short: socket paths
    yield path
    if os.environ.get("KEEP") is None:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemon(workdir: Path) -> Iterator[Daemon]:
    d = Daemon(workdir)
    try:
        yield d
    finally:
        d.ensure_gone()


def _shiftctl(d: Daemon, *args: str) -> subprocess.CompletedProcess[str]:
    """The installed `shiftctl` command, as a coordinator runs it (SHIFTD_SOCKET set)."""
    script = Path(sys.executable).with_name("shiftctl")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "shiftd.ctl"]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "SHIFTD_SOCKET": str(d.socket)},
    )


@pytest.mark.process
def test_sigint_stops_the_daemon_gracefully_with_exit_0(daemon: Daemon) -> None:
    daemon.start()
    assert daemon.proc is not None

    daemon.proc.send_signal(signal.SIGINT)

    assert daemon.proc.wait(timeout=15) == 0
    assert not daemon.socket.exists()
    log = (daemon.workdir / "daemon.log").read_text()
    assert '"signal": "SIGINT"' in log and "daemon.stopped" in log


@pytest.mark.process
def test_the_daemon_logs_json_lines_when_stderr_is_not_a_terminal(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    daemon.start()
    assert daemon.stop() == 0

    lines = (daemon.workdir / "daemon.log").read_text().splitlines()
    events = [json.loads(line)["event"] for line in lines if line.strip()]
    assert "daemon.ready" in events and events[-1] == "daemon.stopped"


@pytest.mark.process
def test_the_daemon_logs_readable_console_lines_on_a_terminal(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    master, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "shiftd.cli", "run", "--config", str(daemon.config)],
        cwd=daemon.workdir,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    os.close(terminal)
    output = b""
    try:
        deadline = time.monotonic() + 15
        while b"daemon.ready" not in output and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                output += os.read(master, 65536)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        with contextlib.suppress(OSError):  # EIO once the terminal's last writer is gone
            while select.select([master], [], [], 0.2)[0]:
                chunk = os.read(master, 65536)
                if not chunk:
                    break
                output += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)

    text = output.decode(errors="replace")
    assert "daemon.ready" in text and "daemon.stopped" in text
    assert not any(line.lstrip().startswith("{") for line in text.splitlines())


@pytest.mark.process
def test_the_daemon_pings_the_systemd_watchdog_when_watchdog_usec_is_set(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    notify_path = daemon.workdir / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(15)
        monkeypatch.setenv("NOTIFY_SOCKET", str(notify_path))
        monkeypatch.setenv("WATCHDOG_USEC", "400000")  # a ping every 0.2 s
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        daemon.start()
        received: list[bytes] = []
        while sum(b"WATCHDOG=1" in d for d in received) < 3:
            received.append(notify.recv(4096))
        assert daemon.stop() == 0

    assert any(b"READY=1" in d for d in received)


@pytest.mark.process
def test_the_readme_tour_with_shiftctl_against_a_real_daemon(daemon: Daemon) -> None:
    past_shift, lpn_shift = "a1b2c3d4-e5f6-7890-abcd-ef1234567890", "lpn-1"
    wei, barry = "b7e6a0f4-4c32-44dd-8a6d-ec6b7e9477da", "c3d4e5f6-g7h8-9012-cdef-345678901234"
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    daemon.start()

    def ok(*args: str) -> str:
        done = _shiftctl(daemon, *args)
        assert done.returncode == 0, (args, done.stdout, done.stderr)
        return done.stdout

    def as_json(*args: str) -> Any:
        return json.loads(ok("--json", *args))

    assert "pong" in ok("ping")
    assert "caregivers: created 3" in ok("roster", "import", str(SAMPLE))
    assert "caregivers: created 0, updated 0, unchanged 3" in ok("roster", "import", str(SAMPLE))
    assert {c["name"] for c in as_json("caregiver", "list")["caregivers"]} == {
        "Alice Ongwele",
        "Wei Yan",
        "Barry Kozumikov",
    }
    assert len(as_json("shift", "list")["shifts"]) == 3
    assert as_json("fanout", past_shift)["status"] == "too_late"
    added = as_json(
        "shift", "add", "--id", lpn_shift, "--role", "LPN",
        "--start", start.isoformat(), "--end", (start + timedelta(hours=8)).isoformat(),
    )  # fmt: skip
    assert added["shift"]["state"] == "open"
    assert ok("fanout", lpn_shift).startswith("fanout started: 2 offered")
    assert as_json("fanout", lpn_shift)["status"] == "already_running"
    inbound = ("inbound", "--from")
    assert as_json(*inbound, "+15550002", "--body", "no thanks")["outcome"] == "declined"
    assert as_json(*inbound, "555-000-3", "--body", "maybe?")["outcome"] == "unknown_sender"
    won = as_json(*inbound, "+15550003", "--body", "YES")
    assert (won["outcome"], won["caregiver_id"]) == ("claimed", barry)
    shown = as_json("shift", "show", lpn_shift)["shift"]
    assert (shown["state"], shown["claimed_by"]) == ("filled", barry)
    assert [d["caregiver_id"] for d in shown["declines"]] == [wei]
    assert "Contacts" in ok("shift", "show", lpn_shift)
    assert as_json("status")["shifts"]["filled"] == 1
    assert as_json("cancel", lpn_shift)["status"] == "cancelled"

    wait_for(lambda: len(daemon.messages()) >= 5, 10, "offers, thanks, confirmation, cancel")
    assert daemon.stop() == 0
    sent = [(m["caregiver_id"], m["channel"], m["purpose"]) for m in daemon.messages()]
    assert len(sent) == len(set(sent)), sent
    assert {(wei, "sms", "offer"), (wei, "sms", "declined")} <= set(sent)
    assert {(barry, "sms", "offer"), (barry, "sms", "confirm")} <= set(sent)
    assert (barry, "sms", "shift_cancelled") in set(sent)


@pytest.mark.process
def test_shiftctl_exits_1_on_an_error_answer_from_a_real_daemon(daemon: Daemon) -> None:
    daemon.start()

    done = _shiftctl(daemon, "fanout", "no-such-shift")

    assert done.returncode == 1
    assert done.stderr.startswith("error: not_found: ")
    assert _shiftctl(daemon, "ping").returncode == 0  # and the daemon serves on
