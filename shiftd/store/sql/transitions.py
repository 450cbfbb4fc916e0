"""A shift's transition written in one transaction, once for both backends: the shift row
guarded by its version, its offers, withdrawals, messages, timeline and the inbound text
that caused it (see `shiftd.store.base`). Also the smaller writes other aggregates share:
queueing a message, logging an inbound, recording a timeline event.

Each function runs inside the writer's transaction on `conn`, spelling its SQL through
`d`; what it raises rolls back its write only (the writer's savepoint)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from ...clock import iso
from ...models import Channel, OutboxState, Purpose
from ..base import InboundLog, NewMessage, OutboxRow, Persisted, StaleState, StoreError
from .dialect import Conn, Dialect
from .rows import dt

if TYPE_CHECKING:
    from ...shifts.machine import Contact, Transition, Withdrawal

MAX_CODE = 99
"""Reply codes stay two digits; they cycle so a code is not reused soon after."""

_OUTBOX_ROW = (
    "outbox (key, shift_id, caregiver_id, channel, purpose, to_phone, body, created_at,"
    " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPDATE_SHIFT = (
    "UPDATE shifts SET state = ?, claimed_by = ?, claimed_at = ?,"
    " fanout_started_at = ?, escalate_at = ?, expires_at = ?, plan = ?,"
    " next_step = ?, generation = ?, version = version + 1, updated_at = ?"
    " WHERE id = ? AND version = ?"
)
_OVERLAP = (
    "SELECT 1 FROM shifts WHERE claimed_by = ? AND state = 'filled' AND id != ?"
    " AND start_time < ? AND end_time > ? LIMIT 1"
)


def persist(
    d: Dialect,
    conn: Conn,
    shift_id: str,
    version: int,
    transition: Transition,
    at: datetime,
    call_gap: timedelta,
    inbound: InboundLog | None,
) -> Persisted:
    """One transition's writes (see `Store.persist`). Raises StaleState (nothing written)
    if the shift's version is no longer `version`, if the claimant of `free_of_overlap`
    took an overlapping shift meanwhile, or if a phone of the wave opted out meanwhile."""
    stamp = iso(at)
    assert stamp is not None
    if transition.state is not None:
        s = transition.state.shift
        cur = conn.execute(
            d.sql(_UPDATE_SHIFT),
            (
                s.state,
                s.claimed_by,
                iso(s.claimed_at),
                iso(s.fanout_started_at),
                iso(s.escalate_at),
                iso(s.expires_at),
                s.plan,
                s.next_step,
                s.generation,
                stamp,
                shift_id,
                version,
            ),
        )
        if cur.rowcount != 1:
            raise StaleState(f"shift {shift_id} changed since version {version}")
    guard = transition.free_of_overlap
    if guard is not None:
        cg, start, end = guard
        if conn.execute(d.sql(_OVERLAP), (cg, shift_id, iso(end), iso(start))).fetchone():
            raise StaleState(f"caregiver {cg} took an overlapping shift meanwhile")
    if transition.declined is not None:
        conn.execute(
            d.sql("UPDATE offers SET declined_at = ? WHERE shift_id = ? AND caregiver_id = ?"),
            (stamp, shift_id, transition.declined),
        )
    if transition.released is not None:
        conn.execute(
            d.sql("UPDATE offers SET released_at = ? WHERE shift_id = ? AND caregiver_id = ?"),
            (stamp, shift_id, transition.released),
        )
    withdrawn = sum(withdraw(d, conn, shift_id, stamp, w) for w in transition.withdraw)
    codes: dict[str, int] = {}
    rows = (
        d.contact(conn, shift_id, transition.contacts, codes, stamp) if transition.contacts else []
    )
    held: set[int] = set()
    if call_gap:
        calls = [r for r in rows if r.channel is Channel.VOICE]
        held = space_calls(d, conn, calls, at, call_gap)
        rows = [r for r in rows if r.id not in held]
    queued = queue_new(d, conn, transition.messages, stamp)
    rows.extend(queued)
    for record in transition.records:
        if record.if_queued and not queued:
            continue
        detail = dict(record.detail or {})
        if record.withdrawn:
            detail["withdrawn"] = withdrawn
        event(d, conn, shift_id, at, record.kind, record.caregiver_id, detail=detail or None)
    replied = None
    if inbound is not None:
        replied = log_inbound(d, conn, stamp, inbound)
        if replied is not None:
            rows.append(replied)
    return Persisted(tuple(rows), codes, replied is not None, bool(held))


def space_calls(
    d: Dialect, conn: Conn, calls: Sequence[OutboxRow], at: datetime, gap: timedelta
) -> set[int]:
    """Hold each new call until `gap` after the latest other call to the same phone that is
    pending, sending or sent, so a phone rings once at a time. Returns the ids held."""
    held = set()
    for call in calls:
        (latest,) = conn.execute(
            d.sql(
                "SELECT max(coalesce(next_attempt_at, created_at)) FROM outbox"
                " WHERE to_phone = ? AND channel = 'voice' AND id != ?"
                " AND state IN ('pending', 'sending', 'sent')"
            ),
            (call.to_phone, call.id),
        ).fetchone()
        if latest is not None and dt(latest) + gap > at:
            due = dt(latest) + gap
            conn.execute(
                d.sql("UPDATE outbox SET next_attempt_at = ? WHERE id = ?"), (iso(due), call.id)
            )
            held.add(call.id)
    return held


def next_code(last: int, held: Callable[[int], bool], all_held: Callable[[], Iterable[int]]) -> int:
    """The next reply code after `last` that none of the caregiver's open offers holds
    (`held(code)`), cycling through 1..99 so codes are not reused soon after a shift
    closes; past 99 open offers, one more than the highest she holds (`all_held()`)."""
    for step in range(1, MAX_CODE + 1):
        code = (last + step - 1) % MAX_CODE + 1
        if not held(code):
            return code
    return max(all_held()) + 1


def offer_rows(
    shift_id: str,
    found: Iterable[tuple[int, str]],
    by_key: dict[str, tuple[Contact, str]],
    stamp: str,
) -> list[OutboxRow]:
    """The outbox rows a wave's insert created: `found` (id, key) pairs, in id order;
    `by_key` each key's contact and rendered body."""
    created = dt(stamp)
    rows = []
    for row_id, key in sorted(found):
        c, body = by_key[key]
        rows.append(
            OutboxRow(
                row_id,
                shift_id,
                c.caregiver_id,
                c.channel,
                Purpose.OFFER,
                c.phone,
                body,
                OutboxState.PENDING,
                0,
                created,
            )
        )
    return rows


