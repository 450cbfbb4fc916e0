"""shiftctl against a scripted fake daemon (a stdlib AF_UNIX server in a background thread)."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shiftd.control.client import ConnectError, ControlClient, RemoteError
from shiftd.shiftctl.cli import main
from shiftd.testing.shiftctl import CLOSE, IO_TIMEOUT, SILENT, FakeDaemon, import_counter
from shiftd.web.passwords import verify

SAMPLE = Path(__file__).parents[1] / "data" / "sample_data.json"  # ../shared/reference, copied


@pytest.fixture(autouse=True)
def _no_socket_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIFTD_SOCKET", raising=False)


@pytest.fixture
def sock_path(tmp_path: Path) -> Iterator[str]:
    """A socket path in tmp_path, or in a short temp dir when tmp_path is too long for AF_UNIX."""
    path = tmp_path / "ctl.sock"
    if len(os.fsencode(path)) < 100:
        yield str(path)
        return
    short = tempfile.mkdtemp(prefix="shiftctl-")
    try:
        yield os.path.join(short, "ctl.sock")
    finally:
        shutil.rmtree(short, ignore_errors=True)


@pytest.fixture
def fake(sock_path: str) -> Iterator[FakeDaemon]:
    daemon = FakeDaemon(sock_path)
    try:
        yield daemon
    finally:
        daemon.stop()


def run(fake_or_path: FakeDaemon | str, *args: str) -> int:
    path = fake_or_path.path if isinstance(fake_or_path, FakeDaemon) else fake_or_path
    return main(["--socket", path, "--timeout", str(IO_TIMEOUT), *args])


SHOW_RESULT = {
    "shift": {
        "id": "s1",
        "organization_id": "org1",
        "role_required": "RN",
        "start_time": "2025-07-02T08:00:00Z",
        "end_time": "2025-07-02T16:00:00Z",
        "state": "filled",
        "claimed_by": "cg-alice",
        "claimed_at": "2025-07-02T07:03:12Z",
        "fanout_started_at": "2025-07-02T07:00:00Z",
        "escalate_at": "2025-07-02T07:10:00Z",
        "contacts": [
            {
                "caregiver_id": "cg-alice",
                "name": "Alice Ongwele",
                "channel": "sms",
                "purpose": "offer",
                "state": "sent",
                "at": "2025-07-02T07:00:01Z",
            }
        ],
        "declines": [{"caregiver_id": "cg-wei", "name": "Wei Yan", "at": "2025-07-02T07:02:00Z"}],
        "timeline": [
            {
                "ts": "2025-07-02T07:00:00Z",
                "kind": "fanout_started",
                "caregiver_id": None,
                "detail": {"offered": 2},
            },
            {
                "ts": "2025-07-02T07:03:12Z",
                "kind": "claimed",
                "caregiver_id": "cg-alice",
                "detail": {"body": "YES 42"},
            },
            {"ts": "2025-07-02T07:03:13Z", "kind": "closed", "caregiver_id": None, "detail": None},
        ],
    }
}


# --- basic commands and exit codes ----------------------------------------------------


def test_ping_prints_pong_and_exits_0(fake: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    fake.script["ping"] = {"pong": True, "version": "0.1.0"}
    assert run(fake, "ping") == 0
    out, err = capsys.readouterr()
    assert "pong" in out and "0.1.0" in out
    assert err == ""
    assert fake.requests[0]["cmd"] == "ping" and fake.requests[0]["args"] == {}


def test_an_error_answer_exits_with_its_codes_status_and_prints_the_code(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["cancel"] = {"error": {"code": "not_found", "message": "no shift 'nope'"}}
    assert run(fake, "cancel", "nope") == 3  # not_found
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == "error: not_found: no shift 'nope'"


def test_no_daemon_exits_69_with_start_hint(
    sock_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(sock_path, "ping") == 69
    err = capsys.readouterr().err
    assert f"no shiftd is answering at {sock_path} (no such file)" in err
    assert "Start one with: shiftd run --config config/shiftd.yaml" in err


def test_stale_socket_reports_connection_refused(
    sock_path: str, capsys: pytest.CaptureFixture[str]
) -> None:
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(sock_path)
    stale.close()  # the file stays, nobody listens
    assert run(sock_path, "status") == 69
    assert "(connection refused)" in capsys.readouterr().err


def test_json_flag_prints_parseable_json(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    status = {
        "version": "0.1.0",
        "uptime_s": 3723.5,
        "shifts": {"open": 1, "offering": 2, "escalated": 0, "filled": 3, "cancelled": 0},
        "actors": 2,
        "outbox": {"pending": 0, "sending": 0, "sent": 7, "failed": 1, "cancelled": 0},
        "state_dir": "/var/lib/shiftd",
    }
    fake.script["status"] = status
    assert run(fake, "--json", "status") == 0
    assert json.loads(capsys.readouterr().out) == status


def test_status_prints_key_value_block(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["status"] = {
        "version": "0.1.0",
        "uptime_s": 3723.5,
        "shifts": {"open": 1, "filled": 3},
        "actors": 2,
        "outbox": {"sent": 7},
        "state_dir": "/var/lib/shiftd",
    }
    assert run(fake, "status") == 0
    out = capsys.readouterr().out
    assert "uptime:" in out and "1h 02m 03s" in out
    assert "open 1, filled 3" in out
    assert "/var/lib/shiftd" in out


def test_usage_error_exits_2(fake: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(fake, "shift", "add", "--role", "RN") == 2  # --start/--end missing
    assert "usage:" in capsys.readouterr().err
    assert fake.requests == []


def test_shiftd_socket_env_var_is_honoured(
    fake: FakeDaemon, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["ping"] = {"pong": True, "version": "0.1.0"}
    monkeypatch.setenv("SHIFTD_SOCKET", fake.path)
    assert main(["--timeout", str(IO_TIMEOUT), "ping"]) == 0
    assert fake.path in capsys.readouterr().out
    assert len(fake.requests) == 1


# --- roster import ---------------------------------------------------------------------


def test_roster_import_sends_sample_caregivers_then_shifts(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["roster.import"] = import_counter
    sample = json.loads(SAMPLE.read_text())
    assert run(fake, "roster", "import", str(SAMPLE)) == 0
    assert [r["cmd"] for r in fake.requests] == ["roster.import", "roster.import"]
    assert fake.calls("roster.import") == [
        {"caregivers": sample["caregivers"]},
        {"shifts": sample["shifts"]},
    ]
    out = capsys.readouterr().out
    assert "caregivers: created 3, updated 0, unchanged 0" in out
    assert "shifts: created 3, updated 0, unchanged 0, skipped 0" in out


def test_large_roster_is_chunked_under_60_kib_and_counts_summed(
    fake: FakeDaemon,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake.script["roster.import"] = import_counter
    caregivers = [
        {
            "id": f"cg-{i:05d}",
            "name": f"Caregiver Number {i} Ñoño",
            "role": "RN" if i % 2 else "LPN",
            "phone": f"+1555{i:07d}",
        }
        for i in range(3000)
    ]
    shifts = [
        {
            "id": f"sh-{i}",
            "organization_id": "org",
            "role_required": "RN",
            "start_time": "2025-07-02T08:00:00Z",
            "end_time": "2025-07-02T16:00:00Z",
            **({"past": True} if i < 2 else {}),
        }
        for i in range(800)
    ]
    roster = tmp_path / "big.json"
    roster.write_text(json.dumps({"caregivers": caregivers, "shifts": shifts}))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)

    assert run(fake, "--json", "roster", "import", str(roster)) == 0

    calls = fake.calls("roster.import")
    assert len(calls) > 4
    assert all(size < 60 * 1024 for size in fake.line_sizes)
    kinds = [next(iter(args)) for args in calls]
    assert kinds == sorted(kinds)  # every caregivers request before the first shifts one
    assert [c for args in calls for c in args.get("caregivers", [])] == caregivers
    assert [s for args in calls for s in args.get("shifts", [])] == shifts
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["caregivers"] == {"created": 3000, "updated": 0, "unchanged": 0, "deactivated": 0}
    assert result["shifts"]["created"] == 800
    assert [s["id"] for s in result["shifts"]["skipped"]] == ["sh-0", "sh-1"]
    assert err.count("roster import: request") == len(calls)


def test_yaml_roster_keeps_phones_ids_and_times_as_written(
    fake: FakeDaemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["roster.import"] = import_counter
    roster = tmp_path / "roster.yaml"
    roster.write_text(
        "caregivers:\n"
        "  - id: 01234\n"
        "    name: Alice Ongwele\n"
        "    role: RN\n"
        "    phone: +15550001\n"
        "shifts:\n"
        "  - id: f5a9\n"
        "    organization_id: 672\n"
        "    role_required: RN\n"
        "    start_time: 2025-07-02T08:00:00Z\n"
        "    end_time: 2025-07-02T16:00:00Z\n"
    )
    assert run(fake, "roster", "import", str(roster)) == 0
    assert fake.calls("roster.import") == [
        {
            "caregivers": [
                {"id": "01234", "name": "Alice Ongwele", "role": "RN", "phone": "+15550001"}
            ]
        },
        {
            "shifts": [
                {
                    "id": "f5a9",
                    "organization_id": "672",
                    "role_required": "RN",
                    "start_time": "2025-07-02T08:00:00Z",
                    "end_time": "2025-07-02T16:00:00Z",
                }
            ]
        },
    ]
    assert "caregivers: created 1" in capsys.readouterr().out


def test_malformed_roster_file_exits_2(
    fake: FakeDaemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roster = tmp_path / "broken.json"
    roster.write_text('{"caregivers": [\n  {"id": "a",}\n]}\n')
    assert run(fake, "roster", "import", str(roster)) == 2
    err = capsys.readouterr().err
    assert f"{roster}:2:" in err
    assert fake.requests == []


def test_roster_file_with_wrong_shape_exits_2(
    fake: FakeDaemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    roster = tmp_path / "roster.yml"
    roster.write_text("caregivers:\n  - just a string\n")
    assert run(fake, "roster", "import", str(roster)) == 2
    assert "caregivers[0]: expected a mapping" in capsys.readouterr().err
    assert fake.requests == []


def test_missing_roster_file_exits_2(
    fake: FakeDaemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(fake, "roster", "import", str(tmp_path / "nope.json")) == 2
    assert "cannot read" in capsys.readouterr().err


# --- rendering -------------------------------------------------------------------------


def test_shift_show_renders_contacts_declines_and_timeline(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["shift.show"] = SHOW_RESULT
    assert run(fake, "shift", "show", "s1") == 0
    assert fake.calls("shift.show") == [{"shift_id": "s1"}]
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "claimed_by:" in out and "cg-alice" in out
    for section in ("Contacts", "Declines", "Timeline"):
        assert section in lines
    timeline = lines[lines.index("Timeline") + 1 :]
    assert timeline[0].split() == ["TS", "KIND", "CAREGIVER", "DETAIL"]
    assert timeline[1].split() == ["2025-07-02", "07:00:00", "fanout_started", "-", "offered=2"]
    assert timeline[2].split() == [
        "2025-07-02",
        "07:03:12",
        "claimed",
        "cg-alice",
        'body="YES',
        '42"',
    ]
    assert timeline[3].split() == ["2025-07-02", "07:03:13", "closed", "-", "-"]
    # columns are aligned: every row's KIND starts where the header's does
    col = timeline[0].index("KIND")
    assert all(row[col - 2 : col] == "  " and row[col] != " " for row in timeline[1:])


def test_control_characters_from_caregivers_are_escaped(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["inbound"] = {
        "outcome": "unknown_intent",
        "shift_id": None,
        "caregiver_id": "cg-1",
        "reply": "Reply YES\x1b[2J or NO\n",
    }
    assert run(fake, "inbound", "--from", "+15550001", "--body", "maybe") == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "Reply YES\\x1b[2J or NO\\n" in out


def test_caregiver_list_prints_aligned_table(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["caregiver.list"] = {
        "caregivers": [
            {"id": "a", "name": "Alice Ongwele", "role": "RN", "phone": "+15550001"},
            {"id": "bbbbbb", "name": "Wei Yan", "role": "LPN", "phone": "+15550002"},
        ]
    }
    assert run(fake, "caregiver", "list", "--role", "RN") == 0
    assert fake.calls("caregiver.list") == [{"role": "RN"}]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "NAME", "ROLE", "PHONE"]
    assert (
        len(
            {
                line.index(phone)
                for line, phone in zip(lines, ["PHONE", "+15550001", "+15550002"], strict=True)
            }
        )
        == 1
    )


def test_fanout_prints_offered_and_escalation(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["fanout"] = {
        "shift_id": "s1",
        "status": "started",
        "offered": 3,
        "escalate_at": "2025-07-02T07:10:00Z",
    }
    assert run(fake, "fanout", "s1") == 0
    assert capsys.readouterr().out.strip() == (
        "fanout started: 3 offered, escalates at 2025-07-02 07:10:00"
    )


def test_inbound_sends_all_given_fields_and_prints_outcome_and_reply(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["inbound"] = {
        "outcome": "claimed",
        "shift_id": "s1",
        "caregiver_id": "cg-1",
        "reply": "You have the shift.",
    }
    code = run(
        fake,
        "inbound",
        "--from",
        "+15550001",
        "--body",
        "YES 42",
        "--channel",
        "voice",
        "--provider-id",
        "SM1",
        "--shift",
        "s1",
    )
    assert code == 0
    assert fake.calls("inbound") == [
        {
            "from": "+15550001",
            "body": "YES 42",
            "channel": "voice",
            "provider_message_id": "SM1",
            "shift_id": "s1",
        }
    ]
    out = capsys.readouterr().out
    assert "claimed" in out and "You have the shift." in out


@pytest.mark.parametrize("command", ["fanout", "cancel", "unassign"])
def test_a_shift_command_sends_its_request_id_only_when_given(
    fake: FakeDaemon, command: str
) -> None:
    fake.script[command] = {"shift_id": "s1", "status": "cancelled", "offered": 0}
    run(fake, command, "s1", "--request-id", "retry-key-1")
    run(fake, command, "s1")
    assert fake.calls(command) == [
        {"shift_id": "s1", "request_id": "retry-key-1"},
        {"shift_id": "s1"},
    ]


def test_shift_add_sends_arguments(fake: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    fake.script["shift.add"] = {"shift": {"id": "s9", "state": "open"}}
    assert (
        run(
            fake,
            "shift",
            "add",
            "--role",
            "RN",
            "--start",
            "2025-07-02T08:00:00Z",
            "--end",
            "2025-07-02T16:00:00Z",
            "--org",
            "o1",
            "--id",
            "s9",
        )
        == 0
    )
    assert fake.calls("shift.add") == [
        {
            "role_required": "RN",
            "start_time": "2025-07-02T08:00:00Z",
            "end_time": "2025-07-02T16:00:00Z",
            "organization_id": "o1",
            "id": "s9",
        }
    ]
    assert "s9" in capsys.readouterr().out


# --- unassign, cancel and fanout answers ---------------------------------------------

HOLDER_TOLD = "Sunrise Care: a coordinator has taken you off the RN shift Wed Jul 2."


def unassigned(status: str, reply: str | None = HOLDER_TOLD) -> dict[str, Any]:
    return {"shift_id": "s1", "status": status, "reply": reply}


def test_unassign_sends_the_shift_and_prints_that_it_is_offered_again(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["unassign"] = unassigned("released")
    assert run(fake, "unassign", "s1") == 0
    assert fake.calls("unassign") == [{"shift_id": "s1"}]
    assert capsys.readouterr().out.splitlines() == [
        "shift s1 unassigned; offering it again",
        f"holder told: {HOLDER_TOLD}",
    ]


def test_unassign_too_late_to_offer_again_prints_that_the_shift_is_unfilled(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["unassign"] = unassigned("released_unfilled")
    assert run(fake, "unassign", "s1") == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "shift s1 unassigned; too late to offer it again, so it is unfilled"
        " (the coordinator is told)"
    )


def test_unassign_of_a_shift_nobody_holds_prints_so_and_exits_0(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["unassign"] = unassigned("not_claimed", reply=None)
    assert run(fake, "unassign", "s1") == 0
    assert capsys.readouterr().out == "shift s1 is not filled; nobody to unassign\n"


def test_unassign_json_prints_the_raw_answer(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["unassign"] = unassigned("released")
    assert run(fake, "--json", "unassign", "s1") == 0
    assert json.loads(capsys.readouterr().out) == unassigned("released")


def test_unassign_of_an_unknown_shift_exits_3(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["unassign"] = {"error": {"code": "not_found", "message": "no shift 'nope'"}}
    assert run(fake, "unassign", "nope") == 3
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip() == "error: not_found: no shift 'nope'"


def test_cancel_of_an_unfilled_shift_says_there_is_nothing_to_cancel(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["cancel"] = {"shift_id": "s1", "status": "unfilled"}
    assert run(fake, "cancel", "s1") == 0
    assert capsys.readouterr().out.strip() == (
        "shift s1 already went unfilled (offers closed); nothing to cancel"
    )


def test_fanout_too_late_says_offers_have_closed(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["fanout"] = {"shift_id": "s1", "status": "too_late", "offered": 0}
    assert run(fake, "fanout", "s1") == 0
    assert capsys.readouterr().out.strip() == (
        "offers for shift s1 have closed: it starts within the lead time or has started"
    )


def test_fanout_of_an_unfilled_shift_says_so(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["fanout"] = {"shift_id": "s1", "status": "unfilled", "offered": 0}
    assert run(fake, "fanout", "s1") == 0
    assert capsys.readouterr().out.strip() == "shift s1 went unfilled (offers closed); no fanout"


def test_shift_list_accepts_the_unfilled_state(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["shift.list"] = {"shifts": [{"id": "s1", "state": "unfilled"}]}
    assert run(fake, "shift", "list", "--state", "unfilled") == 0
    assert fake.calls("shift.list") == [{"state": "unfilled"}]
    assert capsys.readouterr().out.splitlines()[1].split()[:2] == ["s1", "unfilled"]


def _timeline_row(kind: str, caregiver: str | None, detail: dict[str, Any]) -> dict[str, Any]:
    return {"ts": "2025-07-02T07:00:00Z", "kind": kind, "caregiver_id": caregiver, "detail": detail}


def test_shift_show_describes_waves_releases_and_unfilled_shifts_in_words(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    wave = {"step": 1, "round": 0, "channel": "voice", "audience": "offered", "tags": []}
    timeline = [
        _timeline_row("fanout_started", None, {"candidates": 5, "expires_at": "2025-07-02T08Z"}),
        _timeline_row("wave_held", None, {"step": 1, "until": "2025-07-02T07:00:00Z"}),
        _timeline_row("escalated", None, {**wave, "contacted": 4, "newly_offered": 0}),
        _timeline_row(
            "wave",
            None,
            {**wave, "step": 2, "round": 1, "channel": "sms", "audience": "all"}
            | {"tags": ["night", "peds"], "contacted": 2, "newly_offered": 2},
        ),
        _timeline_row("released", "cg-2", {"by": "coordinator", "reopened": True}),
        _timeline_row("released", "cg-3", {"by": "caregiver", "reopened": False}),
        _timeline_row("unfilled", None, {"contacted": 5, "withdrawn": 3, "coordinator_told": 1}),
        _timeline_row("cancelled", None, {"withdrawn": 1, "holder_told": True}),
    ]
    fake.script["shift.show"] = {"shift": {**SHOW_RESULT["shift"], "timeline": timeline}}
    assert run(fake, "shift", "show", "s1") == 0
    lines = capsys.readouterr().out.splitlines()
    rows = lines[lines.index("Timeline") + 2 :]
    details = [row.split(None, 4)[4] for row in rows]
    assert details == [
        "5 candidates, offers close at 2025-07-02T08Z",
        "step 1 held for quiet hours until 2025-07-02 07:00:00",
        "step 1: voice to those offered already, 4 contacted (0 newly offered)",
        "step 2 round 1: sms to everyone with the role tagged night, peds, 2 contacted"
        " (2 newly offered)",
        "by the coordinator; offered again",
        "by the caregiver; too late to offer again",
        "offers closed: 5 caregivers contacted, 3 pending offers withdrawn, coordinator told",
        "1 pending message withdrawn; holder told",
    ]


# --- the client's bounds ---------------------------------------------------------------


def test_client_reads_a_response_larger_than_one_recv(fake: FakeDaemon) -> None:
    shifts = [{"id": f"s{i}", "state": "open", "note": "x" * 200} for i in range(2000)]
    fake.script["shift.list"] = {"shifts": shifts}
    with ControlClient(fake.path, timeout=IO_TIMEOUT) as client:
        assert client.call("shift.list")["shifts"] == shifts
        fake.script["ping"] = {"pong": True}
        assert client.call("ping") == {"pong": True}  # same connection, next request


def test_client_raises_remote_error_with_code(fake: FakeDaemon) -> None:
    fake.script["fanout"] = {"error": {"code": "shutting_down", "message": "bye"}}
    with ControlClient(fake.path, timeout=IO_TIMEOUT) as client, pytest.raises(RemoteError) as e:
        client.call("fanout", {"shift_id": "s1"})
    assert (e.value.code, e.value.message) == ("shutting_down", "bye")


def test_client_connect_error_says_why(sock_path: str) -> None:
    with pytest.raises(ConnectError) as e:
        ControlClient(sock_path, timeout=IO_TIMEOUT).connect()
    assert e.value.reason == "no such file"


def test_daemon_closing_without_answer_exits_76(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.script["ping"] = CLOSE
    assert run(fake, "ping") == 76
    assert "closed the connection without answering" in capsys.readouterr().err


def test_silent_daemon_times_out(fake: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    fake.script["ping"] = SILENT
    assert main(["--socket", fake.path, "--timeout", "0.2", "ping"]) == 76
    assert "no answer from shiftd within 0.2s" in capsys.readouterr().err


def test_oversized_request_is_refused_before_sending(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(fake, "inbound", "--from", "+1555", "--body", "x" * 70_000) == 2
    assert "nothing was sent" in capsys.readouterr().err
    assert fake.requests == []


def test_user_add_sends_a_scrypt_hash_never_the_password(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake.script["user.add"] = {"name": "dana", "result": "created"}
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery\n"))
    assert run(fake, "user", "add", "dana", "--password-stdin") == 0
    sent = fake.calls("user.add")[0]
    assert sent["name"] == "dana" and sent["password_hash"].startswith("scrypt$32768$8$1$")
    assert "correct horse" not in json.dumps(fake.requests)
    assert verify("correct horse battery", sent["password_hash"])
    assert capsys.readouterr().out == "coordinator dana created\n"


def test_user_add_refuses_a_short_password_and_sends_nothing(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))
    assert run(fake, "user", "add", "dana", "--password-stdin") == 2
    assert "at least 12 characters" in capsys.readouterr().err
    assert fake.requests == []


def test_user_remove_and_list(fake: FakeDaemon, capsys: pytest.CaptureFixture[str]) -> None:
    fake.script["user.remove"] = {"name": "dana", "result": "removed"}
    fake.script["user.list"] = {"users": []}
    assert run(fake, "user", "remove", "dana") == 0
    assert run(fake, "user", "list") == 0
    out = capsys.readouterr().out
    assert "coordinator dana removed" in out and "shiftctl user add NAME" in out


# ---- export ---------------------------------------------------------------------------------


PAGES = [
    {"rows": [{"ts": "t1", "direction": "out", "id": 1, "body": "a, b"}], "next": ["t1", "out", 1]},
    {"rows": [{"ts": "t2", "direction": "in", "id": 1, "body": "yes"}], "next": None},
]


def test_shiftctl_export_pages_through_and_writes_csv(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    pages = iter(PAGES)
    fake.script["export"] = lambda args: next(pages)
    assert main(["--socket", fake.path, "export", "messages", "--since", "7d"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["ts"], r["direction"], r["body"]) for r in rows] == [
        ("t1", "out", "a, b"),
        ("t2", "in", "yes"),
    ]
    calls = fake.calls("export")
    assert calls[0] == {"kind": "messages", "since": "7d", "limit": 1000}
    assert calls[1]["after"] == ["t1", "out", 1]


def test_shiftctl_export_writes_json_lines(
    fake: FakeDaemon, capsys: pytest.CaptureFixture[str]
) -> None:
    pages = iter(PAGES)
    fake.script["export"] = lambda args: next(pages)
    assert main(["--socket", fake.path, "export", "messages", "--format", "jsonl"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["body"] for line in lines] == ["a, b", "yes"]
