"""The boundary rules: what any value from outside may be, wherever it comes in.

The control socket, the REST API, roster files and the configuration all validate with the
types below, so a value means the same (and is refused the same way, naming its field)
whichever way it arrives. Their JSON schemas carry the same rules, so the OpenAPI document
says exactly what is accepted.

| value                | rule                                                                  |
|----------------------|-----------------------------------------------------------------------|
| instant (`Instant`)  | RFC 3339 text with seconds and an offset (`Z` or `±HH:MM`), dated     |
|                      | 2000-01-01 to 2099-12-31 as written                                   |
| wall time (`shift.add`, `POST /shifts`) | the same, or without an offset (local to the   |
|                      | organization), seconds optional, `T` or a space                       |
| shift times          | end after start, at most `MAX_SHIFT_LENGTH` (48 h) later              |
| id, organization id  | 1-128 characters                                                      |
| role                 | 1-32 characters                                                       |
| name                 | 1-200 characters                                                      |
| location             | at most 60 characters                                                 |
| tags                 | at most 32, each 1-32 characters                                      |
| language (caregiver) | a BCP 47 tag (`es`, `es-MX`) of at most 35 characters                 |
| phone                | 3-20 digits, an optional `+`; spaces, dashes, dots, brackets dropped  |
| duration             | from 0 to `MAX_DURATION` (3660 days)                                  |
| request id (socket)  | an integer of at most 18 digits or a string of at most 128 characters |

Nothing past these rules reaches date arithmetic: an instant in the window plus or minus any
duration in range stays far inside what `datetime` can hold, so no `OverflowError` can come
from a value a caller chose.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, Field, PlainValidator, WithJsonSchema

MIN_YEAR = 2000
MAX_YEAR = 2099
MAX_SHIFT_LENGTH = timedelta(hours=48)
MAX_DURATION = timedelta(days=3660)
MAX_ID = 128
MAX_ROLE = 32
MAX_NAME = 200
MAX_LOCATION = 60
MAX_TAGS = 32
MAX_TAG = 32
MAX_LANGUAGE_TAG = 35
MAX_REQUEST_ID = 10**18

_INSTANT_PATTERN = (
    r"^20[0-9]{2}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})$"
)
_INSTANT_RE = re.compile(_INSTANT_PATTERN)
_HAS_OFFSET = re.compile(r"(Z|[+-][0-9]{2}:?[0-9]{2})$")
_EXAMPLE = "e.g. 2025-07-02T08:00:00Z"


def check_instant(value: object) -> datetime:
    """An instant within the window, in UTC. Raises ValueError (never OverflowError) for
    anything else: text of another shape, a naive time, a year outside 2000-2099."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"times need a UTC offset or Z, {_EXAMPLE}")
        if not MIN_YEAR <= value.year <= MAX_YEAR:
            raise ValueError(f"times must be dated {MIN_YEAR} to {MAX_YEAR} (got {value.year})")
        return value.astimezone(UTC)
    if not isinstance(value, str):
        raise ValueError(f"times are ISO-8601 text, {_EXAMPLE}")
    text = value.strip()
    if _INSTANT_RE.fullmatch(text) is None:
        year = text[:4]
        if year.isdigit() and len(text) > 4 and text[4] == "-" and not text.startswith("20"):
            raise ValueError(f"times must be dated {MIN_YEAR} to {MAX_YEAR} (got {year})")
        if len(text) >= 16 and _HAS_OFFSET.search(text) is None:
            raise ValueError(f"times need a UTC offset or Z, {_EXAMPLE}")
        raise ValueError(
            f"times are ISO-8601 text with seconds and an offset, {_EXAMPLE} (got {value[:40]!r})"
        )
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:  # 2025-02-30, 25:00, an offset of 24 hours
        raise ValueError(f"not a valid time: {exc}") from None
    return parsed.astimezone(UTC)


Instant = Annotated[
    datetime,
    PlainValidator(check_instant),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": _INSTANT_PATTERN,
            "description": "An instant with seconds and a UTC offset, dated 2000 to 2099 as"
            " written, e.g. 2025-07-02T08:00:00Z.",
        }
    ),
]
"""A UTC instant from RFC 3339 text (see the module's table)."""


_WALL_PATTERN = (
    r"^20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[T ]([01][0-9]|2[0-3]):[0-5][0-9]"
    r"(:[0-5][0-9](\.[0-9]{1,6})?)?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?$"
)
_WALL_RE = re.compile(_WALL_PATTERN)


def check_wall_time(value: object) -> datetime:
    """A time dated 2000-2099 as written, with an offset (then aware) or without one (then
    naive: local to whatever zone the caller applies). Seconds are optional, `T` or a space
    separates date and time. Raises ValueError for anything else."""
    if isinstance(value, datetime):
        if not MIN_YEAR <= value.year <= MAX_YEAR:
            raise ValueError(f"times must be dated {MIN_YEAR} to {MAX_YEAR} (got {value.year})")
        return value
    if not isinstance(value, str):
        raise ValueError(f"times are ISO-8601 text, {_EXAMPLE}")
    text = value.strip()
    if _WALL_RE.fullmatch(text) is None:
        year = text[:4]
        if year.isdigit() and len(text) > 4 and text[4] == "-" and not text.startswith("20"):
            raise ValueError(f"times must be dated {MIN_YEAR} to {MAX_YEAR} (got {year})")
        raise ValueError(
            f"times are ISO-8601 text such as 2027-01-05 07:00 (local) or {_EXAMPLE[5:]}"
            f" (got {value[:40]!r})"
        )
    try:
        return datetime.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"not a valid time: {exc}") from None


