"""Shifts and their offers: the reads, the facts a shift's actor decides from (one named
query each) and its transitions (one transaction each, see `transitions`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ...clock import iso, parse_iso
from ...models import Channel, ShiftState
from ...shifts.machine import Claimant, Holding, Offer, Reached, Transition
from ..base import Answering, InboundLog, NewMessage, OfferRow, Persisted, ShiftRow
from .backend import SqlBackend
from .dialect import Conn, Dialect
from .rows import (
    CAREGIVER_SQL,
    IN_PROGRESS,
    OFFER_SQL,
    SHIFT_SQL,
    caregiver_row,
    dt,
    offer_row,
    shift_row,
)
from .transitions import persist, queue

_OPEN_FOR_CAREGIVER = (
    f" WHERE o.caregiver_id = ? AND s.state IN {IN_PROGRESS} ORDER BY o.offered_at, o.shift_id"
)
_LATEST_FOR_CAREGIVER = " WHERE o.caregiver_id = ? ORDER BY o.offered_at DESC"
_ANSWERING = (
    "SELECT c.id, c.name, c.role, c.phone, c.tags, c.active, c.language,"
    " oo.phone IS NOT NULL FROM caregivers c LEFT JOIN opt_outs oo ON oo.phone = c.phone"
    " WHERE c.phone = ?"
)
"""A caregiver by phone (the columns of `CAREGIVER_SQL`), and whether the phone opted out."""


class Shifts(SqlBackend):
    """A shift's rows, facts and transitions."""

    async def _shifts(self, where: str, params: Sequence[Any] = ()) -> list[ShiftRow]:
        sql = self.dialect.sql(SHIFT_SQL + where)
        return await self._reading(
            lambda conn: [shift_row(r) for r in conn.execute(sql, params).fetchall()]
        )

    async def _offers(self, where: str, params: Sequence[Any] = ()) -> list[OfferRow]:
        sql = self.dialect.sql(OFFER_SQL + where)
        return await self._reading(
            lambda conn: [offer_row(r) for r in conn.execute(sql, params).fetchall()]
        )

    async def shift(self, shift_id: str) -> ShiftRow | None:
        rows = await self._shifts(" WHERE id = ?", (shift_id,))
        return rows[0] if rows else None

    async def list_shifts(self, state: ShiftState | None = None) -> list[ShiftRow]:
        if state is None:
            return await self._shifts(" ORDER BY start_time, id")
        return await self._shifts(" WHERE state = ? ORDER BY start_time, id", (state,))

    async def shifts_in_progress(self) -> list[ShiftRow]:
        return await self._shifts(f" WHERE state IN {IN_PROGRESS}")

    async def held_shifts(self, caregiver_id: str, *, now: datetime) -> list[ShiftRow]:
        """The filled shifts `caregiver_id` holds that start after `now`, soonest first."""
        return await self._shifts(
            " WHERE claimed_by = ? AND state = 'filled' AND start_time > ? ORDER BY start_time, id",
            (caregiver_id, iso(now)),
        )

    async def offers_for_shift(self, shift_id: str) -> list[OfferRow]:
        return await self._offers(" WHERE o.shift_id = ?", (shift_id,))

    async def open_offers_for_caregiver(self, caregiver_id: str) -> list[OfferRow]:
        """Every offer of the caregiver whose shift is still offering or escalated, however
        many, oldest first."""
        return await self._offers(_OPEN_FOR_CAREGIVER, (caregiver_id,))

    async def offer(self, shift_id: str, caregiver_id: str) -> OfferRow | None:
        """The caregiver's offer of the shift, open or closed, or None."""
        rows = await self._offers(
            " WHERE o.shift_id = ? AND o.caregiver_id = ?", (shift_id, caregiver_id)
        )
        return rows[0] if rows else None

    async def answering(self, phone: str, *, shift_id: str | None = None) -> Answering | None:
        """See `Store.answering`."""
        d = self.dialect
        who = d.sql(_ANSWERING)
        opened = d.sql(OFFER_SQL + _OPEN_FOR_CAREGIVER)
        latest = d.sql(OFFER_SQL + _LATEST_FOR_CAREGIVER + " LIMIT 1")
        named = d.sql(OFFER_SQL + " WHERE o.shift_id = ? AND o.caregiver_id = ?")

        def read(conn: Conn) -> Answering | None:
            found = conn.execute(who, (phone,)).fetchone()
            if found is None:
                return None
            cg, opted_out = found[0], bool(found[7])
            if shift_id is not None:
                row = conn.execute(named, (shift_id, cg)).fetchone()
                offer = offer_row(row) if row is not None else None
                return Answering(caregiver_row(found), [], opted_out, named=offer)
            open_offers = [offer_row(r) for r in conn.execute(opened, (cg,)).fetchall()]
            last = None
            if not open_offers:
                row = conn.execute(latest, (cg,)).fetchone()
                last = offer_row(row) if row is not None else None
            return Answering(caregiver_row(found), open_offers, opted_out, last)

        return await self._reading(read)

    async def offers_for_caregiver(self, caregiver_id: str, limit: int = 20) -> list[OfferRow]:
        """The caregiver's most recent offers, newest first (open and closed). For what she
        may still answer, see `open_offers_for_caregiver` (no limit)."""
        return await self._offers(_LATEST_FOR_CAREGIVER + " LIMIT ?", (caregiver_id, limit))

    # ---- a shift's facts ---------------------------------------------------------------

    async def shift_state(self, shift_id: str) -> tuple[ShiftRow, dict[str, Offer]] | None:
        """A shift with its offers, as its actor keeps them: each offer with the tails of the
        offer messages queued to her (see `machine.Offer.reached`). None if no such shift."""
        d = self.dialect

        def read(conn: Conn) -> tuple[ShiftRow, dict[str, Offer]] | None:
            found = conn.execute(d.sql(SHIFT_SQL + " WHERE id = ?"), (shift_id,)).fetchone()
            if found is None:
                return None
            return shift_row(found), offers_state(d, conn, shift_id)

        return await self._reading(read)

    async def offers_state(
        self, shift_id: str, caregiver_id: str | None = None
    ) -> dict[str, Offer]:
        """The shift's offers as its actor keeps them (see `shift_state`); with
        `caregiver_id`, hers only (an answer to a closed shift needs no more)."""
        d = self.dialect
        return await self._reading(lambda conn: offers_state(d, conn, shift_id, caregiver_id))

    async def claimant(
        self, shift_id: str, caregiver_id: str, window: tuple[datetime, datetime]
    ) -> Claimant:
        """The facts an answer decides from: her roster row, her filled shifts overlapping
        `window`, and when she was last told this shift is filled."""
        d = self.dialect

        def read(conn: Conn) -> Claimant:
            row = conn.execute(d.sql(CAREGIVER_SQL + " WHERE id = ?"), (caregiver_id,)).fetchone()
            (told,) = conn.execute(
                d.sql(
                    "SELECT max(created_at) FROM outbox WHERE shift_id = ? AND caregiver_id = ?"
                    " AND purpose = 'filled' AND state != 'cancelled'"
                ),
                (shift_id, caregiver_id),
            ).fetchone()
            return Claimant(
                caregiver_row(row) if row is not None else None,
                holdings(d, conn, window, shift_id, caregiver_id),
                parse_iso(told),
            )

        return await self._reading(read)

    async def reached(self, shift_id: str) -> tuple[Reached, ...]:
        """The caregivers an offer of the shift reached (handed to the provider) since it
        last reopened, by id."""
        d = self.dialect

        def read(conn: Conn) -> tuple[Reached, ...]:
            (reopened_at,) = conn.execute(
                d.sql("SELECT max(ts) FROM events WHERE shift_id = ? AND kind = 'released'"),
                (shift_id,),
            ).fetchone()
            return tuple(
                Reached(cg, language, phone)
                for cg, language, phone in conn.execute(
                    d.sql(
                        "SELECT DISTINCT ob.caregiver_id, c.language, c.phone FROM outbox ob"
                        " JOIN caregivers c ON c.id = ob.caregiver_id"
                        " WHERE ob.shift_id = ? AND ob.purpose = 'offer'"
                        " AND ob.state IN ('sending', 'sent') AND ob.created_at >= ?"
                        " ORDER BY ob.caregiver_id"
                    ),
                    (shift_id, reopened_at or ""),
                )
            )

        return await self._reading(read)

    async def contacted(self, shift_id: str) -> int:
        """How many caregivers were offered the shift (an offer message not withdrawn)."""
        sql = self.dialect.sql(
            "SELECT count(DISTINCT caregiver_id) FROM outbox WHERE shift_id = ?"
            " AND purpose = 'offer' AND state != 'cancelled'"
        )
        return await self._reading(lambda conn: int(conn.execute(sql, (shift_id,)).fetchone()[0]))

    # ---- a shift's transitions ---------------------------------------------------------

    async def persist(
        self,
        shift_id: str,
        version: int,
        transition: Transition,
        *,
        at: datetime,
        call_gap: timedelta = timedelta(0),
        inbound: InboundLog | None = None,
    ) -> Persisted:
        """Write one transition in one transaction: the shift row (refused with StaleState
        unless its stored version is `version`; the new version is `version + 1`), the new
        offers with their reply codes, declines and releases, the withdrawals, the messages
        and contacts, the timeline, and `inbound` (the text that caused it) if given. A
        message whose key is queued already is skipped. Raises StaleState (nothing written)
        if the shift changed since `version`, if the claimant of `free_of_overlap` holds an
        overlapping shift by now, or if a phone a contact was decided for has opted out
        meanwhile."""
        d = self.dialect

        def write(conn: Conn) -> Persisted:
            done = persist(d, conn, shift_id, version, transition, at, call_gap, inbound)
            self._texted(_texted_phones(transition))
            return done

        return await self._write(write)

    async def persist_steps(
        self,
        shift_id: str,
        steps: Sequence[tuple[int, Transition, InboundLog | None]],
        *,
        at: datetime,
        call_gap: timedelta = timedelta(0),
    ) -> list[Persisted]:
        """`persist` for several transitions of one shift, each made from the state the one
        before it leaves (`version`, `version + 1`…), in one transaction: all or none. An
        actor that finds a burst of messages in its inbox writes their transitions at once."""
        d = self.dialect

        def write(conn: Conn) -> list[Persisted]:
            done = [
                persist(d, conn, shift_id, version, transition, at, call_gap, inbound)
                for version, transition, inbound in steps
            ]
            for _, transition, _ in steps:
                self._texted(_texted_phones(transition))
            return done

        return await self._write(write)

    async def queue(self, messages: Sequence[NewMessage], *, at: datetime) -> int:
        """Queue messages; those whose key is already queued are ignored. Returns how many
        were new."""
        d = self.dialect
        return await self._write(lambda conn: queue(d, conn, messages, iso(at)))


