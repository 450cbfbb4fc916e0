"""shiftd configuration: typed models and a YAML loader that points at the offending line.

The configuration is one YAML file (documented key by key in ``config/shiftd.yaml``). It is
validated into frozen pydantic models; nothing is coerced behind the operator's back. Every
problem is reported as ``FILE:LINE: key.path: problem`` so an operator can go straight to it.

YAML 1.1 has traps for configuration files (``10:30`` is the number 630, ``no`` is False,
``01234`` is 668). Durations are therefore typed :data:`Duration` and must be strings with a
unit (``"10m"``); a number where a duration belongs is refused with a message that explains
the quoting. Strings are real strings: pydantic's ``str`` already refuses numbers and booleans.

Relative paths are kept exactly as written; the daemon resolves them against its current
directory.
"""

from __future__ import annotations

import os
import re
import types
from dataclasses import dataclass
from datetime import time, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)

from .limits import DURATION_SCHEMA, check_duration
from .models import normalize_phone
from .store.url import check_url

__all__ = [
    "ActorConfig",
    "ClusterConfig",
    "Config",
    "ConfigError",
    "ConsoleNotifierConfig",
    "ControlConfig",
    "Duration",
    "EscalationConfig",
    "HttpConfig",
    "LogConfig",
    "NotifierConfig",
    "RecordNotifierConfig",
    "RepliesConfig",
    "SenderConfig",
    "ShutdownConfig",
    "StoreConfig",
    "TwilioNotifierConfig",
    "load_config",
    "parse_config",
    "parse_duration",
    "parse_listen",
]


# --------------------------------------------------------------------------- durations

_DURATION_RE = re.compile(
    r"""
    \s*
    (?:(?P<d>[0-9]+)\s*d\s*)?
    (?:(?P<h>[0-9]+)\s*h\s*)?
    (?:(?P<m>[0-9]+)\s*m(?!s)\s*)?
    (?:(?P<s>[0-9]+)\s*s\s*)?
    (?:(?P<ms>[0-9]+)\s*ms\s*)?
    """,
    re.VERBOSE,
)
_DURATION_EXAMPLES = 'strings such as "10m" or "90s"'


def parse_duration(text: str) -> timedelta:
    """Parse a duration such as ``"10m"``, ``"90s"``, ``"1h30m"``, ``"500ms"`` or ``"0s"``.

    Units are ``d``, ``h``, ``m``, ``s`` and ``ms``, each used at most once, largest first;
    whitespace around and between the parts is allowed. The result is never negative.

    Raises:
        ValueError: ``text`` is not such a duration, or is too long for a ``timedelta``.
    """
    match = _DURATION_RE.fullmatch(text)
    if match is None or not any(match.groupdict().values()):
        raise ValueError(
            f"{text!r} is not a duration: write a whole number and a unit"
            " (ms, s, m, h, d), largest unit first, e.g. '10m', '90s' or '1h30m'"
        )
    parts = {unit: int(value) for unit, value in match.groupdict().items() if value}
    try:
        return timedelta(
            days=parts.get("d", 0),
            hours=parts.get("h", 0),
            minutes=parts.get("m", 0),
            seconds=parts.get("s", 0),
            milliseconds=parts.get("ms", 0),
        )
    except OverflowError:
        raise ValueError(f"{text!r} is too long a duration") from None


def _number_hint(value: int | float) -> str:
    """Explain why a bare number is not a duration, guessing the YAML trap behind it."""
    if isinstance(value, int) and value >= 60:
        minutes, seconds = divmod(value, 60)
        return f"YAML reads an unquoted {minutes}:{seconds:02d} as the number {value}"
    return f'a duration needs a unit and quotes, e.g. "{value}s" or "{value}m"'


