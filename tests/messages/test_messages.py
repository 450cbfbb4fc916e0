"""Caregiver texts: built-in defaults, per-organization templates, and what they may say."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from shiftd.messages import Messages, TemplateError, check_templates, template_warnings
from shiftd.messages.sms import segments
from shiftd.models import ShiftState
from shiftd.store.base import ShiftRow

CHICAGO = ZoneInfo("America/Chicago")
SHIFT = ShiftRow(
    id="shift-1",
    organization_id="acme",
    role_required="RN",
    start_time=datetime(2025, 7, 2, 13, 0, tzinfo=UTC),  # 08:00 in Chicago
    end_time=datetime(2025, 7, 2, 21, 0, tzinfo=UTC),
    state=ShiftState.OFFERING,
)
AT_OAK = replace(SHIFT, location="Oak Park")


def test_default_offer_text_is_unchanged() -> None:
    text = Messages("Acme", CHICAGO).offer_sms(SHIFT, 7)

    assert text == (
        "Acme: open RN shift Wed Jul 2, 08:00-16:00. Reply YES 7 to take it or NO 7 to pass."
    )


def test_default_offers_name_the_place_when_the_shift_has_one() -> None:
    messages = Messages("Acme", CHICAGO)

    assert messages.offer_sms(AT_OAK, 7).startswith(
        "Acme: open RN shift Wed Jul 2, 08:00-16:00 (Oak Park). Reply YES 7"
    )
    assert "on Wed Jul 2, 08:00-16:00 (Oak Park). Press 1" in messages.offer_voice(AT_OAK)


def test_a_template_replaces_its_default_and_other_texts_keep_theirs() -> None:
    messages = Messages(
        "Acme",
        CHICAGO,
        {"offer_sms": "{agency}: {role} {date} {start}-{end} in {place}? YES {code} / NO {code}"},
    )

    assert (
        messages.offer_sms(AT_OAK, 12)
        == "Acme: RN Wed Jul 2 08:00-16:00 in Oak Park? YES 12 / NO 12"
    )
    assert (
        messages.confirm(SHIFT) == "Acme: confirmed! The RN shift Wed Jul 2, 08:00-16:00 is yours."
    )


def test_a_field_for_a_clients_name_is_rejected_by_name() -> None:
    with pytest.raises(TemplateError, match="unknown field 'client_name'") as info:
        Messages("Acme", CHICAGO, {"confirm": "See {client_name} at {start}"})

    assert info.value.name == "confirm"


def test_code_is_rejected_in_a_template_that_has_no_code() -> None:
    with pytest.raises(ValueError, match=r"confirm: unknown field 'code' \(only in how_to_answer"):
        check_templates({"confirm": "{agency}: yours ({code})"})


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{role.__class__}", "no attribute or index access"),
        ("{role[0]}", "no attribute or index access"),
        ("{role!r}", "conversions and format specs are not allowed"),
        ("{role:>40}", "conversions and format specs are not allowed"),
        ("{}", "empty or numbered field"),
        ("{0}", "empty or numbered field"),
        ("Reply {role", "malformed braces"),
        ("Reply } now", "malformed braces"),
        ("   ", "must be non-empty text"),
    ],
)
def test_fields_must_be_plain_names(text: str, problem: str) -> None:
    with pytest.raises(TemplateError, match=problem):
        check_templates({"filled": text})


def test_literal_braces_are_written_doubled() -> None:
    messages = Messages("Acme", CHICAGO, {"opted_in": "{{{agency}}} says hi"})

    assert messages.opted_in() == "{Acme} says hi"


def test_an_unknown_template_name_is_rejected_with_a_suggestion() -> None:
    with pytest.raises(
        TemplateError, match="unknown template 'ofer_sms' \\(did you mean 'offer_sms'"
    ):
        check_templates({"ofer_sms": "{agency}"})


def test_shiftless_texts_offer_only_the_agency() -> None:
    with pytest.raises(TemplateError, match="unknown field 'role'"):
        check_templates({"opted_out": "{agency}: no more {role} shifts"})


def test_help_text_is_sent_as_written_and_wins_over_the_default() -> None:
    assert Messages("Acme", UTC).help() == (
        "Acme shift offers: reply YES to take a shift, NO to pass, with the number from our "
        "text if you have several. Reply STOP to opt out."
    )
    assert Messages("Acme", UTC, help_text="Call 555-0100 {not a field}").help() == (
        "Call 555-0100 {not a field}"
    )


def test_opt_out_confirmation_fits_one_segment_with_the_longest_agency_name() -> None:
    text = Messages("A" * 40, UTC).opted_out()

    assert text.startswith("You're unsubscribed from AAAA")
    assert segments(text).count == 1


def test_released_thanks_the_caregiver() -> None:
    assert Messages("Acme", CHICAGO).released(SHIFT) == (
        "Acme: you are released from the RN shift Wed Jul 2, 08:00-16:00. Thank you for telling us."
    )


def test_not_eligible_explains_an_overlap() -> None:
    text = Messages("Acme", CHICAGO).not_eligible(SHIFT, "overlap")

    assert "you already hold a shift at that time" in text


def test_unfilled_tells_the_coordinator_role_window_place_and_count() -> None:
    messages = Messages("Acme", CHICAGO)

    assert messages.unfilled(AT_OAK, 12) == (
        f"Acme: the RN shift Wed Jul 2, 08:00-16:00 (Oak Park) went unfilled; "
        f"12 caregivers contacted. Shift {AT_OAK.id}."
    )
    assert messages.unfilled(SHIFT, 1).endswith(
        f"went unfilled; 1 caregiver contacted. Shift {SHIFT.id}."
    )


def test_every_coordinator_notice_names_the_shift_role_local_start_and_its_link() -> None:
    messages = Messages("Acme", CHICAGO)
    link = f"https://shifts.example.org/board/shifts/{SHIFT.id}"
    for notice in ("unfilled", "no_accept", "closing", "released"):
        text = messages.coordinator(notice, SHIFT, 3, link)
        assert "RN shift Wed Jul 2, 08:00-16:00" in text, notice
        assert text.endswith(f"Shift {SHIFT.id}: {link}"), notice


def test_a_template_too_long_warns_with_characters_encoding_and_segments() -> None:
    # The worst-case window is "Wed Sep 24, 23:00-07:00": the prefix renders to 42 characters.
    too_long = "{agency}: open shift {window}. " + "x" * 130

    warnings = template_warnings({"offer_sms": too_long}, "Acme")

    assert warnings == [
        (
            "offer_sms",
            "renders to 172 characters: 2 GSM-7 segments (one holds 160); "
            "sent cut to 137 characters (its end is lost)",
        )
    ]


def test_a_template_that_fits_one_segment_with_the_opt_out_hint_gives_no_warning() -> None:
    just_fits = "{agency}: open shift {window}. " + "x" * 95  # 42 + 95 + " Reply STOP…" = 160

    assert template_warnings({"offer_sms": just_fits}, "Acme") == []


def test_a_template_with_an_emoji_is_sent_in_gsm7_as_one_segment() -> None:
    messages = Messages("Acme", CHICAGO, {"confirm": "{agency}: the {role} shift is yours 🎉"})

    text = messages.confirm(SHIFT)

    assert text == "Acme: the RN shift is yours ?"
    assert segments(text).encoding == "GSM-7"


@pytest.mark.parametrize("language", ["en", "es"])
def test_built_in_texts_fit_one_segment_at_the_longest_role_and_place(language: str) -> None:
    assert template_warnings({}, "Sunrise Care", language) == []


def test_the_longest_agency_name_is_shortened_and_check_config_says_so() -> None:
    warnings = dict(template_warnings({}, "A" * 40))

    assert "sent with the agency name shortened to 'AAAAAAAA" in warnings["offer_sms"]


def test_a_spoken_template_is_not_held_to_the_sms_limit() -> None:
    assert template_warnings({"offer_voice": "{agency} " + "x" * 400}, "Acme") == []


def test_an_agency_name_that_needs_ucs2_is_transliterated_to_gsm7() -> None:
    text = Messages("Soins à domicile Côte-Nord", CHICAGO).offer_sms(SHIFT, 7)

    assert text.startswith("Soins à domicile Cote-Nord: open RN shift")
    assert segments(text).encoding == "GSM-7"
