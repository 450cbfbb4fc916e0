"""A running daemon's store read from outside, read-only, on either backend: the SQLite
file of one instance or the PostgreSQL database a cluster shares. Queries are written once,
with `?` placeholders."""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg.rows import dict_row

Rows = list[tuple[Any, ...]]
Tables = dict[str, list[dict[str, Any]]]


class StoreUnreadable(Exception):
    """The store cannot be read now (missing, locked past the timeout, server refusing)."""


class StoreReader(Protocol):
    def rows(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        """The rows of `sql`. Raises StoreUnreadable."""
        ...

    def tables(self, queries: Mapping[str, str]) -> Tables:
        """Each query's rows as dicts (by name), all read from one snapshot. Raises
        StoreUnreadable."""
        ...


class SqliteReader:
    """The SQLite file at `path`, opened read-only each time (WAL readers never block the
    daemon's writer)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _connect(self, timeout: float) -> sqlite3.Connection:
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=timeout)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        try:
            conn = self._connect(timeout=2)
            try:
                return conn.execute(sql, params).fetchall()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise StoreUnreadable(str(exc)) from exc

    def tables(self, queries: Mapping[str, str]) -> Tables:
        try:
            conn = self._connect(timeout=10)
            conn.row_factory = sqlite3.Row
            try:
                conn.execute("BEGIN")  # one snapshot for every query
                found = {name: [dict(r) for r in conn.execute(q)] for name, q in queries.items()}
                conn.execute("COMMIT")
                return found
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise StoreUnreadable(str(exc)) from exc


class PostgresReader:
    """The PostgreSQL database at `url`, a short connection each time."""

    def __init__(self, url: str) -> None:
        self.url = url

    @staticmethod
    def _sql(query: str) -> str:
        # psycopg's placeholders: `?` becomes `%s`, a literal `%` (LIKE 'x%') doubles.
        return query.replace("%", "%%").replace("?", "%s")

    def rows(self, sql: str, params: Sequence[Any] = ()) -> Rows:
        try:
            with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
                return conn.execute(self._sql(sql), tuple(params)).fetchall()
        except psycopg.Error as exc:
            raise StoreUnreadable(str(exc)) from exc

    def tables(self, queries: Mapping[str, str]) -> Tables:
        try:
            with psycopg.connect(self.url, connect_timeout=5, row_factory=dict_row) as conn:
                conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                conn.read_only = True
                with conn.transaction():  # one snapshot for every query
                    return {
                        name: conn.execute(self._sql(q), ()).fetchall()
                        for name, q in queries.items()
                    }
        except psycopg.Error as exc:
            raise StoreUnreadable(str(exc)) from exc
