"""The words caregivers read and hear, and the one text a coordinator gets (``unfilled``).

Short (one SMS segment where possible), and never a client's name or health details: only
the role, the date and time window, the place (a city or facility, when the shift has one)
and how to answer.

Every text has a built-in default and may be replaced per organization by a *template*
(``organizations.<org>.templates.<name>`` in the configuration). A template name is the
name of the :class:`Messages` method that renders it (see :data:`TEMPLATE_FIELDS`), plus
``not_eligible_overlap``, ``not_eligible_role`` and ``not_eligible_not_offered`` for the
three answers of :meth:`Messages.not_eligible`. :meth:`Messages.choose` is not templated:
its list of offers has no fixed shape.

A template is ``str.format`` text with named fields only — ``{role}``, never ``{}``,
``{role.upper}``, ``{x[0]}``, ``{role!r}`` or ``{role:>10}`` — and each template may use only
the fields it lists in :data:`TEMPLATE_FIELDS`:

``agency``   the organization's name (every template);
``role``     the role the shift needs, e.g. ``RN``;
``date``     e.g. ``Wed Jul 2`` (in the organization's time zone);
``start``, ``end``  e.g. ``08:00`` and ``16:00``;
``window``   date and times, e.g. ``Wed Jul 2, 08:00-16:00``;
``place``    the shift's location (a city or facility), or empty when it has none;
``code``     the reply code (``offer_sms``, ``how_to_answer`` only);
``contacted`` how many caregivers were contacted (``unfilled`` only).

There is deliberately no field for a caregiver's or a client's name. Write ``{{`` and ``}}``
for literal braces.
"""

from __future__ import annotations

import difflib
import string
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING

from . import sms

if TYPE_CHECKING:
    from .store.base import ShiftRow

_AGENCY = frozenset({"agency"})
_SHIFT = frozenset({"agency", "role", "date", "start", "end", "window", "place"})

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
    "unfilled": _SHIFT | {"contacted"},
    "opted_out": _AGENCY,
    "opted_in": _AGENCY,
    "help": _AGENCY,
    "no_open_offer": _AGENCY,
}
"""Every template name, and the fields that template may use."""

SPOKEN = frozenset({"offer_voice"})
"""Templates read aloud on a call: no SMS segment limit applies."""

# The built-in texts. Fields starting with "_" exist only for these defaults (templates
# cannot use them): "_place" is " (Oak Street)" or "", "_a_role" "An RN", "_caregivers"
# "1 caregiver" / "12 caregivers".
_DEFAULTS: Mapping[str, str] = {
    "offer_sms": (
        "{agency}: open {role} shift {window}{_place}. "
        "Reply YES {code} to take it or NO {code} to pass."
    ),
    "offer_voice": (
        "Hello, this is {agency}. {_a_role} shift is open on {window}{_place}. "
        "Press 1 to accept it, or 2 to decline."
    ),
    "confirm": "{agency}: confirmed! The {role} shift {window} is yours.",
    "filled": "{agency}: the {role} shift {window} has been filled. Thank you!",
    "already_filled": "{agency}: sorry, the {role} shift {window} was already filled.",
    "no_longer_available": "{agency}: the {role} shift {window} is no longer available.",
    "declined": "{agency}: thanks, we won't call you about the shift {window}.",
    "how_to_answer": (
        "{agency}: please reply YES {code} to take the shift {window} or NO {code} to pass."
    ),
    "released": (
        "{agency}: you are released from the {role} shift {window}. Thank you for telling us."
    ),
    "unassigned": (
        "{agency}: a coordinator has taken you off the {role} shift {window}. "
        "You are no longer scheduled for it."
    ),
    "shift_cancelled": (
        "{agency}: the {role} shift {window} has been cancelled. "
        "You are no longer scheduled for it."
    ),
    "not_eligible_overlap": (
        "{agency}: sorry, you cannot take the {role} shift {window}: "
        "you already hold a shift at that time."
    ),
    "not_eligible_role": (
        "{agency}: sorry, the shift {window} needs {_a_role_lower}, so you cannot take it."
    ),
    "not_eligible_not_offered": (
        "{agency}: sorry, the {role} shift {window} was not offered to you."
    ),
    "unfilled": "{agency}: the {role} shift {window}{_place} went unfilled; "
    "{_caregivers} contacted.",
    "opted_out": "You're unsubscribed from {agency} shift texts. Reply START to resubscribe.",
    "opted_in": "You're resubscribed to {agency} shift texts. Reply STOP to opt out.",
    "help": (
        "{agency} shift offers. Reply YES <code> to accept, NO <code> to pass, STOP to opt out."
    ),
    "no_open_offer": "{agency}: you have no open shift offers right now.",
}

NOT_ELIGIBLE_REASONS = ("overlap", "role", "not_offered")
"""The reasons :meth:`Messages.not_eligible` explains."""


