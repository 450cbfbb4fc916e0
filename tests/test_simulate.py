"""`shiftd simulate`: the real engine replays shifts under each policy on the virtual clock."""

from __future__ import annotations

import io
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog

from shiftd import demo
from shiftd.cli import main
from shiftd.config import Config
from shiftd.logs import configure_logging
from shiftd.models import Caregiver, Channel, Shift
from shiftd.outbox.sender import log as sender_log
from shiftd.shifts.roles import Roles
from shiftd.simulate import Parameters, Policy, SimShift, compare
from shiftd.simulate.behaviour import ACCEPT, DECLINE, Learned, Reply
from shiftd.simulate.command import _Progress
from shiftd.simulate.inputs import (
    InputError,
    load_shifts_csv,
    read_history,
    roles_without_caregivers,
)
from shiftd.simulate.report import page
from shiftd.simulate.runner import Scripted, run_once

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
MONDAY = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
ROSTER = [
    Caregiver(id=f"cg-{i:02d}", name=f"Nurse {i}", role="RN", phone=f"+1555030{i:04d}")
    for i in range(12)
]
# Texts are rarely answered, calls often: when the calls start decides the time to fill.
SLOW_TEXTERS = Parameters(answer_sms=0.1, answer_voice=0.8, accept=0.5)


