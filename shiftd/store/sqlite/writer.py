"""SQLite in WAL mode, one writer task, group commit.

Every write is a function queued to the writer task, which runs whatever has queued up
since its last commit as one transaction (each write inside its own savepoint, so one
failing write does not sink its neighbours) and then wakes the writers. SQLite runs inline
on the Trio thread: a WAL commit with `synchronous=NORMAL` takes tens of microseconds here,
group commit amortises it, and keeping threads out keeps MockClock tests deterministic
(waiting on a worker thread makes the autojump clock leap). Reads run inline too, after a
checkpoint (every read is one); they never see a half-done batch because a batch runs
without yielding.

Durability: with `synchronous=normal` a committed write survives the process being killed
(`kill -9`), which is what the daemon promises; `synchronous=full` also survives power loss
at some cost per commit. A database in memory (the simulator's) has nothing to make
durable: each write runs at once in the task that makes it (`_write`), and the writes share
one transaction, committed every `_MEMORY_COMMIT_EVERY` writes and at close (a commit there
cost more than most writes).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import trio

from ...logs import get_logger
from ..base import StoreError, StoreUnavailable
from ..sql.backend import SqlBackend, Write, WriterStats, gather, pending
from ..sql.dialect import Conn
from .dialect import SQLITE
from .schema import SCHEMA_VERSION, migrate

log = get_logger(__name__)
T = TypeVar("T")

_MEMORY_COMMIT_EVERY = 1000
"""Writes an in-memory database commits together (see the module docstring)."""


class SqliteWriter(SqlBackend):
    """The database file, its one connection and the writer task that commits."""

    dialect = SQLITE

    def __init__(self, path: Path, *, synchronous: str = "normal", batch_max: int = 512) -> None:
        self.path = path
        self._synchronous = synchronous.upper()
        self._batch_max = batch_max
        self._conn: sqlite3.Connection | None = None
        self._commit_every = _MEMORY_COMMIT_EVERY if str(path) == ":memory:" else 1
        self._uncommitted = 0
        self._send, self._recv = trio.open_memory_channel[Write](batch_max * 4)
        self.stats = WriterStats()
        self.on_commit = None

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        """Open and migrate the database, report started, then commit writes until cancelled.

        Raises StoreError if the database cannot be opened or is newer than this code. On
        cancellation it commits every write already queued, then closes the database.
        """
        self._conn = self._open()
        log.info("store.opened", path=str(self.path), schema_version=SCHEMA_VERSION)
        task_status.started(self)
        try:
            while True:
                batch = await gather(self._recv, self._batch_max)
                self._commit(batch)
        finally:
            batch = pending(self._recv)
            if batch:
                self._commit(batch)
            if self._conn.in_transaction:
                self._conn.execute("COMMIT")
            self._conn.close()
            self._conn = None
            log.info("store.closed", commits=self.stats.commits, writes=self.stats.writes)

    def _open(self) -> sqlite3.Connection:
        if str(self.path) == ":memory:":  # a database in memory (the simulator's): no file
            return self._connect(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                self._create()
            elif self.path.stat().st_size == 0 and not _wal(self.path).exists():
                # shiftd never leaves an empty file (`_create`): this one was truncated, and
                # SQLite would take it for a new database, silently, losing every claim.
                raise StoreError(
                    f"cannot open {self.path}: the file is empty (0 bytes), a truncated"
                    " database? Restore it from a backup, or move it away to start afresh"
                )
            return self._connect(self.path)
        except (sqlite3.Error, OSError) as exc:
            hint = _DAMAGED_HINT if _damaged(exc) else ""
            raise StoreError(f"cannot open {self.path}: {exc}{hint}") from exc

    def _connect(self, path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")
            migrate(conn)
        except BaseException:
            conn.close()  # a refused (too new) or broken database is not left open
            raise
        return conn

    def _create(self) -> None:
        """A new database, built beside `path` and moved into place whole, so that a crash
        while creating it never leaves an empty or half-made file under the real name."""
        new = self.path.with_name(self.path.name + ".new")
        for leftover in (new, _wal(new), new.with_name(new.name + "-shm")):
            leftover.unlink(missing_ok=True)
        self._connect(new).close()  # the last connection closing folds the WAL in
        fd = os.open(new, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(new, self.path)

    def _commit(self, batch: list[Write]) -> None:
        conn = self._require()
        started = time.perf_counter()
        try:
            if not conn.in_transaction:
                conn.execute("BEGIN IMMEDIATE")
            for item in batch:
                conn.execute("SAVEPOINT w")
                try:
                    item.result = item.fn(conn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO w")
                    item.error = _unavailable(exc) or exc
                conn.execute("RELEASE w")
            self._uncommitted += 1
            if self._uncommitted >= self._commit_every:
                conn.execute("COMMIT")
                self._uncommitted = 0
        except sqlite3.Error as exc:
            log.error("store.commit_failed", error=str(exc), batch=len(batch))
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._uncommitted = 0
            self._forget()  # what the batch's writes told the caches did not happen
            for item in batch:
                hint = _DAMAGED_HINT if _damaged(exc) else ""
                item.error = _unavailable(exc) or StoreError(f"commit failed: {exc}{hint}")
        self._committed(batch, time.perf_counter() - started)

    async def _write(self, fn: Callable[[Conn], T]) -> T:
        """See `SqlBackend._write`. A database in memory runs the write in the calling task,
        at once: with nothing made durable there is nothing to gather a batch for, and the
        hop to the writer task and back was a quarter of a simulated month's scheduling.
        Cancelled before the write, it raises Cancelled with nothing written; after it, the
        write stands."""
        if self._commit_every == 1:
            return await super()._write(fn)
        await trio.lowlevel.checkpoint_if_cancelled()
        item = Write(fn, trio.Event())
        self._commit([item])
        await trio.lowlevel.cancel_shielded_checkpoint()
        if item.error is not None:
            raise item.error
        result: T = item.result
        return result

    def _forget(self) -> None:
        """Drop whatever is kept in memory of the database (read again when next needed)."""

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("store is not running")
        return self._conn

    async def _reading(self, fn: Callable[[Conn], T]) -> T:
        # The checkpoint comes first: what `fn` reads is what the caller gets, current
        # when it resumes (no other task runs in between).
        await trio.lowlevel.checkpoint()
        conn = self._require()
        try:
            return fn(conn)
        except sqlite3.Error as exc:
            raise StoreError(f"read failed: {exc}") from exc

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Rows of `sql`, by name or index, read now (no checkpoint): for tests and tools."""
        conn = self._require()
        try:
            cur = conn.execute(sql, params)
            cur.row_factory = sqlite3.Row
            return cur.fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"read failed: {exc}") from exc


# SQLite's primary result codes for "cannot write now", whatever the statement: the write
# was refused before its commit point. (An I/O error may strike after it: a plain StoreError.)
_UNAVAILABLE = {
    sqlite3.SQLITE_FULL: "the disk is full",
    sqlite3.SQLITE_READONLY: "the database is read-only",
}

_DAMAGED_HINT = (
    " (the database file is damaged: shiftd leaves it as it is; restore it from a backup,"
    " or recover it with `sqlite3 FILE .recover`)"
)


def _damaged(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)


def _wal(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def _unavailable(exc: BaseException) -> StoreUnavailable | None:
    """A StoreUnavailable for an error that says the store cannot write now (rolled back,
    nothing changed), else None."""
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(exc, sqlite3.Error) or code is None or code & 0xFF not in _UNAVAILABLE:
        return None
    cause = _UNAVAILABLE[code & 0xFF]
    return StoreUnavailable(f"the store cannot write now ({cause}: {exc}); nothing was changed")
