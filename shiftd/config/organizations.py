"""Per-organization outreach: policy steps, quiet hours, the coordinator, templates."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator

from ..models import CaregiverChannel, normalize_phone
from .sections import Section
from .values import ClockTime, Duration, StrictBool, StrictInt, Tag, check_timezone


class RepeatConfig(Section):
    """Run a step again: ``times`` more rounds, ``every`` apart."""

    every: Duration
    times: StrictInt = Field(default=1, ge=1, le=10)

    @field_validator("every")
    @classmethod
    def _every_positive(cls, every: timedelta) -> timedelta:
        if every <= timedelta(0):
            raise ValueError("every must be longer than 0s")
        return every


class StepConfig(Section):
    """One wave of an escalation policy: at ``at`` after the fanout starts, contact
    ``audience`` (restricted to ``tags`` if given) over ``channel``."""

    at: Duration
    channel: CaregiverChannel
    audience: Literal["all", "offered"] = "all"
    """``all``: everyone with the role who may take the shift; ``offered``: only those an
    earlier step reached who have not declined."""
    tags: tuple[Tag, ...] = ()
    """Only caregivers carrying at least one of these roster tags."""
    repeat: RepeatConfig | None = None


class QuietHoursConfig(Section):
    """No contact on ``channels`` between ``start`` and ``end`` (local time; may span
    midnight), unless the shift starts within ``unless_starts_within``."""

    start: ClockTime
    end: ClockTime
    channels: tuple[CaregiverChannel, ...] = ("voice",)
    unless_starts_within: Duration = timedelta(0)


class CoordinatorConfig(Section):
    """Who hears about a shift that needs them (it ended unfilled, its holder dropped it,
    and, when set, nobody accepted in time or its offers close soon): a phone (texted), a
    webhook, or both."""

    phone: str | None = None
    webhook: str | None = None
    webhook_secret_file: str | None = None
    """Signs each webhook (HMAC-SHA256, see README): a file, or a name in
    $CREDENTIALS_DIRECTORY. Unset: webhooks go unsigned."""
    email: str | None = Field(default=None, pattern=r"^[^@\s<>,]+@[^@\s<>,]+$", max_length=254)
    """An address mailed over `smtp` (required then)."""
    no_accept_after: Duration | None = None
    """Told when nobody has accepted a shift this long after its fanout started. Unset: not."""
    warn_before_close: Duration | None = None
    """Told when a shift is still open this long before its offers close. Unset: not."""

    @field_validator("phone")
    @classmethod
    def _phone(cls, phone: str | None) -> str | None:
        return None if phone is None else normalize_phone(phone)

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, url: str | None) -> str | None:
        if url is not None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("must be an http:// or https:// URL")
        return url


class OrganizationConfig(Section):
    """How shiftd reaches out for one organization's shifts. A key left out falls back to
    ``organizations.default``, then to the built-in default."""

    name: str | None = Field(default=None, min_length=1, max_length=40)
    """Agency name at the start of every text (default: ``agency_name``)."""
    timezone: str | None = None
    """Local time zone for texts and quiet hours (default: ``timezone``)."""
    policy: tuple[StepConfig, ...] | None = Field(default=None, max_length=20)
    """The escalation policy (default: SMS to all at 0s, calls at ``escalation.delay``)."""
    offer_lead_time: Duration = timedelta(0)
    """Offers close this long before the shift starts; an unclaimed shift is then unfilled."""
    travel_buffer: Duration = timedelta(0)
    """Shifts held by one caregiver must be at least this far apart."""
    coordinator: CoordinatorConfig | None = None
    help_text: str | None = Field(default=None, min_length=1, max_length=300)
    """The answer to HELP/INFO (default: the agency name and how to opt out)."""
    voice_after_opt_out: StrictBool = False
    """Whether voice steps still call a caregiver who opted out of SMS."""
    quiet_hours: QuietHoursConfig | None = None
    language: str | None = None
    """The language of the organization's texts, and of caregivers whose roster sets none
    (BCP 47, built in: ``en``, ``es``; default ``en``)."""
    templates: dict[str, str] = Field(default_factory=dict)
    """Message texts in the organization's ``language`` by name (see ``shiftd.messages``);
    unset names keep the built-in text."""
    templates_by_language: dict[str, dict[str, str]] = Field(default_factory=dict)
    """Message texts by language (``en``, ``es``), then by name: for caregivers who read
    another language than the organization's, or to reword both."""

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str | None) -> str | None:
        return None if name is None else check_timezone(name)

    @field_validator("language")
    @classmethod
    def _built_in_language(cls, tag: str | None) -> str | None:
        return None if tag is None else _check_language(tag)

    @field_validator("templates")
    @classmethod
    def _usable_templates(cls, templates: dict[str, str]) -> dict[str, str]:
        """Known names, known fields, paired braces; each problem is reported at its own
        ``templates.<name>`` key."""
        _raise_template_problems("templates", templates, ())
        return templates

    @field_validator("templates_by_language")
    @classmethod
    def _usable_language_templates(
        cls, by_language: dict[str, dict[str, str]]
    ) -> dict[str, dict[str, str]]:
        for tag, templates in by_language.items():
            _check_language(tag)
            _raise_template_problems("templates_by_language", templates, (tag,))
        return {_check_language(tag): templates for tag, templates in by_language.items()}


def _check_language(tag: str) -> str:
    """The built-in language `tag` names ("es-MX" → "es"); ValueError for any other."""
    from ..messages import LANGUAGES, language_of

    language = language_of(tag)
    if language is None:
        raise ValueError(f"no built-in texts in {tag!r} (built in: {', '.join(LANGUAGES)})")
    return language


def _raise_template_problems(title: str, templates: dict[str, str], at: tuple[str, ...]) -> None:
    """Raise a ValidationError with one error per template problem, at `at` + its name."""
    from pydantic_core import PydanticCustomError

    from ..messages import template_problems

    problems = template_problems(templates)
    if problems:
        raise ValidationError.from_exception_data(
            title,
            [
                {
                    "type": PydanticCustomError("value_error", "{error}", {"error": what}),
                    "loc": (*at, name),
                    "input": templates[name],
                }
                for name, what in problems
            ],
        )
