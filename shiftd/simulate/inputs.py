"""What a simulation replays: policies, shifts, the roster, and the history to learn from.

A *policy file* is a shiftd configuration file (the same schema, checked the same way, with
the same ``FILE:LINE: key.path: problem`` errors): its ``organizations`` (with their
``policy``, ``quiet_hours``, ``offer_lead_time``, ``travel_buffer``…), ``caregiver_tags``,
``escalation`` and ``timezone`` decide how shifts are offered; keys that concern a running
daemon (notifier, sockets, HTTP) are ignored. The daemon's own configuration is therefore a
valid policy file: the policy in use today.
"""

from __future__ import annotations

import csv
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path

from pydantic import ValidationError

from ..clock import parse_iso
from ..config import Config, load_config
from ..inbound.intent import Classifier, DefaultClassifier, Intent
from ..models import Caregiver, Channel, Outcome, Shift
from ..shifts.roles import Roles, UnknownRole
from .behaviour import Offered

_ANSWERS = frozenset(
    {Outcome.CLAIMED, Outcome.DECLINED, Outcome.ALREADY_FILLED, Outcome.NOT_ELIGIBLE}
)
"""Outcomes of an inbound message that answered an offer (yes or no)."""


class InputError(Exception):
    """An input file cannot be used; the message names the file (and line) and the problem."""


@dataclass(frozen=True, slots=True)
class Policy:
    name: str
    path: Path
    config: Config


@dataclass(frozen=True, slots=True)
class SimShift:
    """A shift to replay and the instant its fanout starts."""

    shift: Shift
    posted: datetime


def load_policy(path: Path) -> Policy:
    """The policy file at ``path``. Raises ``config.ConfigError`` (one line per problem)."""
    return Policy(path.stem, path, load_config(path))


_COLUMNS = ("role", "start", "end")
_OPTIONAL = ("organization", "id", "posted", "location")


def load_shifts_csv(path: Path, tz: tzinfo, notice: timedelta) -> list[SimShift]:
    """Shifts from a CSV with a header row: ``role,start,end`` and optionally
    ``organization`` (default ``default``), ``id`` (default ``<file stem>-<line>``),
    ``posted`` (when the fanout starts; default ``notice`` before the start) and
    ``location``. Times are ISO 8601; without an offset they are local time in ``tz``.

    Raises InputError naming ``FILE:LINE`` and the column for the first bad row.
    """
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: cannot read: not UTF-8 text ({exc.reason})") from None
    reader = csv.DictReader(text.splitlines())
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [c for c in _COLUMNS if c not in header]
    if missing:
        raise InputError(
            f"{path}:1: missing column(s) {', '.join(missing)} "
            f"(expected {', '.join(_COLUMNS)}[, {', '.join(_OPTIONAL)}])"
        )
    reader.fieldnames = header
    shifts: list[SimShift] = []
    seen: set[str] = set()
    for row in reader:
        line = reader.line_num
        cells = {k: (v or "").strip() for k, v in row.items() if k is not None}
        try:
            start = _instant(cells["start"], tz, "start")
            posted = _instant(cells["posted"], tz, "posted") if cells.get("posted") else None
            shift = Shift(
                id=cells.get("id") or f"{path.stem}-{line}",
                organization_id=cells.get("organization") or "default",
                role_required=cells["role"],
                start_time=start,
                end_time=_instant(cells["end"], tz, "end"),
                location=cells.get("location") or None,
            )
        except ValueError as exc:
            raise InputError(f"{path}:{line}: {_explain(exc)}") from None
        if shift.id in seen:
            raise InputError(f"{path}:{line}: id: {shift.id!r} appears twice")
        seen.add(shift.id)
        shifts.append(SimShift(shift, posted if posted is not None else start - notice))
    if not shifts:
        raise InputError(f"{path}: no shifts in the file")
    return shifts


