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

import difflib
import string
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING

from . import limits, sms

if TYPE_CHECKING:
    from .models import Shift
    from .store.base import ShiftRow

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


# The built-in texts. Fields starting with "_" exist only for these defaults (templates
# cannot use them): "_place" is " (Oak Street)" or "", "_a_role" "An RN", "_caregivers"
# "1 caregiver" / "12 caregivers".
_ENGLISH: Mapping[str, str] = {
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
    "{_caregivers} contacted. {_ref}",
    "coordinator_no_accept": "{agency}: nobody has taken the {role} shift {window}{_place} "
    "yet; {_caregivers} contacted. {_ref}",
    "coordinator_closing": "{agency}: the {role} shift {window}{_place} is still open and "
    "offers close at {closes}; {_caregivers} contacted. {_ref}",
    "coordinator_released": "{agency}: the caregiver holding the {role} shift {window}{_place} "
    "dropped it; offering it again. {_ref}",
    "coordinator_notice_lost": "{agency}: the {notice} for the {role} shift {window} could not "
    "be sent to caregiver {caregiver}; please call them. {_ref}",
    "choose": "{agency}: you have several open offers ({offers}). Reply YES {example} to take "
    "offer {example}.",
    "unknown_code": "{agency}: {code} is not one of your open offers ({offers}). "
    "Reply YES {example} to take offer {example}.",
    "not_offered": "{agency}: sorry, that shift was not offered to you. "
    "Your open offers: {offers}.",
    "which_release": "{agency}: which shift do you want to release ({offers})? "
    "Reply CANCEL {example} to release shift {example}.",
    "offers_page": "{agency}: your open offers ({page}/{pages}): {offers}. "
    "Reply YES {example} to take offer {example}.",
    "opted_out": "You're unsubscribed from {agency} shift texts. Reply START to resubscribe.",
    "opted_in": "You're resubscribed to {agency} shift texts. Reply STOP to opt out.",
    "opt_out_hint": "Reply STOP to opt out.",
    "help": (
        "{agency} shift offers: reply YES to take a shift, NO to pass, with the number from "
        "our text if you have several. Reply STOP to opt out."
    ),
    "no_open_offer": "{agency}: you have no open shift offers right now.",
    "voice_press_again": (
        "Sorry, I did not get that. Press 1 to accept the shift, or 2 to decline."
    ),
    "voice_unknown_call": "Sorry, this line only calls about open shifts. Please answer by text.",
    "voice_no_answer": (
        "We did not get an answer. You can also reply to our text message. Goodbye."
    ),
    "voice_claimed": "Thank you. The shift is yours. We will confirm it by text message.",
    "voice_declined": "Thank you. We have noted that you cannot take this shift. Goodbye.",
    "voice_already_filled": "Sorry, this shift has already been filled. Thank you. Goodbye.",
    "voice_no_open_offer": "Sorry, this shift is no longer available. Goodbye.",
    "voice_unknown_sender": "Sorry, we could not match this call to you. Goodbye.",
    "voice_ambiguous": "Sorry, we could not tell which shift you mean. Please answer by text.",
    "voice_not_eligible": "Sorry, you cannot take this shift. We will text you why. Goodbye.",
    "voice_otherwise": "Sorry, we did not understand. Please answer by text. Goodbye.",
}