def _texted_phones(transition: Transition) -> list[str]:
    return [c.phone for c in transition.contacts if c.channel is Channel.SMS]


def offers_state(
    d: Dialect, conn: Conn, shift_id: str, caregiver_id: str | None = None
) -> dict[str, Offer]:
    """The shift's offers (hers only with `caregiver_id`), each with the tails of the offer
    messages queued to her."""
    which = " WHERE shift_id = ?"
    params: tuple[str, ...] = (shift_id,)
    if caregiver_id is not None:
        which, params = " WHERE shift_id = ? AND caregiver_id = ?", (shift_id, caregiver_id)
    reached: dict[str, set[str]] = {}
    prefix = len("offer:") + len(shift_id) + 1
    for cg, key in conn.execute(
        d.sql("SELECT caregiver_id, key FROM outbox" + which + " AND purpose = 'offer'"), params
    ):
        reached.setdefault(cg, set()).add(key[prefix + len(cg) + 1 :])
    return {
        cg: Offer(code, declined is not None, released is not None, frozenset(reached.get(cg, ())))
        for cg, code, declined, released in conn.execute(
            d.sql("SELECT caregiver_id, code, declined_at, released_at FROM offers" + which),
            params,
        )
    }


def holdings(
    d: Dialect,
    conn: Conn,
    window: tuple[datetime, datetime],
    exclude: str,
    caregiver_id: str | None = None,
) -> tuple[Holding, ...]:
    """The filled shifts other than `exclude` overlapping `window` (hers only with
    `caregiver_id`)."""
    sql = (
        "SELECT id, claimed_by, start_time, end_time FROM shifts WHERE state = 'filled'"
        " AND id != ? AND start_time < ? AND end_time > ?"
    )
    params: tuple[Any, ...] = (exclude, iso(window[1]), iso(window[0]))
    if caregiver_id is not None:
        sql += " AND claimed_by = ?"
        params += (caregiver_id,)
    return tuple(
        Holding(sid, cg, dt(start), dt(end))
        for sid, cg, start, end in conn.execute(d.sql(sql), params)
    )
