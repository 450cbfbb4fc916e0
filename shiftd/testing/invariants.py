"""What must hold after any crash, read from the store, the provider's log and what the
daemon answered: the promises of shiftd, each as one check.

`StoreView.load` reads the store (one instance's SQLite file or a cluster's PostgreSQL
database) read-only in one snapshot, safe beside running daemons; `check` returns one line
per violation, an empty list meaning every promise holds. The promises:

- **one holder**: per shift, `claimed` and `released` events alternate (never two holders
  without a release between), and every `claimed` answer the daemon gave is a `claimed`
  event; the latest, unless released since, is the shift's `claimed_by` (a holder who says
  YES again is answered `claimed` again: that is the same claim);
- **nothing committed lost**: every `declined`, `released`, `opted_out` answer is in the store;
- **never twice**: no (shift, caregiver, channel, purpose) handed to the provider twice in one
  generation of a shift (a release starts a new one), and the provider accepted no more
  messages to a phone (per text, or calls) than outbox rows that may have gone out;
- **calls on time**: no call queued before its stored instant (fanout start, or reopening,
  plus the escalation delay), and no wave of a running daemon overdue by more than a bound;
- **never the wrong people**: no offer queued after the caregiver declined or released that
  shift or after their phone opted out (unless suppressed at its turn); none of those left
  pending; no offer text accepted by the provider for an opted-out phone after the STOP was
  answered (plus the send timeout);
- **opt-outs kept**: an answered STOP with no START after it is still in `opt_outs`, and an
  answered START with no STOP after it is not.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..clock import parse_iso
from ..models import Channel, EventKind, OutboxState, Purpose, ShiftState
from ..outbox.sender import COMPLIANCE_PURPOSES
from .storeread import StoreReader

__all__ = [
    "COMPLIANCE_PURPOSES",
    "Ledger",
    "ProviderRequest",
    "StoreView",
    "call_lateness",
    "check",
]

ONCE_PURPOSES = frozenset(
    {Purpose.OFFER, Purpose.CONFIRM, Purpose.FILLED, Purpose.DECLINED, Purpose.RELEASED}
)
"""Purposes sent at most once per (shift, caregiver, channel, generation); replies to
individual texts (unclear, already filled…) may repeat, one per text."""
_MAYBE_SENT = (
    "state IN ('sent', 'sending') OR (state = 'failed' AND (error LIKE 'interrupted%'"
    " OR error LIKE '%may have been sent%'))"
)
_GENERATION = re.compile(r":g(\d+)(?::|$)")


@dataclass
class Ledger:
    """What the daemon answered the harness (its promises), with the harness's clock."""

    claims: list[tuple[str, str]] = field(default_factory=list)
    """(shift, caregiver) of every `claimed` answer, in the order they came."""
    declines: set[tuple[str, str]] = field(default_factory=set)
    releases: set[tuple[str, str]] = field(default_factory=set)
    stop_asked: dict[str, float] = field(default_factory=dict)
    """phone → when a STOP was last sent (answered or not); START likewise. A phone's STOP
    and START are sent one at a time, so their order is the order they took effect."""
    start_asked: dict[str, float] = field(default_factory=dict)
    stop_answered: dict[str, tuple[float, float]] = field(default_factory=dict)
    """phone → (sent, answered) of the latest STOP answered `opted_out`; START likewise."""
    start_answered: dict[str, tuple[float, float]] = field(default_factory=dict)

    def answered(self, keyword: str, phone: str, asked: float, at: float) -> None:
        """Note an answered STOP or START (answers may be learnt out of order)."""
        book = self.stop_answered if keyword == "stop" else self.start_answered
        if asked > book.get(phone, (-math.inf, 0.0))[0]:
            book[phone] = (asked, at)

    def opted_out_since(self, phone: str) -> float | None:
        """When an answered STOP took effect, if no START was sent after it."""
        stopped = self.stop_answered.get(phone)
        if stopped is None or self.start_asked.get(phone, -math.inf) > stopped[0]:
            return None
        return stopped[1]

    def opted_in(self, phone: str) -> bool:
        """Whether an answered START was sent after the last STOP."""
        started = self.start_answered.get(phone)
        return started is not None and self.stop_asked.get(phone, -math.inf) < started[0]


