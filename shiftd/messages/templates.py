"""Templates: the fields each may use, and the problems of one an operator wrote."""

from __future__ import annotations

import difflib
import string
from collections.abc import Mapping

_AGENCY = frozenset({"agency"})
_SHIFT = frozenset({"agency", "role", "date", "start", "end", "window", "place"})
_LIST = frozenset({"agency", "offers", "example"})
_COORDINATOR = _SHIFT | {"shift_id", "link", "contacted"}

TEMPLATE_FIELDS: Mapping[str, frozenset[str]] = {
    "offer_sms": _SHIFT | {"code"},
    "offer_voice": _SHIFT,
    "confirm": _SHIFT,
    "filled": _SHIFT,
    "already_filled": _SHIFT,
    "no_longer_available": _SHIFT,
    "declined": _SHIFT,
    "how_to_answer": _SHIFT | {"code"},
    "released": _SHIFT,
    "unassigned": _SHIFT,
    "shift_cancelled": _SHIFT,
    "not_eligible_overlap": _SHIFT,
    "not_eligible_role": _SHIFT,
    "not_eligible_not_offered": _SHIFT,
    "unfilled": _COORDINATOR,
    "coordinator_no_accept": _COORDINATOR,
    "coordinator_closing": _COORDINATOR | {"closes"},
    "coordinator_released": _COORDINATOR,
    "coordinator_notice_lost": _COORDINATOR | {"notice", "caregiver"},
    "choose": _LIST,
    "unknown_code": _LIST | {"code"},
    "not_offered": _LIST,
    "which_release": _LIST,
    "offers_page": _LIST | {"page", "pages"},
    "opted_out": _AGENCY,
    "opted_in": _AGENCY,
    "opt_out_hint": _AGENCY,
    "help": _AGENCY,
    "no_open_offer": _AGENCY,
    "voice_press_again": _AGENCY,
    "voice_unknown_call": _AGENCY,
    "voice_no_answer": _AGENCY,
    "voice_claimed": _AGENCY,
    "voice_declined": _AGENCY,
    "voice_already_filled": _AGENCY,
    "voice_no_open_offer": _AGENCY,
    "voice_unknown_sender": _AGENCY,
    "voice_ambiguous": _AGENCY,
    "voice_not_eligible": _AGENCY,
    "voice_otherwise": _AGENCY,
}
"""Every template name, and the fields that template may use."""

SPOKEN = frozenset(
    {"offer_voice"} | {name for name in TEMPLATE_FIELDS if name.startswith("voice_")}
)
"""Templates read aloud on a call: no SMS segment limit applies."""
TO_COORDINATOR = frozenset(
    {"unfilled", "coordinator_no_accept", "coordinator_closing", "coordinator_released"}
    | {"coordinator_notice_lost"}
)
"""Notices to coordinators: they carry a link and are sent whole, in as many segments as
they need (a coordinator's phone is not a caregiver's)."""

NOT_ELIGIBLE_REASONS = ("overlap", "role", "not_offered")
"""The reasons :meth:`Messages.not_eligible` explains."""


class TemplateError(ValueError):
    """A template that cannot be used: ``name`` is the template, ``problem`` what is wrong."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


def template_problems(templates: Mapping[str, str]) -> list[tuple[str, str]]:
    """Every problem in ``templates`` as (template name, problem); empty when all are usable.

    Problems: an unknown template name; an empty template; braces that do not pair up; a
    positional field (``{}``); attribute or index access (``{role.upper}``, ``{x[0]}``); a
    conversion (``!r``) or format spec (``:>10``); a field the template does not offer.
    """
    problems: list[tuple[str, str]] = []
    for name, text in templates.items():
        allowed = TEMPLATE_FIELDS.get(name)
        if allowed is None:
            problems.append((name, _unknown_template(name)))
        elif not isinstance(text, str) or not text.strip():
            problems.append((name, "must be non-empty text"))
        else:
            problem = _field_problem(name, text, allowed)
            if problem is not None:
                problems.append((name, problem))
    return problems


def check_templates(templates: Mapping[str, str]) -> None:
    """Raise :class:`TemplateError` (a ``ValueError``) for the first problem
    :func:`template_problems` finds."""
    for name, problem in template_problems(templates):
        raise TemplateError(name, problem)


def _unknown_template(name: str) -> str:
    close = difflib.get_close_matches(name, list(TEMPLATE_FIELDS), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return f"unknown template {name!r} ({hint}known: {', '.join(TEMPLATE_FIELDS)})"


def _field_problem(name: str, text: str, allowed: frozenset[str]) -> str | None:
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        return f"malformed braces: {exc} (write {{{{ and }}}} for a literal brace)"
    for _, field, spec, conversion in parsed:
        if field is None:
            continue
        if field == "" or field.isdigit():
            return f"empty or numbered field {{{field}}}: name one of {_listed(allowed)}"
        if not field.isidentifier():
            return (
                f"field {{{field}}}: only plain names are allowed, no attribute or index "
                f"access (fields here: {_listed(allowed)})"
            )
        if conversion is not None or spec:
            shown = (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            return f"field {{{field}{shown}}}: conversions and format specs are not allowed"
        if field not in allowed:
            elsewhere = sorted(n for n, fields in TEMPLATE_FIELDS.items() if field in fields)
            where = f" (only in {', '.join(elsewhere)})" if elsewhere else ""
            return f"unknown field {field!r}{where}; fields in {name}: {_listed(allowed)}"
    return None


def _listed(fields: frozenset[str]) -> str:
    order = ["agency", "role", "date", "start", "end", "window", "place", "code", "contacted"]
    order += ["offers", "example", "shift_id", "link", "closes"]
    return ", ".join(f for f in order if f in fields)
