"""The default classifier: what a caregiver's free-text reply (or keypad press) means."""

from __future__ import annotations

import pytest

from shiftd.inbound.intent import (
    KEPT,
    KEPT_LENGTH,
    Classified,
    DefaultClassifier,
    Intent,
    load_classifier,
)
from shiftd.models import Channel

classify = DefaultClassifier().classify


@pytest.mark.parametrize(
    "body", ["yes", "YES", "Yes!", "y", "Y", "accept", "  yes please ", "yes."]
)
def test_yes_words_accept(body: str) -> None:
    assert classify(body, Channel.SMS) == Classified(Intent.ACCEPT)


@pytest.mark.parametrize("body", ["no", " no thanks", "NO", "n", "N", "decline", "No, sorry"])
def test_no_words_decline(body: str) -> None:
    assert classify(body, Channel.SMS) == Classified(Intent.DECLINE)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("YES 12", Classified(Intent.ACCEPT, 12)),
        ("yes12", Classified(Intent.ACCEPT, 12)),
        ("Y #7", Classified(Intent.ACCEPT, 7)),
        ("no 3", Classified(Intent.DECLINE, 3)),
        ("NO 42 thanks", Classified(Intent.DECLINE, 42)),
    ],
)
def test_number_after_the_answer_is_the_offer_code(body: str, expected: Classified) -> None:
    assert classify(body, Channel.SMS) == expected


def test_a_number_too_long_for_a_code_is_not_one() -> None:
    assert classify("yes 5551234", Channel.SMS) == Classified(Intent.ACCEPT)


def test_a_number_not_right_after_the_answer_makes_an_accept_unclear() -> None:
    """It may be a time ("I can do 12") or a part of the shift: asked back, never claimed."""
    assert classify("yes I can do 12", Channel.SMS) == Classified(Intent.UNKNOWN)


@pytest.mark.parametrize("body", ["maybe?", "", "   ", "?!", "yesterday", "ok", "who is this"])
def test_anything_else_is_unknown(body: str) -> None:
    assert classify(body, Channel.SMS) == Classified(Intent.UNKNOWN)


def test_keypad_1_on_a_call_accepts() -> None:
    assert classify("1", Channel.VOICE) == Classified(Intent.ACCEPT)


def test_keypad_2_on_a_call_declines() -> None:
    assert classify("2", Channel.VOICE) == Classified(Intent.DECLINE)


@pytest.mark.parametrize("body", ["3", "12", "#"])
def test_other_keys_on_a_call_are_unknown(body: str) -> None:
    assert classify(body, Channel.VOICE) == Classified(Intent.UNKNOWN)


@pytest.mark.parametrize("body", ["1", "2"])
def test_a_bare_digit_in_a_text_is_not_an_answer(body: str) -> None:
    assert classify(body, Channel.SMS) == Classified(Intent.UNKNOWN)


def test_words_work_on_a_call_too() -> None:
    assert classify("yes", Channel.VOICE) == Classified(Intent.ACCEPT)


def test_very_long_body_is_classified_by_its_start() -> None:
    assert classify("yes " + "x" * 100_000, Channel.SMS) == Classified(Intent.ACCEPT)


def test_load_classifier_by_import_path() -> None:
    assert isinstance(load_classifier("shiftd.inbound.intent:DefaultClassifier"), DefaultClassifier)


@pytest.mark.parametrize(
    "path", ["shiftd.nope:X", "shiftd.inbound.intent:Nope", "shiftd.inbound.intent:Intent"]
)
def test_load_classifier_names_the_problem(path: str) -> None:
    with pytest.raises(ValueError, match="classifier"):
        load_classifier(path)


@pytest.mark.parametrize(
    "body",
    [
        "Yes if I can leave at 3",
        "yes but I'll be an hour late",
        "Yes only until 2",
        "Yes unless my sitter cancels",
        "Sí pero llego tarde",
        "Si me dejan salir a las 3",
    ],
)
def test_a_conditional_accept_is_asked_back(body: str) -> None:
    assert classify(body, Channel.SMS).intent is Intent.UNKNOWN


