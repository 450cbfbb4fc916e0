"""`Messages`: every text and call script of an organization, rendered in a language."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import tzinfo
from typing import TYPE_CHECKING

from ..models import Purpose
from . import sms
from .catalogue import DEFAULTS, WORDS
from .fields import count_caregivers, date_of, fields_for_shift, hm, window_of
from .fitting import RENDERED_KEPT, SMS_ROOM, fit
from .languages import DEFAULT_LANGUAGE, VOICE_LANGUAGES, language_of
from .templates import NOT_ELIGIBLE_REASONS, SPOKEN, TO_COORDINATOR, check_templates

if TYPE_CHECKING:
    from ..models import Shift
    from ..store.base import ShiftRow


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
        self._defaults = DEFAULTS[self.language]
        # Texts about a shift with nothing but the shift in them ("declined, thanks", "no
        # longer available"…), by template and shift: a burst of answers renders each once;
        # and texts about no shift (the opt-out hint every first offer ends with).
        self._rendered: dict[tuple[str, ShiftRow | None, int], str] = {}
        # A shift's fields, by shift: a wave's offers differ only in their reply codes.
        self._fields: dict[ShiftRow, dict[str, object]] = {}

    @property
    def voice_language(self) -> str:
        """The TwiML ``<Say language>`` of this language, e.g. ``es-US``."""
        return VOICE_LANGUAGES[self.language]

    def window(self, shift: ShiftRow | Shift) -> str:
        """e.g. "Wed Jul 2, 08:00-16:00" in the agency's time zone."""
        start, end = shift.start_time.astimezone(self.tz), shift.end_time.astimezone(self.tz)
        return window_of(start, end, self.language)

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
        return fit(template, fields, SMS_ROOM, shown, WORDS[self.language])

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
        words = WORDS[self.language]
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
        name = notice if notice == Purpose.UNFILLED else f"coordinator_{notice}"
        closes = (shift.expires_at or shift.start_time).astimezone(self.tz)
        word = WORDS[self.language]["shift"]
        return self._render(
            name,
            shift,
            contacted=contacted,
            shift_id=shift.id,
            link=link or "",
            _ref=f"{word} {shift.id}: {link}" if link else f"{word} {shift.id}.",
            closes=hm(closes),
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
        if not extra:
            key = (name, shift, room)
            text = self._rendered.get(key)
            if text is None:
                if len(self._rendered) >= RENDERED_KEPT:
                    self._rendered.clear()
                text = self._rendered[key] = self._render_now(name, shift, room)
            return text
        return self._render_now(name, shift, room, **extra)

    def _render_now(self, name: str, shift: ShiftRow | None, room: int, **extra: object) -> str:
        if shift is None:
            fields: dict[str, object] = {"agency": self.agency}
        else:
            fields = dict(self._shift_fields(shift))
        fields.update(extra)
        contacted = extra.get("contacted")
        if isinstance(contacted, int):
            fields["_caregivers"] = count_caregivers(contacted, self.language)
        template = self._template(name)
        if name in SPOKEN:
            return template.format_map(fields)
        if name in TO_COORDINATOR:
            return sms.to_gsm7(template.format_map(fields))
        return fit(template, fields, room)

    def _shift_fields(self, shift: ShiftRow) -> dict[str, object]:
        fields = self._fields.get(shift)
        if fields is None:
            if len(self._fields) >= RENDERED_KEPT:
                self._fields.clear()
            fields = self._fields[shift] = fields_for_shift(
                self.agency,
                shift.role_required,
                shift.start_time.astimezone(self.tz),
                shift.end_time.astimezone(self.tz),
                shift.location,
                self.language,
            )
        return fields

    def _render_list(self, name: str, offers: Sequence[tuple[ShiftRow, int]], **extra: int) -> str:
        entries = [self._entry(shift, code) for shift, code in offers]
        fields: dict[str, object] = {
            "agency": self.agency,
            "example": offers[0][1] if offers else "",
            **extra,
        }
        return fit(self._template(name), fields, SMS_ROOM, entries, WORDS[self.language])

    def _entry(self, shift: ShiftRow, code: int) -> str:
        start = shift.start_time.astimezone(self.tz)
        return f"{code}: {shift.role_required} {date_of(start, self.language)} {hm(start)}"
