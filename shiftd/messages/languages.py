"""The built-in languages and how a caregiver's language tag reads as one."""

from __future__ import annotations

from collections.abc import Mapping

LANGUAGES = ("en", "es")
"""The languages every text and prompt is built in in."""

DEFAULT_LANGUAGE = "en"

VOICE_LANGUAGES: Mapping[str, str] = {"en": "en-US", "es": "es-US"}
"""The TwiML ``<Say language>`` each built-in language is read in."""


def language_of(tag: str | None) -> str | None:
    """The built-in language a BCP 47 tag reads as ("es-MX" → "es", "EN" → "en"), or None
    for an empty tag or a language shiftd has no texts in."""
    if not tag:
        return None
    primary = tag.strip().replace("_", "-").split("-", 1)[0].lower()
    return primary if primary in LANGUAGES else None