def _to_duration(value: object) -> timedelta:
    """Validate a duration: a ``timedelta`` as is, or a string for ``parse_duration``; either
    within ``shiftd.limits`` (0 to ``MAX_DURATION``).

    Raises:
        ValueError: anything else, numbers included, with a message about quoting.
    """
    if isinstance(value, timedelta):
        return check_duration(value)
    if isinstance(value, str):
        return check_duration(parse_duration(value))
    if isinstance(value, bool):
        hint = "YAML reads an unquoted yes/no/on/off/true/false as a boolean"
    elif isinstance(value, int | float):
        hint = _number_hint(value)
    elif value is None:
        hint = "the value is empty"
    else:
        hint = f"a {type(value).__name__} is not a duration"
    shown = str(value).lower() if isinstance(value, bool) else repr(value)
    raise ValueError(f"durations are {_DURATION_EXAMPLES} (got {shown}; {hint})")


Duration = Annotated[
    timedelta, BeforeValidator(_to_duration), WithJsonSchema(DURATION_SCHEMA, mode="validation")
]
"""A non-negative ``timedelta`` written in YAML as a quoted string such as ``"10m"``."""

_Int = Annotated[int, Strict()]  # YAML integers are already ints: refuse "16", 16.0 and true


# --------------------------------------------------------------------------- models


