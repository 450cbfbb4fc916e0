"""Per-organization outreach settings, resolved once from the configuration.

A shift's `organization_id` selects `organizations.<id>` in the configuration; every key it
leaves out comes from `organizations.default`, then from the built-in defaults (the top-level
`agency_name`, `timezone` and `escalation.delay`). Organizations nobody configured get the
resolved default, so an imported roster with unknown organization ids just works.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from ..config import Config, CoordinatorConfig, OrganizationConfig
from ..messages import DEFAULT_LANGUAGE, LANGUAGES, Messages, language_of
from .policy import QuietHours, Wave, default_steps, dump_plan, plan

DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class Organization:
    """Everything an actor needs to know about how its shift's organization reaches out."""

    id: str
    messages: Messages
    """The texts in the organization's own language."""
    waves: tuple[Wave, ...]
    plan: str
    """`waves` as stored with each fanout (see `policy.dump_plan`)."""
    tz: tzinfo
    offer_lead_time: timedelta
    travel_buffer: timedelta
    voice_after_opt_out: bool
    quiet_hours: QuietHours | None
    coordinator: CoordinatorConfig | None
    translations: Mapping[str, Messages] = field(default_factory=dict)
    """The texts in every built-in language, by language."""

    def messages_for(self, language: str | None) -> Messages:
        """The texts a caregiver whose roster says `language` (BCP 47, or None) reads: her
        language if shiftd has texts in it, else the organization's."""
        return self.translations.get(language_of(language) or "", self.messages)


class Organizations:
    """Resolves and caches `Organization`s by id. Never raises for an unknown id."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._cache: dict[str, Organization] = {}

    def get(self, org_id: str) -> Organization:
        org = self._cache.get(org_id)
        if org is None:
            key = org_id if org_id in self._config.organizations else DEFAULT
            org = self._cache.get(key) or self._resolve(key)
            self._cache[key] = self._cache[org_id] = org
        return org

    def _resolve(self, org_id: str) -> Organization:
        config = self._config
        own = config.organizations.get(org_id)
        fallback = config.organizations.get(DEFAULT)

        def pick(name: str) -> Any:
            for layer in (own, fallback):
                if layer is not None and name in layer.model_fields_set:
                    return getattr(layer, name)
            return OrganizationConfig.model_fields[name].get_default(call_default_factory=True)

        tz = ZoneInfo(pick("timezone") or config.timezone)
        waves = plan(pick("policy") or default_steps(config.escalation.delay))
        quiet = pick("quiet_hours")
        language = pick("language") or DEFAULT_LANGUAGE
        name, help_text = pick("name") or config.agency_name, pick("help_text")
        translations = {}
        for lang in LANGUAGES:
            # Templates merge name by name: an organization may reword one text only.
            templates: dict[str, str] = {}
            for layer in (fallback, own):
                if layer is None:
                    continue
                layer_language = layer.language or language
                if lang == layer_language:
                    templates.update(layer.templates)
                templates.update(layer.templates_by_language.get(lang, {}))
            # A help_text is written in one language: the organization's.
            translations[lang] = Messages(
                name, tz, templates, help_text if lang == language else None, lang
            )
        return Organization(
            id=org_id,
            messages=translations[language],
            translations=translations,
            waves=waves,
            plan=dump_plan(waves),
            tz=tz,
            offer_lead_time=pick("offer_lead_time"),
            travel_buffer=pick("travel_buffer"),
            voice_after_opt_out=pick("voice_after_opt_out"),
            quiet_hours=QuietHours.from_config(quiet, tz) if quiet is not None else None,
            coordinator=pick("coordinator"),
        )