class TemplateError(ValueError):
    """A template that cannot be used: ``name`` is the template, ``problem`` what is wrong."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


class Messages:
    """Renders every outbound text for one organization: its name, display time zone,
    templates (by name, see :data:`TEMPLATE_FIELDS`; unset names keep the built-in text) and
    HELP answer (``help_text``, sent as written; it wins over a ``help`` template).

    Raises:
        TemplateError: a template is unknown or malformed (see :func:`check_templates`).
    """

    def __init__(
        self,
        agency: str,
        tz: tzinfo,
        templates: Mapping[str, str] | None = None,
        help_text: str | None = None,
    ) -> None:
        self.agency = agency
        self.tz = tz
        self.templates: Mapping[str, str] = dict(templates or {})
        check_templates(self.templates)
        self.help_text = help_text

    def window(self, shift: ShiftRow) -> str:
        """e.g. "Wed Jul 2, 08:00-16:00" in the agency's time zone."""
        return _window(shift.start_time.astimezone(self.tz), shift.end_time.astimezone(self.tz))

    # -- offers and answers

    def offer_sms(self, shift: ShiftRow, code: int) -> str:
        return self._render("offer_sms", shift, code=code)

    def offer_voice(self, shift: ShiftRow) -> str:
        return self._render("offer_voice", shift)

    def confirm(self, shift: ShiftRow) -> str:
        return self._render("confirm", shift)

    def filled(self, shift: ShiftRow) -> str:
        return self._render("filled", shift)

    def already_filled(self, shift: ShiftRow) -> str:
        return self._render("already_filled", shift)

    def no_longer_available(self, shift: ShiftRow) -> str:
        return self._render("no_longer_available", shift)

    def declined(self, shift: ShiftRow) -> str:
        return self._render("declined", shift)

    def how_to_answer(self, shift: ShiftRow, code: int) -> str:
        return self._render("how_to_answer", shift, code=code)

    def choose(self, offers: Sequence[tuple[ShiftRow, int]]) -> str:
        """Not templated: the list of offers has no fixed shape."""
        return (
            f"{self.agency}: you have several open offers ({self._listed(offers)}). "
            "Reply YES <code> to take one."
        )

    def unknown_code(self, code: int, offers: Sequence[tuple[ShiftRow, int]]) -> str:
        """`code` is none of the caregiver's open `offers` (at least one). Not templated."""
        return (
            f"{self.agency}: {code} is not one of your open offers ({self._listed(offers)}). "
            "Reply YES <code> to take one."
        )

    def not_offered(self, shift: ShiftRow | None, offers: Sequence[tuple[ShiftRow, int]]) -> str:
        """The caregiver named `shift` (None: a shift that does not exist), which was not
        offered to her; her open `offers`, if any, are listed. Not templated."""
        if shift is None:
            text = f"{self.agency}: sorry, that shift was not offered to you."
        else:
            text = self.not_eligible(shift, "not_offered")
        if offers:
            text += f" Your open offers: {self._listed(offers)}. Reply YES <code> to take one."
        return text

    def _listed(self, offers: Sequence[tuple[ShiftRow, int]]) -> str:
        return "; ".join(f"{code}: {s.role_required} {self.window(s)}" for s, code in offers)

    def which_release(self, held: Sequence[tuple[ShiftRow, int]]) -> str:
        """Asks a caregiver holding several upcoming shifts which one to release. Not
        templated, like `choose`."""
        listed = "; ".join(f"{code}: {s.role_required} {self.window(s)}" for s, code in held)
        return f"{self.agency}: which shift do you want to release ({listed})? Reply CANCEL <code>."

    def no_open_offer(self) -> str:
        return self._render("no_open_offer")

    def not_eligible(self, shift: ShiftRow, reason: str) -> str:
        """Why a caregiver cannot take ``shift``: ``reason`` is ``"overlap"`` (they already
        hold a shift at that time), ``"role"`` (the shift needs another role) or
        ``"not_offered"``; anything else reads as ``"not_offered"``."""
        if reason not in NOT_ELIGIBLE_REASONS:
            reason = "not_offered"
        return self._render(f"not_eligible_{reason}", shift)

    # -- a held shift changes

    def released(self, shift: ShiftRow) -> str:
        """To a caregiver who dropped a shift they held."""
        return self._render("released", shift)

    def unassigned(self, shift: ShiftRow) -> str:
        """To a caregiver a coordinator took off the shift."""
        return self._render("unassigned", shift)

    def shift_cancelled(self, shift: ShiftRow) -> str:
        """To the caregiver who held a shift the agency cancelled."""
        return self._render("shift_cancelled", shift)

    def unfilled(self, shift: ShiftRow, contacted: int) -> str:
        """To the coordinator: nobody took ``shift``; ``contacted`` caregivers were asked."""
        return self._render("unfilled", shift, contacted=contacted)

    # -- compliance keywords

    def opted_out(self) -> str:
        return self._render("opted_out")

    def opted_in(self) -> str:
        return self._render("opted_in")

    def help(self) -> str:
        if self.help_text is not None:
            return self.help_text
        return self._render("help")

    # -- rendering

    def _render(self, name: str, shift: ShiftRow | None = None, **extra: int) -> str:
        if shift is None:
            fields: dict[str, object] = {"agency": self.agency}
        else:
            fields = _shift_fields(
                self.agency,
                shift.role_required,
                shift.start_time.astimezone(self.tz),
                shift.end_time.astimezone(self.tz),
                shift.location,
            )
        fields.update(extra)
        if "contacted" in extra:
            fields["_caregivers"] = _caregivers(extra["contacted"])
        return self.templates.get(name, _DEFAULTS[name]).format_map(fields)