class _Section(BaseModel):
    """Base of every configuration model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EscalationConfig(_Section):
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


class ConsoleNotifierConfig(_Section):
    """Print every outbound message (for people trying shiftd out)."""

    kind: Literal["console"] = "console"


class RecordNotifierConfig(_Section):
    """Append every outbound message as one JSON line to ``path`` (audit trail, test oracle)."""

    kind: Literal["record"] = "record"
    path: Path


_ACCOUNT_SID_RE = re.compile(r"AC[0-9a-fA-F]{32}")
_E164_RE = re.compile(r"\+[1-9][0-9]{1,14}")
_HTTP_BASE_RE = re.compile(r"https?://[^/?#\s]+(?:/[^?#\s]*)?")
_Rate = Annotated[float, Strict()]  # a YAML number, int or float; refuse "1" and true
_TWILIO_API = "https://api.twilio.com"


def _number_list(value: object) -> object:
    """Phone numbers come as a YAML list; anything else is refused before item checks."""
    if not isinstance(value, list | tuple):
        raise ValueError('must be a list of quoted numbers, e.g. ["+15550100001"]')
    return value


class TwilioNotifierConfig(_Section):
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
    rate_per_second: _Rate = Field(default=1.0, gt=0, le=1000)
    """Texts per second from each number."""
    burst: _Int = Field(default=1, ge=1, le=100)
    """Texts a number may send at once after a quiet spell (before ``rate_per_second`` applies)."""
    calls_per_second: _Rate = Field(default=1.0, gt=0, le=1000)
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


class SenderConfig(_Section):
    """How the outbox is drained to the provider."""

    concurrency: _Int = Field(default=16, ge=1, le=1000)
    max_attempts: _Int = Field(default=5, ge=1, le=100)
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


class StoreConfig(_Section):
    """Where shiftd keeps its state: SQLite in ``state_dir`` (the default), or PostgreSQL."""

    url: str | None = Field(default=None, repr=False)
    """A PostgreSQL URL (``postgresql://user@host:5432/db``): the store is that database.
    None: SQLite in ``state_dir``. A password may be in it (never logged or shown), or in
    ~/.pgpass or $PGPASSWORD."""
    synchronous: Literal["normal", "full"] = "normal"
    """SQLite only."""
    batch_max: _Int = Field(default=512, ge=1, le=100_000)
    statement_timeout: Duration = timedelta(seconds=30)
    """PostgreSQL only: the server cancels a statement running longer (the write fails,
    nothing changed)."""
    lock_timeout: Duration = timedelta(seconds=5)
    """PostgreSQL only: the server gives up waiting for a lock after this long."""
    readers: _Int = Field(default=4, ge=1, le=64)
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


class ClusterConfig(_Section):
    """Several instances on one PostgreSQL database (``store.url`` required): each holds
    leases on a share of the shifts' partitions and runs only their actors."""

    name: str | None = Field(default=None, min_length=1, max_length=64)
    """This instance's name in ``shiftctl status`` and the logs (a random suffix is added
    at each start); absent: the host name."""
    partitions: _Int = Field(default=64, ge=1, le=4096)
    """Fixed for the life of the database: recorded at the first start, refused if later
    configured otherwise."""
    lease_ttl: Duration = timedelta(seconds=15)
    """How long a lease lasts unrenewed (renewed every third of it): the longest a dead
    instance's shifts wait for another to take them over."""

    @field_validator("lease_ttl")
    @classmethod
    def _ttl_sensible(cls, ttl: timedelta) -> timedelta:
        if ttl < timedelta(milliseconds=300):
            raise ValueError("must be at least 300ms")
        return ttl


class ControlConfig(_Section):
    """The Unix control socket used by ``shiftctl``."""

    max_connections: _Int = Field(default=1024, ge=1, le=100_000)
    idle_timeout: Duration = timedelta(seconds=60)
    """A connection that completes no request line for this long (idle, or holding half a
    line) is closed, so idle clients cannot take every connection."""

    @field_validator("idle_timeout")
    @classmethod
    def _idle_timeout_positive(cls, timeout: timedelta) -> timedelta:
        if timeout <= timedelta(0):
            raise ValueError("must be more than 0s")
        return timeout


class ActorConfig(_Section):
    """Per-shift actors and their supervision."""

    inbox_size: _Int = Field(default=64, ge=1, le=100_000)
    max_restarts: _Int = Field(default=5, ge=0, le=1000)
    restart_window: Duration = timedelta(seconds=60)


class RepliesConfig(_Section):
    """Automatic answers to texts that change nothing (unclear replies, late accepts…)."""

    max_per_hour: _Int = Field(default=5, ge=0, le=1000)
    """Per phone; past it shiftd stays silent (and logs it), so two robots cannot loop."""


class SmtpConfig(_Section):
    """The mail server coordinators' email goes through."""

    host: str = Field(min_length=1, max_length=253)
    port: _Int = Field(default=25, ge=1, le=65535)
    sender: str = Field(pattern=r"^[^@\s<>,]+@[^@\s<>,]+$", max_length=254)
    """The From address."""
    starttls: bool = False
    username: str | None = None
    password_file: Path | None = None
    """A file, or a name in $CREDENTIALS_DIRECTORY; never the password itself."""
    timeout: Duration = timedelta(seconds=10)


class RetentionConfig(_Section):
    """How long stored personal text is kept."""

    reply_text: Duration | None = None
    """Blank the stored text of caregivers' replies this long after they arrived (e.g.
    "90d"); their outcome stays. Default: kept."""


class ShutdownConfig(_Section):
    """Graceful stop on SIGTERM/SIGINT."""

    grace: Duration = timedelta(seconds=10)


class LogConfig(_Section):
    """Logging (structlog)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


_Bool = Annotated[bool, Strict()]  # YAML booleans are already bools: refuse "yes" and 1


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


class HttpConfig(_Section):
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
    max_body: _Int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)
    """Largest request body in bytes; larger ones are answered 413."""
    request_timeout: Duration = timedelta(seconds=30)
    """Longest a request may take, reading its body included; then 503 ``timeout``."""
    backlog: _Int = Field(default=HTTP_BACKLOG, ge=16, le=65535)
    """Connections the kernel holds for shiftd to accept (``listen(2)``'s backlog), also on a
    socket systemd hands over. Linux caps it at ``net.core.somaxconn``; shiftd logs the
    effective value at start and warns when it is capped."""
    keep_alive_timeout: Duration = timedelta(seconds=60)
    """A connection that sends no request for this long is closed: counted from when it
    opens until its first request, and from each answer until the next request."""
    verify_signatures: _Bool = True
    """Check ``X-Twilio-Signature`` on every webhook. ``false`` logs a warning at start."""
    twilio_auth_token_file: Path | None = None
    """The Twilio auth token webhooks are signed with. Unset: the notifier's token (when
    ``notifier.kind`` is ``twilio``)."""
    twilio_auth_token_previous_file: Path | None = None
    """The previous auth token, also accepted while a rotation is in progress."""
    session_idle_timeout: Duration = timedelta(hours=1)
    """The coordinator's page: a session unused this long ends (sign in again)."""
    signin_max_failures: _Int = Field(default=5, ge=1, le=100)
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


_CLOCK_TIME_RE = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")


def _to_clock_time(value: object) -> time:
    """A local time of day written as a quoted ``"HH:MM"`` (24-hour)."""
    if isinstance(value, str) and (match := _CLOCK_TIME_RE.fullmatch(value.strip())):
        return time(int(match[1]), int(match[2]))
    if isinstance(value, int) and not isinstance(value, bool):
        raise ValueError(
            f'times of day are quoted "HH:MM" strings (YAML reads an unquoted'
            f" {value // 60}:{value % 60:02d} as the number {value})"
        )
    raise ValueError(f'times of day are quoted "HH:MM" strings, e.g. "21:00" (got {value!r})')


ClockTime = Annotated[time, BeforeValidator(_to_clock_time)]
"""A local time of day, written ``"21:00"``."""

_Tag = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]


