"""What the coordinator's pages show, computed from the store's rows: plain data for the
templates (which escape every value), no HTML here.

Times are shown in the shift's organization's time zone; caregivers by name (their id only
when the roster no longer has them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from functools import lru_cache
from typing import Any

from ..models import Channel, EventKind, ShiftState
from ..shiftctl.timeline import timeline_detail
from ..shifts.policy import Wave, load_plan
from ..store.base import ShiftRow

STATE_ORDER = (
    ShiftState.OPEN,
    ShiftState.OFFERING,
    ShiftState.ESCALATED,
    ShiftState.FILLED,
    ShiftState.UNFILLED,
    ShiftState.CANCELLED,
)
_CHANNEL_WORD: dict[str, str] = {
    Channel.SMS: "texts",
    Channel.VOICE: "calls",
    Channel.WEBHOOK: "webhook",
}
_AUDIENCE = {"all": "everyone with the role", "offered": "those offered already"}


@lru_cache(maxsize=4096)  # boards show the same few start and end times many times over
def local(at: datetime | None, tz: tzinfo) -> str:
    """`Fri 4 Dec 07:00` in `tz` (empty for None)."""
    if at is None:
        return ""
    moment = at.astimezone(tz)
    return f"{moment:%a} {moment.day} {moment:%b %H:%M}"


@lru_cache(maxsize=4096)
def window(start: datetime, end: datetime, tz: tzinfo) -> str:
    """`Fri 4 Dec 07:00-15:00 EST`; the end's date too when it is another day."""
    s, e = start.astimezone(tz), end.astimezone(tz)
    until = f"{e:%H:%M}" if s.date() == e.date() else local(end, tz)
    return f"{local(start, tz)}-{until} {e.tzname() or ''}".rstrip()


@dataclass(frozen=True, slots=True)
class NextStep:
    """A wave still to come: when, over which channel, to whom."""

    at: datetime
    channel: str
    audience: str

    @property
    def what(self) -> str:
        channel = _CHANNEL_WORD.get(self.channel, self.channel)
        return f"{channel} to {_AUDIENCE.get(self.audience, self.audience)}"


def next_steps(row: ShiftRow) -> list[NextStep]:
    """The waves of an in-progress shift's plan that have not run yet, with their times
    (the next one is due at `escalate_at`; the others keep their spacing from it)."""
    if not row.state.in_progress or row.plan is None or row.escalate_at is None:
        return []
    try:
        waves: Sequence[Wave] = load_plan(row.plan)
    except ValueError:
        return []
    rest = waves[row.next_step :]
    if not rest:
        return []
    base = rest[0].offset
    return [
        NextStep(row.escalate_at + (w.offset - base), w.channel.value, w.audience)
        for w in rest
        if row.expires_at is None or row.escalate_at + (w.offset - base) < row.expires_at
    ]


@dataclass(frozen=True, slots=True)
class BoardShift:
    id: str
    organization_id: str
    role: str
    location: str | None
    state: str
    start: datetime
    when: str
    holder: str | None
    next_at: datetime | None
    next_what: str | None
    next_at_local: str = ""


def board_groups(
    rows: Sequence[tuple[ShiftRow, str | None]],
    *,
    tz_of: Callable[[str], tzinfo],
    now: datetime,
    organization: str | None,
    role: str | None,
) -> list[tuple[str, list[BoardShift]]]:
    """Shifts of today (in each one's local time) and later, filtered, grouped by state in
    STATE_ORDER (every state listed, empty or not)."""
    groups: dict[ShiftState, list[BoardShift]] = {state: [] for state in STATE_ORDER}
    today: dict[str, date] = {}
    for row, holder in rows:
        if organization and row.organization_id != organization:
            continue
        if role and row.role_required != role:
            continue
        tz = tz_of(row.organization_id)
        first_day = today.get(row.organization_id)
        if first_day is None:
            first_day = today[row.organization_id] = now.astimezone(tz).date()
        if not row.state.in_progress and row.end_time.astimezone(tz).date() < first_day:
            continue
        upcoming = next_steps(row)
        groups[row.state].append(
            BoardShift(
                id=row.id,
                organization_id=row.organization_id,
                role=row.role_required,
                location=row.location,
                state=row.state.value,
                start=row.start_time,
                when=window(row.start_time, row.end_time, tz),
                holder=holder or row.claimed_by,
                next_at=upcoming[0].at if upcoming else None,
                next_what=upcoming[0].what if upcoming else None,
                next_at_local=local(upcoming[0].at, tz) if upcoming else "",
            )
        )
    return [(state.value, groups[state]) for state in STATE_ORDER]