# --------------------------------------------------------------------------- checking


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
    return ", ".join(f for f in order if f in fields)


# --------------------------------------------------------------------------- segment warnings

_SAMPLE_ROLE = "CNA"
_SAMPLE_PLACE = "St. Catherine Rehab, Springfld"  # 30 characters
_SAMPLE_START = datetime(2025, 9, 24, 23, 0, tzinfo=UTC)  # "Wed Sep 24, 23:00-07:00"
_SAMPLE_END = datetime(2025, 9, 25, 7, 0, tzinfo=UTC)
_SAMPLE_CODE = 99
_SAMPLE_CONTACTED = 9999


def template_warnings(templates: Mapping[str, str], agency: str) -> list[tuple[str, str]]:
    """(template name, warning) for each SMS text — ``templates`` where set, the built-in
    text otherwise — that needs more than one segment for ``agency``.

    Each text is rendered with a realistic worst case: the ``agency`` as configured, role
    ``CNA`` (home-health roles are initialisms of two or three letters; each extra letter
    of a longer role adds one character), a two-digit day (``Wed Sep 24, 23:00-07:00``, the
    longest window there is), a 30-character place, reply code 99 (codes cycle through
    1..99) and 9999 caregivers contacted. ``offer_voice`` is spoken, so it is not checked.

    A warning reads e.g. "renders to 172 characters: 2 GSM-7 segments (one holds 160)".

    Raises:
        TemplateError: ``templates`` has a problem (see :func:`check_templates`).
    """
    check_templates(templates)
    fields = _shift_fields(agency, _SAMPLE_ROLE, _SAMPLE_START, _SAMPLE_END, _SAMPLE_PLACE)
    fields["code"] = _SAMPLE_CODE
    fields["contacted"] = _SAMPLE_CONTACTED
    fields["_caregivers"] = _caregivers(_SAMPLE_CONTACTED)
    warnings: list[tuple[str, str]] = []
    for name in TEMPLATE_FIELDS:
        if name in SPOKEN:
            continue
        text = templates.get(name, _DEFAULTS[name]).format_map(fields)
        cost = sms.segments(text)
        if cost.count > 1:
            warnings.append((name, f"renders to {_size(text, cost)}: {cost.explain()}"))
    return warnings


def _size(text: str, cost: sms.Segments) -> str:
    size = f"{len(text)} characters"
    if cost.units != len(text):
        unit = "septets" if cost.encoding == "GSM-7" else "UTF-16 code units"
        size += f" ({cost.units} {unit})"
    return size


# --------------------------------------------------------------------------- fields


def _shift_fields(
    agency: str, role: str, start: datetime, end: datetime, place: str | None
) -> dict[str, object]:
    article = _article(role)
    return {
        "agency": agency,
        "role": role,
        "date": _date(start),
        "start": _hm(start),
        "end": _hm(end),
        "window": _window(start, end),
        "place": place or "",
        "_place": f" ({place})" if place else "",
        "_a_role": f"{article.capitalize()} {role}",
        "_a_role_lower": f"{article} {role}",
    }


def _caregivers(contacted: int) -> str:
    return f"{contacted} caregiver" + ("" if contacted == 1 else "s")


def _article(role: str) -> str:
    """The article before `role` as it is read aloud: an RN, an LPN, an HHA, a CNA (an
    initialism is read letter by letter), an aide, a nurse."""
    if role.isupper():
        return "an" if role[:1] in "AEFHILMNORSX" else "a"
    return "an" if role[:1].lower() in "aeiou" else "a"


def _date(at: datetime) -> str:
    return f"{at:%a %b} {at.day}"


def _window(start: datetime, end: datetime) -> str:
    return f"{_date(start)}, {_hm(start)}-{_hm(end)}"


def _hm(at: datetime) -> str:
    return f"{at:%H:%M}"
