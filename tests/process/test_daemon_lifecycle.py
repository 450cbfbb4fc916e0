"""The real daemon as a subprocess: killed with SIGKILL mid-fanout and restarted, it loses
no claim, sends nothing twice and escalates at the deadline set before the crash.

Real time here, so delays are short (an escalation delay of 4 s) and every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from shiftd.clock import parse_iso
from shiftd.testing.daemon import Daemon
from shiftd.testing.waiting import wait_for

pytestmark = pytest.mark.process

DELAY = 4.0
START = datetime.now(UTC) + timedelta(days=1)
ROSTER = {
    "caregivers": [
        {"id": f"rn-{n}", "name": f"Nurse {n}", "role": "RN", "phone": f"+1555020000{n}"}
        for n in range(1, 5)
    ]
    + [{"id": "lpn-1", "name": "Lpn One", "role": "LPN", "phone": "+15550200009"}],
    "shifts": [
        {
            "id": "night-rn",
            "organization_id": "org",
            "role_required": "RN",
            "start_time": START.isoformat(),
            "end_time": (START + timedelta(hours=8)).isoformat(),
        }
    ],
}


@pytest.fixture
def daemon() -> Iterator[Daemon]:
    workdir = Path(tempfile.mkdtemp(prefix="shiftd-", dir="/tmp"))  # short: socket paths
    d = Daemon(workdir, escalation_delay=f"{int(DELAY)}s")
    try:
        yield d
    finally:
        d.ensure_gone()
        if os.environ.get("KEEP") is None:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.slow
def test_sigkill_mid_fanout_loses_nothing_and_sends_nothing_twice(daemon: Daemon) -> None:
    daemon.start()
    daemon.call("roster.import", **ROSTER)
    fanout = daemon.call("fanout", shift_id="night-rn")
    assert fanout["status"] == "started" and fanout["offered"] == 4
    escalate_at = parse_iso(fanout["escalate_at"])
    wait_for(lambda: len(daemon.messages()) >= 4, 10, "four offer texts")
    assert daemon.call("inbound", **{"from": "+15550200002", "body": "no"})["outcome"] == "declined"
    wait_for(lambda: len(daemon.messages()) == 5, 5, "the decline acknowledged")

    # Crash well before the escalation deadline, and come back.
    daemon.kill9()
    daemon.start()
    back = datetime.now(UTC)
    assert daemon.call("fanout", shift_id="night-rn")["status"] == "already_running"

    # The calls go out at the deadline set before the crash, not a full delay after restart
    # (at once on restart if a loaded machine brought it back after the deadline).
    calls = wait_for(lambda: [m for m in daemon.messages() if m["channel"] == "voice"], 15, "calls")
    first_call = parse_iso(calls[0]["ts"])
    assert escalate_at <= first_call < max(escalate_at, back) + timedelta(seconds=1.5)
    wait_for(
        lambda: len([m for m in daemon.messages() if m["channel"] == "voice"]) == 3, 5, "3 calls"
    )
    assert {m["caregiver_id"] for m in daemon.messages() if m["channel"] == "voice"} == {
        "rn-1",
        "rn-3",
        "rn-4",
    }

    # A claim, then another crash: the claim survives and is not given twice.
    won = daemon.call("inbound", **{"from": "+15550200003", "body": "yes"})
    assert won["outcome"] == "claimed"
    told = {"confirm", "filled"}
    wait_for(
        lambda: sum(m["purpose"] in told for m in daemon.messages()) == 3, 5, "claim's messages"
    )
    daemon.kill9()
    daemon.start()
    shown = daemon.call("shift.show", shift_id="night-rn")["shift"]
    assert shown["state"] == "filled" and shown["claimed_by"] == "rn-3"
    late = daemon.call("inbound", **{"from": "+15550200004", "body": "YES"})
    assert late["outcome"] == "already_filled"
    assert daemon.call("fanout", shift_id="night-rn")["status"] == "already_filled"

    messages = daemon.messages()
    per_message = Counter((m["caregiver_id"], m["channel"], m["purpose"]) for m in messages)
    assert max(per_message.values()) == 1, per_message
    assert per_message[("rn-3", "sms", "confirm")] == 1
    assert daemon.stop() == 0


def test_sigterm_stops_gracefully_and_removes_the_socket(daemon: Daemon) -> None:
    daemon.start()
    assert daemon.stop() == 0
    assert not daemon.socket.exists()
    assert "daemon.stopped" in (daemon.workdir / "daemon.log").read_text()


def test_a_second_daemon_on_the_same_state_dir_refuses_to_start(daemon: Daemon) -> None:
    daemon.start()
    second = subprocess.run(
        [sys.executable, "-m", "shiftd.cli", "run", "--config", str(daemon.config)],
        cwd=daemon.workdir,
        capture_output=True,
        timeout=15,
    )
    assert second.returncode == 1
    assert b"another shiftd" in second.stderr
    assert daemon.call("ping")["pong"] is True


def test_systemd_is_told_ready_then_stopping(daemon: Daemon) -> None:
    notify_path = daemon.workdir / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(15)
        os.environ["NOTIFY_SOCKET"] = str(notify_path)
        try:
            daemon.start()
        finally:
            del os.environ["NOTIFY_SOCKET"]
        assert b"READY=1" in notify.recv(4096)
        assert daemon.stop() == 0
        assert b"STOPPING=1" in notify.recv(4096)
