"""One wall clock for the whole daemon, derived from Trio's clock.

`trio.current_time()` has an arbitrary per-run offset, so it is never persisted. A `Clock`
anchors it to a UTC instant once, at start; from then on `now()` and `deadline()` convert
between the two. Under `trio.testing.MockClock` the wall time follows the virtual clock
exactly, so tests need no patched `datetime`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import overload

import trio


class Clock:
    """UTC wall time that advances with `trio.current_time()`.

    Must be created inside `trio.run`. `epoch` is the wall time at creation (default: the
    real current time).
    """

    def __init__(self, epoch: datetime | None = None) -> None:
        self._epoch = epoch if epoch is not None else datetime.now(UTC)
        if self._epoch.tzinfo is None:
            raise ValueError("Clock epoch must be timezone-aware")
        self._anchor = trio.current_time()

    def now(self) -> datetime:
        """The current UTC wall time."""
        return self._epoch + timedelta(seconds=trio.current_time() - self._anchor)

    def deadline(self, at: datetime) -> float:
        """The Trio deadline (for `move_on_at`/`sleep_until`) at which wall time reaches `at`."""
        return self._anchor + (at - self._epoch).total_seconds()


@overload
def iso(at: datetime) -> str: ...
@overload
def iso(at: None) -> None: ...
@overload
def iso(at: datetime | None) -> str | None: ...
def iso(at: datetime | None) -> str | None:
    """ISO-8601 UTC text with a `Z`, as stored and shown everywhere; None stays None."""
    if at is None:
        return None
    text = _spelled.get(at)
    if text is None:
        text = at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        if len(_spelled) >= _SPELLED_MAX:
            _spelled.clear()
        _spelled[at] = text
    return text


_spelled: dict[datetime, str] = {}
"""Instants `iso` spelled lately, and their texts: a step stamps its rows with one `now`, and
writing a shift's row spells its stored instants again at every step (a dict's operations
are atomic, so a reader in another thread is safe)."""
_SPELLED_MAX = 4096


@overload
def parse_iso(text: str) -> datetime: ...
@overload
def parse_iso(text: None) -> None: ...
@overload
def parse_iso(text: str | None) -> datetime | None: ...
def parse_iso(text: str | None) -> datetime | None:
    """The inverse of `iso`; accepts any ISO-8601 text with an offset or `Z`."""
    if text is None:
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is UTC else value.astimezone(UTC)


def local_iso(at: datetime | None, tz: tzinfo) -> str | None:
    """ISO-8601 text in zone `tz`, to the second, with its UTC offset: what people and REST
    clients see (`2027-01-05T07:00:00-05:00`); None stays None."""
    if at is None:
        return None
    return at.astimezone(tz).isoformat(timespec="seconds")


def relocal(text: str | None, tz: tzinfo) -> str | None:
    """A stored ISO-8601 instant (`iso`'s form) as `local_iso` shows it; text that is not
    an instant is returned as it is."""
    try:
        return local_iso(parse_iso(text), tz) if text else text
    except ValueError:
        return text