@dataclass(frozen=True, slots=True)
class ProviderRequest:
    """A message or call the provider accepted: when (harness clock), to whom, what."""

    at: float
    kind: str  # "message" | "call"
    to: str
    body: str | None
    sid: str | None


@dataclass
class StoreView:
    """The rows the checks read, loaded once."""

    shifts: dict[str, dict[str, Any]]
    outbox: list[dict[str, Any]]
    offers: dict[tuple[str, str], dict[str, Any]]
    events: list[dict[str, Any]]
    opt_outs: dict[str, datetime]
    phones: dict[str, str]
    """caregiver id → phone."""

    @classmethod
    def load(cls, store: StoreReader) -> StoreView:
        """Read the store, every table from one snapshot. Raises StoreUnreadable."""
        t = store.tables(
            {
                "shifts": "SELECT * FROM shifts",
                "outbox": "SELECT * FROM outbox ORDER BY id",
                "offers": "SELECT * FROM offers",
                "events": "SELECT * FROM events ORDER BY id",
                "opt_outs": "SELECT * FROM opt_outs",
                "caregivers": "SELECT id, phone FROM caregivers",
            }
        )
        return cls(
            shifts={r["id"]: r for r in t["shifts"]},
            outbox=t["outbox"],
            offers={(r["shift_id"], r["caregiver_id"]): r for r in t["offers"]},
            events=t["events"],
            opt_outs={r["phone"]: _dt(r["opted_out_at"]) for r in t["opt_outs"]},
            phones={r["id"]: r["phone"] for r in t["caregivers"]},
        )

    def interrupted(self) -> int:
        """Rows failed because a crash caught them `sending` (the price of at-most-once)."""
        return sum(
            1
            for r in self.outbox
            if r["state"] == OutboxState.FAILED and (r["error"] or "").startswith("interrupted")
        )


def check(
    view: StoreView,
    ledger: Ledger,
    provider: Sequence[ProviderRequest],
    *,
    delay: timedelta,
    now: datetime,
    ready_at: datetime | None,
    due_bound: timedelta,
    made: set[str],
    send_grace: float,
) -> list[str]:
    """Every violation of the promises above, one line each (empty: all hold).

    `delay` is the escalation delay of the default policy the shifts run; `ready_at` when the
    running daemon answered (None: it is not running, skip the overdue check); `send_grace`
    bounds when a text already handed over at a STOP may still arrive.

    A running daemon keeps sending while this reads, so `provider` must be taken *before*
    `view` (every message it holds then has its row in the store) and `made`, the sids the
    provider created, *after* it (every row `view` shows sent is in it).
    """
    out: list[str] = []
    out += _one_holder(view, ledger)
    out += _nothing_lost(view, ledger)
    out += _never_twice(view, provider, made)
    out += _calls_on_time(view, delay=delay, now=now, ready_at=ready_at, bound=due_bound)
    out += _never_the_wrong_people(view, ledger, provider, send_grace=send_grace)
    out += _opt_outs_kept(view, ledger)
    return out


def _one_holder(view: StoreView, ledger: Ledger) -> Iterable[str]:
    holders: dict[str, list[str]] = defaultdict(list)  # shift → claimers in order
    for e in view.events:
        if e["kind"] == EventKind.CLAIMED:
            if holders[e["shift_id"]] and holders[e["shift_id"]][-1] != "":
                yield (
                    f"{e['shift_id']}: claimed by {e['caregiver_id']} while held by "
                    + (holders[e["shift_id"]][-1])
                )
            holders[e["shift_id"]].append(e["caregiver_id"])
        elif e["kind"] == EventKind.RELEASED:
            holders[e["shift_id"]].append("")
    for shift_id, seq in holders.items():
        current = seq[-1] if seq else ""
        row = view.shifts.get(shift_id, {})
        stored = row.get("claimed_by") or ""
        if row.get("state") == ShiftState.FILLED and stored != current:
            yield f"{shift_id}: claimed_by {stored!r} but the events say {current!r}"
    for shift_id, cg in ledger.claims:
        seq = holders.get(shift_id, [])
        if cg not in seq:
            yield f"{shift_id}: {cg} was answered `claimed` but no claim is stored"
        elif seq[-1] == cg and view.shifts[shift_id]["claimed_by"] != cg:
            state = view.shifts[shift_id]["state"]
            if state != ShiftState.CANCELLED:
                yield f"{shift_id}: {cg} was answered `claimed` but the holder is not them"