def shifts(count: int) -> list[SimShift]:
    out = []
    for i in range(count):
        start = MONDAY + timedelta(days=1 + i // 4, hours=6 * (i % 4))
        shift = Shift(
            id=f"s-{i:03d}",
            role_required="RN",
            start_time=start,
            end_time=start + timedelta(hours=8),
        )
        out.append(SimShift(shift, start - timedelta(hours=20)))
    return out


def calls_at(delay: str, name: str) -> Policy:
    config = Config.model_validate(
        {
            "organizations": {
                "default": {
                    "policy": [
                        {"at": "0s", "channel": "sms"},
                        {"at": delay, "channel": "voice", "audience": "offered"},
                    ]
                }
            }
        }
    )
    return Policy(name, Path(f"{name}.yaml"), config)


def test_a_policy_that_calls_sooner_fills_sooner() -> None:
    soon, late = compare(
        [calls_at("5m", "calls-at-5m"), calls_at("45m", "calls-at-45m")],
        ROSTER,
        shifts(12),
        SLOW_TEXTERS,
        runs=1,
        seed=7,
    )
    assert soon.ttf_median_min is not None and late.ttf_median_min is not None
    assert soon.ttf_median_min < late.ttf_median_min
    assert soon.before_calls < late.before_calls  # and it calls for more of them


@pytest.mark.slow
def test_the_same_seed_gives_the_same_report() -> None:
    policies = [calls_at("10m", "a"), calls_at("20m", "b")]
    about = [("shifts", "8 test shifts")]

    def report(seed: int) -> str:
        return page(compare(policies, ROSTER, shifts(8), Parameters(), runs=1, seed=seed), about)

    first = report(3)
    assert report(3) == first
    assert report(4) != first  # the seed matters: the equality above is not vacuous


_SENT = re.compile(r"^(\d\d:\d\d:\d\d)  →  (SMS |CALL) (.{15}) \[(\w+)\]")
_REPLY = re.compile(r"^(\d\d:\d\d:\d\d)  ←  (SMS |KEYS) (\S+)\s+'(.*?)'\s+⇒ (\w+)")
_FANOUT = re.compile(r"^(\d\d:\d\d:\d\d)  ·· fanout started")


def test_a_simulated_demo_morning_matches_the_demo_timeline() -> None:
    """Replay the caregivers' replies of `shiftd demo` through the simulator: the same
    messages go out at the same instants, and every reply has the same outcome."""
    out = io.StringIO()
    demo.run_demo(out=out)
    sent, replies, fanouts = [], [], []
    for line in out.getvalue().splitlines():
        if m := _SENT.match(line):
            sent.append((m[1], m[2].strip(), m[3].strip(), m[4]))
        elif m := _REPLY.match(line):
            replies.append((m[1], m[2].strip(), m[3], m[4], m[5]))
        elif m := _FANOUT.match(line):
            fanouts.append(m[1])
    assert len(fanouts) == 2 and len(replies) >= 8 and len(sent) >= 20

    def instant(hms: str) -> datetime:
        h, m, s = map(int, hms.split(":"))
        return demo.START.replace(hour=h, minute=m, second=s)

    by_first = {c.name.split()[0]: c.id for c in demo.ROSTER}
    # Two accepts in one instant: the demo's scheduler picks the winner; the simulator
    # takes a script's messages in order, so the demo's winner goes first.
    script = [
        Scripted(instant(t), by_first[who], body, Channel.VOICE if kind == "KEYS" else Channel.SMS)
        for t, kind, who, body, _ in sorted(replies, key=lambda r: (r[0], r[4] != "claimed"))
    ]
    config = Config.model_validate(demo.SETTINGS)
    posted = [
        SimShift(demo.SHIFT, instant(fanouts[0])),
        SimShift(demo.LPN_SHIFT, instant(fanouts[1])),
    ]
    run = run_once(config, demo.ROSTER, posted, None, 0, script=script, keep_timeline=True)

    def local(at: datetime) -> str:
        return f"{at.astimezone(demo.TZ):%H:%M:%S}"

    simulated_sent = [
        (
            local(s.at),
            "SMS" if s.channel is Channel.SMS else "CALL",
            demo.NAMES[s.caregiver_id],
            s.purpose.value,
        )
        for s in run.sent
    ]
    simulated_replies = [
        (
            local(a.at),
            "KEYS" if a.channel is Channel.VOICE else "SMS",
            demo.NAMES[a.caregiver_id].split()[0],
            a.body,
            a.outcome,
        )
        for a in run.answered
    ]
    assert sorted(simulated_sent) == sorted(sent)
    assert sorted(simulated_replies) == sorted(replies)


def test_shifts_csv_errors_name_the_file_line_and_column(tmp_path: Path) -> None:
    bad = tmp_path / "month.csv"
    bad.write_text(
        "role,start,end\nRN,2026-11-03T08:00,2026-11-03T16:00\nRN,tomorrow,2026-11-03T16:00\n"
    )
    with pytest.raises(InputError, match=r"month.csv:3: start: not an ISO 8601 time"):
        load_shifts_csv(bad, UTC, timedelta(hours=24))


def test_shifts_csv_needs_its_columns(tmp_path: Path) -> None:
    bad = tmp_path / "month.csv"
    bad.write_text("role,begin,end\nRN,2026-11-03T08:00,2026-11-03T16:00\n")
    with pytest.raises(InputError, match=r"month.csv:1: missing column\(s\) start"):
        load_shifts_csv(bad, UTC, timedelta(hours=24))


def test_shifts_csv_times_without_offset_are_local_and_posted_defaults_to_the_notice(
    tmp_path: Path,
) -> None:
    from zoneinfo import ZoneInfo

    path = tmp_path / "month.csv"
    path.write_text("role,start,end,organization\nRN,2026-11-03T08:00,2026-11-03T16:00,north\n")
    (only,) = load_shifts_csv(path, ZoneInfo("America/New_York"), timedelta(hours=6))
    assert only.shift.start_time == datetime(2026, 11, 3, 13, 0, tzinfo=UTC)
    assert only.posted == datetime(2026, 11, 3, 7, 0, tzinfo=UTC)
    assert only.shift.organization_id == "north" and only.shift.id == "month-2"


def test_a_bad_policy_file_is_reported_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = tmp_path / "wrong.yaml"
    policy.write_text('organizations:\n  default:\n    policy:\n      - {at: "0s", channel: fax}\n')
    code = main(
        [
            "simulate",
            "--policy",
            str(policy),
            "--shifts",
            str(EXAMPLES / "simulate-shifts.csv"),
            "--roster",
            str(EXAMPLES / "simulate-roster.json"),
            "--runs",
            "1",
        ]
    )
    assert code == 2
    assert f"{policy}:4: organizations.default.policy.0.channel" in capsys.readouterr().err


def test_simulate_prints_the_table_and_writes_a_self_contained_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = tmp_path / "week.csv"
    csv.write_text(
        "role,start,end\n"
        + "".join(f"RN,2026-11-0{d}T08:00Z,2026-11-0{d}T16:00Z\n" for d in range(3, 8))
    )
    report = tmp_path / "report.html"
    code = main(
        [
            "simulate",
            "--policy",
            str(EXAMPLES / "policy-text-everyone.yaml"),
            "--policy",
            str(EXAMPLES / "policy-preferred-first.yaml"),
            "--shifts",
            str(csv),
            "--roster",
            str(EXAMPLES / "simulate-roster.json"),
            "--runs",
            "2",
            "--seed",
            "5",
            "--report",
            str(report),
        ]
    )
    assert code == 0
    out = capsys.readouterr()
    assert "policy-text-everyone" in out.out and "time to fill, median" in out.out
    assert out.err == ""  # no progress bar when stderr is not a terminal
    html = report.read_text()
    assert (
        html.count("<svg") == 4
        and "<script" not in html
        and "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )


class _Habitual:
    """cg-00 takes every shift two minutes after any message; cg-01 never answers; everybody
    else says no to every other message after five minutes."""

    def respond(
        self, seed: int, shift_id: str, caregiver_id: str, channel: Channel, nth: int, at: datetime
    ) -> Reply | None:
        if caregiver_id == "cg-00":
            return Reply(timedelta(minutes=2), ACCEPT[channel], channel, True)
        if caregiver_id == "cg-01" or int(shift_id[-1]) % 2:
            return None
        return Reply(timedelta(minutes=5), DECLINE[channel], channel, False)


def test_caregivers_habits_are_learned_from_the_store_history(tmp_path: Path) -> None:
    store = tmp_path / "shiftd.sqlite3"
    run_once(Config(), ROSTER, shifts(10), _Habitual(), 0, store_path=store)
    history = read_history(store)
    assert len(history.shifts) == 10 and len(history.caregivers) == len(ROSTER)
    learned = Learned(history.offers, UTC, Parameters())
    at = MONDAY
    assert learned.answer_probability("cg-00", Channel.SMS, at) > learned.answer_probability(
        "cg-02", Channel.SMS, at
    )
    assert learned.answer_probability("cg-01", Channel.SMS, at) < learned.answer_probability(
        "cg-02", Channel.SMS, at
    )
    assert learned.accept_probability("cg-00") > 0.5 > learned.accept_probability("cg-02")
    replies = [learned.respond(1, f"new-{i}", "cg-00", Channel.SMS, 0, at) for i in range(20)]
    answered = [r for r in replies if r is not None]
    assert answered and all(r.after == timedelta(minutes=2) for r in answered)


def test_simulate_replays_a_store_month_with_what_it_learned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "shiftd.sqlite3"
    run_once(Config(), ROSTER, shifts(10), _Habitual(), 0, store_path=store)
    code = main(
        [
            "simulate",
            "--policy",
            str(EXAMPLES / "policy-text-everyone.yaml"),
            "--store",
            str(store),
            "--runs",
            "1",
            "--report",
            str(tmp_path / "r.html"),
        ]
    )
    assert code == 0
    assert "learned from" in (tmp_path / "r.html").read_text()
    assert "shifts per run" in capsys.readouterr().out


def test_the_progress_bar_draws_only_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        bar = _Progress(stream, total=4)
        bar.drawn -= 1  # as if the last drawing were a second ago
        bar.tick("preferred-first", 0)
        bar.done()
    assert "[#######" in terminal.getvalue() and "preferred-first run 1" in terminal.getvalue()
    assert pipe.getvalue() == ""


def test_a_caregiver_who_left_is_not_on_the_replayed_roster(tmp_path: Path) -> None:
    store = tmp_path / "shiftd.sqlite3"
    run_once(Config(), ROSTER, shifts(2), _Habitual(), 0, store_path=store)
    with sqlite3.connect(store) as conn:  # as `shiftctl caregiver deactivate` leaves it
        conn.execute("UPDATE caregivers SET active = 0 WHERE id = 'cg-00'")
    history = read_history(store)
    assert "cg-00" not in {c.id for c in history.caregivers}
    assert "cg-00" in {o.caregiver_id for o in history.offers}


def test_after_a_run_the_engines_loggers_follow_a_new_logging_configuration() -> None:
    saved = structlog.get_config()
    try:
        configure_logging("error", "json", stream=io.StringIO())
        run_once(Config(), ROSTER, shifts(2), _Habitual(), 0)
        later = io.StringIO()
        configure_logging("info", "json", stream=later)
        sender_log.info("send.checked")
        assert '"event": "send.checked"' in later.getvalue()
    finally:
        structlog.configure(**saved)


def test_a_run_in_memory_leaves_no_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    run_once(Config(), ROSTER, shifts(2), _Habitual(), 0)
    assert list(tmp_path.iterdir()) == []


def test_a_role_spelled_otherwise_on_the_roster_is_not_reported_missing() -> None:
    at = datetime(2026, 11, 2, 14, 0, tzinfo=UTC)
    later = at + timedelta(hours=8)
    shifts = [
        SimShift(Shift(id=f"s-{role}", role_required=role, start_time=at, end_time=later), at)
        for role in ("rn", "LPN")
    ]
    nurse = Caregiver(id="cg-1", name="Nurse", role="RN ", phone="+15550001111")

    assert roles_without_caregivers(shifts, [nurse], Roles()) == ["LPN"]
