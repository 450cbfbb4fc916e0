"""What the HTTP interface needs from the configuration, with its secrets read once."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from ..config import Config, HttpConfig
from ..credentials import read_secret
from ..logs import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class HttpSettings:
    """Resolved `http` settings. Secrets never appear in `repr` (nor in logs)."""

    api_token: str | None = field(default=None, repr=False)
    """The REST API's bearer token; None: the REST API answers 401."""
    organization_tokens: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    """(organization id, token): tokens that reach one organization's shifts only."""
    twilio_tokens: tuple[str, ...] = field(default=(), repr=False)
    """Auth tokens a webhook signature may be made with: current first, then previous."""
    public_url: str | None = None
    verify_signatures: bool = True
    max_body: int = 64 * 1024
    request_timeout: float = 30.0
    keep_alive_timeout: float = 60.0
    """Seconds a connection may go without a request (before its first one, between two)."""
    session_idle: timedelta = timedelta(hours=1)
    signin_max_failures: int = 5
    signin_lockout: timedelta = timedelta(minutes=15)

    @classmethod
    def from_config(cls, config: Config) -> HttpSettings:
        """Read the token files named in `config.http` (and the notifier's Twilio token).

        Raises CredentialError (naming the file, never the secret) if one cannot be read.
        """
        http = config.http or HttpConfig()
        api_token = read_secret(http.token_file) if http.token_file is not None else None
        tokens: list[str] = []
        current = http.twilio_auth_token_file or _notifier_token_file(config.notifier)
        if current is not None:
            tokens.append(read_secret(current))
        if http.twilio_auth_token_previous_file is not None:
            tokens.append(read_secret(http.twilio_auth_token_previous_file))
        org_tokens = tuple((org, read_secret(f)) for org, f in http.organization_tokens.items())
        return cls(
            api_token=api_token,
            organization_tokens=org_tokens,
            twilio_tokens=tuple(tokens),
            public_url=http.public_url,
            verify_signatures=http.verify_signatures,
            max_body=http.max_body,
            request_timeout=http.request_timeout.total_seconds(),
            keep_alive_timeout=http.keep_alive_timeout.total_seconds(),
            session_idle=http.session_idle_timeout,
            signin_max_failures=http.signin_max_failures,
            signin_lockout=http.signin_lockout,
        )

    def log_warnings(self) -> None:
        """Say at start what is off, and why."""
        if self.api_token is None:
            log.warning("http.rest_disabled", reason="no http.token_file: REST answers 401")
        if not self.verify_signatures:
            log.warning(
                "http.signatures_unchecked",
                reason="http.verify_signatures is false: anyone can post webhooks",
            )
        elif not self.twilio_tokens:
            log.warning(
                "http.webhooks_disabled",
                reason="no Twilio auth token to check signatures with: webhooks answer 403",
            )


def _notifier_token_file(notifier: Any) -> Any:
    """The Twilio notifier's auth token file, if the notifier is Twilio (read loosely: the
    notifier's configuration is another module's business)."""
    if getattr(notifier, "kind", None) != "twilio":
        return None
    return getattr(notifier, "auth_token_file", None)
