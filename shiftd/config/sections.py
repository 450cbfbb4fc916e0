"""The daemon's configuration sections: notifiers, sender, store, control, HTTP, logs..."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator

from ..store.url import check_url
from .values import Duration, StrictBool, StrictInt, StrictRate


class Section(BaseModel):
    """Base of every configuration model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EscalationConfig(Section):
    """When an unanswered fanout escalates from texts to phone calls."""

    delay: Duration = timedelta(minutes=10)
    jitter: Duration = timedelta(0)
    """Spreads escalation deadlines by up to this much, so many shifts do not fire at once."""
    call_gap: Duration = timedelta(minutes=2)
    """A caregiver is phoned at most once within this gap: when several of her offers
    escalate together, their calls go out this far apart (one call, one shift)."""

    @field_validator("jitter")
    @classmethod
    def _jitter_within_delay(cls, jitter: timedelta, info: ValidationInfo) -> timedelta:
        delay = info.data.get("delay")
        if delay is not None and jitter > delay:
            raise ValueError(f"jitter ({jitter}) must not exceed delay ({delay})")
        return jitter


class ConsoleNotifierConfig(Section):
    """Print every outbound message (for people trying shiftd out)."""

    kind: Literal["console"] = "console"


class RecordNotifierConfig(Section):
    """Append every outbound message as one JSON line to ``path`` (audit trail, test oracle)."""

    kind: Literal["record"] = "record"
    path: Path


_ACCOUNT_SID_RE = re.compile(r"AC[0-9a-fA-F]{32}")
_E164_RE = re.compile(r"\+[1-9][0-9]{1,14}")
_HTTP_BASE_RE = re.compile(r"https?://[^/?#\s]+(?:/[^?#\s]*)?")
_TWILIO_API = "https://api.twilio.com"


def _number_list(value: object) -> object:
    """Phone numbers come as a YAML list; anything else is refused before item checks."""
    if not isinstance(value, list | tuple):
        raise ValueError('must be a list of quoted numbers, e.g. ["+15550100001"]')
    return value


class TwilioNotifierConfig(Section):
    """Send through Twilio's REST API (or anything speaking its slice of it, see ``api_base``).

    The auth token is never written here: ``auth_token_file`` names a file holding it, or a
    bare name looked up in systemd's ``$CREDENTIALS_DIRECTORY`` (``LoadCredential=``).
    """

    kind: Literal["twilio"] = "twilio"
    account_sid: str
    """The account SID: ``AC`` and 32 hexadecimal digits. Not a secret; the username."""
    auth_token_file: str = Field(min_length=1)
    from_numbers: Annotated[tuple[str, ...], BeforeValidator(_number_list)]
    """The agency's Twilio numbers, E.164 and quoted (``"+15550100001"``); they share the load."""
    api_base: str = _TWILIO_API
    """Where the REST API is (tests and staging point it at a fake)."""
    rate_per_second: StrictRate = Field(default=1.0, gt=0, le=1000)
    """Texts per second from each number."""
    burst: StrictInt = Field(default=1, ge=1, le=100)
    """Texts a number may send at once after a quiet spell (before ``rate_per_second`` applies)."""
    calls_per_second: StrictRate = Field(default=1.0, gt=0, le=1000)
    """Calls started per second for the whole account (Twilio's CPS)."""
    validity_period: Duration = timedelta(minutes=15)
    """How long Twilio may keep an offer queued before dropping it (1s-10h)."""
    connect_timeout: Duration = timedelta(seconds=5)
    """Longest wait to connect to the API (nothing sent: the message is retried)."""
    request_timeout: Duration = timedelta(seconds=8)
    """Longest wait to send a request and read its answer (no answer: failed, never
    re-sent). Keep it below ``sender.timeout``."""

    @field_validator("account_sid")
    @classmethod
    def _account_sid_shape(cls, sid: str) -> str:
        if _ACCOUNT_SID_RE.fullmatch(sid) is None:
            raise ValueError(f"must be AC followed by 32 hexadecimal digits (got {sid!r})")
        return sid

    @field_validator("from_numbers")
    @classmethod
    def _e164_numbers(cls, numbers: tuple[str, ...]) -> tuple[str, ...]:
        if not 1 <= len(numbers) <= 1000:
            raise ValueError(f"list between 1 and 1000 numbers (got {len(numbers)})")
        for number in numbers:
            if _E164_RE.fullmatch(number) is None:
                raise ValueError(
                    f"{number!r} is not an E.164 number: write it as '+' and up to 15 digits,"
                    ' quoted, e.g. "+15550100001"'
                )
        if len(set(numbers)) != len(numbers):
            raise ValueError("each number may be listed only once")
        return numbers

    @field_validator("api_base")
    @classmethod
    def _http_base(cls, base: str) -> str:
        if _HTTP_BASE_RE.fullmatch(base) is None:
            raise ValueError(f"must be an http(s) URL without query, e.g. {_TWILIO_API!r}")
        return base.rstrip("/")

    @field_validator("validity_period")
    @classmethod
    def _validity_within_twilio_bounds(cls, period: timedelta) -> timedelta:
        if not timedelta(seconds=1) <= period <= timedelta(hours=10):
            raise ValueError(f"must be between 1s and 10h (Twilio's bounds; got {period})")
        return period

    @field_validator("connect_timeout", "request_timeout")
    @classmethod
    def _timeout_positive(cls, timeout: timedelta) -> timedelta:
        if timeout <= timedelta(0):
            raise ValueError("must be longer than 0s")
        return timeout


