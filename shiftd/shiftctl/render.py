"""How shiftctl prints answers: tables, key-value lines, durations, the stats."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from datetime import tzinfo
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..clock import relocal
from ..models import OutboxState

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def clean(value: Any) -> str:
    """Render a value for a terminal: ``-`` for null, control characters escaped.

    Names and message bodies come from rosters and caregivers' texts; they must not be
    able to move the cursor or recolour the coordinator's terminal.
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return render_detail(value)
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, list) else str(value)
    if text.isprintable():
        return text
    return "".join(
        ch
        if ch.isprintable() or ch == " "
        else _ESCAPES.get(ch, f"\\x{ord(ch):02x}")
        if ord(ch) < 0x100
        else f"\\u{ord(ch):04x}"
        for ch in text
    )


def render_detail(detail: dict[str, Any] | None) -> str:
    if not detail:
        return "-"
    parts = []
    for key, value in detail.items():
        if isinstance(value, str) and value and not any(c.isspace() or c in '"=' for c in value):
            shown = value
        else:
            shown = json.dumps(value, ensure_ascii=False)
        parts.append(f"{key}={shown}")
    return clean(" ".join(parts))


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO) -> None:
    cells = [[clean(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    for row in [list(headers), *cells]:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        print("  ".join(padded).rstrip(), file=out)


def print_pairs(pairs: Sequence[tuple[str, Any]], out: TextIO) -> None:
    width = max((len(k) for k, _ in pairs), default=0) + 1
    for key, value in pairs:
        print(f"{key + ':':<{width}} {clean(value)}", file=out)


def render_counts(counts: Any) -> str:
    if not isinstance(counts, dict):
        return clean(counts)
    return ", ".join(f"{k} {clean(v)}" for k, v in counts.items()) or "-"


def duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or not math.isfinite(seconds):
        return clean(seconds)
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h {minutes:02d}m {secs:02d}s"
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{seconds:.1f}s"


_SUMMARY_KEYS = (
    "id",
    "state",
    "role_required",
    "start_time",
    "end_time",
    "organization_id",
    "claimed_by",
)


def shift_summary(shift: dict[str, Any], out: TextIO, extra: Sequence[str] = ()) -> None:
    keys = [*_SUMMARY_KEYS, *extra]
    print_pairs(
        [(k, short_ts(v) if k in _TIME_KEYS else v) for k in keys for v in [shift.get(k)]], out
    )


_TIME_KEYS = frozenset({"start_time", "end_time", "claimed_at", "fanout_started_at", "escalate_at"})


Renderer = Callable[[dict[str, Any], TextIO], None]


def _percent(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return clean(value)
    return f"{100 * value:.1f}%"


MESSAGE_STATES = (
    OutboxState.SENT,
    OutboxState.FAILED,
    OutboxState.PENDING,
    OutboxState.SENDING,
    OutboxState.CANCELLED,
)


def render_stats(r: dict[str, Any], out: TextIO, window: str | None = None) -> None:
    """`shiftctl stats` as a person reads it."""
    shown_window = window or duration(r.get("window_s"))
    ttf = r.get("time_to_fill_s") if isinstance(r.get("time_to_fill_s"), dict) else {}
    if ttf and ttf.get("median") is not None:
        fill_time = (
            f"median {duration(ttf.get('median'))}, p90 {duration(ttf.get('p90'))}, "
            f"max {duration(ttf.get('max'))}"
        )
    else:
        fill_time = "-"
    print_pairs(
        [
            ("window", f"last {shown_window} (since {clean(r.get('since'))})"),
            ("fanned out", r.get("fanned_out")),
            ("filled", r.get("filled")),
            ("fill rate", _percent(r.get("fill_rate"))),
            ("cancelled", r.get("cancelled")),
            *([("unfilled", r.get("unfilled"))] if "unfilled" in r else []),
            ("in progress", r.get("in_progress")),
            ("time to fill", fill_time),
        ],
        out,
    )
    messages = r.get("messages") if isinstance(r.get("messages"), dict) else {}
    print("\nMessages", file=out)
    if not messages:
        print("  (none)", file=out)
        return
    states: list[str] = [*MESSAGE_STATES]
    for by_state in messages.values():
        if isinstance(by_state, dict):
            states += [s for s in by_state if s not in states]
    rows = []
    for channel, by_state in sorted(messages.items()):
        counts = by_state if isinstance(by_state, dict) else {}
        rows.append([channel, *(counts.get(s, 0) for s in states), sum(counts.values())])
    print_table(("CHANNEL", *(s.upper() for s in states), "TOTAL"), rows, out)


def short_ts(ts: Any, minutes: bool = False) -> str:
    """`2025-07-01T14:00:05-04:00` → `2025-07-01 14:00:05` (`… 14:00` with `minutes`): the
    local time the daemon sent, without offset or fractions; anything else as is."""
    if isinstance(ts, str) and len(ts) >= 19 and ts[10] == "T":
        return f"{ts[:10]} {ts[11:16] if minutes else ts[11:19]}"
    return clean(ts)


def plural(n: Any, word: str) -> str:
    return f"{clean(n)} {word}{'' if n == 1 else 's'}"


def local_time(ts: Any, tz: tzinfo | None) -> Any:
    return relocal(ts, tz) if tz is not None and isinstance(ts, str) else ts


def zone_named(name: Any) -> tzinfo | None:
    """The daemon's zone (the watch acknowledgement's `timezone`), None if it sent none."""
    try:
        return ZoneInfo(name) if isinstance(name, str) else None
    except (ValueError, ZoneInfoNotFoundError):
        return None


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
