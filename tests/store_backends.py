"""The two store backends behind one face, for the tests every backend must pass.

`backend` (a fixture in conftest.py) is parametrized over SQLite (a file in tmp_path) and
PostgreSQL (a fresh database `shiftd_test_<random>` on the local server, dropped after the
test). The PostgreSQL database is a copy of a template that the store's `migrate` brought to
the schema version once per run (copying costs about half of creating an empty database and
migrating it); under the `empty_database` mark it starts empty, as SQLite's file does, for
the tests of the migration itself. Tests write SQL with `?` placeholders; for PostgreSQL
they become `%s`.

Where PostgreSQL is not answering at $SHIFTD_TEST_POSTGRES (default
postgresql://postgres@127.0.0.1:5432/postgres, trust auth) its tests are skipped, all with
the same reason, so pytest's summary says so in one line. Where it answers, a failure to
make the test's database is an error, never a skip.

Clocks: the PostgreSQL store waits for the server on worker threads, and Trio's autojump
clock counts a task waiting on a thread as idle, so virtual time may leap while a query
runs. So on PostgreSQL the `backend` fixture raises the test's `autojump_clock` threshold to
`conftest.PG_AUTOJUMP` (0.25 s of real idleness before virtual time jumps): a query in
flight never lets a `fail_after` or a timer fire early, and tests that sleep still run in
virtual time (each idle jump costing that real pause).
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from shiftd.store import sqlite as sqlite_schema
from shiftd.store.sqlite import SqliteStore
from shiftd.testing.postgres import (
    ADMIN_URL,
    create_database,
    drop_database,
    postgres_unreachable,
)

__all__ = ["ADMIN_URL", "Backend", "create_database", "drop_database", "postgres_unreachable"]


@dataclass
class Backend:
    """One backend, with a database (file or PostgreSQL database) of its own."""

    name: str
    tmp_path: Path
    url: str | None = None

    @property
    def path(self) -> Path:
        return self.tmp_path / "s.sqlite3"

    def new(self, **options: Any) -> Any:
        """A store on this test's database, not started."""
        if self.name == "sqlite":
            return SqliteStore(self.path, **options)
        from shiftd.store.postgres import PostgresStore

        assert self.url is not None
        return PostgresStore(self.url, **options)

    @asynccontextmanager
    async def running(self, **options: Any) -> AsyncIterator[Any]:
        """A started store; stopped (its queue drained) when the block ends."""
        async with trio.open_nursery() as n:
            store = await n.start(self.new(**options).run)
            yield store
            n.cancel_scope.cancel()

    def _sql(self, query: str) -> str:
        return query if self.name == "sqlite" else query.replace("?", "%s")

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the database directly, as an operator would (sqlite3 or psql)."""
        if self.name == "sqlite":
            with sqlite3.connect(self.path) as conn:
                return conn.execute(query, params).fetchall()
        import psycopg

        assert self.url is not None
        with psycopg.connect(self.url, autocommit=True) as pg:
            cur = pg.execute(self._sql(query), params)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description is not None else []

    async def read(self, store: Any, query: str, params: tuple[Any, ...] = ()) -> list[Any]:
        """Rows of `query` read through the running store."""
        if self.name == "sqlite":
            return [tuple(r) for r in store._read(query, params)]
        return list(await store._read(self._sql(query), params))

    def write_fn(self, query: str, params: tuple[Any, ...] = ()) -> Callable[[Any], Any]:
        """A write function for the store's writer that runs `query`."""
        sql = self._sql(query)
        return lambda conn: conn.execute(sql, params)

    async def execute(self, store: Any, query: str, params: tuple[Any, ...] = ()) -> None:
        """Run `query` through the running store's writer."""
        await store._write(self.write_fn(query, params))

    def in_trio(self, fn: Callable[[], Any]) -> Any:
        """Call `fn` on Trio's thread from inside a write function (PostgreSQL runs those
        on a worker thread; SQLite inline)."""
        if self.name == "sqlite":
            return fn()
        return trio.from_thread.run_sync(fn)

    def schema_version(self) -> int | None:
        if self.name == "sqlite":
            return int(self.sql("PRAGMA user_version")[0][0])
        return int(self.sql("SELECT version FROM shiftd_schema")[0][0])

    @property
    def latest_version(self) -> int:
        if self.name == "sqlite":
            return sqlite_schema.SCHEMA_VERSION
        from shiftd.store import postgres

        return postgres.SCHEMA_VERSION

    def mark_newer(self) -> None:
        """Make this (empty) database claim a schema newer than the code's."""
        newer = self.latest_version + 1
        if self.name == "sqlite":
            with sqlite3.connect(self.path) as conn:
                conn.execute(f"PRAGMA user_version = {newer}")
            return
        self.sql("CREATE TABLE shiftd_schema (version INTEGER NOT NULL)")
        self.sql("INSERT INTO shiftd_schema (version) VALUES (?)", (newer,))

    def tables(self) -> set[str]:
        if self.name == "sqlite":
            return {r[0] for r in self.sql("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return {
            r[0]
            for r in self.sql(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