_SPANISH: Mapping[str, str] = {
    "offer_sms": (
        "{agency}: turno de {role} {window}{_place}. "
        "Responda SI {code} para tomarlo o NO {code} para pasar."
    ),
    "offer_voice": (
        "Hola, le llama {agency}. Hay un turno de {role} disponible el {window}{_place}. "
        "Oprima 1 para aceptarlo, o 2 para rechazarlo."
    ),
    "confirm": "{agency}: ¡confirmado! El turno de {role} {window} es suyo.",
    "filled": "{agency}: el turno de {role} {window} ya se cubrió. ¡Gracias!",
    "already_filled": "{agency}: lo sentimos, el turno de {role} {window} ya estaba cubierto.",
    "no_longer_available": "{agency}: el turno de {role} {window} ya no está disponible.",
    "declined": "{agency}: gracias, no le llamaremos por el turno {window}.",
    "how_to_answer": (
        "{agency}: responda SI {code} para tomar el turno {window} o NO {code} para pasar."
    ),
    "released": (
        "{agency}: ya no tiene asignado el turno de {role} {window}. Gracias por avisarnos."
    ),
    "unassigned": (
        "{agency}: un coordinador le retiró del turno de {role} {window}. Ya no lo tiene asignado."
    ),
    "shift_cancelled": (
        "{agency}: el turno de {role} {window} se canceló. Ya no lo tiene asignado."
    ),
    "not_eligible_overlap": (
        "{agency}: lo sentimos, no puede tomar el turno de {role} {window}: "
        "ya tiene un turno a esa hora."
    ),
    "not_eligible_role": (
        "{agency}: lo sentimos, el turno {window} requiere {role}, así que no puede tomarlo."
    ),
    "not_eligible_not_offered": (
        "{agency}: lo sentimos, el turno de {role} {window} no se le ofreció."
    ),
    "unfilled": "{agency}: el turno de {role} {window}{_place} quedó sin cubrir; "
    "se contactó a {_caregivers}. {_ref}",
    "coordinator_no_accept": "{agency}: nadie ha tomado aún el turno de {role} {window}{_place}; "
    "se contactó a {_caregivers}. {_ref}",
    "coordinator_closing": "{agency}: el turno de {role} {window}{_place} sigue abierto y las "
    "ofertas cierran a las {closes}; se contactó a {_caregivers}. {_ref}",
    "coordinator_released": "{agency}: quien tenía el turno de {role} {window}{_place} lo "
    "dejó; se ofrece de nuevo. {_ref}",
    "coordinator_notice_lost": "{agency}: no se pudo enviar {notice} del turno de {role} "
    "{window} a {caregiver}; llámele, por favor. {_ref}",
    "choose": "{agency}: tiene varias ofertas abiertas ({offers}). Responda SI {example} "
    "para tomar la oferta {example}.",
    "unknown_code": "{agency}: {code} no es una de sus ofertas abiertas ({offers}). "
    "Responda SI {example} para tomar la oferta {example}.",
    "not_offered": "{agency}: lo sentimos, ese turno no se le ofreció. "
    "Sus ofertas abiertas: {offers}.",
    "which_release": "{agency}: ¿qué turno quiere dejar ({offers})? "
    "Responda CANCEL {example} para dejar el turno {example}.",
    "offers_page": "{agency}: sus ofertas abiertas ({page}/{pages}): {offers}. "
    "Responda SI {example} para tomar la oferta {example}.",
    "opted_out": "Ya no recibirá mensajes de turnos de {agency}. Responda START para volver.",
    "opted_in": "Vuelve a recibir mensajes de turnos de {agency}. Responda STOP para salir.",
    "opt_out_hint": "Responda STOP para salir.",
    "help": (
        "{agency} ofertas de turnos: responda SI para tomar un turno, NO para pasar, con el "
        "número de nuestro mensaje si tiene varios. Responda STOP para salir."
    ),
    "no_open_offer": "{agency}: no tiene ofertas de turno abiertas ahora.",
    "voice_press_again": (
        "Perdone, no le entendí. Oprima 1 para aceptar el turno, o 2 para rechazarlo."
    ),
    "voice_unknown_call": (
        "Lo sentimos, esta línea solo llama por turnos abiertos. Por favor responda por mensaje."
    ),
    "voice_no_answer": (
        "No recibimos respuesta. También puede responder a nuestro mensaje de texto. Adiós."
    ),
    "voice_claimed": "Gracias. El turno es suyo. Se lo confirmaremos por mensaje de texto.",
    "voice_declined": "Gracias. Anotamos que no puede tomar este turno. Adiós.",
    "voice_already_filled": "Lo sentimos, este turno ya se cubrió. Gracias. Adiós.",
    "voice_no_open_offer": "Lo sentimos, este turno ya no está disponible. Adiós.",
    "voice_unknown_sender": "Lo sentimos, no pudimos asociar esta llamada con usted. Adiós.",
    "voice_ambiguous": (
        "Lo sentimos, no supimos a qué turno se refiere. Por favor responda por mensaje."
    ),
    "voice_not_eligible": (
        "Lo sentimos, no puede tomar este turno. Le diremos por qué por mensaje. Adiós."
    ),
    "voice_otherwise": "Lo sentimos, no entendimos. Por favor responda por mensaje. Adiós.",
}

