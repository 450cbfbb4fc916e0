"""The store's rows as both backends select them, and how a selected tuple becomes one."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ...clock import parse_iso
from ...models import Channel, OutboxState, Purpose, ShiftState
from ..base import CaregiverRow, OfferRow, OutboxRow, ProviderMessageRow, ShiftRow

COMPLIANCE_ANSWERS = "('opt_out', 'opt_in', 'help')"
"""Texts an opted-out phone still gets: the answers to STOP, START and HELP."""
HOLDER_NOTICES = "('confirm', 'released', 'shift_cancelled')"
IN_PROGRESS = "('offering', 'escalated')"

CAREGIVER_SQL = "SELECT id, name, role, phone, tags, active, language FROM caregivers"
SHIFT_SQL = (
    "SELECT id, organization_id, role_required, start_time, end_time, state, claimed_by,"
    " claimed_at, fanout_started_at, escalate_at, location, expires_at, next_step, generation,"
    " plan, version FROM shifts"
)
OFFER_SQL = (
    "SELECT o.shift_id, o.caregiver_id, o.code, o.declined_at, s.state, o.released_at"
    " FROM offers o JOIN shifts s ON s.id = o.shift_id"
)
OUTBOX_COLUMNS = (
    "id, shift_id, caregiver_id, channel, purpose, to_phone, body, state, attempts, created_at"
)
OUTBOX_SQL = f"SELECT {OUTBOX_COLUMNS} FROM outbox"


def dt(text: str) -> datetime:
    """A stored timestamp that is never NULL."""
    value = parse_iso(text)
    assert value is not None
    return value


@functools.lru_cache(maxsize=1024)
def tags(text: str) -> tuple[str, ...]:
    """A roster row's tags (JSON); most rows share a few tag lists."""
    return tuple(json.loads(text))


def caregiver_row(r: Sequence[Any]) -> CaregiverRow:
    """A row of `CAREGIVER_SQL`."""
    return CaregiverRow(r[0], r[1], r[2], r[3], tags(r[4]), bool(r[5]), r[6])


def shift_row(r: Sequence[Any]) -> ShiftRow:
    """A row of `SHIFT_SQL`."""
    # Thousands of actors keep their row: the strings most rows share are kept once.
    plan = sys.intern(r[14]) if r[14] is not None else None
    return ShiftRow(
        id=r[0],
        organization_id=sys.intern(r[1]),
        role_required=sys.intern(r[2]),
        start_time=dt(r[3]),
        end_time=dt(r[4]),
        state=ShiftState(r[5]),
        claimed_by=r[6],
        claimed_at=parse_iso(r[7]),
        fanout_started_at=parse_iso(r[8]),
        escalate_at=parse_iso(r[9]),
        location=r[10],
        expires_at=parse_iso(r[11]),
        next_step=r[12],
        generation=r[13],
        plan=plan,
        version=r[15],
    )


def offer_row(r: Sequence[Any]) -> OfferRow:
    """A row of `OFFER_SQL`."""
    return OfferRow(r[0], r[1], r[2], parse_iso(r[3]), ShiftState(r[4]), parse_iso(r[5]))


def _message(
    r: Sequence[Any],
) -> tuple[int, str | None, str, Channel, Purpose, str, str, OutboxState]:
    """The leading columns an outbox row and a provider's message share (id … state)."""
    return r[0], r[1], r[2], Channel(r[3]), Purpose(r[4]), r[5], r[6], OutboxState(r[7])


def outbox_row(r: Sequence[Any]) -> OutboxRow:
    """A row of `OUTBOX_SQL`."""
    return OutboxRow(*_message(r), r[8], dt(r[9]))


def provider_message_row(r: Sequence[Any]) -> ProviderMessageRow:
    """A row of the outbox's id … state, provider_id, provider_status."""
    return ProviderMessageRow(*_message(r), r[8], r[9])


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """The `q` quantile of sorted values, interpolating between the closest ranks."""
    if not ordered:
        return None
    rank = (len(ordered) - 1) * q
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)
