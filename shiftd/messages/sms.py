"""How many SMS segments a text costs: GSM-7 or UCS-2, and where it splits.

A text made only of GSM 03.38 characters is sent in GSM-7: one segment holds 160 septets;
the basic set costs one septet a character, the extension table (``^{}\\[~]|€`` and form
feed) two (an escape, then the character). Any other character forces the whole text into
UCS-2: one segment holds 70 UTF-16 code units, and a character beyond the Basic Multilingual
Plane (most emoji) is two of them. A longer text is split into parts that each lose room
to the concatenation header: 153 septets or 67 code units. A part never ends between the
two halves of an escape or of a surrogate pair, so a text may need one part more than a
plain division says; :func:`segments` counts the way a phone splits.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Literal

Encoding = Literal["GSM-7", "UCS-2"]

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
"""The GSM 03.38 default alphabet: one septet each."""

GSM7_EXTENSION = frozenset("\f^{}\\[]~|€")
"""The GSM 03.38 extension table: two septets each (escape + character)."""

_GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION
SINGLE = {"GSM-7": 160, "UCS-2": 70}
"""What one unsplit segment holds: septets (GSM-7) or UTF-16 code units (UCS-2)."""

MULTIPART = {"GSM-7": 153, "UCS-2": 67}
"""What each part of a split message holds (the rest carries the concatenation header)."""


@dataclass(frozen=True, slots=True)
class Segments:
    """What sending one text costs."""

    encoding: Encoding
    units: int
    """Septets (GSM-7) or UTF-16 code units (UCS-2)."""
    count: int
    """Segments sent; an empty text is still one."""
    forced_by: str | None
    """The first character outside GSM-7 (the one that makes the text UCS-2), else None."""

    def explain(self) -> str:
        """e.g. "2 GSM-7 segments (one holds 160)", or for UCS-2
        "2 UCS-2 segments (one holds 70; 'ë' is not in the GSM-7 alphabet)"."""
        plural = "segment" if self.count == 1 else "segments"
        holds = f"one holds {SINGLE[self.encoding]}"
        if self.forced_by is not None:
            holds += f"; {self.forced_by!r} is not in the GSM-7 alphabet"
        return f"{self.count} {self.encoding} {plural} ({holds})"


def first_non_gsm7(text: str) -> str | None:
    """The first character of ``text`` that GSM-7 cannot carry, or None."""
    if _GSM7_ALL.issuperset(text):
        return None
    for char in text:
        if char not in GSM7_BASIC and char not in GSM7_EXTENSION:
            return char
    return None


def encoding_of(text: str) -> Encoding:
    """``"GSM-7"`` when every character is in GSM 03.38 (basic or extension), else ``"UCS-2"``."""
    return "GSM-7" if first_non_gsm7(text) is None else "UCS-2"


def segments(text: str) -> Segments:
    """Count the segments ``text`` is sent in (see the module docstring for the rules)."""
    forced_by = first_non_gsm7(text)
    encoding: Encoding = "GSM-7" if forced_by is None else "UCS-2"
    # Most texts fit one segment: count the double-width characters without sizing each.
    if encoding == "GSM-7":
        units = len(text) + sum(map(text.count, GSM7_EXTENSION))
    else:
        units = len(text) + sum(1 for char in text if ord(char) > 0xFFFF)
    if units <= SINGLE[encoding]:
        return Segments(encoding, units, 1, forced_by)
    sizes = [_units(char, encoding) for char in text]
    room, count, used = MULTIPART[encoding], 1, 0
    for size in sizes:
        if used + size > room:
            count, used = count + 1, 0
        used += size
    return Segments(encoding, units, count, forced_by)


def _units(char: str, encoding: Encoding) -> int:
    if encoding == "GSM-7":
        return 2 if char in GSM7_EXTENSION else 1
    return 2 if ord(char) > 0xFFFF else 1


_LOOKALIKES = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u00b4": "'", "`": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2026": "...", "\u00a0": " ",
    "\u2009": " ", "\u202f": " ", "\t": " ", "\u00b7": ".", "\u2022": "-",
}  # fmt: skip
"""Typographic characters people paste from word processors, and their GSM-7 stand-ins."""


def to_gsm7(text: str) -> str:
    """``text`` in characters GSM-7 carries, so it never turns a whole text into UCS-2:
    characters GSM-7 has are kept (é, ñ, ü, à, ¿, ¡…), typographic quotes and dashes become
    their plain forms, other letters lose their accents ("Bogotá" → "Bogota"), and what is
    left (emoji, other scripts) becomes "?"."""
    if first_non_gsm7(text) is None:
        return text
    out = []
    for char in text:
        if char in GSM7_BASIC or char in GSM7_EXTENSION:
            out.append(char)
        elif char in _LOOKALIKES:
            out.append(_LOOKALIKES[char])
        else:
            bare = "".join(
                c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)
            )
            out.append(bare if bare and first_non_gsm7(bare) is None else "?")
    return "".join(out)


def units(text: str) -> int:
    """Septets (GSM-7) or UTF-16 code units (UCS-2) ``text`` takes."""
    return segments(text).units


def cut(text: str, room: int, mark: str = "...") -> str:
    """``text`` (GSM-7) cut to at most ``room`` septets, ending with ``mark`` when cut."""
    if units(text) <= room:
        return text
    keep = text
    while keep and units(keep) + units(mark) > room:
        keep = keep[:-1]
    return keep.rstrip() + mark
