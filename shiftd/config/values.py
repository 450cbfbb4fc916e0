"""The configuration's value types: durations with a unit, clock times, strict numbers."""

from __future__ import annotations

import re
from datetime import time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BeforeValidator, Field, Strict, WithJsonSchema

from ..limits import DURATION_SCHEMA, check_duration

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

StrictInt = Annotated[int, Strict()]  # YAML integers are already ints: refuse "16", 16.0 and true
StrictRate = Annotated[float, Strict()]  # a YAML number, int or float; refuse "1" and true


StrictBool = Annotated[bool, Strict()]  # YAML booleans are already bools: refuse "yes" and 1


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

Tag = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name such as 'America/Chicago' or 'UTC')"
        ) from None
    return name
