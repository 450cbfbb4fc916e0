"""The PostgreSQL store's connections and writer: one writer, group commit, as SQLite.

Every write is a function queued to the writer task, which runs whatever has queued up
since its last commit as one transaction on one connection (each write inside its own
savepoint, so one failing write does not sink its neighbours), then wakes the writers. A
write made from a stale shift version raises StaleState inside its savepoint: that write is
rolled back, its neighbours commit.

psycopg's async API is asyncio-only. shiftd drives psycopg's sync connections from Trio on
worker threads (`trio.to_thread.run_sync`): the writer's whole batch is one thread hop on
its own connection, and reads run on a small pool of connections bounded by a
`trio.CapacityLimiter` (the README's "Storage: SQLite or PostgreSQL" has the measurement
behind that choice). A thread hop is not cancellable: a batch or read in flight finishes
before a cancellation is delivered, so a connection is never left mid-statement.

Timestamps are stored as ISO-8601 UTC text (`shiftd.clock.iso`, fixed width), compared
and sorted as text with the "C" collation, as in SQLite: both backends return the same
rows for the same writes. Server-side `statement_timeout` and `lock_timeout` bound every
statement, so a stuck lock or query turns into an error instead of a hang.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import psycopg
import psycopg.errors
import trio
from psycopg.types.string import StrDumper

from ...cluster import fencing
from ...logs import get_logger
from ..base import StoreError, StoreUnavailable
from ..sql.backend import SqlBackend, Write, WriterStats, gather, pending
from ..url import redacted
from .dialect import POSTGRES
from .schema import SCHEMA_VERSION, migrate

log = get_logger(__name__)
T = TypeVar("T")
Conn = psycopg.Connection[Any]


class _NulSafeStr(StrDumper):
    """PostgreSQL text cannot hold NUL: one in a caregiver's text (or anything else) is
    stored as U+FFFD instead of failing the write, as SQLite would have stored it."""

    def dump(self, obj: str) -> Any:
        return super().dump(obj.replace("\x00", "\ufffd") if "\x00" in obj else obj)


class PostgresWriter(SqlBackend):
    """The connections (one writer, a small pool of readers) and the writer task.

    `url` is a libpq URL or conninfo (`postgresql://user@host:5432/db`); a password may be
    in it, in ~/.pgpass or in $PGPASSWORD, and is never logged.
    """

    dialect = POSTGRES

    def __init__(
        self,
        url: str,
        *,
        batch_max: int = 512,
        readers: int = 4,
        statement_timeout: timedelta = timedelta(seconds=30),
        lock_timeout: timedelta = timedelta(seconds=5),
        connect_timeout: timedelta = timedelta(seconds=10),
    ) -> None:
        self.url = url
        self._batch_max = batch_max

        def ms(d: timedelta) -> int:
            return max(1, int(d.total_seconds() * 1000))

        self._options = (
            f"-c statement_timeout={ms(statement_timeout)} -c lock_timeout={ms(lock_timeout)}"
        )
        self._connect_timeout = max(1, int(connect_timeout.total_seconds()))
        self._writer: Conn | None = None
        self._readers: deque[Conn] = deque()
        self._read_limiter = trio.CapacityLimiter(readers)
        self._write_limiter = trio.CapacityLimiter(1)
        self._running = False
        self._send, self._recv = trio.open_memory_channel[Write](batch_max * 4)
        self.stats = WriterStats()
        self.on_commit = None

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect and migrate the database, report started, then commit writes until
        cancelled.

        Raises StoreError if the database cannot be reached or is newer than this code. On
        cancellation it commits every write already queued, then closes its connections.
        """
        try:
            self._writer = await trio.to_thread.run_sync(self._open)
        except BaseException:
            self._close_all()
            raise
        self._running = True
        log.info("store.opened", url=redacted(self.url), schema_version=SCHEMA_VERSION)
        task_status.started(self)
        try:
            while True:
                # Group commit, as SQLite; the commit's thread hop gathers the next batch.
                await self._commit(await gather(self._recv, self._batch_max))
        finally:
            self._running = False
            # No deadline of its own: the commit runs on a worker thread that cancellation
            # cannot stop, and the server ends each statement by `statement_timeout`.
            with trio.CancelScope(shield=True):
                batch = pending(self._recv)
                if batch:
                    await self._commit(batch)
            self._close_all()
            log.info("store.closed", commits=self.stats.commits, writes=self.stats.writes)

    def _connect(self) -> Conn:
        try:
            conn = psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=self._connect_timeout,
                options=self._options,
                application_name="shiftd",
            )
        except psycopg.Error as exc:
            raise StoreUnavailable(
                f"cannot connect to PostgreSQL at {redacted(self.url)}: {_first_line(exc)}"
            ) from exc
        conn.adapters.register_dumper(str, _NulSafeStr)
        return conn

    def _open(self) -> Conn:
        conn = self._connect()
        try:
            migrate(conn)
        except BaseException as exc:
            conn.close()
            if isinstance(exc, psycopg.Error):
                raise StoreError(f"cannot migrate {redacted(self.url)}: {exc}") from exc
            raise
        return conn

    def _close_all(self) -> None:
        for conn in (self._writer, *self._readers):
            if conn is not None:
                conn.close()
        self._writer = None
        self._readers.clear()

    async def _commit(self, batch: list[Write]) -> None:
        started = time.perf_counter()
        await trio.to_thread.run_sync(self._commit_batch, batch, limiter=self._write_limiter)
        self._committed(batch, time.perf_counter() - started)

    def _commit_batch(self, batch: list[Write]) -> None:
        """On the writer's thread: the batch in one transaction, each write in a savepoint.
        Sets each item's result or error; never raises."""
        committing = False
        try:
            conn = self._begin()
            for n, item in enumerate(batch):
                if n:
                    conn.execute("RELEASE w; SAVEPOINT w")
                try:
                    if item.fence is not None:
                        fencing.check(conn, item.fence)
                    item.result = item.fn(conn)
                except Exception as exc:
                    if conn.broken or conn.closed:
                        raise
                    conn.execute("ROLLBACK TO w")
                    item.error = _mapped(exc)
            committing = True
            conn.execute("COMMIT")
        except Exception as exc:
            log.error("store.commit_failed", error=_first_line(exc), batch=len(batch))
            error = self._batch_failed(exc, committing)
            for item in batch:
                item.result = None
                item.error = error

    def _begin(self) -> Conn:
        """The writer's connection, in a transaction with savepoint `w` open. A connection
        found dead here (the server restarted, an idle connection was cut) is replaced once:
        nothing of the batch has run yet. Raises what connecting or beginning raised."""
        for attempt in range(2):
            conn = self._writer
            if conn is None or conn.closed:
                conn = self._writer = self._connect()
            try:
                # Savepoint commands share a round trip: a write costs its statements + 1.
                conn.execute("BEGIN; SAVEPOINT w")
            except psycopg.OperationalError:
                if attempt or not (conn.broken or conn.closed):
                    raise
                conn.close()
                continue
            return conn
        raise AssertionError("unreachable")

    def _batch_failed(self, exc: Exception, committing: bool) -> StoreError:
        """Roll back (or drop a broken connection) after a batch failed; the error for its
        writes."""
        conn = self._writer
        if conn is not None and not conn.closed and not conn.broken:
            try:
                conn.execute("ROLLBACK")
            except psycopg.Error:
                conn.close()
        lost = conn is None or conn.closed or conn.broken
        if lost and committing:
            # COMMIT was sent and its answer lost: the batch may or may not have committed.
            return StoreError(f"commit outcome unknown, connection lost: {_first_line(exc)}")
        if isinstance(exc, StoreError):
            return exc
        return _unavailable(exc) or StoreError(f"commit failed: {_first_line(exc)}")

    def _require(self) -> None:
        if not self._running:
            raise StoreError("store is not running")

    async def _reading(self, fn: Callable[[Conn], T]) -> T:
        """Run `fn` on a reader connection on a worker thread (at most `readers` at once);
        it sees what was committed before each of its statements started.

        Raises StoreUnavailable if PostgreSQL cannot be reached, StoreError for any other
        failure. Not cancellable once started: the read completes, then the cancellation is
        delivered."""
        self._require()
        return await trio.to_thread.run_sync(self._read_on_thread, fn, limiter=self._read_limiter)

    def _read_on_thread(self, fn: Callable[[Conn], T]) -> T:
        for attempt in range(2):
            try:
                conn, pooled = self._readers.pop(), True
            except IndexError:
                conn, pooled = self._connect(), False
            try:
                result = fn(conn)
            except Exception as exc:
                lost = conn.broken or conn.closed
                if lost:
                    conn.close()
                else:
                    self._readers.append(conn)
                if lost and pooled and not attempt:
                    continue  # a pooled connection the server dropped meanwhile: a new one
                if isinstance(exc, StoreError):
                    raise
                error = _unavailable(exc) or StoreError(f"read failed: {_first_line(exc)}")
                raise error from exc
            self._readers.append(conn)
            return result
        raise AssertionError("unreachable")

    async def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self._reading(lambda conn: conn.execute(sql, params).fetchall())


