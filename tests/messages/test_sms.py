"""SMS segment counting: GSM-7 when every character is in GSM 03.38, UCS-2 otherwise."""

from __future__ import annotations

from shiftd.messages.sms import encoding_of, first_non_gsm7, segments


def test_160_plain_characters_fit_one_segment() -> None:
    cost = segments("a" * 160)

    assert (cost.encoding, cost.units, cost.count) == ("GSM-7", 160, 1)


def test_161_plain_characters_take_two_parts_of_153() -> None:
    assert segments("a" * 161).count == 2
    assert segments("a" * 306).count == 2
    assert segments("a" * 307).count == 3


def test_an_extension_character_counts_two_septets() -> None:
    cost = segments("€" + "a" * 158)

    assert (cost.encoding, cost.units, cost.count) == ("GSM-7", 160, 1)
    assert segments("€" + "a" * 159).count == 2


def test_every_extension_character_and_form_feed_count_two() -> None:
    assert segments("^{}\\[~]|€\f").units == 20


def test_a_part_never_ends_inside_an_escape_pair() -> None:
    # 152 septets, then "€" (2) would straddle the 153-septet boundary: it starts part 2,
    # so 306 septets (two full parts by division) need three.
    cost = segments("a" * 152 + "€" + "a" * 152)

    assert cost.units == 306
    assert cost.count == 3


def test_accented_letters_of_the_basic_set_stay_gsm7() -> None:
    assert encoding_of("José Müller, Ñoño à Genève, Ørsted") == "GSM-7"


def test_a_letter_outside_the_basic_set_forces_ucs2() -> None:
    cost = segments("Zoë")

    assert cost.encoding == "UCS-2"
    assert cost.forced_by == "ë"
    assert first_non_gsm7("Hello Zoë and Chloë") == "ë"


def test_an_emoji_is_ucs2_and_counts_two_code_units() -> None:
    cost = segments("ok 👍")

    assert (cost.encoding, cost.units, cost.forced_by) == ("UCS-2", 5, "👍")


def test_70_ucs2_units_fit_one_segment_and_71_take_two() -> None:
    assert segments("ë" * 70).count == 1
    assert segments("ë" * 71).count == 2
    assert segments("ë" * 134).count == 2
    assert segments("ë" * 135).count == 3


def test_a_surrogate_pair_is_not_split_between_parts() -> None:
    # 66 units, then an emoji (2) would straddle the 67-unit boundary: it starts part 2,
    # so 134 units (two full parts by division) need three.
    assert segments("ë" * 66 + "👍" + "ë" * 66).count == 3


def test_explain_names_encoding_segments_and_what_forces_ucs2() -> None:
    assert segments("a" * 172).explain() == "2 GSM-7 segments (one holds 160)"
    assert segments("Zoë" * 30).explain() == (
        "2 UCS-2 segments (one holds 70; 'ë' is not in the GSM-7 alphabet)"
    )
