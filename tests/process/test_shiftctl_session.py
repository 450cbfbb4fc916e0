"""shiftctl against the real daemon: the README's tour as a coordinator types it, and exit 1
on an error answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shiftd.testing.daemon import Daemon
from shiftd.testing.waiting import wait_for

SAMPLE = Path(__file__).parents[1] / "data" / "sample_data.json"


@pytest.mark.process
@pytest.mark.slow
def test_the_readme_tour_with_shiftctl_against_a_real_daemon(daemon: Daemon) -> None:
    past_shift, lpn_shift = "a1b2c3d4-e5f6-7890-abcd-ef1234567890", "lpn-1"
    wei, barry = "b7e6a0f4-4c32-44dd-8a6d-ec6b7e9477da", "c3d4e5f6-g7h8-9012-cdef-345678901234"
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
    daemon.start()

    def ok(*args: str) -> str:
        done = daemon.shiftctl(*args)
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
def test_shiftctl_exits_3_on_not_found_from_a_real_daemon(daemon: Daemon) -> None:
    daemon.start()

    done = daemon.shiftctl("fanout", "no-such-shift")

    assert done.returncode == 3
    assert done.stderr.startswith("error: not_found: ")
    assert daemon.shiftctl("ping").returncode == 0  # and the daemon serves on