_DEFAULTS: Mapping[str, Mapping[str, str]] = {"en": _ENGLISH, "es": _SPANISH}

_WORDS: Mapping[str, Mapping[str, str]] = {
    "en": {"none": "none", "more": "+{n} more, reply LIST", "caregiver": "caregiver",
           "caregivers": "caregivers", "shift": "Shift", "confirm": "confirmation",
           "released": "release notice", "shift_cancelled": "cancellation notice"},
    "es": {"none": "ninguna", "more": "+{n} más, responda LISTA", "caregiver": "persona",
           "caregivers": "personas", "shift": "Turno", "confirm": "la confirmación",
           "released": "el aviso de liberación", "shift_cancelled": "el aviso de cancelación"},
}  # fmt: skip
_DAYS = {"en": "Mon Tue Wed Thu Fri Sat Sun", "es": "lun mar mié jue vie sáb dom"}
_MONTHS = {
    "en": "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec",
    "es": "ene feb mar abr may jun jul ago sep oct nov dic",
}
SMS_ROOM = sms.SINGLE["GSM-7"]
"""What one segment holds once every text is GSM-7."""
_MIN_AGENCY = 8
"""An agency name is never shortened below this many characters (plus "...")."""
_MIN_ROLE = 4

NOT_ELIGIBLE_REASONS = ("overlap", "role", "not_offered")
"""The reasons :meth:`Messages.not_eligible` explains."""