def _nothing_lost(view: StoreView, ledger: Ledger) -> Iterable[str]:
    for shift_id, cg in sorted(ledger.declines):
        if not (view.offers.get((shift_id, cg)) or {}).get("declined_at"):
            yield f"{shift_id}: {cg}'s answered decline is not stored"
    for shift_id, cg in sorted(ledger.releases):
        if not (view.offers.get((shift_id, cg)) or {}).get("released_at"):
            yield f"{shift_id}: {cg}'s answered release is not stored"


def _generation(key: str) -> int:
    found = _GENERATION.search(key)
    return int(found.group(1)) if found else 0


def _maybe_sent(row: dict[str, Any]) -> bool:
    error = row["error"] or ""
    return row["state"] in (OutboxState.SENT, OutboxState.SENDING) or (
        row["state"] == OutboxState.FAILED
        and (error.startswith("interrupted") or "may have been sent" in error)
    )


def _never_twice(
    view: StoreView, provider: Sequence[ProviderRequest], made: set[str]
) -> Iterable[str]:
    once: Counter[tuple[str, str, str, str, int]] = Counter()
    possible: Counter[tuple[str, str, str | None]] = Counter()
    for r in view.outbox:
        if not _maybe_sent(r):
            continue
        if r["shift_id"] and r["purpose"] in ONCE_PURPOSES:
            once[
                r["shift_id"], r["caregiver_id"], r["channel"], r["purpose"], _generation(r["key"])
            ] += 1
        body = r["body"] if r["channel"] == Channel.SMS else None
        possible[r["channel"], r["to_phone"], body] += 1
    for (shift_id, cg, channel, purpose, gen), n in once.items():
        if n > 1:
            yield f"{shift_id}: {purpose} by {channel} to {cg} went out {n} times (gen. {gen})"
    accepted: Counter[tuple[str, str, str | None]] = Counter(
        (Channel.SMS if p.kind == "message" else Channel.VOICE, p.to, p.body) for p in provider
    )
    for key, n in accepted.items():
        if n > possible[key]:
            channel, to, body = key
            what = f"text {body!r}" if body else "call"
            yield f"provider took {n} of the {what} to …{to[-4:]}, {possible[key]} could go"
    for r in view.outbox:
        if r["state"] == OutboxState.SENT and r["provider_id"] and r["provider_id"] not in made:
            yield f"outbox {r['id']} is sent as {r['provider_id']}, which the provider never made"


def _bases(view: StoreView) -> dict[str, list[datetime]]:
    """shift → when each generation began (its fanout, then each reopening)."""
    bases: dict[str, list[datetime]] = {}
    for shift_id, s in view.shifts.items():
        if s["fanout_started_at"]:
            bases[shift_id] = [_dt(s["fanout_started_at"])]
    for e in view.events:
        if e["kind"] == EventKind.RELEASED and json.loads(e["detail"] or "{}").get("reopened"):
            bases.setdefault(e["shift_id"], []).append(_dt(e["ts"]))
    return bases