@pytest.mark.parametrize("body", ["yes? what is this", "Yes?", "¿Dónde es?", "what time"])
def test_a_question_is_never_an_answer(body: str) -> None:
    assert classify(body, Channel.SMS).intent is Intent.UNKNOWN


@pytest.mark.parametrize("body", ["Yes I can't", "yes no", "No, sí puedo", "no wait yes"])
def test_a_contradictory_reply_is_asked_back(body: str) -> None:
    assert classify(body, Channel.SMS).intent is Intent.UNKNOWN


@pytest.mark.parametrize("body", ["Absolutely not", "of course not", "Claro que no"])
def test_a_negated_accept_word_declines(body: str) -> None:
    assert classify(body, Channel.SMS).intent is Intent.DECLINE


@pytest.mark.parametrize("body", ["Sure not", "not sure", "I don't think I can, let me check"])
def test_a_negation_never_lets_an_accept_through(body: str) -> None:
    assert classify(body, Channel.SMS).intent is not Intent.ACCEPT


def test_yall_is_not_a_y() -> None:
    assert classify("Y'all I can't today, sorry", Channel.SMS).intent is Intent.DECLINE


@pytest.mark.parametrize("body", ["No problem, I'll take it", "No worries I can do it"])
def test_no_as_a_courtesy_does_not_decline(body: str) -> None:
    assert classify(body, Channel.SMS).intent is Intent.ACCEPT


def test_no_se_is_i_do_not_know() -> None:
    assert classify("No sé", Channel.SMS).intent is Intent.UNKNOWN


@pytest.mark.parametrize(("body", "intent"), [("👍", Intent.ACCEPT), ("👎🏾", Intent.DECLINE)])
def test_thumbs_answer(body: str, intent: Intent) -> None:
    assert classify(body, Channel.SMS).intent is intent


@pytest.mark.parametrize(
    ("body", "intent"),
    [("accpet", Intent.ACCEPT), ("declien", Intent.DECLINE), ("yesss", Intent.ACCEPT)],
)
def test_a_slip_in_a_keyword_is_forgiven(body: str, intent: Intent) -> None:
    assert classify(body, Channel.SMS).intent is intent


def test_except_is_not_a_typo_of_accept() -> None:
    assert classify("except", Channel.SMS).intent is Intent.UNKNOWN


@pytest.mark.parametrize(
    ("body", "expected"),
    [("Sí 3", Classified(Intent.ACCEPT, 3)), ("no puedo 12", Classified(Intent.DECLINE, 12))],
)
def test_spanish_answers_carry_a_code_too(body: str, expected: Classified) -> None:
    assert classify(body, Channel.SMS) == expected


def test_unaccented_si_before_a_clause_is_if() -> None:
    assert classify("si me pagan extra", Channel.SMS).intent is Intent.UNKNOWN


def test_a_classifier_may_read_only_the_languages_it_is_given() -> None:
    from shiftd.inbound.intent import ENGLISH

    assert DefaultClassifier([ENGLISH]).classify("claro", Channel.SMS).intent is Intent.UNKNOWN


@pytest.mark.parametrize("body", ["¹", "yes ²", "YES ¹²"])
def test_superscript_digits_are_never_read_as_a_code_or_a_crash(body: str) -> None:
    classified = DefaultClassifier().classify(body, Channel.SMS)
    assert classified.code is None


def test_a_reply_read_again_means_the_same() -> None:
    reader = DefaultClassifier()

    first = reader.classify("Yes 12", Channel.SMS)

    assert reader.classify("Yes 12", Channel.SMS) == first == Classified(Intent.ACCEPT, 12)
    assert reader.classify("1", Channel.VOICE) != reader.classify("1", Channel.SMS)


def test_the_replies_remembered_are_bounded() -> None:
    reader = DefaultClassifier()

    for n in range(KEPT + 10):
        reader.classify(f"no {n}", Channel.SMS)
    reader.classify("no " + "thanks " * KEPT_LENGTH, Channel.SMS)  # too long to remember

    assert len(reader._kept) == KEPT
    assert reader.classify("no 3", Channel.SMS) == Classified(Intent.DECLINE, 3)
