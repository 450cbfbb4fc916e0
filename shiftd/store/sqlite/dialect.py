"""SQLite's spelling of the shared SQL (it is written in SQLite's: nothing to change), and
how a wave's offers are written: a statement per chunk of caregivers, and each new reply
code found with one indexed look-up per code tried."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from ...models import Channel, Purpose
from ...shifts.machine import Contact
from ..base import OutboxRow, StaleState
from ..sql.dialect import Conn, Dialect
from ..sql.transitions import next_code, offer_rows

_CHUNK = 500  # parameters per statement, well under SQLite's limit

OPEN_OFFER_WITH_CODE = (
    "SELECT 1 FROM offers o JOIN shifts s ON s.id = o.shift_id"
    " WHERE o.caregiver_id = ? AND o.code = ? AND s.state IN ('offering', 'escalated')"
    " LIMIT 1"
)
"""Whether one caregiver holds an open offer with one code: the fanout's only question about
codes, answered from the index `offers_caregiver_code`."""


def open_offers_with_codes(pairs: int) -> str:
    """`OPEN_OFFER_WITH_CODE` for `pairs` (caregiver, code) pairs at once: the caregivers
    of those that one of her open offers holds."""
    values = ",".join("(?, ?)" for _ in range(pairs))
    return (
        f"WITH wanted (caregiver_id, code) AS (VALUES {values})"
        " SELECT o.caregiver_id FROM wanted w JOIN offers o"
        " ON o.caregiver_id = w.caregiver_id AND o.code = w.code"
        " JOIN shifts s ON s.id = o.shift_id WHERE s.state IN ('offering', 'escalated')"
    )


_OPEN_CODES = (
    "SELECT o.code FROM offers o JOIN shifts s ON s.id = o.shift_id"
    " WHERE o.caregiver_id = ? AND s.state IN ('offering', 'escalated')"
)
_INSERT_ROW = (
    "INSERT OR IGNORE INTO outbox (key, shift_id, caregiver_id, channel, purpose, to_phone,"
    " body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class SqliteDialect(Dialect):
    name = "sqlite"
    unique_violation = sqlite3.IntegrityError

    def execute_each(self, conn: Conn, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """See `Dialect.execute_each`: one `executemany` (the statement prepared once)."""
        assert isinstance(conn, sqlite3.Connection)
        conn.executemany(sql, rows)

    def queue_rows(self, conn: Conn, values: Sequence[Sequence[Any]]) -> list[tuple[int, str]]:
        """See `Dialect.queue_rows`: one `executemany`, then the rows past the last id."""
        assert isinstance(conn, sqlite3.Connection)
        (before,) = conn.execute("SELECT coalesce(max(id), 0) FROM outbox").fetchone()
        conn.executemany(_INSERT_ROW, values)
        return conn.execute(
            "SELECT id, key FROM outbox WHERE id > ? ORDER BY id", (before,)
        ).fetchall()

    def contact(
        self,
        conn: Conn,
        shift_id: str,
        contacts: Sequence[Contact],
        codes: dict[str, int],
        stamp: str,
    ) -> list[OutboxRow]:
        """See `Dialect.contact`. A wave may reach thousands: the statements go in chunks."""
        assert isinstance(conn, sqlite3.Connection)
        needs = [c.phone for c in contacts if c.opted_in]
        for start in range(0, len(needs), _CHUNK):
            chunk = needs[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            if conn.execute(
                f"SELECT 1 FROM opt_outs WHERE phone IN ({marks}) LIMIT 1", chunk
            ).fetchone():
                raise StaleState(f"shift {shift_id}: a phone in the wave opted out meanwhile")
        new = [c.caregiver_id for c in contacts if c.code is None]
        last: dict[str, int] = {}
        for start in range(0, len(new), _CHUNK):
            chunk = new[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            last.update(
                conn.execute(f"SELECT id, last_code FROM caregivers WHERE id IN ({marks})", chunk)
            )
            codes.update(fresh_codes(conn, {cg: last[cg] for cg in chunk}))
        conn.executemany(
            "INSERT INTO offers (shift_id, caregiver_id, code, offered_at) VALUES (?, ?, ?, ?)",
            [(shift_id, cg, codes[cg], stamp) for cg in new],
        )
        conn.executemany(
            "UPDATE caregivers SET last_code = ? WHERE id = ?", [(codes[cg], cg) for cg in new]
        )
        conn.executemany(
            "INSERT OR IGNORE INTO texted_phones (phone, first_at) VALUES (?, ?)",
            [(c.phone, stamp) for c in contacts if c.channel is Channel.SMS],
        )
        by_key = {}
        values = []
        for c in contacts:
            body = c.render(c.code if c.code is not None else codes[c.caregiver_id])
            by_key[c.key] = (c, body)
            values.append(
                (
                    c.key,
                    shift_id,
                    c.caregiver_id,
                    c.channel,
                    Purpose.OFFER,
                    c.phone,
                    body,
                    stamp,
                    stamp,
                )
            )
        return offer_rows(shift_id, self.queue_rows(conn, values), by_key, stamp)


def fresh_codes(conn: sqlite3.Connection, last: dict[str, int]) -> dict[str, int]:
    """`fresh_code` for each caregiver of `last` (her last code): one statement asks
    whether each holds an open offer with the code after her last (one indexed look-up
    each), and only those who do are asked further, one at a time."""
    first = {cg: next_code(code, lambda _: False, tuple) for cg, code in last.items()}
    held = conn.execute(
        open_offers_with_codes(len(first)), [value for pair in first.items() for value in pair]
    )
    for (cg,) in held.fetchall():
        first[cg] = fresh_code(conn, cg, last[cg])
    return first


def fresh_code(conn: sqlite3.Connection, caregiver_id: str, last: int) -> int:
    """The next reply code after `last` that none of the caregiver's open offers holds
    (`next_code`). Asks about this caregiver's own offers only, one indexed look-up per
    code tried (one, unless she holds the next codes; each reads her offers with that code,
    about one in 99 of hers): what a fanout costs depends on its audience, never on how
    many offers the role has open."""
    return next_code(
        last,
        lambda code: (
            conn.execute(OPEN_OFFER_WITH_CODE, (caregiver_id, code)).fetchone() is not None
        ),
        lambda: (code for (code,) in conn.execute(_OPEN_CODES, (caregiver_id,))),
    )


SQLITE = SqliteDialect()
