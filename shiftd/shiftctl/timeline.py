"""A shift's timeline events in words (shiftctl's `shift show` and `watch`, the board)."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from ..models import EventKind
from .render import clean, duration, local_time, plural, render_detail, short_ts

_AUDIENCE = {"all": "everyone with the role", "offered": "those offered already"}


def _wave_text(d: dict[str, Any]) -> str:
    """A policy wave: `step 1: voice to those offered already, 4 contacted`."""
    text = f"step {clean(d.get('step'))}"
    if d.get("round"):
        text += f" round {clean(d.get('round'))}"
    if d.get("channel") is not None:
        audience = d.get("audience")
        shown = _AUDIENCE.get(audience, clean(audience)) if isinstance(audience, str) else "-"
        text += f": {clean(d.get('channel'))} to {shown}"
    tags = d.get("tags")
    if isinstance(tags, list) and tags:
        text += f" tagged {', '.join(clean(t) for t in tags)}"
    if "contacted" in d:
        text += f", {clean(d.get('contacted'))} contacted"
    if "newly_offered" in d:
        text += f" ({clean(d.get('newly_offered'))} newly offered)"
    return text


def _held_text(d: dict[str, Any]) -> str:
    return f"step {clean(d.get('step'))} held for quiet hours until {short_ts(d.get('until'))}"


def _released_text(d: dict[str, Any], holder: str) -> str:
    by = d.get("by")
    if by == "coordinator":
        text = f"{holder} unassigned by the coordinator"
    elif by == "caregiver":
        text = f"{holder} released it"
    else:
        text = f"{holder} released (by {clean(by)})"
    if d.get("reopened") is True:
        return text + "; offering it again"
    if d.get("reopened") is False:
        return text + "; too late to offer it again"
    return text


def timeline_detail(kind: Any, detail: Any) -> str:
    """The DETAIL cell of `shift show`'s timeline: a sentence for the kinds that have one,
    `key=value` pairs for the rest."""
    d: dict[str, Any] = detail if isinstance(detail, dict) else {}
    if not d:
        return "-"
    if kind == EventKind.WAVE or (kind == EventKind.ESCALATED and "channel" in d):
        return clean(_wave_text(d))
    if kind == EventKind.WAVE_HELD:
        return clean(_held_text(d))
    if kind == EventKind.UNFILLED and "contacted" in d:
        text = f"offers closed: {plural(d.get('contacted'), 'caregiver')} contacted"
        if d.get("withdrawn"):
            text += f", {plural(d.get('withdrawn'), 'pending offer')} withdrawn"
        told = d.get("coordinator_told")
        if told is not None:
            text += ", coordinator told" if told else ", no coordinator to tell"
        return clean(text)
    if kind == EventKind.RELEASED and "by" in d:
        text = f"by the {clean(d.get('by'))}"
        if d.get("reopened") is True:
            text += "; offered again"
        elif d.get("reopened") is False:
            text += "; too late to offer again"
        return clean(text)
    if kind == EventKind.CANCELLED and "withdrawn" in d:
        text = f"{plural(d.get('withdrawn'), 'pending message')} withdrawn"
        if "holder_told" in d:
            text += "; holder told" if d.get("holder_told") else "; nobody held it"
        return clean(text)
    if kind == EventKind.NOTICE_LOST and "purpose" in d:
        return clean(f"{d.get('purpose')} by {d.get('channel')} failed: {d.get('error')}")
    if kind == EventKind.FANOUT_STARTED and "candidates" in d:
        text = f"{plural(d.get('candidates'), 'candidate')}"
        if d.get("expires_at"):
            text += f", offers close at {short_ts(d.get('expires_at'))}"
        return clean(text)
    return render_detail(d)


def render_event(event: dict[str, Any], tz: tzinfo | None = None) -> str:
    """One event as one readable line: time (local to `tz` when given), kind, then what
    happened."""
    kind = event.get("kind")
    shift = clean(event.get("shift_id"))
    who = clean(event.get("caregiver_id"))
    raw = event.get("detail")
    d: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if kind == EventKind.FANOUT_STARTED:
        text = f"shift {shift}: {clean(d.get('offered'))} offered, escalates at "
        text += short_ts(local_time(d.get("escalate_at"), tz))
    elif kind == EventKind.ESCALATED:
        calls = d.get("calls")
        text = f"shift {shift}: {clean(calls)} call{'' if calls == 1 else 's'}"
    elif kind == EventKind.CLAIMED:
        text = f"shift {shift} by {who} ({clean(d.get('channel'))})"
        if isinstance(d.get("time_to_fill_s"), int | float):
            text += f" after {duration(d['time_to_fill_s'])}"
    elif kind == EventKind.DECLINED:
        text = f"shift {shift} by {who}"
    elif kind == EventKind.CANCELLED:
        text = f"shift {shift}"
    elif kind == EventKind.WAVE:
        text = f"shift {shift}: {_wave_text(d)}"
    elif kind == EventKind.WAVE_HELD:
        text = f"shift {shift}: {_held_text(d)}"
    elif kind == EventKind.UNFILLED:
        text = f"shift {shift}: offers closed with nobody claiming it"
    elif kind == EventKind.RELEASED:
        text = f"shift {shift}: {_released_text(d, who)}"
    elif kind == EventKind.REPLY:
        sender = who if event.get("caregiver_id") else f"unknown {clean(d.get('from'))}"
        text = f"{clean(d.get('channel'))} from {sender}: {clean(d.get('outcome'))}"
        if d.get("replayed"):
            text += " (replayed)"
        if event.get("shift_id"):
            text += f" (shift {shift})"
    elif kind in (
        EventKind.SENT,
        EventKind.SEND_RETRY,
        EventKind.SEND_FAILED,
        EventKind.SEND_SUPPRESSED,
    ):
        text = f"{clean(d.get('channel'))} {clean(d.get('purpose'))} to {who}"
        if event.get("shift_id"):
            text += f" (shift {shift})"
    elif kind == EventKind.OVERFLOW:
        text = f"{clean(d.get('dropped'))} events lost: this watch fell behind"
    else:
        parts = [f"shift {shift}"] if event.get("shift_id") else []
        if event.get("caregiver_id"):
            parts.append(f"caregiver {who}")
        if d:
            parts.append(render_detail(d))
        text = " ".join(parts) or "-"
    return f"{short_ts(local_time(event.get('ts'), tz))}  {clean(kind):<14}  {text}"
