"""Structured logging for shiftd: one line per event, no secrets, no phone numbers.

Every module does::

    from .logs import get_logger

    log = get_logger(__name__)
    log.info("fanout.started", shift_id=shift.id, offered=n)

The first argument is the *event name*: a stable, dotted identifier that operators grep and
alert on (``event`` in the JSON output). Values go in keyword arguments, never formatted
into the event name.

Output goes to stderr. Under systemd (``JOURNAL_STREAM`` set) or whenever stderr is not a
terminal it is one JSON object per line; on a terminal it is structlog's console renderer.

What is kept out of the journal:

* the values of the keys in :data:`PHONE_KEYS` and :data:`SECRET_KEYS`, at the top level of
  an event, are masked (:func:`mask_phone`, :func:`mask_secret`); values nested deeper, and
  text inside the event name or an exception message, are *not* inspected, so never put a
  phone number or a token there;
* tracebacks never include local variables (structlog's dict tracebacks do by default).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import structlog
from structlog import _config as _structlog_config
from structlog.contextvars import merge_contextvars
from structlog.typing import EventDict, FilteringBoundLogger, Processor, WrappedLogger

__all__ = [
    "PHONE_KEYS",
    "SECRET_KEYS",
    "configure_logging",
    "get_logger",
    "mask_phone",
    "mask_secret",
    "redact",
]

#: Top-level event keys whose values are phone numbers; masked with :func:`mask_phone`.
PHONE_KEYS: frozenset[str] = frozenset({"phone", "to", "from_phone", "from"})
#: Top-level event keys whose values are credentials; masked with :func:`mask_secret`.
SECRET_KEYS: frozenset[str] = frozenset({"token", "auth_token", "password", "authorization"})

_LEVELS: dict[str, int] = {
    "debug": 10,
    "info": 20,
    "warning": 30,
    "warn": 30,
    "error": 40,
    "critical": 50,
}

# A secret at least this long shows its first two characters; shorter ones show nothing.
_SECRET_PREFIX_MIN_LEN = 8


def mask_phone(phone: str | None) -> str:
    """Return a form of *phone* that is safe to log: ``…`` and its last two digits.

    ``"+15550001"`` → ``"…01"``. Only digits are counted, so formatting does not matter
    (``"+1 (555) 000-1234"`` → ``"…34"``). A value with two digits or fewer shows none of them
    (``"…"``), so the result never contains the whole number. ``None`` and ``""`` → ``"-"``.
    Never raises: a non-string is masked through ``str()``.
    """
    if phone is None or phone == "":
        return "-"
    digits = [c for c in str(phone) if c.isdigit()]
    if len(digits) <= 2:
        return "…"
    return "…" + "".join(digits[-2:])


def mask_secret(token: str | None) -> str:
    """Return a form of *token* that is safe to log: its first two characters and ``…``.

    ``"sk_live_abcdef123"`` → ``"sk…"``. A secret shorter than 8 characters shows nothing
    (``"…"``). ``None`` and ``""`` → ``"-"``. Never raises: a non-string is masked through
    ``str()``.
    """
    if token is None or token == "":
        return "-"
    text = str(token)
    if len(text) < _SECRET_PREFIX_MIN_LEN:
        return "…"
    return text[:2] + "…"


def _mask_value(value: Any, mask: Any) -> Any:
    # A list of recipients ("to": [...]) is masked element by element.
    if isinstance(value, list | tuple | set | frozenset):
        return [mask(v) for v in value]
    return mask(value)


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask phone numbers and secrets at the top level of an event.

    Keys are matched exactly (case-sensitive) against :data:`PHONE_KEYS` and
    :data:`SECRET_KEYS`. The event dict is modified in place and returned. Never raises.
    """
    for key in PHONE_KEYS.intersection(event_dict):
        event_dict[key] = _mask_value(event_dict[key], mask_phone)
    for key in SECRET_KEYS.intersection(event_dict):
        event_dict[key] = _mask_value(event_dict[key], mask_secret)
    return event_dict


class _NamedWriteLogger(structlog.WriteLogger):
    """A WriteLogger that knows the name it was asked for (the line's ``logger``)."""

    def __init__(self, file: TextIO, name: str | None) -> None:
        super().__init__(file)
        self.name = name


class _LoggerFactory:
    """``structlog.WriteLoggerFactory`` that keeps one named writer per logger name."""

    def __init__(self, file: TextIO) -> None:
        self._file = file
        self._by_name: dict[str | None, _NamedWriteLogger] = {}

    def __call__(self, *args: Any) -> _NamedWriteLogger:
        name = args[0] if args and isinstance(args[0], str) else None
        logger = self._by_name.get(name)
        if logger is None:
            logger = self._by_name[name] = _NamedWriteLogger(self._file, name)
        return logger


def _add_logger_name(logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    name = getattr(logger, "name", None)
    if name is not None:
        event_dict.setdefault("logger", name)
    return event_dict


def _utc_stamp() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


_LEVEL_OF_METHOD = {"warn": "warning", "exception": "error"}

# Every line a daemon writes goes through this: one processor instead of a chain of nine
# (each a call, and the last three each rebuilding or walking the event), a few
# microseconds of the CPU an inbound text costs.
_stack = structlog.processors.StackInfoRenderer(additional_ignores=[__name__])
# show_locals=False: locals would put phone numbers and tokens in the journal.
_exception = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False, use_rich=False)
)
# One encoder, made once: `json.dumps` with arguments builds a new one per call (~5 µs).
_dumps = json.JSONEncoder(ensure_ascii=False, default=repr).encode


