"""Making a text fit one segment: shorten the place, then the agency, page the offers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from . import sms
from .catalogue import WORDS
from .languages import DEFAULT_LANGUAGE

SMS_ROOM = sms.SINGLE["GSM-7"]
"""What one segment holds once every text is GSM-7."""
_MIN_AGENCY = 8
"""An agency name is never shortened below this many characters (plus "...")."""
_MIN_ROLE = 4


RENDERED_KEPT = 4096


def fit(
    template: str,
    fields: Mapping[str, object],
    room: int = SMS_ROOM,
    entries: Sequence[str] | None = None,
    words: Mapping[str, str] = WORDS[DEFAULT_LANGUAGE],
) -> str:
    """`template` rendered with `fields` as one GSM-7 segment of at most `room` septets:
    transliterated to GSM-7; then, while too long, a list of `entries` (the ``offers``
    field) shows fewer of them ("+2 more"), the place is shortened with "..." (or dropped),
    the agency name, then the role are shortened with "..." (down to a few letters), and at
    last the text is cut."""
    return fit_noted(template, fields, room, entries, words)[0]


def fit_noted(
    template: str,
    fields: Mapping[str, object],
    room: int,
    entries: Sequence[str] | None,
    words: Mapping[str, str],
) -> tuple[str, str | None]:
    """`fit`, and what it did beyond shortening the place or the list (None if nothing)."""
    values = dict(fields)
    shown = len(entries) if entries is not None else 0
    note = None
    while True:
        if entries is not None:
            values["offers"] = _page(entries, shown, words)
        text = sms.to_gsm7(template.format_map(values))
        over = sms.units(text) - room
        if over <= 0:
            return text, note
        place, agency = str(values.get("place") or ""), str(values.get("agency") or "")
        role = str(values.get("role") or "")
        if shown > 0:
            shown -= 1
        elif place:
            keep = len(place) - over - 3
            values["place"] = place[:keep].rstrip() + "..." if keep >= 3 else ""
            values["_place"] = f" ({values['place']})" if values["place"] else ""
        elif len(agency) > _MIN_AGENCY + 3 and not agency.endswith("..."):
            values["agency"] = agency[: max(_MIN_AGENCY, len(agency) - over - 3)].rstrip() + "..."
            note = f"sent with the agency name shortened to {values['agency']!r}"
        elif len(role) > _MIN_ROLE + 3 and not role.endswith("..."):
            values["role"] = role[: max(_MIN_ROLE, len(role) - over - 3)].rstrip() + "..."
            note = f"sent with the role shortened to {values['role']!r}"
        else:
            cut = sms.cut(text, room)
            return cut, f"sent cut to {len(cut)} characters (its end is lost)"


def _page(entries: Sequence[str], shown: int, words: Mapping[str, str]) -> str:
    if not entries:
        return words["none"]
    listed = "; ".join(entries[:shown])
    rest = len(entries) - shown
    return listed + (f"; {words['more'].format(n=rest)}" if rest else "")