@dataclass(frozen=True, slots=True)
class StoryLine:
    """One line of a shift's story: when, what kind, who, and what it says."""

    at: str
    kind: str
    who: str | None
    text: str
    reply: str | None = None
    """A caregiver's reply exactly as written (free text: shown escaped, never as markup)."""


@dataclass
class Story:
    shift: ShiftRow
    holder: str | None
    when: str
    contacts: list[dict[str, Any]] = field(default_factory=list)
    declines: list[dict[str, Any]] = field(default_factory=list)
    lines: list[StoryLine] = field(default_factory=list)
    upcoming: list[tuple[str, NextStep]] = field(default_factory=list)
    expires: str = ""


def story(detail: Mapping[str, Any], names: Mapping[str, str], tz: tzinfo) -> Story:
    """A shift's story from `Store.shift_detail`, caregivers named from `names`."""
    row: ShiftRow = detail["shift"]

    def name(caregiver_id: str | None) -> str | None:
        return None if caregiver_id is None else names.get(caregiver_id, caregiver_id)

    def at(text: str | None) -> str:
        return local(datetime.fromisoformat(text), tz) if text else ""

    contacts = [
        {
            "who": c.get("name") or c["caregiver_id"],
            "channel": c["channel"],
            "purpose": c["purpose"].replace("_", " "),
            "state": c["state"],
            "provider_status": c.get("provider_status") or "",
            "at": at(c.get("at")),
        }
        for c in detail["contacts"]
    ]
    declines = [
        {"who": d.get("name") or d["caregiver_id"], "at": at(d["at"])} for d in detail["declines"]
    ]
    lines = []
    for entry in detail["timeline"]:
        kind, d = entry["kind"], entry.get("detail") or {}
        if kind == EventKind.REPLY:
            outcome = str(d.get("outcome", "")).replace("_", " ")
            lines.append(
                StoryLine(
                    at(entry["ts"]),
                    kind,
                    name(entry["caregiver_id"]),
                    f"{d.get('channel', '')} reply: {outcome}",
                    str(d.get("body", "")),
                )
            )
        else:
            if kind == EventKind.FANOUT_STARTED and d.get("expires_at"):
                d = {**d, "expires_at": at(str(d["expires_at"]))}
            if kind == EventKind.CLAIMED and "told_filled" in d:
                told = d["told_filled"]
                text = f"{told} other{'' if told == 1 else 's'} told it is filled"
            else:
                text = timeline_detail(kind, d)
            lines.append(
                StoryLine(
                    at(entry["ts"]),
                    kind.replace("_", " "),
                    name(entry["caregiver_id"]),
                    "" if text == "-" else text,
                )
            )
    return Story(
        shift=row,
        holder=name(row.claimed_by),
        when=window(row.start_time, row.end_time, tz),
        contacts=contacts,
        declines=declines,
        lines=lines,
        upcoming=[(local(step.at, tz), step) for step in next_steps(row)],
        expires=local(row.expires_at, tz) if row.state.in_progress else "",
    )


@dataclass(frozen=True, slots=True)
class DailyFigures:
    days: list[date]
    fill_rate: list[float]
    """Percent of the day's fanouts filled."""
    minutes_to_fill: list[float]
    """Median minutes from fanout to claim of the day's filled ones (0 when none)."""
    declines: list[int]


def daily(
    outcomes: Sequence[tuple[datetime, str, float | None]],
    declines: Sequence[datetime],
    *,
    until: datetime,
    days: int,
    tz: tzinfo,
) -> DailyFigures:
    """Per local day of the last `days` (oldest first): fill rate, median time-to-fill,
    declines."""
    last = until.astimezone(tz).date()
    span = [last - timedelta(days=days - 1 - i) for i in range(days)]
    fanned: Counter[date] = Counter()
    filled: Counter[date] = Counter()
    fills: dict[date, list[float]] = {}
    for started, state, seconds in outcomes:
        day = started.astimezone(tz).date()
        fanned[day] += 1
        if state == ShiftState.FILLED and seconds is not None:
            filled[day] += 1
            fills.setdefault(day, []).append(seconds / 60)
    declined = Counter(at.astimezone(tz).date() for at in declines)
    return DailyFigures(
        days=span,
        fill_rate=[100 * filled[d] / fanned[d] if fanned[d] else 0.0 for d in span],
        minutes_to_fill=[_median(fills.get(d, [])) for d in span],
        declines=[declined[d] for d in span],
    )


def _median(values: list[float]) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