class RepeatConfig(_Section):
    """Run a step again: ``times`` more rounds, ``every`` apart."""

    every: Duration
    times: _Int = Field(default=1, ge=1, le=10)

    @field_validator("every")
    @classmethod
    def _every_positive(cls, every: timedelta) -> timedelta:
        if every <= timedelta(0):
            raise ValueError("every must be longer than 0s")
        return every


class StepConfig(_Section):
    """One wave of an escalation policy: at ``at`` after the fanout starts, contact
    ``audience`` (restricted to ``tags`` if given) over ``channel``."""

    at: Duration
    channel: Literal["sms", "voice"]
    audience: Literal["all", "offered"] = "all"
    """``all``: everyone with the role who may take the shift; ``offered``: only those an
    earlier step reached who have not declined."""
    tags: tuple[_Tag, ...] = ()
    """Only caregivers carrying at least one of these roster tags."""
    repeat: RepeatConfig | None = None


class QuietHoursConfig(_Section):
    """No contact on ``channels`` between ``start`` and ``end`` (local time; may span
    midnight), unless the shift starts within ``unless_starts_within``."""

    start: ClockTime
    end: ClockTime
    channels: tuple[Literal["sms", "voice"], ...] = ("voice",)
    unless_starts_within: Duration = timedelta(0)


class CoordinatorConfig(_Section):
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


class OrganizationConfig(_Section):
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
    voice_after_opt_out: _Bool = False
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
        return None if name is None else _check_timezone(name)

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
    from .messages import LANGUAGES, language_of

    language = language_of(tag)
    if language is None:
        raise ValueError(f"no built-in texts in {tag!r} (built in: {', '.join(LANGUAGES)})")
    return language


def _raise_template_problems(title: str, templates: dict[str, str], at: tuple[str, ...]) -> None:
    """Raise a ValidationError with one error per template problem, at `at` + its name."""
    from pydantic_core import PydanticCustomError

    from .messages import template_problems

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


_CLASSIFIER_RE = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")


class Config(_Section):
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
    caregiver_tags: tuple[_Tag, ...] = ()
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
        return _check_timezone(name)

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


def _check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name such as 'America/Chicago' or 'UTC')"
        ) from None
    return name