# SQLSTATEs (and classes) that mean "cannot write now": the statement was refused or rolled
# back before its commit point, nothing changed, and a later try may succeed.
_UNAVAILABLE_STATES = {
    "08": "the connection to PostgreSQL failed",
    "53": "PostgreSQL is out of resources (disk full, out of memory or connections)",
    "25006": "the database is read-only",
    "57P01": "PostgreSQL is shutting down",
    "57P02": "PostgreSQL is shutting down",
    "57P03": "PostgreSQL is not accepting connections yet",
    "57014": "a statement ran past statement_timeout",
    "55P03": "a lock was not granted within lock_timeout",
    "40001": "a concurrent transaction conflicted",
    "40P01": "a deadlock was detected",
}


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _unavailable(exc: BaseException) -> StoreUnavailable | None:
    """A StoreUnavailable for an error that says PostgreSQL cannot take the write now
    (nothing changed), else None."""
    if isinstance(exc, StoreUnavailable):
        return exc
    if not isinstance(exc, psycopg.Error):
        return None
    state = exc.sqlstate
    if state is None:
        # No server answer: the connection is gone (or never was).
        if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            cause = "the connection to PostgreSQL was lost"
        else:
            return None
    else:
        cause_of = _UNAVAILABLE_STATES.get(state) or _UNAVAILABLE_STATES.get(state[:2])
        if cause_of is None:
            return None
        cause = cause_of
    return StoreUnavailable(
        f"the store cannot write now ({cause}: {_first_line(exc)}); nothing was changed"
    )


def _mapped(exc: Exception) -> BaseException:
    """What a write's caller sees for the error its function raised."""
    if isinstance(exc, StoreError) or not isinstance(exc, psycopg.Error):
        return exc
    return _unavailable(exc) or StoreError(f"write failed: {_first_line(exc)}")