NotifierConfig = Annotated[
    ConsoleNotifierConfig | RecordNotifierConfig | TwilioNotifierConfig,
    Field(discriminator="kind"),
]
"""The provider plug-in, chosen by its ``kind`` key."""


class SenderConfig(Section):
    """How the outbox is drained to the provider."""

    concurrency: StrictInt = Field(default=16, ge=1, le=1000)
    max_attempts: StrictInt = Field(default=5, ge=1, le=100)
    backoff_initial: Duration = timedelta(seconds=1)
    backoff_max: Duration = timedelta(minutes=5)
    timeout: Duration = timedelta(seconds=10)

    @field_validator("backoff_max")
    @classmethod
    def _max_not_below_initial(cls, backoff_max: timedelta, info: ValidationInfo) -> timedelta:
        initial = info.data.get("backoff_initial")
        if initial is not None and backoff_max < initial:
            raise ValueError(
                f"backoff_max ({backoff_max}) must not be below backoff_initial ({initial})"
            )
        return backoff_max

    @field_validator("timeout")
    @classmethod
    def _timeout_positive(cls, timeout: timedelta) -> timedelta:
        if timeout <= timedelta(0):
            raise ValueError("timeout must be longer than 0s")
        return timeout


class StoreConfig(Section):
    """Where shiftd keeps its state: SQLite in ``state_dir`` (the default), or PostgreSQL."""

    url: str | None = Field(default=None, repr=False)
    """A PostgreSQL URL (``postgresql://user@host:5432/db``): the store is that database.
    None: SQLite in ``state_dir``. A password may be in it (never logged or shown), or in
    ~/.pgpass or $PGPASSWORD."""
    synchronous: Literal["normal", "full"] = "normal"
    """SQLite only."""
    batch_max: StrictInt = Field(default=512, ge=1, le=100_000)
    statement_timeout: Duration = timedelta(seconds=30)
    """PostgreSQL only: the server cancels a statement running longer (the write fails,
    nothing changed)."""
    lock_timeout: Duration = timedelta(seconds=5)
    """PostgreSQL only: the server gives up waiting for a lock after this long."""
    readers: StrictInt = Field(default=4, ge=1, le=64)
    """PostgreSQL only: connections serving reads at once (each on a worker thread)."""

    @field_validator("url")
    @classmethod
    def _postgresql_url(cls, url: str | None) -> str | None:
        return None if url is None else check_url(url)

    @field_validator("statement_timeout", "lock_timeout")
    @classmethod
    def _timeout_positive(cls, timeout: timedelta) -> timedelta:
        if timeout < timedelta(milliseconds=1):
            raise ValueError("must be at least 1ms")
        return timeout