class TemplateError(ValueError):
    """A template that cannot be used: ``name`` is the template, ``problem`` what is wrong."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


class Messages:
    """Renders every outbound text and voice prompt for one organization in one language:
    its name, display time zone, templates (by name, see :data:`TEMPLATE_FIELDS`; unset
    names keep the built-in text of `language`) and HELP answer (``help_text``, sent as
    written; it wins over a ``help`` template). Every SMS it renders is one GSM-7 segment
    (see the module docstring).

    Raises:
        TemplateError: a template is unknown or malformed (see :func:`check_templates`).
    """

    def __init__(
        self,
        agency: str,
        tz: tzinfo,
        templates: Mapping[str, str] | None = None,
        help_text: str | None = None,
        language: str = DEFAULT_LANGUAGE,
    ) -> None:
        self.agency = agency
        self.tz = tz
        self.language = language_of(language) or DEFAULT_LANGUAGE
        self.templates: Mapping[str, str] = dict(templates or {})
        check_templates(self.templates)
        self.help_text = help_text
        self._defaults = _DEFAULTS[self.language]
        # Texts about a shift with nothing but the shift in them ("declined, thanks", "no
        # longer available"…), by template and shift: a burst of answers renders each once.
        self._rendered: dict[tuple[str, ShiftRow, int], str] = {}

    @property
    def voice_language(self) -> str:
        """The TwiML ``<Say language>`` of this language, e.g. ``es-US``."""
        return VOICE_LANGUAGES[self.language]

    def window(self, shift: ShiftRow | Shift) -> str:
        """e.g. "Wed Jul 2, 08:00-16:00" in the agency's time zone."""
        start, end = shift.start_time.astimezone(self.tz), shift.end_time.astimezone(self.tz)
        return _window(start, end, self.language)

    # -- offers and answers

    def offer_sms(self, shift: ShiftRow, code: int, *, first: bool = False) -> str:
        """The offer; `first` (the first text to this phone) ends with the opt-out hint."""
        hint = self.opt_out_hint()
        text = self._render("offer_sms", shift, room=SMS_ROOM - 1 - len(hint), code=code)
        return f"{text} {hint}" if first else text

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
        """Her open `offers` (as many as fit; "+3 more" for the rest) and how to take one."""
        return self._render_list("choose", offers)

    def unknown_code(self, code: int, offers: Sequence[tuple[ShiftRow, int]]) -> str:
        """`code` is none of the caregiver's open `offers`, which are listed."""
        return self._render_list("unknown_code", offers, code=code)

    def not_offered(self, offers: Sequence[tuple[ShiftRow, int]]) -> str:
        """The caregiver named a shift she was not offered; her open `offers` are listed."""
        return self._render_list("not_offered", offers)

    def which_release(self, held: Sequence[tuple[ShiftRow, int]]) -> str:
        """Asks a caregiver holding several upcoming shifts which one to release."""
        return self._render_list("which_release", held)

    def offers_page(self, offers: Sequence[tuple[ShiftRow, int]], page: int) -> str:
        """Page `page` (from 1; past the last: the last) of her open `offers` (at least one),
        as many on each page as fit one segment, answering LIST / LIST 2."""
        entries = [self._entry(shift, code) for shift, code in offers]
        template = self._template("offers_page")
        pages, start = [], 0
        while start < len(entries):
            size = 1  # at least one a page; then as many more as fit
            while start + size < len(entries):
                fields = {"agency": self.agency, "example": offers[start][1], "page": 99}
                fields |= {"pages": 99, "offers": "; ".join(entries[start : start + size + 1])}
                if sms.units(sms.to_gsm7(template.format_map(fields))) > SMS_ROOM:
                    break
                size += 1
            pages.append((start, size))
            start += size
        number = min(max(page, 1), len(pages))
        first, size = pages[number - 1]
        fields = {"agency": self.agency, "example": offers[first][1], "page": number}
        fields["pages"] = len(pages)
        shown = entries[first : first + size]
        return fit(template, fields, SMS_ROOM, shown, _WORDS[self.language])

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

    def unfilled(self, shift: ShiftRow, contacted: int, link: str | None = None) -> str:
        """To the coordinator: nobody took ``shift``; ``contacted`` caregivers were asked."""
        return self.coordinator("unfilled", shift, contacted, link)

    def notice_lost(
        self, shift: ShiftRow, purpose: str, caregiver_id: str, link: str | None = None
    ) -> str:
        """To the coordinator: the holder's notice of `purpose` (confirm, released,
        shift_cancelled) could not be sent to `caregiver_id`."""
        words = _WORDS[self.language]
        ref = f"{words['shift']} {shift.id}"
        return self._render(
            "coordinator_notice_lost",
            shift,
            contacted=0,
            shift_id=shift.id,
            link=link or "",
            _ref=f"{ref}: {link}" if link else f"{ref}.",
            notice=words.get(purpose, purpose),
            caregiver=caregiver_id,
        )

    def coordinator(
        self, notice: str, shift: ShiftRow, contacted: int, link: str | None = None
    ) -> str:
        """To the coordinator about ``shift`` (``notice``: ``unfilled``, ``no_accept``,
        ``closing`` or ``released``): its id, role, local start and, given, the ``link``."""
        name = notice if notice == "unfilled" else f"coordinator_{notice}"
        closes = (shift.expires_at or shift.start_time).astimezone(self.tz)
        word = _WORDS[self.language]["shift"]
        return self._render(
            name,
            shift,
            contacted=contacted,
            shift_id=shift.id,
            link=link or "",
            _ref=f"{word} {shift.id}: {link}" if link else f"{word} {shift.id}.",
            closes=_hm(closes),
        )

    # -- compliance keywords

    def opted_out(self) -> str:
        return self._render("opted_out")

    def opted_in(self) -> str:
        return self._render("opted_in")

    def opt_out_hint(self) -> str:
        """How to stop texts, as the first text to a phone ends."""
        return self._render("opt_out_hint")

    def help(self) -> str:
        if self.help_text is not None:
            return sms.cut(sms.to_gsm7(self.help_text), SMS_ROOM)
        return self._render("help")

    # -- a call

    def spoken(self, name: str) -> str:
        """The voice prompt ``voice_<name>`` (``press_again``, ``claimed``, ``otherwise``…)."""
        return self._render(f"voice_{name}")

    # -- rendering

    def _template(self, name: str) -> str:
        return self.templates.get(name) or self._defaults[name]

    def _render(
        self, name: str, shift: ShiftRow | None = None, *, room: int = SMS_ROOM, **extra: object
    ) -> str:
        if shift is not None and not extra:
            key = (name, shift, room)
            text = self._rendered.get(key)
            if text is None:
                if len(self._rendered) >= _RENDERED_KEPT:
                    self._rendered.clear()
                text = self._rendered[key] = self._render_now(name, shift, room)
            return text
        return self._render_now(name, shift, room, **extra)

    def _render_now(self, name: str, shift: ShiftRow | None, room: int, **extra: object) -> str:
        if shift is None:
            fields: dict[str, object] = {"agency": self.agency}
        else:
            fields = _shift_fields(
                self.agency,
                shift.role_required,
                shift.start_time.astimezone(self.tz),
                shift.end_time.astimezone(self.tz),
                shift.location,
                self.language,
            )
        fields.update(extra)
        contacted = extra.get("contacted")
        if isinstance(contacted, int):
            fields["_caregivers"] = _caregivers(contacted, self.language)
        template = self._template(name)
        if name in SPOKEN:
            return template.format_map(fields)
        if name in TO_COORDINATOR:
            return sms.to_gsm7(template.format_map(fields))
        return fit(template, fields, room)

    def _render_list(self, name: str, offers: Sequence[tuple[ShiftRow, int]], **extra: int) -> str:
        entries = [self._entry(shift, code) for shift, code in offers]
        fields: dict[str, object] = {
            "agency": self.agency,
            "example": offers[0][1] if offers else "",
            **extra,
        }
        return fit(self._template(name), fields, SMS_ROOM, entries, _WORDS[self.language])

    def _entry(self, shift: ShiftRow, code: int) -> str:
        start = shift.start_time.astimezone(self.tz)
        return f"{code}: {shift.role_required} {_date(start, self.language)} {_hm(start)}"