def insert(
    d: Dialect,
    conn: Conn,
    key: str,
    shift_id: str | None,
    caregiver_id: str,
    channel: Channel,
    purpose: Purpose,
    to: str,
    body: str,
    stamp: str,
) -> OutboxRow | None:
    """Queue one message; None if its key is queued already."""
    found = conn.execute(
        d.insert_ignore(_OUTBOX_ROW, returning="id"),
        (key, shift_id, caregiver_id, channel, purpose, to, body, stamp, stamp),
    ).fetchone()
    if found is None:
        return None
    return OutboxRow(
        found[0],
        shift_id,
        caregiver_id,
        channel,
        purpose,
        to,
        body,
        OutboxState.PENDING,
        0,
        dt(stamp),
    )


def queue_new(
    d: Dialect, conn: Conn, messages: Sequence[NewMessage], stamp: str
) -> list[OutboxRow]:
    """Queue `messages` in one statement; the rows queued, in id order (a message whose
    key is queued already, or was earlier in `messages`, is skipped). Raises StoreError for
    a message to a caregiver not on the roster."""
    if not messages:
        return []
    by_key: dict[str, tuple[NewMessage, str]] = {}
    values = []
    for m in messages:
        to = m.to or phone_of(d, conn, m.caregiver_id)
        by_key.setdefault(m.key, (m, to))
        values.append(
            (m.key, m.shift_id, m.caregiver_id, m.channel, m.purpose, to, m.body, stamp, stamp)
        )
    created = dt(stamp)
    rows = []
    for row_id, key in d.queue_rows(conn, values):
        m, to = by_key[key]
        rows.append(
            OutboxRow(
                row_id,
                m.shift_id,
                m.caregiver_id,
                m.channel,
                m.purpose,
                to,
                m.body,
                OutboxState.PENDING,
                0,
                created,
            )
        )
    return rows


