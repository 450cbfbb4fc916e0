"""Per-organization outreach settings, resolved once from the configuration.

A shift's `organization_id` selects `organizations.<id>` in the configuration; every key it
leaves out comes from `organizations.default`, then from the built-in defaults (the top-level
`agency_name`, `timezone` and `escalation.delay`). Organizations nobody configured get the
resolved default, so an imported roster with unknown organization ids just works.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from .config import Config, CoordinatorConfig, OrganizationConfig
from .messages import Messages
from .policy import QuietHours, Wave, default_steps, dump_plan, plan

DEFAULT = "default"


@dataclass(frozen=True, slots=True)
class Organization:
    """Everything an actor needs to know about how its shift's organization reaches out."""

    id: str
    messages: Messages
    waves: tuple[Wave, ...]
    plan: str
    """`waves` as stored with each fanout (see `policy.dump_plan`)."""
    tz: tzinfo
    offer_lead_time: timedelta
    travel_buffer: timedelta
    voice_after_opt_out: bool
    quiet_hours: QuietHours | None
    coordinator: CoordinatorConfig | None


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
        # Templates merge name by name: an organization may reword one text only.
        templates = {
            **(fallback.templates if fallback is not None else {}),
            **(own.templates if own is not None else {}),
        }
        return Organization(
            id=org_id,
            messages=Messages(pick("name") or config.agency_name, tz, templates, pick("help_text")),
            waves=waves,
            plan=dump_plan(waves),
            tz=tz,
            offer_lead_time=pick("offer_lead_time"),
            travel_buffer=pick("travel_buffer"),
            voice_after_opt_out=pick("voice_after_opt_out"),
            quiet_hours=QuietHours.from_config(quiet, tz) if quiet is not None else None,
            coordinator=pick("coordinator"),
        )
