"""Phone normalisation: one canonical form so a reply finds its caregiver whatever the format."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shiftd.models import Caregiver, normalize_phone


@pytest.mark.parametrize(
    "raw",
    [
        "+15550000001",
        "+1 555 000 0001",
        "+1-555-000-0001",
        "(555) 000-0001",
        "555.000.0001",
        "555 000 0001",
        "5550000001",
        "15550000001",
        "1 (555) 000-0001",
        " +1 (555) 000-0001\n",
        "\t555-000-0001",
    ],
)
def test_us_number_in_any_format_normalises_to_e164(raw: str) -> None:
    assert normalize_phone(raw) == "+15550000001"


def test_ten_digit_number_gets_plus_one() -> None:
    assert normalize_phone("2125551234") == "+12125551234"


def test_short_number_from_the_reference_roster_is_kept() -> None:
    assert normalize_phone("+15550001") == "+15550001"


def test_international_number_is_kept() -> None:
    assert normalize_phone("+44 20 7946 0958") == "+442079460958"


def test_number_without_plus_and_not_us_length_is_kept_as_digits() -> None:
    assert normalize_phone("5550001") == "5550001"


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "not a phone", "555-CALL-NOW", "12", "+", "++15550000001", "+1 555 000 0001 x5"],
)
def test_garbage_is_rejected(raw: str) -> None:
    with pytest.raises(ValueError, match="not a phone number"):
        normalize_phone(raw)


def test_too_many_digits_is_rejected() -> None:
    with pytest.raises(ValueError):
        normalize_phone("+" + "1" * 21)


def test_roster_phone_is_normalised_on_import() -> None:
    cg = Caregiver(id="cg-1", name="Carer 1", role="RN", phone="(555) 000-0001")
    assert cg.phone == "+15550000001"


def test_roster_rejects_a_garbage_phone() -> None:
    with pytest.raises(ValidationError):
        Caregiver(id="cg-1", name="Carer 1", role="RN", phone="call me")
