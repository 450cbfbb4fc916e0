"""The roster: caregivers and shifts as imported or added, before their actors take over."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from ...clock import iso
from ...models import Caregiver, Shift, ShiftState
from ..base import CaregiverRow, ConflictError, ImportCounts, ShiftRow
from .backend import SqlBackend
from .dialect import Conn, Dialect
from .rows import CAREGIVER_SQL, SHIFT_SQL, caregiver_row, shift_row
from .transitions import event

_CAREGIVER_FIELDS = ("name", "role", "phone", "tags", "active", "language")


class RolledBack(Exception):
    """Carries a dry run's counts out of its write, so the writer rolls the write back."""

    def __init__(self, counts: tuple[ImportCounts, ImportCounts]) -> None:
        super().__init__("dry run")
        self.counts = counts


class Roster(SqlBackend):
    """Caregivers and shifts as the roster has them."""

    async def import_roster(
        self,
        caregivers: Sequence[Caregiver],
        shifts: Sequence[Shift],
        at: datetime,
        *,
        dry_run: bool = False,
    ) -> tuple[ImportCounts, ImportCounts]:
        """Upsert by id. Shifts already in a fanout or closed are not changed (reported).
        With `dry_run` the very same writes are made and rolled back: the counts say what
        the import would do, and nothing changes."""
        d = self.dialect

        def write(conn: Conn) -> tuple[ImportCounts, ImportCounts]:
            self._roster_changed()
            counts = upsert_caregivers(d, conn, caregivers, at), upsert_shifts(d, conn, shifts, at)
            if dry_run:
                raise RolledBack(counts)
            return counts

        try:
            return await self._write(write)
        except RolledBack as done:
            return done.counts

    async def set_caregiver_active(self, caregiver_id: str, active: bool, at: datetime) -> bool:
        """Mark a caregiver active or not; False if there is no such caregiver. Offers and
        messages they already have stay as they are."""
        sql = self.dialect.sql("UPDATE caregivers SET active = ?, updated_at = ? WHERE id = ?")

        def write(conn: Conn) -> bool:
            self._roster_changed()
            return bool(conn.execute(sql, (active, iso(at), caregiver_id)).rowcount > 0)

        return await self._write(write)

    async def add_shift(self, shift: Shift, at: datetime) -> ShiftRow:
        """Create a shift in state `open`; ConflictError if the id exists."""
        d = self.dialect

        def write(conn: Conn) -> ShiftRow:
            # A savepoint of its own: on PostgreSQL a failed statement aborts the transaction.
            conn.execute("SAVEPOINT add_shift")
            try:
                insert_shift(d, conn, shift, at)
            except d.unique_violation as exc:
                conn.execute("ROLLBACK TO add_shift")
                conn.execute("RELEASE add_shift")
                raise ConflictError(f"shift {shift.id!r} already exists") from exc
            conn.execute("RELEASE add_shift")
            event(d, conn, shift.id, at, "created")
            return shift_row(
                conn.execute(d.sql(SHIFT_SQL + " WHERE id = ?"), (shift.id,)).fetchone()
            )

        return await self._write(write)

    async def caregiver(self, caregiver_id: str) -> CaregiverRow | None:
        return await self._caregiver(" WHERE id = ?", caregiver_id)

    async def caregiver_by_phone(self, phone: str) -> CaregiverRow | None:
        return await self._caregiver(" WHERE phone = ?", phone)

    async def _caregiver(self, where: str, value: str) -> CaregiverRow | None:
        sql = self.dialect.sql(CAREGIVER_SQL + where)

        def read(conn: Conn) -> CaregiverRow | None:
            found = conn.execute(sql, (value,)).fetchone()
            return caregiver_row(found) if found is not None else None

        return await self._reading(read)

    async def list_caregivers(self, role: str | None = None) -> list[CaregiverRow]:
        sql = CAREGIVER_SQL + " ORDER BY role, name"
        params: tuple[str, ...] = ()
        if role is not None:
            sql, params = CAREGIVER_SQL + " WHERE role = ? ORDER BY name", (role,)
        sql = self.dialect.sql(sql)
        return await self._reading(
            lambda conn: [caregiver_row(r) for r in conn.execute(sql, params).fetchall()]
        )

    async def roles(self) -> list[str]:
        """Every role some caregiver has, sorted (from the role index, not a scan)."""
        return await self._reading(
            lambda conn: [
                r[0] for r in conn.execute("SELECT DISTINCT role FROM caregivers ORDER BY role")
            ]
        )