class ClusterConfig(Section):
    """Several instances on one PostgreSQL database (``store.url`` required): each holds
    leases on a share of the shifts' partitions and runs only their actors."""

    name: str | None = Field(default=None, min_length=1, max_length=64)
    """This instance's name in ``shiftctl status`` and the logs (a random suffix is added
    at each start); absent: the host name."""
    partitions: StrictInt = Field(default=64, ge=1, le=4096)
    """Fixed for the life of the database: recorded at the first start, refused if later
    configured otherwise."""
    lease_ttl: Duration = timedelta(seconds=15)
    """How long a lease lasts unrenewed (renewed every third of it): the longest a dead
    instance's shifts wait for another to take them over."""
    forward_wait: Duration = timedelta(seconds=5)
    """How long a request for a shift another instance owns waits for the owner's answer
    before the client is answered ``unavailable`` (the request is kept and handled once)."""
    inbox_retention: Duration = timedelta(hours=1)
    """How long a forwarded request is kept after its answer (a retry within it gets the
    same answer)."""

    @field_validator("lease_ttl")
    @classmethod
    def _ttl_sensible(cls, ttl: timedelta) -> timedelta:
        if ttl < timedelta(milliseconds=300):
            raise ValueError("must be at least 300ms")
        return ttl

    @field_validator("forward_wait", "inbox_retention")
    @classmethod
    def _wait_positive(cls, wait: timedelta) -> timedelta:
        if wait < timedelta(milliseconds=100):
            raise ValueError("must be at least 100ms")
        return wait


class ControlConfig(Section):
    """The Unix control socket used by ``shiftctl``."""

    max_connections: StrictInt = Field(default=1024, ge=1, le=100_000)
    idle_timeout: Duration = timedelta(seconds=60)
    """A connection that completes no request line for this long (idle, or holding half a
    line) is closed, so idle clients cannot take every connection."""
    request_timeout: Duration = timedelta(seconds=30)
    """A request not answered within this long closes its connection unanswered (while
    stopping, the stop's deadline comes first)."""

    @field_validator("idle_timeout", "request_timeout")
    @classmethod
    def _idle_timeout_positive(cls, timeout: timedelta) -> timedelta:
        if timeout <= timedelta(0):
            raise ValueError("must be more than 0s")
        return timeout


class ActorConfig(Section):
    """Per-shift actors and their supervision."""

    inbox_size: StrictInt = Field(default=64, ge=1, le=100_000)
    max_restarts: StrictInt = Field(default=5, ge=0, le=1000)
    restart_window: Duration = timedelta(seconds=60)


class RepliesConfig(Section):
    """Automatic answers to texts that change nothing (unclear replies, late accepts…)."""

    max_per_hour: StrictInt = Field(default=5, ge=0, le=1000)
    """Per phone; past it shiftd stays silent (and logs it), so two robots cannot loop."""


class SmtpConfig(Section):
    """The mail server coordinators' email goes through."""

    host: str = Field(min_length=1, max_length=253)
    port: StrictInt = Field(default=25, ge=1, le=65535)
    sender: str = Field(pattern=r"^[^@\s<>,]+@[^@\s<>,]+$", max_length=254)
    """The From address."""
    starttls: bool = False
    username: str | None = None
    password_file: Path | None = None
    """A file, or a name in $CREDENTIALS_DIRECTORY; never the password itself."""
    timeout: Duration = timedelta(seconds=10)


class RetentionConfig(Section):
    """How long stored personal text is kept."""

    reply_text: Duration | None = None
    """Blank the stored text of caregivers' replies this long after they arrived (e.g.
    "90d"); their outcome stays. Default: kept."""


class ShutdownConfig(Section):
    """Graceful stop on SIGTERM/SIGINT."""

    grace: Duration = timedelta(seconds=10)


