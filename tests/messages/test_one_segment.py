"""Every SMS shiftd sends is one segment, whatever the agency name, place, role, language and
code the configuration and roster allow (a property over random ones)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shiftd import limits
from shiftd.messages import LANGUAGES, NOT_ELIGIBLE_REASONS, Messages
from shiftd.messages.sms import segments
from shiftd.models import ShiftState
from shiftd.store.base import ShiftRow

_TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1
)
agencies = _TEXT.filter(str.strip).map(lambda s: s[:40])
places = st.none() | _TEXT.map(lambda s: s[: limits.MAX_LOCATION])
roles = _TEXT.map(lambda s: s[: limits.MAX_ROLE])
codes = st.integers(min_value=1, max_value=9999)
starts = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)


@st.composite
def shifts(draw: st.DrawFn) -> ShiftRow:
    start = draw(starts)
    return ShiftRow(
        id="s",
        organization_id="o",
        role_required=draw(roles),
        start_time=start,
        end_time=start + timedelta(hours=draw(st.integers(1, 48))),
        state=ShiftState.OFFERING,
        location=draw(places),
    )


def every_text(messages: Messages, shift: ShiftRow, code: int, listed: list[tuple[ShiftRow, int]]):
    yield messages.offer_sms(shift, code)
    yield messages.offer_sms(shift, code, first=True)
    yield messages.how_to_answer(shift, code)
    for render in (
        messages.confirm,
        messages.filled,
        messages.already_filled,
        messages.no_longer_available,
        messages.declined,
        messages.released,
        messages.unassigned,
        messages.shift_cancelled,
    ):
        yield render(shift)
    for reason in NOT_ELIGIBLE_REASONS:
        yield messages.not_eligible(shift, reason)
    yield messages.choose(listed)
    yield messages.unknown_code(code, listed)
    yield messages.not_offered(listed)
    yield messages.which_release(listed)
    for render_plain in (
        messages.opted_out,
        messages.opted_in,
        messages.help,
        messages.no_open_offer,
        messages.opt_out_hint,
    ):
        yield render_plain()


@settings(max_examples=150, deadline=None)
@given(
    agency=agencies,
    shift=shifts(),
    code=codes,
    language=st.sampled_from(LANGUAGES),
    offers=st.lists(st.tuples(shifts(), codes), max_size=12),
)
def test_every_text_is_one_gsm7_segment(
    agency: str,
    shift: ShiftRow,
    code: int,
    language: str,
    offers: list[tuple[ShiftRow, int]],
) -> None:
    messages = Messages(agency, UTC, language=language)

    for text in every_text(messages, shift, code, offers):
        cost = segments(text)
        assert (cost.count, cost.encoding) == (1, "GSM-7"), text


def rn_shift(location: str | None = None) -> ShiftRow:
    """An RN shift Wed Jul 2, 08:00-16:00 UTC."""
    start = datetime(2025, 7, 2, 8, tzinfo=UTC)
    end = start + timedelta(hours=8)
    return ShiftRow("s", "o", "RN", start, end, ShiftState.OFFERING, location=location)


def test_a_long_place_is_shortened_with_an_ellipsis() -> None:
    shift = rn_shift("St. Catherine of Siena Rehabilitation and Nursing Center, Bogotá")
    text = Messages("Springfield Regional Home Health Care", UTC).offer_sms(shift, 12, first=True)

    assert "(St. Catherine" in text and "...)" in text
    assert text.endswith("Reply YES 12 to take it or NO 12 to pass. Reply STOP to opt out.")
    assert segments(text).count == 1


def test_a_long_offers_list_shows_what_fits_and_how_many_more() -> None:
    shift = rn_shift()
    text = Messages("Acme", UTC).choose([(shift, n) for n in range(1, 11)])

    assert text.startswith("Acme: you have several open offers (1: RN Wed Jul 2 08:00; ")
    assert "more, reply LIST)" in text and "Reply YES 1 to take offer 1." in text
    assert segments(text).count == 1


def test_an_accented_place_is_transliterated_not_sent_in_ucs2() -> None:
    shift = rn_shift("Bogotá")
    text = Messages("Acme", UTC).offer_sms(shift, 3)

    assert "(Bogota)" in text and segments(text).encoding == "GSM-7"


@settings(deadline=None, max_examples=50)
@given(agency=agencies, shift=shifts(), language=st.sampled_from(LANGUAGES))
def test_coordinators_notices_are_gsm7_and_whole_with_their_link(
    agency: str, shift: ShiftRow, language: str
) -> None:
    # Sent to a coordinator's phone, not a caregiver's: the link must arrive whole, so a
    # notice takes the segments it needs, but never UCS-2's.
    messages = Messages(agency, UTC, language=language)
    link = f"https://shifts.example.org/board/shifts/{shift.id}"
    for notice in ("unfilled", "no_accept", "closing", "released"):
        text = messages.coordinator(notice, shift, 12, link)
        assert segments(text).encoding == "GSM-7", text
        assert text.endswith(link), text