def _json_line(logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
    """The whole JSON chain as one processor: the context bound with
    ``structlog.contextvars``, ``ts``, ``level``, ``event`` and ``logger`` first, phones and
    secrets masked (:func:`redact`), ``stack_info`` and ``exc_info`` rendered, one line of
    JSON. Never raises for a value JSON cannot spell (its ``repr`` is written)."""
    merge_contextvars(logger, method, event_dict)
    event_dict.pop("ts", None)
    event_dict.pop("level", None)
    line: EventDict = {"ts": _utc_stamp(), "level": _LEVEL_OF_METHOD.get(method, method)}
    if "event" in event_dict:
        line["event"] = event_dict.pop("event")
    name = event_dict.pop("logger", None) or getattr(logger, "name", None)
    if name is not None:
        line["logger"] = name
    if "stack_info" in event_dict:
        _stack(logger, method, event_dict)
    if "exc_info" in event_dict:
        _exception(logger, method, event_dict)
    line.update(event_dict)
    if not _SENSITIVE_KEYS.isdisjoint(line):
        redact(logger, method, line)
    return _dumps(line)


_SENSITIVE_KEYS = PHONE_KEYS | SECRET_KEYS


def _wants_json(fmt: str, stream: TextIO) -> bool:
    if fmt == "json":
        return True
    if fmt == "console":
        return False
    # "auto": journald sets JOURNAL_STREAM for the services whose stderr it collects.
    if os.environ.get("JOURNAL_STREAM"):
        return True
    return not _isatty(stream)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty(), or a closed stream
        return False


def configure_logging(
    level: str = "info",
    fmt: str = "auto",
    stream: TextIO | None = None,
) -> None:
    """Configure structlog for the whole process.

    *level* is one of ``debug``, ``info``, ``warning`` (or ``warn``), ``error``,
    ``critical`` (any case); events below it are dropped before any processing. *fmt* is
    ``auto`` (JSON lines when ``JOURNAL_STREAM`` is set or the stream is not a terminal,
    console otherwise), ``json`` or ``console``. *stream* defaults to ``sys.stderr`` as it is
    at the time of the call.

    Each JSON line has at least ``event`` (the event name), ``level`` and ``ts`` (ISO 8601,
    UTC, ``Z`` suffix) plus the event's keyword arguments, the context bound with
    ``structlog.contextvars`` and, for ``log.exception(...)``, an ``exception`` list of
    structured frames without local variables.

    Safe to call again: the new configuration applies to every logger, including those that
    modules obtained at import time (`get_logger` keeps a logger only for as long as the
    configuration it was built from is current, so tests and ``shiftd demo`` reconfigure
    freely).

    Raises ``ValueError`` for an unknown *level* or *fmt*, before changing anything.
    """
    try:
        min_level = _LEVELS[level.lower()]
    except KeyError:
        raise ValueError(
            f"unknown log level {level!r}; expected one of debug, info, warning, error, critical"
        ) from None
    if fmt not in ("auto", "json", "console"):
        raise ValueError(f"unknown log format {fmt!r}; expected auto, json or console")

    out = stream if stream is not None else sys.stderr
    as_json = _wants_json(fmt, out)

    if as_json:
        processors: list[Processor] = [_json_line]
    else:
        processors = [
            merge_contextvars,
            structlog.processors.add_log_level,
            _add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="ts"),
            structlog.processors.StackInfoRenderer(),
            redact,
            structlog.dev.ConsoleRenderer(
                colors=_isatty(out),
                timestamp_key="ts",
                # The stdlib traceback: never local variables (unlike rich/better-exceptions).
                exception_formatter=structlog.dev.plain_traceback,
            ),
        ]

    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(min_level),
        context_class=dict,
        logger_factory=_LoggerFactory(out),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str | None = None) -> FilteringBoundLogger:
    """Return a structlog logger; with *name*, every event it logs carries ``logger=name``.

    Cheap and lazy: safe to call at import time, before :func:`configure_logging`, and the
    logger follows later reconfiguration. Use it as ``log = get_logger(__name__)``.
    """
    # The proxy has every method of the configured wrapper class (configure_logging makes
    # it a FilteringBoundLogger) through __getattr__.
    logger: FilteringBoundLogger = _Logger(name)
    return logger


class _Logger:
    """What `get_logger` returns: the configured logger, built at its first use and again
    only when structlog has been configured anew since.

    structlog's own lazy proxy builds a logger at every call (it never caches, so that a
    new configuration reaches it); that cost a few microseconds per event, also for events
    the level drops, several times per message handled. Here the logger is kept for as
    long as the configuration it was built from is the current one: `structlog.configure`
    replaces the configuration's parts it is given, and `capture_logs` edits the
    processors list in place (the kept logger holds that very list)."""

    __slots__ = ("_context_class", "_factory", "_logger", "_name", "_processors", "_wrapper")

    def __init__(self, name: str | None) -> None:
        self._name = name
        self._logger: Any = None
        self._wrapper: object = None
        self._processors: object = None
        self._factory: object = None
        self._context_class: object = None

    def _current(self) -> Any:
        config = _structlog_config._CONFIG  # the live configuration (structlog's own)
        if (
            self._logger is None
            or config.default_processors is not self._processors
            or config.default_wrapper_class is not self._wrapper
            or config.logger_factory is not self._factory
            or config.default_context_class is not self._context_class
        ):
            name = self._name
            proxy = structlog.get_logger() if name is None else structlog.get_logger(name)
            self._logger = proxy.bind()
            self._processors = config.default_processors
            self._wrapper = config.default_wrapper_class
            self._factory = config.logger_factory
            self._context_class = config.default_context_class
        return self._logger

    def __getattr__(self, method: str) -> Any:
        return getattr(self._current(), method)


def new_ref() -> str:
    """A short random reference for one failure: the log line carries it (`ref`) and so does
    the answer the caller gets, so an operator can find one from the other."""
    return secrets.token_hex(6)