def _show(delay: timedelta) -> str:
    """A duration as written in the file: "5m", "1h30m", "0s"."""
    seconds = int(delay.total_seconds())
    parts = [(seconds // 3600, "h"), (seconds // 60 % 60, "m"), (seconds % 60, "s")]
    return "".join(f"{n}{unit}" for n, unit in parts if n) or "0s"


def _policy_problems(config: Config) -> list[tuple[_Loc, str]]:
    """What the models alone cannot see: steps out of order, tags nobody declared."""
    problems: list[tuple[_Loc, str]] = []
    if config.cluster is not None and config.store.url is None:
        problems.append((("cluster",), "a cluster needs a PostgreSQL store (store.url)"))
    declared = set(config.caregiver_tags)
    for org_id, org in config.organizations.items():
        if org.coordinator is not None and org.coordinator.email and config.smtp is None:
            loc: _Loc = ("organizations", org_id, "coordinator", "email")
            problems.append((loc, "email needs an smtp section (the server to send through)"))
        if org.policy is not None and not org.policy:
            problems.append((("organizations", org_id, "policy"), "a policy needs a step"))
        previous = timedelta(0)
        for index, step in enumerate(org.policy or ()):
            loc = ("organizations", org_id, "policy", index)
            if step.at < previous:
                problems.append(
                    (
                        (*loc, "at"),
                        f"steps must be in order: {_show(step.at)} comes after {_show(previous)}",
                    )
                )
            previous = max(previous, step.at)
            if step.audience == "offered" and index == 0:
                problems.append(
                    ((*loc, "audience"), "the first step has nobody offered yet to contact")
                )
            for tag in step.tags:
                if tag not in declared:
                    known = ", ".join(sorted(declared)) or "none declared"
                    problems.append(
                        ((*loc, "tags"), f"unknown tag {tag!r} (caregiver_tags: {known})")
                    )
    return problems


# --------------------------------------------------------------------------- loading


class ConfigError(Exception):
    """The configuration cannot be used. ``problems`` holds one ``FILE:LINE: …`` line each."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems: list[str] = problems

    def __str__(self) -> str:
        return "\n".join(self.problems)


_Loc = tuple[str | int, ...]
_TOP = "(top level)"
_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


@dataclass(frozen=True)
class _Problem:
    line: int
    where: str
    what: str


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate the configuration file at ``path``.

    Raises:
        ConfigError: the file cannot be read (one problem ``FILE: cannot read: …``), is not
            UTF-8, or fails :func:`parse_config`.
    """
    filename = os.fsdecode(path)
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError([f"{filename}: cannot read: {exc.strerror or exc}"]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{filename}: cannot read: not UTF-8 text ({exc.reason})"]) from None
    return parse_config(text, filename)


def parse_config(text: str, filename: str) -> Config:
    """Validate the YAML ``text`` (read from ``filename``, used only in messages).

    An empty document means all defaults.

    Raises:
        ConfigError: with every problem found, ordered by line, each formatted
            ``FILE:LINE: key.path: problem``.
    """
    root, data = _read_yaml(text, filename)
    problems = _key_problems(root, ())
    if not problems:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            problems = [_Problem(1, _TOP, f"expected a mapping of keys, got {_kind_of(data)}")]
        else:
            try:
                config = Config.model_validate(data)
            except ValidationError as exc:
                problems = [_problem_from(error, root) for error in exc.errors()]
            else:
                problems = [
                    _Problem(_line_of(root, loc), _dotted(loc), what)
                    for loc, what in _policy_problems(config)
                ]
                if not problems:
                    return config
    problems.sort(key=lambda p: p.line)
    raise ConfigError([f"{filename}:{p.line}: {p.where}: {p.what}" for p in problems])


def key_line(path: str | os.PathLike[str], loc: tuple[str | int, ...]) -> int:
    """The 1-based line of the key path ``loc`` in the configuration file at ``path`` (of its
    deepest key present; 1 when the file cannot be read), for messages about a loaded
    configuration such as ``check-config``'s warnings."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
        root, _ = _read_yaml(text, os.fsdecode(path))
    except (OSError, UnicodeDecodeError, ConfigError):
        return 1
    return _line_of(root, loc)


def _read_yaml(text: str, filename: str) -> tuple[yaml.Node | None, Any]:
    """Compose and construct one YAML document: its node tree (for line numbers) and its data.

    Raises:
        ConfigError: with one ``FILE:LINE: (yaml): problem`` for a syntax or construction error.
    """
    loader: yaml.SafeLoader | None = None
    root: yaml.Node | None = None
    try:
        loader = yaml.SafeLoader(text)
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        line, problem = _describe_yaml_error(exc)
        raise ConfigError([f"{filename}:{line}: (yaml): {problem}"]) from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        raise ConfigError(
            [f"{filename}:{line}: (yaml): {exc.reason} (#x{exc.character:04x})"]
        ) from None
    except ValueError as exc:  # e.g. an impossible date such as 2024-02-30
        line = _bad_timestamp_line(root)
        raise ConfigError([f"{filename}:{line}: (yaml): {exc}"]) from None
    finally:
        if loader is not None:
            loader.dispose()
    return root, data


def _describe_yaml_error(exc: yaml.MarkedYAMLError) -> tuple[int, str]:
    """The 1-based line where PyYAML noticed the problem, and the problem in words.

    PyYAML often notices late (an unclosed ``[`` at the end of the file), so the place the
    construct started (its *context*) is added with its own line.
    """
    mark = exc.problem_mark or exc.context_mark
    line = mark.line + 1 if mark is not None else 1
    problem = exc.problem or exc.context or "invalid YAML"
    if exc.problem and exc.context:
        where = f", line {exc.context_mark.line + 1}" if exc.context_mark is not None else ""
        problem += f" ({exc.context}{where})"
    return line, problem


def _bad_timestamp_line(root: yaml.Node | None) -> int:
    """Line of the first timestamp scalar under ``root`` that cannot be built (else 1)."""
    constructor = yaml.SafeLoader("")
    for node in _walk(root):
        if isinstance(node, yaml.ScalarNode) and node.tag == _TIMESTAMP_TAG:
            try:
                constructor.construct_yaml_timestamp(node)
            except ValueError:
                return node.start_mark.line + 1
    return 1


def _walk(root: yaml.Node | None) -> list[yaml.Node]:
    """Every node under ``root`` once, in document order (aliases and cycles visited once)."""
    seen: set[int] = set()
    out: list[yaml.Node] = []
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        out.append(node)
        if isinstance(node, yaml.MappingNode):
            stack.extend(n for pair in reversed(node.value) for n in reversed(pair))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
    return out


def _key_problems(
    node: yaml.Node | None, loc: _Loc, seen: set[int] | None = None
) -> list[_Problem]:
    """Keys that are not plain strings, and keys repeated in one mapping (YAML keeps the last)."""
    seen = set() if seen is None else seen
    if node is None or id(node) in seen:
        return []
    seen.add(id(node))
    problems: list[_Problem] = []
    if isinstance(node, yaml.MappingNode):
        first_line: dict[str, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if isinstance(key, yaml.ScalarNode) and key.tag == _MERGE_TAG:
                continue
            if not isinstance(key, yaml.ScalarNode) or key.tag != _STR_TAG:
                raw = key.value if isinstance(key, yaml.ScalarNode) else "?"
                what = f"keys must be strings; YAML reads this key as {key.tag.rsplit(':', 1)[-1]}"
                problems.append(_Problem(line, _dotted((*loc, raw)), what + ": quote it"))
                continue
            if key.value in first_line:
                what = f"duplicate key (first at line {first_line[key.value]})"
                problems.append(_Problem(line, _dotted((*loc, key.value)), what))
            first_line.setdefault(key.value, line)
            problems += _key_problems(value, (*loc, key.value), seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            problems += _key_problems(item, (*loc, index), seen)
    return problems


@dataclass(frozen=True)
class _Target:
    """Where a pydantic error points, in the file's terms."""

    loc: _Loc  # the key path as written in YAML (discriminated-union tags removed)
    owner: type[BaseModel] | None  # the model whose key is the last element of loc
    annotation: Any  # the type expected at loc, when known


def _problem_from(error: Any, root: yaml.Node | None) -> _Problem:
    """Turn one pydantic error into a located, operator-readable problem."""
    target = _target(error["loc"])
    loc, kind, ctx, value = target.loc, error["type"], error.get("ctx") or {}, error.get("input")
    if kind == "missing":
        what = "missing required key"
    elif kind == "extra_forbidden":
        allowed = ", ".join(target.owner.model_fields) if target.owner is not None else "?"
        what = f"unknown key (allowed: {allowed})"
    elif kind == "union_tag_invalid":
        loc = (*loc, _discriminator(ctx))
        what = f"unknown {loc[-1]} {ctx.get('tag')!r} (expected one of: {ctx.get('expected_tags')})"
    elif kind == "union_tag_not_found":
        loc = (*loc, _discriminator(ctx))
        what = f"missing required key (one of: {', '.join(_union_tags(target.annotation))})"
    elif kind == "value_error" and "error" in ctx:
        what = str(ctx["error"])
    elif kind in {"model_type", "model_attributes_type", "dict_type"}:
        what = f"expected a mapping of keys, got {_kind_of(value)}"
    elif kind in {"string_type", "path_type"}:
        what = f"expected a string, got {_kind_of(value)}{_quoting_hint(value)}"
    else:
        what = error["msg"] + (f" (got {value!r})" if _is_scalar(value) else "")
    return _Problem(_line_of(root, loc), _dotted(loc), what)


def _discriminator(ctx: dict[str, Any]) -> str:
    """The key that selects a union member, from a pydantic error context (``"'kind'"``)."""
    return str(ctx.get("discriminator", "kind")).strip("'")


def _target(raw_loc: _Loc) -> _Target:
    """Follow a pydantic location through the models, dropping discriminated-union tags.

    Pydantic inserts the chosen member's tag into the location (``notifier.record.path``);
    the file has no such key, so it is removed (``notifier.path``).
    """
    loc: list[str | int] = []
    annotation: Any = Config
    owner: type[BaseModel] | None = None
    for element in raw_loc:
        annotation = _unwrap_optional(annotation)
        members = _model_union_members(annotation)
        if members:
            annotation = next((m for m in members if element in _tags_of(m)), None)
            continue
        loc.append(element)
        if get_origin(annotation) in (dict, tuple, list):
            # A mapping's key or a sequence's index: step into the value type.
            owner, annotation = (
                None,
                get_args(annotation)[-1 if get_origin(annotation) is dict else 0],
            )
            continue
        owner = annotation if _is_model(annotation) else None
        field = owner.model_fields.get(element) if owner and isinstance(element, str) else None
        annotation = field.annotation if field is not None else None
    return _Target(tuple(loc), owner, annotation)


def _unwrap_optional(annotation: Any) -> Any:
    """``X | None`` → ``X``; anything else unchanged."""
    if get_origin(annotation) in (Union, types.UnionType):
        members = [m for m in get_args(annotation) if m is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _model_union_members(annotation: Any) -> tuple[type[BaseModel], ...]:
    """The members of a union made only of models (a discriminated union), else ``()``."""
    if get_origin(annotation) not in (Union, types.UnionType):
        return ()
    members = get_args(annotation)
    return members if all(_is_model(m) for m in members) else ()


def _tags_of(model: type[BaseModel]) -> tuple[Any, ...]:
    """The ``Literal`` values a union member can be selected by."""
    return tuple(
        tag
        for field in model.model_fields.values()
        if get_origin(field.annotation) is Literal
        for tag in get_args(field.annotation)
    )


def _union_tags(annotation: Any) -> list[str]:
    return [str(tag) for member in _model_union_members(annotation) for tag in _tags_of(member)]


def _line_of(root: yaml.Node | None, loc: _Loc) -> int:
    """1-based line of the deepest key of ``loc`` present in the document.

    A key that is absent (a missing required key) yields the line of its nearest parent key,
    or the document's first line.
    """
    if root is None:
        return 1
    line, node = root.start_mark.line + 1, root
    for element in loc:
        found = _child(node, element)
        if found is None:
            break
        line, node = found
    return line


def _child(node: yaml.Node, element: str | int) -> tuple[int, yaml.Node] | None:
    """The line of ``element``'s key (or list item) inside ``node``, and its value node."""
    if isinstance(node, yaml.MappingNode) and isinstance(element, str):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag == _STR_TAG and key.value == element:
                return key.start_mark.line + 1, value
    if isinstance(node, yaml.SequenceNode) and isinstance(element, int):
        items: list[yaml.Node] = node.value
        if 0 <= element < len(items):
            return items[element].start_mark.line + 1, items[element]
    return None


def _dotted(loc: _Loc) -> str:
    return ".".join(str(element) for element in loc) if loc else _TOP


def _is_scalar(value: object) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _kind_of(value: object) -> str:
    """Describe a YAML value for a message: ``a list``, ``nothing``, ``the number 630`` …"""
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _quoting_hint(value: object) -> str:
    if isinstance(value, bool):
        return " (YAML reads an unquoted yes/no/on/off/true/false as a boolean: quote it)"
    if isinstance(value, int | float):
        return " (quote it so YAML keeps it as text)"
    return ""