def queue(d: Dialect, conn: Conn, messages: Iterable[NewMessage], stamp: str | None) -> int:
    """Queue messages (those whose key is queued already are ignored); how many were new.
    Raises StoreError for a message to a caregiver not on the roster."""
    queued = 0
    statement = d.insert_ignore(_OUTBOX_ROW)
    for m in messages:
        to = m.to or phone_of(d, conn, m.caregiver_id)
        queued += conn.execute(
            statement,
            (m.key, m.shift_id, m.caregiver_id, m.channel, m.purpose, to, m.body, stamp, stamp),
        ).rowcount
    return queued


def phone_of(d: Dialect, conn: Conn, caregiver_id: str) -> str:
    """The caregiver's phone; StoreError if there is no such caregiver."""
    found = conn.execute(
        d.sql("SELECT phone FROM caregivers WHERE id = ?"), (caregiver_id,)
    ).fetchone()
    if found is None:
        raise StoreError(f"no caregiver {caregiver_id!r} to send to")
    return str(found[0])


def log_inbound(d: Dialect, conn: Conn, stamp: str, inbound: InboundLog) -> OutboxRow | None:
    """Log an inbound message with its outcome, and queue `inbound.reply` if it is not
    queued already (then the log keeps no reply). Returns the reply's row if queued."""
    m = inbound.reply
    row = None
    if m is not None:
        to = m.to or phone_of(d, conn, m.caregiver_id)
        row = insert(
            d, conn, m.key, m.shift_id, m.caregiver_id, m.channel, m.purpose, to, m.body, stamp
        )
    result = inbound.result
    conn.execute(
        d.insert_ignore(
            "inbound (provider_id, ts, from_phone, caregiver_id, channel, body, shift_id,"
            " outcome, reply) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ),
        (
            inbound.provider_id,
            stamp,
            inbound.from_phone,
            result.caregiver_id,
            inbound.channel,
            inbound.body[:1600],
            result.shift_id,
            result.outcome,
            result.reply if m is None or row is not None else None,
        ),
    )
    return row


def event(
    d: Dialect,
    conn: Conn,
    shift_id: str,
    at: datetime,
    kind: str,
    caregiver_id: str | None = None,
    *,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an event to the shift's timeline."""
    conn.execute(
        d.sql(
            "INSERT INTO events (shift_id, ts, kind, caregiver_id, detail) VALUES (?, ?, ?, ?, ?)"
        ),
        (shift_id, iso(at), kind, caregiver_id, json.dumps(detail) if detail else None),
    )


def withdraw(d: Dialect, conn: Conn, shift_id: str, stamp: str, w: Withdrawal) -> int:
    """Cancel the shift's pending messages `w` names; returns how many."""
    sql = (
        "UPDATE outbox SET state = 'cancelled', updated_at = ?"
        " WHERE shift_id = ? AND state = 'pending'"
    )
    params: list[Any] = [stamp, shift_id]
    if w.caregiver_id is not None:
        sql += " AND caregiver_id = ?"
        params.append(w.caregiver_id)
    if w.purpose is not None:
        sql += " AND purpose = ?"
        params.append(w.purpose)
    return int(conn.execute(d.sql(sql), params).rowcount)
