"""The whole configuration (`Config`), all defaults when empty."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator

from .organizations import OrganizationConfig
from .sections import (
    ActorConfig,
    ClusterConfig,
    ConsoleNotifierConfig,
    ControlConfig,
    EscalationConfig,
    HttpConfig,
    LogConfig,
    NotifierConfig,
    RepliesConfig,
    RetentionConfig,
    Section,
    SenderConfig,
    ShutdownConfig,
    SmtpConfig,
    StoreConfig,
)
from .values import Tag, check_timezone

_CLASSIFIER_RE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


class Config(Section):
    """The whole daemon configuration. ``Config()`` is the all-defaults configuration."""

    state_dir: Path = Path("./state")
    control_socket: Path | None = None
    timezone: str = "UTC"
    agency_name: str = Field(default="shiftd", min_length=1, max_length=40)
    classifier: str = "shiftd.inbound.intent:DefaultClassifier"
    escalation: EscalationConfig = Field(default_factory=EscalationConfig)
    notifier: NotifierConfig = Field(default_factory=ConsoleNotifierConfig)
    sender: SenderConfig = Field(default_factory=SenderConfig)
    store: StoreConfig = Field(default_factory=StoreConfig)
    cluster: ClusterConfig | None = None
    """Run as one of several instances on ``store.url``; absent (the default): alone."""
    control: ControlConfig = Field(default_factory=ControlConfig)
    actor: ActorConfig = Field(default_factory=ActorConfig)
    replies: RepliesConfig = Field(default_factory=RepliesConfig)
    retention: RetentionConfig = Field(default_factory=RetentionConfig)
    smtp: SmtpConfig | None = None
    """The mail server for coordinators' `email`; absent (the default): no email."""
    shutdown: ShutdownConfig = Field(default_factory=ShutdownConfig)
    log: LogConfig = Field(default_factory=LogConfig)
    http: HttpConfig | None = None
    """The HTTP listener; absent (the default): no HTTP at all."""
    caregiver_tags: tuple[Tag, ...] = ()
    """The roster tags policies may name (so a typo in a policy is caught here)."""
    roles: tuple[Annotated[str, Field(min_length=1, max_length=32)], ...] = ()
    """The roles caregivers and shifts may have, as they are to be spelled (`RN`, `LPN`…);
    imports match them case-insensitively and refuse any other. Empty: any role, upper-cased."""
    organizations: dict[str, OrganizationConfig] = Field(default_factory=dict)
    """Per-organization outreach, keyed by the shifts' ``organization_id``; ``default``
    applies to every organization without an entry of its own."""

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, name: str) -> str:
        return check_timezone(name)

    @field_validator("agency_name")
    @classmethod
    def _printable_agency_name(cls, name: str) -> str:
        if not name.strip() or not name.isprintable():
            raise ValueError(f"must be printable text on one line, not blank (got {name!r})")
        return name

    @field_validator("roles")
    @classmethod
    def _distinct_roles(cls, roles: tuple[str, ...]) -> tuple[str, ...]:
        seen: set[str] = set()
        for role in roles:
            key = " ".join(role.split()).casefold()
            if not key:
                raise ValueError("a role must not be blank")
            if key in seen:
                raise ValueError(f"role {role!r} is listed twice (roles ignore case)")
            seen.add(key)
        return roles

    @field_validator("classifier")
    @classmethod
    def _classifier_reference(cls, ref: str) -> str:
        if _CLASSIFIER_RE.fullmatch(ref) is None:
            raise ValueError(f'must look like "package.module:Name" (got {ref!r})')
        return ref

    @property
    def socket_path(self) -> Path:
        """The control socket: ``control_socket`` if set, else ``state_dir / "control.sock"``."""
        if self.control_socket is not None:
            return self.control_socket
        return self.state_dir / "control.sock"

    @property
    def tz(self) -> ZoneInfo:
        """The agency's time zone (validated when the configuration was loaded)."""
        return ZoneInfo(self.timezone)
