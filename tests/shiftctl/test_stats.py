"""`stats`: fills, time-to-fill, fill rate and messages from the store; `shiftctl stats`; and
the progress a large `shiftctl roster import` shows on a terminal.

The harness roster: RN cg-1..cg-5, LPN cg-6..cg-7, one open RN shift `shift-1`.
"""

from __future__ import annotations

import io
import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import trio

from shiftd.control.server import handle_line
from shiftd.shiftctl.cli import main
from shiftd.shiftctl.render import render_stats
from shiftd.testing.engine import Harness, phone, shift
from shiftd.testing.shiftctl import FakeDaemon, import_counter

MINUTE = 60.0
DAY = timedelta(days=1)


async def two_fills_and_one_unfilled(h: Harness) -> None:
    """shift-1 filled after 2 minutes, shift-2 after 6, shift-3 never."""
    await h.engine.import_roster([], [shift("shift-2"), shift("shift-3")])
    for shift_id in ("shift-1", "shift-2", "shift-3"):
        await h.engine.fanout(shift_id)
    await h.settle()
    await trio.sleep(2 * MINUTE)
    assert (await h.engine.inbound(phone(1), "YES", shift_id="shift-1")).outcome == "claimed"
    await trio.sleep(4 * MINUTE)
    assert (await h.engine.inbound(phone(2), "YES", shift_id="shift-2")).outcome == "claimed"
    await h.settle()