def upsert_caregivers(
    d: Dialect, conn: Conn, caregivers: Sequence[Caregiver], at: datetime
) -> ImportCounts:
    """Upsert by id; `active` None keeps what is stored (a new caregiver is active), and so
    does `language` None (a new caregiver reads her organization's). Each change is listed
    in `changes` too."""
    counts = ImportCounts()
    stamp = iso(at)
    select = d.sql("SELECT name, role, phone, tags, active, language FROM caregivers WHERE id = ?")
    holder_of = d.sql("SELECT id FROM caregivers WHERE phone = ?")
    for cg in caregivers:
        tags = json.dumps(list(cg.tags))
        old = conn.execute(select, (cg.id,)).fetchone()
        was_active = bool(old[4]) if old is not None else True
        active = was_active if cg.active is None else cg.active
        stored_language = old[5] if old is not None else None
        language = stored_language if cg.language is None else cg.language
        # `active` compares equal to SQLite's 0/1 and PostgreSQL's boolean alike.
        new = (cg.name, cg.role, cg.phone, tags, active, language)
        if old is not None and tuple(old) == new:
            counts.unchanged += 1
            continue
        holder = conn.execute(holder_of, (cg.phone,)).fetchone()
        if holder is not None and holder[0] != cg.id:
            counts.skipped.append({"id": cg.id, "reason": f"phone already used by {holder[0]}"})
            continue
        if old is None:
            conn.execute(
                d.sql(
                    "INSERT INTO caregivers (id, name, role, phone, tags, active, language,"
                    " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                ),
                (cg.id, *new, stamp),
            )
            counts.created += 1
            counts.changes.append({"id": cg.id, "change": "created"})
            continue
        conn.execute(
            d.sql(
                "UPDATE caregivers SET name = ?, role = ?, phone = ?, tags = ?, active = ?,"
                " language = ?, updated_at = ? WHERE id = ?"
            ),
            (*new, stamp, cg.id),
        )
        fields = [f for f, a, b in zip(_CAREGIVER_FIELDS, old, new, strict=True) if a != b]
        if was_active and not active:
            counts.deactivated += 1
            counts.changes.append({"id": cg.id, "change": "deactivated", "fields": fields})
        else:
            counts.updated += 1
            counts.changes.append({"id": cg.id, "change": "updated", "fields": fields})
    return counts


def insert_shift(d: Dialect, conn: Conn, shift: Shift, at: datetime) -> None:
    """Insert a new shift in state `open`; raises `d.unique_violation` if its id exists."""
    stamp = iso(at)
    conn.execute(
        d.sql(
            "INSERT INTO shifts (id, organization_id, role_required, start_time, end_time,"
            " location, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?)"
        ),
        (
            shift.id,
            shift.organization_id,
            shift.role_required,
            iso(shift.start_time),
            iso(shift.end_time),
            shift.location,
            stamp,
            stamp,
        ),
    )


def upsert_shifts(d: Dialect, conn: Conn, shifts: Sequence[Shift], at: datetime) -> ImportCounts:
    """Insert new shifts; change those not yet fanned out; report the others skipped."""
    counts = ImportCounts()
    for shift in shifts:
        fields = (
            shift.organization_id,
            shift.role_required,
            iso(shift.start_time),
            iso(shift.end_time),
            shift.location,
        )
        old = conn.execute(
            d.sql(
                "SELECT organization_id, role_required, start_time, end_time, location, state"
                " FROM shifts WHERE id = ?"
            ),
            (shift.id,),
        ).fetchone()
        if old is None:
            insert_shift(d, conn, shift, at)
            event(d, conn, shift.id, at, "created")
            counts.created += 1
        elif tuple(old[:5]) == fields:
            counts.unchanged += 1
        elif old[5] != ShiftState.OPEN:
            counts.skipped.append({"id": shift.id, "reason": f"shift is {old[5]}; not changed"})
        else:
            # Only before its fanout (the one write to a shift not made by its actor); the
            # version moves, so an actor that read the shift before decides afresh.
            conn.execute(
                d.sql(
                    "UPDATE shifts SET organization_id = ?, role_required = ?, start_time = ?,"
                    " end_time = ?, location = ?, updated_at = ?, version = version + 1"
                    " WHERE id = ? AND state = 'open'"
                ),
                (*fields, iso(at), shift.id),
            )
            event(d, conn, shift.id, at, "updated")
            counts.updated += 1
    return counts