WallTime = Annotated[
    datetime,
    PlainValidator(check_wall_time),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _WALL_PATTERN,
            "description": "A time dated 2000 to 2099 as written; without an offset it is"
            " local to the shift's organization, e.g. 2027-01-05 07:00 or"
            " 2027-01-05T07:00:00-05:00.",
        }
    ),
]
"""A time as a person enters it: local (no offset) or with an offset (see check_wall_time)."""


def check_shift_times(start: datetime, end: datetime) -> None:
    """Raises ValueError unless `end` is after `start` and at most MAX_SHIFT_LENGTH later."""
    if end <= start:
        raise ValueError("end_time must be after start_time")
    if end - start > MAX_SHIFT_LENGTH:
        hours = MAX_SHIFT_LENGTH.total_seconds() / 3600
        raise ValueError(f"a shift lasts at most {hours:g} hours (end_time - start_time)")


DURATION_SCHEMA = {
    "type": "string",
    "pattern": r"^(?=\s*[0-9])\s*([0-9]+\s*d\s*)?([0-9]+\s*h\s*)?([0-9]+\s*m\s*)?([0-9]+\s*s\s*)?"
    r"([0-9]+\s*ms\s*)?$",
    "description": "A duration such as 90s, 10m or 1h30m (units d, h, m, s, ms, largest"
    " first), from 0s to 3660d.",
    "examples": ["10m", "1h30m"],
}
"""The JSON schema of a duration (the upper bound is in words: no pattern states it)."""


def check_duration(value: timedelta) -> timedelta:
    """`value` if it is from zero to MAX_DURATION; ValueError otherwise."""
    if value < timedelta(0):
        raise ValueError(f"durations cannot be negative (got {value})")
    if value > MAX_DURATION:
        raise ValueError(f"durations are at most {MAX_DURATION.days}d (got {value.days}d)")
    return value


_PHONE_NOISE_CHARS = r"[ \t\n\r\f\v().-]"
_PHONE_NOISE = re.compile(_PHONE_NOISE_CHARS)
_N = _PHONE_NOISE_CHARS
_PHONE_PATTERN = f"^{_N}*\\+?{_N}*([0-9]{_N}*){{3,20}}$"  # what normalize_phone accepts
_PHONE_SHAPE = re.compile(r"\+?[0-9]{3,20}")


def normalize_phone(raw: str) -> str:
    """Canonical form of a phone number: noise dropped, `+` kept, 10-digit US numbers get `+1`.

    Raises ValueError when what is left is not a plausible phone (3-20 digits, optional `+`).
    Short or non-NANP numbers such as `+15550001` are kept as they are.
    """
    text = _PHONE_NOISE.sub("", raw)
    if not _PHONE_SHAPE.fullmatch(text):
        raise ValueError(f"not a phone number: {raw[:40]!r}")
    if not text.startswith("+"):
        if len(text) == 10:
            text = "+1" + text
        elif len(text) == 11 and text.startswith("1"):
            text = "+" + text
    return text


Phone = Annotated[
    str,
    Field(min_length=3, max_length=64),
    AfterValidator(normalize_phone),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 3,
            "maxLength": 64,
            "pattern": _PHONE_PATTERN,
            "description": "3-20 digits with an optional leading +; spaces, dashes, dots and"
            " brackets are dropped.",
        }
    ),
]
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID)]
Role = Annotated[str, Field(min_length=1, max_length=MAX_ROLE)]
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME)]
Location = Annotated[str, Field(max_length=MAX_LOCATION)]
Tag = Annotated[str, Field(min_length=1, max_length=MAX_TAG)]
Tags = Annotated[tuple[Tag, ...], Field(max_length=MAX_TAGS)]
LanguageTag = Annotated[
    str,
    Field(
        min_length=2, max_length=MAX_LANGUAGE_TAG, pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$"
    ),
]
"""A BCP 47 language tag: ``es``, ``es-MX``, ``en-US``."""


def _request_id(value: object) -> int | str:
    # By hand, not a constrained union: a constrained str refuses a lone surrogate, and a
    # request should still be answered under the id it came with.
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) <= MAX_REQUEST_ID:
            return value
        raise ValueError(f"integer ids have at most {len(str(MAX_REQUEST_ID)) - 1} digits")
    if isinstance(value, str):
        if len(value) <= MAX_ID:
            return value
        raise ValueError(f"string ids have at most {MAX_ID} characters")
    raise ValueError("ids are integers or strings")


RequestId = Annotated[
    int | str,
    PlainValidator(_request_id),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": -MAX_REQUEST_ID, "maximum": MAX_REQUEST_ID},
                {"type": "string", "maxLength": MAX_ID},
            ]
        }
    ),
]
"""A control request's own id, echoed in its answer."""
