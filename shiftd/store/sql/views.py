"""What operators and coordinators look at: a shift's detail, the audit export, counts,
the board and its accounts, and the fill statistics. Reads, but for the accounts."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from ...clock import iso
from ...models import OutboxState, ShiftState
from ..base import ShiftRow
from .backend import SqlBackend
from .dialect import Conn, Dialect
from .rows import HOLDER_NOTICES, IN_PROGRESS, SHIFT_SQL, dt, percentile, shift_row

_EXPORT_SQL = {
    "messages": (
        "SELECT created_at AS ts, 'out' AS tag, id, 'out' AS direction, shift_id,"
        " caregiver_id, channel, purpose, to_phone AS phone, body, state, sent_at,"
        " provider_id, provider_status, error, NULL AS outcome FROM outbox"
        " UNION ALL SELECT ts, 'in', id, 'in', shift_id, caregiver_id, channel, NULL,"
        " from_phone, body, NULL, NULL, provider_id, NULL, NULL, outcome FROM inbound"
    ),
    "timeline": "SELECT ts, kind AS tag, id, shift_id, kind, caregiver_id, detail FROM events",
}


def _dicts(cur: Any) -> list[dict[str, Any]]:
    names = [column[0] for column in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


class Views(SqlBackend):
    """The operator's and the coordinators' views."""

    async def shift_detail(self, shift_id: str) -> dict[str, Any] | None:
        """Everything `shift.show` prints: contacts, declines and the merged timeline."""
        d = self.dialect
        return await self._reading(lambda conn: _shift_detail(d, conn, shift_id))

    async def export(
        self,
        kind: str,
        since: datetime,
        until: datetime | None,
        after: tuple[str, str, int] | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """One page of the audit record in [since, until) (None: no end), oldest first:
        `messages` (every text, call and webhook queued, `direction` "out", and every
        message received, "in") or `timeline` (every shift event). `after` is the last
        row's `(ts, direction or kind, id)`, from which the page continues. A scan, not an
        index: for exports."""
        d = self.dialect
        tag = "tag" + d.collate_c
        params: list[Any] = [iso(since)]
        where = "ts >= ?"
        if until is not None:
            where += " AND ts < ?"
            params.append(iso(until))
        if after is not None:
            where += f" AND (ts, {tag}, id) > (?, ?, ?)"
            params += list(after)
        sql = d.sql(
            f"SELECT * FROM ({_EXPORT_SQL[kind]}) AS audit WHERE {where}"
            f" ORDER BY ts, {tag}, id LIMIT ?"
        )
        return await self._reading(lambda conn: _dicts(conn.execute(sql, [*params, limit])))

    async def counts(self) -> dict[str, dict[str, int]]:
        def read(conn: Conn) -> dict[str, dict[str, int]]:
            shifts = {s.value: 0 for s in ShiftState}
            for state, n in conn.execute("SELECT state, count(*) FROM shifts GROUP BY state"):
                shifts[state] = n
            outbox = {s.value: 0 for s in OutboxState}
            for state, n in conn.execute("SELECT state, count(*) FROM outbox GROUP BY state"):
                outbox[state] = n
            (caregivers,) = conn.execute("SELECT count(*) FROM caregivers").fetchone()
            return {"shifts": shifts, "outbox": outbox, "caregivers": {"total": caregivers}}

        return await self._reading(read)

    # ---- coordinators (the board's accounts) ------------------------------------------

    async def put_coordinator(self, name: str, password_hash: str, *, at: datetime) -> bool:
        """Create the account `name`, or set its password hash. True if it was created."""
        d = self.dialect
        create = d.insert_ignore(
            "coordinators (name, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?)"
        )
        update = d.sql("UPDATE coordinators SET password_hash = ?, updated_at = ? WHERE name = ?")

        def write(conn: Conn) -> bool:
            stamp = iso(at)
            created = conn.execute(create, (name, password_hash, stamp, stamp)).rowcount
            if not created:
                conn.execute(update, (password_hash, stamp, name))
            return bool(created)

        return await self._write(write)

    async def remove_coordinator(self, name: str) -> bool:
        """Delete the account `name`; False if there was none."""
        sql = self.dialect.sql("DELETE FROM coordinators WHERE name = ?")
        return await self._write(lambda conn: bool(conn.execute(sql, (name,)).rowcount))

    async def coordinator_hash(self, name: str) -> str | None:
        sql = self.dialect.sql("SELECT password_hash FROM coordinators WHERE name = ?")

        def read(conn: Conn) -> str | None:
            found = conn.execute(sql, (name,)).fetchone()
            return str(found[0]) if found is not None else None

        return await self._reading(read)

    async def list_coordinators(self) -> list[dict[str, str]]:
        sql = "SELECT name, created_at, updated_at FROM coordinators ORDER BY name"
        return await self._reading(lambda conn: _dicts(conn.execute(sql)))

    # ---- the board --------------------------------------------------------------------

    async def board_shifts(self, ending_after: datetime) -> list[tuple[ShiftRow, str | None]]:
        """Shifts that end after `ending_after` or are in progress, soonest first, each with
        the name of the caregiver holding it (None when nobody does)."""
        sql = self.dialect.sql(
            SHIFT_SQL.replace(
                " FROM shifts",
                ", (SELECT name FROM caregivers WHERE id = claimed_by) AS holder FROM shifts",
            )
            + f" WHERE end_time > ? OR state IN {IN_PROGRESS} ORDER BY start_time, id"
        )
        return await self._reading(
            lambda conn: [
                (shift_row(r), r[16]) for r in conn.execute(sql, (iso(ending_after),)).fetchall()
            ]
        )

    async def fanout_outcomes(self, since: datetime) -> list[tuple[datetime, str, float | None]]:
        """For each shift fanned out at or after `since`: when, its state, and seconds from
        fanout to claim (None unless filled)."""
        sql = self.dialect.sql(
            "SELECT state, fanout_started_at, claimed_at FROM shifts WHERE fanout_started_at >= ?"
        )
        rows = await self._reading(lambda conn: conn.execute(sql, (iso(since),)).fetchall())
        out = []
        for state, fanout_started_at, claimed_at in rows:
            started = dt(fanout_started_at)
            filled = state == ShiftState.FILLED and claimed_at is not None
            seconds = (dt(claimed_at) - started).total_seconds() if filled else None
            out.append((started, str(state), seconds))
        return out

    async def decline_times(self, since: datetime) -> list[datetime]:
        """When each decline at or after `since` happened."""
        sql = self.dialect.sql("SELECT declined_at FROM offers WHERE declined_at >= ?")
        rows = await self._reading(lambda conn: conn.execute(sql, (iso(since),)).fetchall())
        return [dt(r[0]) for r in rows]

    # ---- operator's view (shiftctl stats) -------------------------------------------------

    async def fill_stats(self, since: datetime) -> dict[str, Any]:
        """How the shifts whose fanout started at or after `since` fared, and the messages
        queued since then. A read (it scans the window's shifts and outbox rows).

        Returns `since`, `fanned_out`, `filled`, `unfilled`, `cancelled`, `in_progress`,
        `fill_rate` (filled / fanned out; None when nothing was fanned out),
        `time_to_fill_s` (`median`, `p90`, `max` of fanout start → claim over the filled
        ones, None when there are none; percentiles interpolate linearly, as SQL's
        percentile_cont) and `messages` (channel → outbox state → count).
        """
        d = self.dialect
        stamp = iso(since)

        def read(conn: Conn) -> tuple[list[Any], list[Any]]:
            shifts = conn.execute(
                d.sql(
                    "SELECT state, fanout_started_at, claimed_at FROM shifts"
                    " WHERE fanout_started_at >= ?"
                ),
                (stamp,),
            ).fetchall()
            messages = conn.execute(
                d.sql(
                    "SELECT channel, state, count(*) FROM outbox WHERE created_at >= ?"
                    " GROUP BY channel, state ORDER BY channel, state"
                ),
                (stamp,),
            ).fetchall()
            return shifts, messages

        rows, by_channel = await self._reading(read)
        tally = {"filled": 0, "unfilled": 0, "cancelled": 0, "in_progress": 0}
        fills: list[float] = []
        for state_text, started, claimed in rows:
            state = ShiftState(state_text)
            if state.in_progress:
                tally["in_progress"] += 1
            elif state.value in tally:
                tally[state.value] += 1
            if state is ShiftState.FILLED and claimed is not None:
                fills.append((dt(claimed) - dt(started)).total_seconds())
        fills.sort()
        messages: dict[str, dict[str, int]] = {}
        for channel, state_text, n in by_channel:
            messages.setdefault(channel, {})[state_text] = n
        return {
            "since": stamp,
            "fanned_out": len(rows),
            **tally,
            "fill_rate": tally["filled"] / len(rows) if rows else None,
            "time_to_fill_s": {
                "median": percentile(fills, 0.5),
                "p90": percentile(fills, 0.9),
                "max": fills[-1] if fills else None,
            },
            "messages": messages,
        }


def _shift_detail(d: Dialect, conn: Conn, shift_id: str) -> dict[str, Any] | None:
    found = conn.execute(d.sql(SHIFT_SQL + " WHERE id = ?"), (shift_id,)).fetchone()
    if found is None:
        return None
    contacts = [
        {
            "caregiver_id": cg,
            "name": name,
            "channel": channel,
            "purpose": purpose,
            "state": state,
            "provider_status": provider_status,
            "at": sent_at or updated_at,
        }
        for cg, name, channel, purpose, state, sent_at, updated_at, provider_status in conn.execute(
            d.sql(
                "SELECT o.caregiver_id, c.name, o.channel, o.purpose, o.state, o.sent_at,"
                " o.updated_at, o.provider_status"
                " FROM outbox o LEFT JOIN caregivers c ON c.id = o.caregiver_id"
                " WHERE o.shift_id = ? ORDER BY o.id"
            ),
            (shift_id,),
        ).fetchall()
    ]
    declines = [
        {"caregiver_id": cg, "name": name, "at": at}
        for cg, name, at in conn.execute(
            d.sql(
                "SELECT o.caregiver_id, c.name, o.declined_at FROM offers o"
                " JOIN caregivers c ON c.id = o.caregiver_id"
                " WHERE o.shift_id = ? AND o.declined_at IS NOT NULL ORDER BY o.declined_at"
            ),
            (shift_id,),
        ).fetchall()
    ]
    reply = d.json_text("'channel', channel, 'body', body, 'outcome', outcome")
    timeline = [
        {
            "ts": ts,
            "kind": kind,
            "caregiver_id": cg,
            "detail": json.loads(detail) if detail else None,
        }
        for ts, kind, cg, detail, _, _ in conn.execute(
            d.sql(
                "SELECT ts, kind, caregiver_id, detail, id, 0 AS src FROM events WHERE shift_id = ?"
                f" UNION ALL SELECT ts, 'reply', caregiver_id, {reply}, id, 1"
                " FROM inbound WHERE shift_id = ? ORDER BY ts, src, id"
            ),
            (shift_id, shift_id),
        ).fetchall()
    ]
    lost = [
        {"caregiver_id": cg, "purpose": purpose, "channel": channel, "error": error, "at": at}
        for cg, purpose, channel, error, at in conn.execute(
            d.sql(
                "SELECT caregiver_id, purpose, channel, error, updated_at FROM outbox"
                f" WHERE shift_id = ? AND state = 'failed' AND purpose IN {HOLDER_NOTICES}"
                " ORDER BY id"
            ),
            (shift_id,),
        ).fetchall()
    ]
    return {
        "shift": shift_row(found),
        "contacts": contacts,
        "declines": declines,
        "timeline": timeline,
        "lost_notices": lost,
    }
