"""Policies in the configuration: what check-config refuses (with file:line), how steps
expand into waves, how organizations inherit, and when quiet hours hold a wave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shiftd.config import ConfigError, parse_config
from shiftd.models import Channel
from shiftd.shifts.organizations import Organizations
from shiftd.shifts.policy import QuietHours, dump_plan, load_plan

NY = ZoneInfo("America/New_York")


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "shiftd.yaml")
    return caught.value.problems


def test_steps_out_of_order_are_refused_at_the_offending_step() -> None:
    text = """\
organizations:
  acme:
    policy:
      - {at: "5m", channel: sms}
      - {at: "1m", channel: voice}
"""
    assert problems(text) == [
        "shiftd.yaml:5: organizations.acme.policy.1.at: steps must be in order: 1m comes after 5m"
    ]


def test_an_unknown_channel_is_refused_with_its_line() -> None:
    text = """\
organizations:
  acme:
    policy:
      - {at: "0s", channel: fax}
"""
    [problem] = problems(text)
    assert problem.startswith("shiftd.yaml:4: organizations.acme.policy.0.channel: ")
    assert "'sms' or 'voice'" in problem


def test_a_tag_nobody_declared_is_refused_naming_the_declared_ones() -> None:
    text = """\
caregiver_tags: [preferred]
organizations:
  default:
    policy:
      - {at: "0s", channel: sms, tags: [prefered]}
"""
    assert problems(text) == [
        "shiftd.yaml:5: organizations.default.policy.0.tags: unknown tag 'prefered'"
        " (caregiver_tags: preferred)"
    ]


def test_a_first_step_for_the_already_offered_is_refused() -> None:
    text = """\
organizations:
  acme:
    policy:
      - {at: "0s", channel: voice, audience: offered}
"""
    [problem] = problems(text)
    assert problem.startswith("shiftd.yaml:4: organizations.acme.policy.0.audience: ")


def test_an_unquoted_quiet_hour_is_refused_with_the_yaml_trap_explained() -> None:
    text = """\
organizations:
  acme:
    quiet_hours: {start: 21:00, end: "07:00"}
"""
    [problem] = problems(text)
    assert problem.startswith("shiftd.yaml:3: organizations.acme.quiet_hours.start: ")
    assert "1260" in problem


def test_an_unknown_organization_key_lists_the_allowed_ones() -> None:
    [problem] = problems("organizations:\n  acme:\n    polcy: []\n")
    assert problem.startswith("shiftd.yaml:3: organizations.acme.polcy: unknown key (allowed: ")
    assert "policy" in problem


def test_repeats_expand_into_later_waves_in_time_order() -> None:
    config = parse_config(
        """\
organizations:
  acme:
    policy:
      - {at: "0s", channel: sms}
      - {at: "10m", channel: voice, audience: offered, repeat: {every: "10m", times: 2}}
      - {at: "15m", channel: sms}
""",
        "shiftd.yaml",
    )
    waves = Organizations(config).get("acme").waves

    assert [(w.offset.total_seconds() / 60, w.channel, w.step, w.round) for w in waves] == [
        (0, Channel.SMS, 0, 0),
        (10, Channel.VOICE, 1, 0),
        (15, Channel.SMS, 2, 0),
        (20, Channel.VOICE, 1, 1),
        (30, Channel.VOICE, 1, 2),
    ]
    assert load_plan(dump_plan(waves)) == waves


def test_an_organization_inherits_what_it_leaves_out_from_default() -> None:
    config = parse_config(
        """\
agency_name: "Sunrise Care"
escalation: {delay: "7m"}
organizations:
  default:
    travel_buffer: "30m"
    coordinator: {phone: "+15550100999"}
  acme:
    name: "Acme Home Health"
""",
        "shiftd.yaml",
    )
    organizations = Organizations(config)
    acme, unknown = organizations.get("acme"), organizations.get("not-configured")

    assert acme.messages.agency == "Acme Home Health"
    assert acme.travel_buffer == timedelta(minutes=30)
    assert acme.coordinator is not None and acme.coordinator.phone == "+15550100999"
    assert unknown.messages.agency == "Sunrise Care"
    assert [w.offset for w in unknown.waves] == [timedelta(0), timedelta(minutes=7)]


def night(channels: frozenset[Channel] = frozenset({Channel.VOICE})) -> QuietHours:
    return QuietHours(
        datetime.strptime("21:00", "%H:%M").time(),
        datetime.strptime("07:00", "%H:%M").time(),
        channels,
        timedelta(hours=3),
        NY,
    )


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 7, day, hour, minute, tzinfo=NY).astimezone(UTC)


def test_quiet_hours_spanning_midnight_hold_a_call_until_the_morning() -> None:
    far = local(5, 12)
    assert night().hold_until(Channel.VOICE, local(1, 21, 5), far) == local(2, 7)
    assert night().hold_until(Channel.VOICE, local(2, 3, 30), far) == local(2, 7)
    assert night().hold_until(Channel.VOICE, local(2, 7), far) is None
    assert night().hold_until(Channel.VOICE, local(1, 20, 59), far) is None


def test_quiet_hours_leave_other_channels_and_imminent_shifts_alone() -> None:
    assert night().hold_until(Channel.SMS, local(1, 23), local(5, 12)) is None
    assert night().hold_until(Channel.VOICE, local(1, 23), local(2, 1, 30)) is None
