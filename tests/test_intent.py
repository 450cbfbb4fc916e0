"""The default classifier: what a caregiver's free-text reply (or keypad press) means."""

from __future__ import annotations

import pytest

from shiftd.intent import Classified, DefaultClassifier, Intent, load_classifier
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


def test_a_number_not_right_after_the_answer_is_not_a_code() -> None:
    assert classify("yes I can do 12", Channel.SMS) == Classified(Intent.ACCEPT)


@pytest.mark.parametrize("body", ["maybe?", "", "   ", "?!", "yesterday", "nope", "who is this"])
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
    assert isinstance(load_classifier("shiftd.intent:DefaultClassifier"), DefaultClassifier)


@pytest.mark.parametrize("path", ["shiftd.nope:X", "shiftd.intent:Nope", "shiftd.intent:Intent"])
def test_load_classifier_names_the_problem(path: str) -> None:
    with pytest.raises(ValueError, match="classifier"):
        load_classifier(path)
