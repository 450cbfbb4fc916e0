"""The few ways SQLite and PostgreSQL spell the same statement, and the connection shape
the shared SQL runs on.

Shared SQL is written in SQLite's spelling with `?` placeholders; a `Dialect` turns it into
the backend's (`sql`), and says how to ignore a duplicate row on insert, test membership
in a list, lock a row read for update, build a JSON object and compare text byte-wise.
Timestamps are ISO-8601 UTC text on both (`shiftd.clock.iso`), so they need no spelling.
Two writes each backend does its own way, both many rows at once: a wave's offers
(`contact`: SQLite a statement per chunk of caregivers, PostgreSQL a few array statements;
the rules they follow are shared, `transitions.next_code` and `transitions.offer_rows`) and
a transition's other messages (`queue_rows`: an `executemany`, or one array statement).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ...shifts.machine import Contact
    from ..base import OutboxRow


class Cursor(Protocol):
    """What shared SQL reads from a statement's cursor (sqlite3's and psycopg's agree)."""

    @property
    def rowcount(self) -> int: ...
    @property
    def description(self) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    """A connection inside the writer's transaction or a read (sqlite3's or psycopg's)."""

    def execute(self, query: Any, params: Any = ..., /) -> Cursor: ...


class Dialect:
    """How one backend spells what shared SQL needs. Every method is cheap and pure: a
    backend may cache what it returns per statement."""

    name: str = "sql"
    unique_violation: type[Exception] = Exception
    """What inserting a row with a taken key raises."""
    for_update: str = ""
    """Appended to a SELECT whose rows the same write then updates."""
    collate_c: str = ""
    """Appended to a text expression to order it byte-wise (SQLite always does)."""

    def sql(self, text: str) -> str:
        """`text` (SQLite's spelling, `?` placeholders) in this backend's spelling."""
        return text

    def insert_ignore(self, rest: str, returning: str = "") -> str:
        """`INSERT INTO <rest>` that skips a row whose unique key is taken, then
        `RETURNING <returning>` (of the rows inserted) if given."""
        tail = f" RETURNING {returning}" if returning else ""
        return self.sql(f"INSERT OR IGNORE INTO {rest}{tail}")

    def any_of(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        """A condition `column` is one of `values`, and its parameters."""
        return f"{column} IN ({','.join('?' * len(values))})", list(values)

    def execute_each(self, conn: Conn, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run `sql` (this backend's spelling) once with each of `rows` as its parameters."""
        for params in rows:
            conn.execute(sql, params)

    def json_text(self, pairs: str) -> str:
        """An expression for the JSON object text of `pairs` ('key', value, ...)."""
        return f"json_object({pairs})"

    def queue_rows(self, conn: Conn, values: Sequence[Sequence[Any]]) -> list[tuple[int, str]]:
        """Insert outbox rows, each `values` item (key, shift_id, caregiver_id, channel,
        purpose, to_phone, body, created_at, updated_at), skipping one whose key is queued
        already (also earlier in `values`); the (id, key) of those inserted, in id order."""
        raise NotImplementedError

    def contact(
        self,
        conn: Conn,
        shift_id: str,
        contacts: Sequence[Contact],
        codes: dict[str, int],
        stamp: str,
    ) -> list[OutboxRow]:
        """Queue a wave's offers (see `transitions.persist`): each contact without a code
        gets a fresh one (into `codes`); the rows queued, in id order. Raises StaleState if
        a phone decided as not opted out has opted out meanwhile."""
        raise NotImplementedError