def _instant(text: str, tz: tzinfo, column: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{column}: not an ISO 8601 time: {text!r}") from None
    if not datetime(1900, 1, 1) <= value.replace(tzinfo=None) <= datetime(2999, 12, 31):
        raise ValueError(f"{column}: {text!r} is out of range")
    return (value if value.tzinfo is not None else value.replace(tzinfo=tz)).astimezone(UTC)


def _explain(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "row"
        return f"{where}: {first['msg']}"
    return str(exc)


def load_roster_file(path: Path) -> list[Caregiver]:
    """Caregivers from a roster file in the ``shiftctl roster import`` format (JSON or YAML;
    its shifts are ignored). Raises InputError for an unusable file or caregiver."""
    from ..shiftctl.rosterload import load_roster
    from ..shiftctl.usage import UsageError

    try:
        raw = load_roster(str(path))["caregivers"]
    except UsageError as exc:
        raise InputError(str(exc)) from None
    caregivers = []
    for index, item in enumerate(raw):
        try:
            caregivers.append(Caregiver.model_validate(item))
        except ValidationError as exc:
            raise InputError(f"{path}: caregivers[{index}].{_explain(exc)}") from None
    if not caregivers:
        raise InputError(f"{path}: no caregivers in the file")
    return caregivers


@dataclass(frozen=True, slots=True)
class History:
    """What a store remembers: the active roster, the shifts it fanned out, and every offer
    (to caregivers who left too: what they did is part of how everybody answers)."""

    caregivers: list[Caregiver]
    shifts: list[SimShift]
    offers: list[Offered]


def read_history(
    path: Path, since: datetime | None = None, classifier: Classifier | None = None
) -> History:
    """Read a shiftd store (read-only; the daemon may keep running) for the shifts whose
    fanout started at or after ``since`` and every offer with its answer.

    An offer counts as answered by the caregiver's first yes or no about that shift on the
    same channel after it (a text answering a call counts for the text if there was one).
    ``claimed`` is a yes and ``declined`` a no; a reply that came too late
    (``already_filled``) or from someone who could not take the shift (``not_eligible``) is
    read again with ``classifier`` (default: shiftd's) to tell which it was. Raises
    InputError when the file is not a readable shiftd store.
    """
    if not path.is_file():
        raise InputError(f"{path}: no such store file")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise InputError(f"{path}: cannot open: {exc}") from None
    conn.row_factory = sqlite3.Row
    try:
        return _read(conn, since, classifier or DefaultClassifier())
    except sqlite3.Error as exc:
        raise InputError(f"{path}: not a readable shiftd store: {exc}") from None
    finally:
        conn.close()


def _read(conn: sqlite3.Connection, since: datetime | None, classifier: Classifier) -> History:
    stamp = (since or datetime(1900, 1, 1, tzinfo=UTC)).astimezone(UTC).isoformat()
    caregivers = []
    # The roster as it is now: a caregiver who left is never offered a shift again.
    for r in conn.execute(
        "SELECT id, name, role, phone, tags FROM caregivers WHERE active = 1 ORDER BY id"
    ):
        tags = tuple(json.loads(r["tags"] or "[]"))
        caregivers.append(
            Caregiver(id=r["id"], name=r["name"], role=r["role"], phone=r["phone"], tags=tags)
        )
    shifts = []
    for r in conn.execute(
        "SELECT id, organization_id, role_required, start_time, end_time, location,"
        " fanout_started_at FROM shifts WHERE fanout_started_at IS NOT NULL"
        " AND fanout_started_at >= ? ORDER BY fanout_started_at, id",
        (stamp.replace("+00:00", "Z"),),
    ):
        shift = Shift(
            id=r["id"],
            organization_id=r["organization_id"],
            role_required=r["role_required"],
            start_time=r["start_time"],
            end_time=r["end_time"],
            location=r["location"],
        )
        shifts.append(SimShift(shift, _when(r["fanout_started_at"])))
    replies: dict[tuple[str, str], list[tuple[datetime, Channel, bool]]] = {}
    for r in conn.execute(
        "SELECT shift_id, caregiver_id, channel, ts, outcome, body FROM inbound"
        " WHERE shift_id IS NOT NULL AND caregiver_id IS NOT NULL ORDER BY ts, id"
    ):
        if r["outcome"] not in _ANSWERS:
            continue
        channel = Channel(r["channel"])
        if r["outcome"] in (Outcome.CLAIMED, Outcome.DECLINED):
            accepted = r["outcome"] == Outcome.CLAIMED
        else:
            intent = classifier.classify(r["body"], channel).intent
            if intent is Intent.UNKNOWN:
                continue
            accepted = intent is Intent.ACCEPT
        replies.setdefault((r["shift_id"], r["caregiver_id"]), []).append(
            (_when(r["ts"]), channel, accepted)
        )
    sent: dict[tuple[str, str], list[tuple[datetime, Channel]]] = {}
    for r in conn.execute(
        "SELECT shift_id, caregiver_id, channel, sent_at FROM outbox WHERE purpose = 'offer'"
        " AND state = 'sent' AND sent_at IS NOT NULL AND shift_id IS NOT NULL"
        " AND channel IN ('sms', 'voice') ORDER BY sent_at, id"
    ):
        sent.setdefault((r["shift_id"], r["caregiver_id"]), []).append(
            (_when(r["sent_at"]), Channel(r["channel"]))
        )
    return History(caregivers, shifts, _match(sent, replies))


def _match(
    sent: dict[tuple[str, str], list[tuple[datetime, Channel]]],
    replies: dict[tuple[str, str], list[tuple[datetime, Channel, bool]]],
) -> list[Offered]:
    offers: list[Offered] = []
    for (shift_id, caregiver_id), messages in sent.items():
        answers = replies.get((shift_id, caregiver_id), [])
        channels = {channel for _, channel in messages}
        first = {channel: at for at, channel in reversed(messages)}
        answered: dict[Channel, tuple[datetime, bool]] = {}
        for at, channel, accepted in answers:
            target = channel if channel in channels else min(channels)
            if target not in answered and at >= first[target]:
                answered[target] = (at, accepted)
        for channel, at in sorted(first.items()):
            reply = answered.get(channel)
            offers.append(
                Offered(
                    shift_id,
                    caregiver_id,
                    channel,
                    at,
                    None if reply is None else reply[0] - at,
                    None if reply is None else reply[1],
                )
            )
    return offers


def _when(text: str) -> datetime:
    value = parse_iso(text)
    assert value is not None
    return value


def roles_without_caregivers(
    shifts: Sequence[SimShift], caregivers: Sequence[Caregiver], roles: Roles
) -> list[str]:
    """Roles some shift requires that nobody on the roster has (those shifts cannot fill),
    compared as the import spells them (`roles`: "rn" is "RN"); a role `roles` does not
    know stays as written."""

    def named(role: str) -> str:
        try:
            return roles.normalize(role)
        except UnknownRole:
            return role

    have = {named(c.role) for c in caregivers}
    return sorted({named(s.shift.role_required) for s in shifts} - have)