async def test_stats_after_two_fills_and_one_unfilled(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await two_fills_and_one_unfilled(harness)
    stats = await harness.engine.stats(DAY)

    assert stats["fanned_out"] == 3
    assert stats["filled"] == 2
    assert stats["in_progress"] == 1
    assert stats["cancelled"] == 0
    assert stats["fill_rate"] == pytest.approx(2 / 3)
    ttf = stats["time_to_fill_s"]
    assert ttf["median"] == pytest.approx(4 * MINUTE)  # between 2 and 6 minutes
    assert ttf["p90"] == pytest.approx(2 * MINUTE + 0.9 * 4 * MINUTE)  # interpolated
    assert ttf["max"] == pytest.approx(6 * MINUTE)
    sms = stats["messages"]["sms"]
    assert sms["sent"] == len(harness.provider.sent)
    assert sum(sms.values()) >= 15  # 3 x 5 offers, confirmations, "filled" notices
    assert "voice" not in stats["messages"]  # no escalation yet
    assert stats["until"] > stats["since"]


async def test_stats_window_leaves_out_older_fanouts(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await two_fills_and_one_unfilled(harness)
    await trio.sleep(2 * 3600)
    await harness.engine.cancel("shift-3")  # a cancel today does not bring it into the window
    recent = await harness.engine.stats(timedelta(hours=1))
    assert recent["fanned_out"] == 0
    assert recent["fill_rate"] is None
    assert recent["time_to_fill_s"] == {"median": None, "p90": None, "max": None}
    everything = await harness.engine.stats(DAY)
    assert (everything["filled"], everything["cancelled"]) == (2, 1)


async def test_a_single_fill_is_its_own_median_and_p90(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.fanout("shift-1")
    await trio.sleep(3 * MINUTE)
    await harness.engine.inbound(phone(4), "YES")
    stats = await harness.engine.stats(DAY)
    assert stats["time_to_fill_s"] == {
        "median": pytest.approx(180),
        "p90": pytest.approx(180),
        "max": pytest.approx(180),
    }
    assert stats["fill_rate"] == 1.0


async def control(h: Harness, args: dict[str, Any]) -> dict[str, Any]:
    line = json.dumps({"id": 1, "cmd": "stats", "args": args}).encode()
    return json.loads(await handle_line(h.engine, line))


async def test_the_stats_command_takes_a_duration_and_refuses_a_number(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await two_fills_and_one_unfilled(harness)
    answer = await control(harness, {"since": "90m"})
    assert answer["ok"] is True
    assert answer["result"]["window_s"] == 5400
    assert answer["result"]["filled"] == 2
    default = await control(harness, {})
    assert default["result"]["window_s"] == 86400
    bad = await control(harness, {"since": 3600})
    assert bad["error"]["code"] == "bad_args"


# ---- shiftctl stats -----------------------------------------------------------------------

RESULT = {
    "window_s": 86400.0,
    "until": "2025-07-01T14:06:00.000000Z",
    "since": "2025-06-30T14:06:00.000000Z",
    "fanned_out": 3,
    "filled": 2,
    "cancelled": 0,
    "in_progress": 1,
    "fill_rate": 2 / 3,
    "time_to_fill_s": {"median": 240.0, "p90": 336.0, "max": 360.0},
    "messages": {
        "sms": {"sent": 20, "cancelled": 3},
        "voice": {"sent": 4, "failed": 1},
    },
}


def test_render_stats_reads_like_a_report() -> None:
    out = io.StringIO()
    render_stats(RESULT, out, "24h")
    lines = out.getvalue().splitlines()
    assert lines[:7] == [
        "window:       last 24h (since 2025-06-30T14:06:00.000000Z)",
        "fanned out:   3",
        "filled:       2",
        "fill rate:    66.7%",
        "cancelled:    0",
        "in progress:  1",
        "time to fill: median 4m 00s, p90 5m 36s, max 6m 00s",
    ]
    assert lines[8] == "Messages"
    assert lines[9].split() == [
        "CHANNEL",
        "SENT",
        "FAILED",
        "PENDING",
        "SENDING",
        "CANCELLED",
        "TOTAL",
    ]
    assert lines[10].split() == ["sms", "20", "0", "0", "0", "3", "23"]
    assert lines[11].split() == ["voice", "4", "1", "0", "0", "0", "5"]


def test_render_stats_of_an_empty_window() -> None:
    empty = {
        **RESULT,
        "fanned_out": 0,
        "filled": 0,
        "in_progress": 0,
        "fill_rate": None,
        "time_to_fill_s": {"median": None, "p90": None, "max": None},
        "messages": {},
    }
    out = io.StringIO()
    render_stats(empty, out)
    text = out.getvalue()
    assert "fill rate:    -" in text
    assert "time to fill: -" in text
    assert "last 1d 00h 00m 00s" in text
    assert "(none)" in text


@pytest.fixture
def sock_path() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="shs-", dir="/tmp")
    yield f"{directory}/ctl.sock"
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def fake(sock_path: str) -> Iterator[FakeDaemon]:
    daemon = FakeDaemon(sock_path)
    try:
        yield daemon
    finally:
        daemon.stop()


def test_shiftctl_stats_sends_the_window_and_prints_the_report(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["stats"] = RESULT
    assert main(["--socket", fake.path, "stats", "--since", "7d"]) == 0
    out, _ = capsys.readouterr()
    assert fake.calls("stats") == [{"since": "7d"}]
    assert "last 7d (since" in out
    assert "fill rate:    66.7%" in out


def test_shiftctl_stats_json_prints_the_result(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["stats"] = RESULT
    assert main(["--socket", fake.path, "stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == RESULT
    assert fake.calls("stats") == [{"since": "24h"}]


def test_shiftctl_stats_reports_a_bad_window_as_the_daemon_does(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["stats"] = {"error": {"code": "bad_args", "message": "since: not a duration"}}
    assert main(["--socket", fake.path, "stats", "--since", "soon"]) == 2  # bad_args
    assert "bad_args" in capsys.readouterr().err


def test_shiftctl_metrics_prints_the_exposition_text(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    text = "# HELP shiftd_actors Actors.\n# TYPE shiftd_actors gauge\nshiftd_actors 3.0\n"
    fake.script["metrics"] = {"text": text, "content_type": "text/plain; version=0.0.4"}
    assert main(["--socket", fake.path, "metrics"]) == 0
    assert capsys.readouterr().out == text


# ---- progress of a long roster import ----------------------------------------------------


def big_roster(tmp_path: Path, caregivers: int = 3000, shifts: int = 400) -> Path:
    roster = {
        "caregivers": [
            {"id": f"cg-{i}", "name": f"Caregiver {i}", "role": "RN", "phone": f"+1555{i:07d}"}
            for i in range(caregivers)
        ],
        "shifts": [
            {
                "id": f"sh-{i}",
                "role_required": "RN",
                "start_time": "2025-07-02T08:00:00Z",
                "end_time": "2025-07-02T16:00:00Z",
            }
            for i in range(shifts)
        ],
    }
    path = tmp_path / "big.json"
    path.write_text(json.dumps(roster))
    return path


def test_roster_import_on_a_terminal_shows_requests_done_and_caregivers_so_far(
    fake: FakeDaemon,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake.script["roster.import"] = import_counter
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["--socket", fake.path, "roster", "import", str(big_roster(tmp_path))]) == 0
    err = capsys.readouterr().err
    total = len(fake.calls("roster.import"))
    updates = err.split("\r")[1:]
    assert len(updates) == total  # one status line per request, rewritten in place
    assert updates[0].startswith(f"roster import: request 1/{total} done")
    assert "caregivers " in updates[0]
    assert updates[-1].startswith(f"roster import: request {total}/{total} done (100%)")
    assert "caregivers 3000/3000, shifts 400/400" in updates[-1]
    assert err.endswith("\n")  # the last status line is left standing


def test_roster_import_off_a_terminal_prints_no_progress(
    fake: FakeDaemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["roster.import"] = import_counter
    assert main(["--socket", fake.path, "roster", "import", str(big_roster(tmp_path))]) == 0
    assert capsys.readouterr().err == ""


def test_a_failed_request_ends_the_progress_line_before_the_error(
    fake: FakeDaemon,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    answers = iter([None, {"error": {"code": "internal", "message": "disk full"}}])

    def second_fails(args: dict[str, Any]) -> dict[str, Any]:
        return next(answers) or import_counter(args)

    fake.script["roster.import"] = second_fails
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert main(["--socket", fake.path, "roster", "import", str(big_roster(tmp_path))]) == 70
    err = capsys.readouterr().err
    assert "\nerror: internal: disk full (request 2/" in err
