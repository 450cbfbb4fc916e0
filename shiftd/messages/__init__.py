"""The words caregivers read and hear, and the notices coordinators get.

Never a client's name or health details: only the role, the date and time window, the place
(a city or facility, when the shift has one) and how to answer.

Languages. Every text and voice prompt is built in in English (``en``) and Spanish
(``es``). A caregiver's roster ``language`` (BCP 47: ``es``, ``es-MX``…) picks the texts she
gets, by its primary subtag; a language shiftd has no texts for, or none, falls back to the
organization's ``language``. :func:`language_of` says which built-in language a tag reads as.

One segment, guaranteed. Every SMS to a caregiver is sent as one segment (a coordinator's
notices carry a link and take the segments they need, in GSM-7 too): a text that would need GSM-7's
"extended" UCS-2 (an accent GSM-7 lacks, a curly quote) is transliterated to GSM-7
("Bogotá" → "Bogota"); one still too long has its place, then its agency name shortened
with "..."; a list of offers shows as many as fit and says how many more there are; a
template too long even then is cut. An offer leaves room for the opt-out hint (``Reply STOP
to opt out``) that the first text to a phone carries.

Every text has a built-in default and may be replaced per organization and language by a
*template* (``organizations.<org>.templates.<name>`` for the organization's language,
``organizations.<org>.templates_by_language.<lang>.<name>`` for another). A template name is
the name of the :class:`Messages` method that renders it (see :data:`TEMPLATE_FIELDS`), plus
``not_eligible_overlap``, ``not_eligible_role`` and ``not_eligible_not_offered`` for the
three answers of :meth:`Messages.not_eligible` and the ``voice_*`` prompts of a call.

A template is ``str.format`` text with named fields only — ``{role}``, never ``{}``,
``{role.upper}``, ``{x[0]}``, ``{role!r}`` or ``{role:>10}`` — and each template may use only
the fields it lists in :data:`TEMPLATE_FIELDS`:

``agency``   the organization's name (every template);
``role``     the role the shift needs, e.g. ``RN``;
``date``     e.g. ``Wed Jul 2`` (in the organization's time zone);
``start``, ``end``  e.g. ``08:00`` and ``16:00``;
``window``   date and times, e.g. ``Wed Jul 2, 08:00-16:00``;
``place``    the shift's location (a city or facility), or empty when it has none;
``code``     the reply code (``offer_sms``, ``how_to_answer``, ``unknown_code``);
``offers``   the caregiver's open offers, e.g. ``3: RN Wed Jul 2 08:00; 5: RN Thu Jul 3 20:00``
             (``choose``, ``unknown_code``, ``not_offered``, ``which_release``);
``example``  the first code of ``offers``, to show how to answer;
``page``, ``pages``  which page of her open offers this is, of how many (``offers_page``);
``contacted`` how many caregivers were contacted (the notices to coordinators: ``unfilled``,
             ``coordinator_no_accept``, ``coordinator_closing``, ``coordinator_released``);
``shift_id``, ``link``  the shift's id and the address of its page (coordinators' notices);
``closes``   when offers close, e.g. ``07:00`` (``coordinator_closing``);
``notice``, ``caregiver``  what could not be sent (``confirmation``…) and the id (never the
             name) of whom it was for (``coordinator_notice_lost``).

There is deliberately no field for a caregiver's or a client's name. Write ``{{`` and ``}}``
for literal braces.
"""

from __future__ import annotations

from .fitting import SMS_ROOM, fit
from .languages import DEFAULT_LANGUAGE, LANGUAGES, VOICE_LANGUAGES, language_of
from .rendering import Messages
from .template_sizes import template_warnings
from .templates import (
    NOT_ELIGIBLE_REASONS,
    SPOKEN,
    TEMPLATE_FIELDS,
    TO_COORDINATOR,
    TemplateError,
    check_templates,
    template_problems,
)

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "NOT_ELIGIBLE_REASONS",
    "SMS_ROOM",
    "SPOKEN",
    "TEMPLATE_FIELDS",
    "TO_COORDINATOR",
    "VOICE_LANGUAGES",
    "Messages",
    "TemplateError",
    "check_templates",
    "fit",
    "language_of",
    "template_problems",
    "template_warnings",
]
