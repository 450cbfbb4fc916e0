"""The one wall clock: derived from Trio's clock, so it follows MockClock exactly."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import trio
import trio.testing

from shiftd.clock import Clock, iso, parse_iso
from shiftd.testing.engine import EPOCH


async def test_now_starts_at_the_epoch_and_follows_the_mock_clock_exactly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clock = Clock(EPOCH)
    assert clock.now() == EPOCH
    await trio.sleep(600)
    assert clock.now() == EPOCH + timedelta(minutes=10)
    autojump_clock.jump(3600)
    assert clock.now() == EPOCH + timedelta(minutes=70)


async def test_deadline_is_the_trio_time_at_which_now_reaches_an_instant(
    autojump_clock: trio.testing.MockClock,
) -> None:
    clock = Clock(EPOCH)
    assert clock.deadline(clock.now()) == trio.current_time()
    target = EPOCH + timedelta(minutes=9, seconds=30)
    await trio.sleep_until(clock.deadline(target))
    assert clock.now() == target
    assert clock.deadline(EPOCH) < trio.current_time()  # a past instant: an expired deadline


async def test_the_default_epoch_is_the_current_utc_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    before = datetime.now(UTC)
    now = Clock().now()
    assert now.tzinfo is not None
    assert before <= now <= datetime.now(UTC)


async def test_a_naive_epoch_is_refused(autojump_clock: trio.testing.MockClock) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Clock(datetime(2025, 7, 1, 14, 0))


def test_iso_is_utc_with_a_z_and_parse_iso_inverts_it() -> None:
    at = datetime(2025, 7, 2, 8, 0, 0, 123456, tzinfo=UTC)
    assert iso(at) == "2025-07-02T08:00:00.123456Z"
    assert parse_iso(iso(at)) == at
    assert parse_iso("2025-07-02T08:00:00Z") == datetime(2025, 7, 2, 8, tzinfo=UTC)


def test_iso_converts_other_offsets_to_utc() -> None:
    new_york = timezone(timedelta(hours=-4))
    assert iso(datetime(2025, 7, 2, 4, 0, tzinfo=new_york)) == "2025-07-02T08:00:00.000000Z"
    parsed = parse_iso("2025-07-02T04:00:00-04:00")
    assert parsed == datetime(2025, 7, 2, 8, tzinfo=UTC)
    assert parsed is not None
    assert parsed.utcoffset() == timedelta(0)


def test_iso_text_sorts_in_time_order() -> None:
    # The store compares timestamps as text (`next_attempt_at <= ?`): fixed width makes that
    # the same as comparing instants.
    instants = [EPOCH + timedelta(microseconds=n) for n in (0, 1, 999_999, 1_000_000)]
    assert sorted(iso(t) for t in reversed(instants)) == [iso(t) for t in instants]


def test_none_passes_through() -> None:
    assert iso(None) is None
    assert parse_iso(None) is None
