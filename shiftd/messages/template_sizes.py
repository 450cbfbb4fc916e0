"""Whether each template, filled with the longest values, still fits its segments."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from .. import limits
from . import sms
from .catalogue import WORDS
from .fields import count_caregivers, date_of, fields_for_shift
from .fitting import SMS_ROOM, fit_noted
from .languages import DEFAULT_LANGUAGE, language_of
from .rendering import Messages
from .templates import SPOKEN, TEMPLATE_FIELDS, TO_COORDINATOR, check_templates

_LONGEST_ROLE = "R" * limits.MAX_ROLE
_LONGEST_PLACE = "P" * limits.MAX_LOCATION
_SAMPLE_START = datetime(2025, 9, 24, 23, 0, tzinfo=UTC)  # "Wed Sep 24, 23:00-07:00"
_SAMPLE_END = datetime(2025, 9, 25, 7, 0, tzinfo=UTC)
_LONGEST_CODE = 9999  # codes cycle through 1..99, and grow past 99 open offers
_SAMPLE_CONTACTED = 99999
_SAMPLE_OFFERS = 3


def template_warnings(
    templates: Mapping[str, str], agency: str, language: str = DEFAULT_LANGUAGE
) -> list[tuple[str, str]]:
    """(template name, warning) for each SMS text in `language` — ``templates`` where set,
    the built-in text otherwise — that cannot be sent whole in one segment for ``agency``,
    at the real maximum lengths: a 32-character role, a 60-character place, reply code 9999,
    99999 caregivers contacted, three open offers. Every text is sent as one segment
    anyway (see :func:`fit`); shortening the place is routine and not warned about, but
    shortening the agency name or cutting the text is.

    A warning reads e.g. "renders to 230 characters: 2 GSM-7 segments (one holds 160); sent
    with the agency name shortened to "Sunrise Home..."". ``offer_voice`` and the ``voice_*``
    prompts are spoken, so they are not checked.

    Raises:
        TemplateError: ``templates`` has a problem (see :func:`check_templates`).
    """
    check_templates(templates)
    language = language_of(language) or DEFAULT_LANGUAGE
    messages = Messages(agency, UTC, templates, language=language)
    shift_fields = fields_for_shift(
        agency, _LONGEST_ROLE, _SAMPLE_START, _SAMPLE_END, _LONGEST_PLACE, language
    )
    shift_fields.update(code=_LONGEST_CODE, contacted=_SAMPLE_CONTACTED)
    shift_fields["_caregivers"] = count_caregivers(_SAMPLE_CONTACTED, language)
    entry = f"{_LONGEST_CODE}: {_LONGEST_ROLE} {date_of(_SAMPLE_START, language)} 23:00"
    warnings: list[tuple[str, str]] = []
    for name, allowed in TEMPLATE_FIELDS.items():
        if name in SPOKEN or name in TO_COORDINATOR:
            continue
        template = messages._template(name)
        room = SMS_ROOM - 1 - len(messages.opt_out_hint()) if name == "offer_sms" else SMS_ROOM
        if "offers" in allowed:
            fields: dict[str, object] = {"agency": agency, "example": _LONGEST_CODE}
            fields.update(code=_LONGEST_CODE, page=99, pages=99)
            entries: list[str] | None = [entry] * _SAMPLE_OFFERS
            whole = template.format_map({**fields, "offers": "; ".join(entries or [])})
        else:
            fields, entries = shift_fields, None
            whole = template.format_map(fields)
        _, note = fit_noted(template, fields, room, entries, WORDS[language])
        if note is not None:
            cost = sms.segments(whole)
            warnings.append((name, f"renders to {_size(whole, cost)}: {cost.explain()}; {note}"))
    return warnings


def _size(text: str, cost: sms.Segments) -> str:
    size = f"{len(text)} characters"
    if cost.units != len(text):
        unit = "septets" if cost.encoding == "GSM-7" else "UTF-16 code units"
        size += f" ({cost.units} {unit})"
    return size