class LogConfig(Section):
    """Logging (structlog)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


def parse_listen(text: str) -> tuple[str, int]:
    """Split ``"127.0.0.1:8080"``, ``"[::1]:8080"`` or ``":8080"`` (all interfaces) into host
    and port. Port 0 asks the kernel for a free port.

    Raises:
        ValueError: ``text`` is not ``host:port`` with a port in 0-65535.
    """
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"must be host:port, e.g. 127.0.0.1:8080 or [::1]:8080 (got {text!r})")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host or "[" in host or "]" in host:
        raise ValueError(f"write an IPv6 address in brackets, e.g. [::1]:8080 (got {text!r})")
    if any(c.isspace() for c in host):
        raise ValueError(f"host must not contain spaces (got {text!r})")
    return host or "0.0.0.0", int(port)


HTTP_BACKLOG = 4096
"""The default listen backlog: holds a burst of a thousand and more connections opened at once
(the kernel drops what overflows it, and the clients retry a second or more later)."""


class HttpConfig(Section):
    """The HTTP listener: REST API for integrators and Twilio webhooks. Off unless present."""

    listen: str = "127.0.0.1:8080"
    """``host:port`` to bind; ignored when systemd hands over a socket (``LISTEN_FDS``)."""
    public_url: str | None = None
    """The base URL the provider calls (``https://shifts.example.org``); webhook signatures
    are checked against it. Unset: the URL each request was made to."""
    token_file: Path | None = None
    """Bearer token for the REST API (file path or systemd credential name). Unset: the REST
    API answers 401 to everything but ``/health`` and ``/ready``."""
    organization_tokens: dict[Annotated[str, Field(min_length=1, max_length=128)], Path] = Field(
        default_factory=dict
    )
    """Per organization id, a file holding a bearer token that reaches only that
    organization's shifts (the `token_file` token reaches everything)."""
    max_body: StrictInt = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    """Largest request body in bytes; larger ones are answered 413."""
    request_timeout: Duration = timedelta(seconds=30)
    """Longest a request may take, reading its body included; then 503 ``timeout``."""
    backlog: StrictInt = Field(default=HTTP_BACKLOG, ge=16, le=65535)
    """Connections the kernel holds for shiftd to accept (``listen(2)``'s backlog), also on a
    socket systemd hands over. Linux caps it at ``net.core.somaxconn``; shiftd logs the
    effective value at start and warns when it is capped."""
    keep_alive_timeout: Duration = timedelta(seconds=60)
    """A connection that sends no request for this long is closed: counted from when it
    opens until its first request, and from each answer until the next request."""
    verify_signatures: StrictBool = True
    """Check ``X-Twilio-Signature`` on every webhook. ``false`` logs a warning at start."""
    twilio_auth_token_file: Path | None = None
    """The Twilio auth token webhooks are signed with. Unset: the notifier's token (when
    ``notifier.kind`` is ``twilio``)."""
    twilio_auth_token_previous_file: Path | None = None
    """The previous auth token, also accepted while a rotation is in progress."""
    session_idle_timeout: Duration = timedelta(hours=1)
    """The coordinator's page: a session unused this long ends (sign in again)."""
    signin_max_failures: StrictInt = Field(default=5, ge=1, le=100)
    """Wrong passwords in a row that lock a coordinator account for ``signin_lockout``."""
    signin_lockout: Duration = timedelta(minutes=15)
    """How long a locked account stays locked; also the window of the per-address budget
    of sign-in attempts."""

    @field_validator("listen")
    @classmethod
    def _host_port(cls, listen: str) -> str:
        parse_listen(listen)
        return listen

    @field_validator("public_url")
    @classmethod
    def _base_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"must be an http(s) URL such as https://shifts.example.org (got {url!r})"
            )
        if parts.query or parts.fragment:
            raise ValueError(f"must not have a query or fragment (got {url!r})")
        return url.rstrip("/")

    @field_validator("request_timeout", "session_idle_timeout", "signin_lockout")
    @classmethod
    def _timeout_positive(cls, timeout: timedelta, info: ValidationInfo) -> timedelta:
        if timeout <= timedelta(0):
            raise ValueError(f"{info.field_name} must be longer than 0s")
        return timeout

    @field_validator("keep_alive_timeout")
    @classmethod
    def _keep_alive_bounds(cls, timeout: timedelta) -> timedelta:
        if not timedelta(seconds=1) <= timeout <= timedelta(hours=1):
            raise ValueError(f"must be between 1s and 1h (got {timeout})")
        return timeout