def call_lateness(view: StoreView, delay: timedelta) -> list[float]:
    """Per generation of a shift that reached its calls: seconds from their stored instant
    (the generation's start plus `delay`) to the first call queued."""
    bases = _bases(view)
    first: dict[tuple[str, int], datetime] = {}
    for r in view.outbox:
        if r["channel"] == Channel.VOICE and r["purpose"] == Purpose.OFFER:
            key = (r["shift_id"], _generation(r["key"]))
            first[key] = min(first.get(key, _dt(r["created_at"])), _dt(r["created_at"]))
    return [
        (at - bases[shift_id][gen] - delay).total_seconds()
        for (shift_id, gen), at in first.items()
        if gen < len(bases.get(shift_id, []))
    ]


def _calls_on_time(
    view: StoreView, *, delay: timedelta, now: datetime, ready_at: datetime | None, bound: timedelta
) -> Iterable[str]:
    bases = _bases(view)
    for r in view.outbox:
        if r["channel"] != Channel.VOICE or r["purpose"] != Purpose.OFFER:
            continue
        gen = _generation(r["key"])
        base = bases.get(r["shift_id"], [])
        if gen >= len(base):
            yield f"{r['shift_id']}: a call of generation {gen} without its fanout or reopening"
            continue
        due = base[gen] + delay
        if _dt(r["created_at"]) < due:
            yield f"{r['shift_id']}: call to {r['caregiver_id']} at {r['created_at']}, due {due}"
    if ready_at is None:
        return
    for shift_id, s in view.shifts.items():
        if not ShiftState(s["state"]).in_progress or not s["plan"]:
            continue
        if s["next_step"] >= len(json.loads(s["plan"])):
            continue
        due = max(_dt(s["escalate_at"]), ready_at)
        if now > due + bound:
            late = (now - due).total_seconds()
            yield f"{shift_id}: wave {s['next_step']} due {s['escalate_at']} not run {late:.1f}s on"


def _never_the_wrong_people(
    view: StoreView, ledger: Ledger, provider: Sequence[ProviderRequest], *, send_grace: float
) -> Iterable[str]:
    for r in view.outbox:
        if r["purpose"] != Purpose.OFFER or not r["shift_id"]:
            continue
        offer = view.offers.get((r["shift_id"], r["caregiver_id"])) or {}
        created = _dt(r["created_at"])
        for column, who in (("declined_at", "decliner"), ("released_at", "releaser")):
            if offer.get(column):
                if created > _dt(offer[column]):
                    yield f"{r['shift_id']}: {r['channel']} offer to the {who} {r['caregiver_id']}"
                if r["state"] == OutboxState.PENDING:
                    yield f"{r['shift_id']}: offer to the {who} {r['caregiver_id']} still pending"
        # A text still pending at a STOP is suppressed when its turn comes: what reached the
        # provider after the STOP is checked against the provider's record (below). Across
        # instances a wave stamped after a STOP may still commit before it (the stamps are
        # the instants decided at, not the commit order): such an offer is suppressed too.
        stopped = view.opt_outs.get(r["to_phone"])
        never_went = r["state"] in (OutboxState.SUPPRESSED, OutboxState.CANCELLED)
        if stopped is not None and created > stopped and not never_went:
            yield f"{r['shift_id']}: offer by {r['channel']} to opted-out {r['caregiver_id']}"
    compliance = {
        (r["to_phone"], r["body"]) for r in view.outbox if r["purpose"] in COMPLIANCE_PURPOSES
    }
    for p in provider:
        if p.kind != "message" or (p.to, p.body) in compliance:
            continue
        since = ledger.opted_out_since(p.to)
        if since is not None and p.at > since + send_grace:
            yield f"provider took a text to opted-out …{p.to[-4:]} {p.at - since:.2f}s after STOP"


def _opt_outs_kept(view: StoreView, ledger: Ledger) -> Iterable[str]:
    for phone in ledger.stop_answered:
        if ledger.opted_out_since(phone) is not None and phone not in view.opt_outs:
            yield f"…{phone[-4:]} answered STOP but is not opted out"
    for phone in ledger.start_answered:
        if ledger.opted_in(phone) and phone in view.opt_outs:
            yield f"…{phone[-4:]} answered START but is still opted out"


def _dt(text: str) -> datetime:
    value = parse_iso(text)
    assert value is not None
    return value