_RENDERED_KEPT = 4096


def fit(
    template: str,
    fields: Mapping[str, object],
    room: int = SMS_ROOM,
    entries: Sequence[str] | None = None,
    words: Mapping[str, str] = _WORDS[DEFAULT_LANGUAGE],
) -> str:
    """`template` rendered with `fields` as one GSM-7 segment of at most `room` septets:
    transliterated to GSM-7; then, while too long, a list of `entries` (the ``offers``
    field) shows fewer of them ("+2 more"), the place is shortened with "..." (or dropped),
    the agency name, then the role are shortened with "..." (down to a few letters), and at
    last the text is cut."""
    return _fit(template, fields, room, entries, words)[0]


def _fit(
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
    order += ["offers", "example", "shift_id", "link", "closes"]
    return ", ".join(f for f in order if f in fields)


# --------------------------------------------------------------------------- segment warnings

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
    shift_fields = _shift_fields(
        agency, _LONGEST_ROLE, _SAMPLE_START, _SAMPLE_END, _LONGEST_PLACE, language
    )
    shift_fields.update(code=_LONGEST_CODE, contacted=_SAMPLE_CONTACTED)
    shift_fields["_caregivers"] = _caregivers(_SAMPLE_CONTACTED, language)
    entry = f"{_LONGEST_CODE}: {_LONGEST_ROLE} {_date(_SAMPLE_START, language)} 23:00"
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
        _, note = _fit(template, fields, room, entries, _WORDS[language])
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


# --------------------------------------------------------------------------- fields


def _shift_fields(
    agency: str,
    role: str,
    start: datetime,
    end: datetime,
    place: str | None,
    language: str = DEFAULT_LANGUAGE,
) -> dict[str, object]:
    article = _article(role)
    return {
        "agency": agency,
        "role": role,
        "date": _date(start, language),
        "start": _hm(start),
        "end": _hm(end),
        "window": _window(start, end, language),
        "place": place or "",
        "_place": f" ({place})" if place else "",
        "_a_role": f"{article.capitalize()} {role}",
        "_a_role_lower": f"{article} {role}",
    }


def _caregivers(contacted: int, language: str = DEFAULT_LANGUAGE) -> str:
    word = _WORDS[language]["caregiver" if contacted == 1 else "caregivers"]
    return f"{contacted} {word}"


def _article(role: str) -> str:
    """The article before `role` as it is read aloud: an RN, an LPN, an HHA, a CNA (an
    initialism is read letter by letter), an aide, a nurse."""
    if role.isupper():
        return "an" if role[:1] in "AEFHILMNORSX" else "a"
    return "an" if role[:1].lower() in "aeiou" else "a"


def _date(at: datetime, language: str = DEFAULT_LANGUAGE) -> str:
    day = _DAYS[language].split()[at.weekday()]
    month = _MONTHS[language].split()[at.month - 1]
    return f"{day} {month} {at.day}" if language == "en" else f"{day} {at.day} {month}"


def _window(start: datetime, end: datetime, language: str = DEFAULT_LANGUAGE) -> str:
    return f"{_date(start, language)}, {_hm(start)}-{_hm(end)}"


def _hm(at: datetime) -> str:
    return f"{at:%H:%M}"
