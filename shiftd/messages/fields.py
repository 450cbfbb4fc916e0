"""The values a template's fields take: dates, time windows, a role with its article."""

from __future__ import annotations

from datetime import datetime

from .catalogue import DAYS, MONTHS, WORDS
from .languages import DEFAULT_LANGUAGE


def fields_for_shift(
    agency: str,
    role: str,
    start: datetime,
    end: datetime,
    place: str | None,
    language: str = DEFAULT_LANGUAGE,
) -> dict[str, object]:
    article = article_of(role)
    return {
        "agency": agency,
        "role": role,
        "date": date_of(start, language),
        "start": hm(start),
        "end": hm(end),
        "window": window_of(start, end, language),
        "place": place or "",
        "_place": f" ({place})" if place else "",
        "_a_role": f"{article.capitalize()} {role}",
        "_a_role_lower": f"{article} {role}",
    }


def count_caregivers(contacted: int, language: str = DEFAULT_LANGUAGE) -> str:
    word = WORDS[language]["caregiver" if contacted == 1 else "caregivers"]
    return f"{contacted} {word}"


def article_of(role: str) -> str:
    """The article before `role` as it is read aloud: an RN, an LPN, an HHA, a CNA (an
    initialism is read letter by letter), an aide, a nurse."""
    if role.isupper():
        return "an" if role[:1] in "AEFHILMNORSX" else "a"
    return "an" if role[:1].lower() in "aeiou" else "a"


def date_of(at: datetime, language: str = DEFAULT_LANGUAGE) -> str:
    day = DAYS[language].split()[at.weekday()]
    month = MONTHS[language].split()[at.month - 1]
    return f"{day} {month} {at.day}" if language == "en" else f"{day} {at.day} {month}"


def window_of(start: datetime, end: datetime, language: str = DEFAULT_LANGUAGE) -> str:
    return f"{date_of(start, language)}, {hm(start)}-{hm(end)}"


def hm(at: datetime) -> str:
    return f"{at:%H:%M}"
