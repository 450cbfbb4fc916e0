"""The embedded store: SQLite in WAL mode, one writer task, group commit.

Every write is a function queued to the writer task, which runs whatever has queued up
since its last commit as one transaction (each write inside its own savepoint, so one
failing write does not sink its neighbours) and then wakes the writers. SQLite runs inline
on the Trio thread: a WAL commit with `synchronous=NORMAL` takes tens of microseconds here,
group commit amortises it, and keeping threads out keeps MockClock tests deterministic
(waiting on a worker thread makes the autojump clock leap). Reads run inline too; they
never see a half-done batch because a batch runs without yielding.

Durability: with `synchronous=normal` a committed write survives the process being killed
(`kill -9`), which is what the daemon promises; `synchronous=full` also survives power loss
at some cost per commit.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import trio

from ..clock import iso, parse_iso
from ..logs import get_logger
from ..models import Caregiver, Channel, Purpose, Shift, ShiftState
from ..shifts.machine import (
    Candidate,
    Candidates,
    Claimant,
    Contact,
    Holding,
    Offer,
    Reached,
    Transition,
    Withdrawal,
)
from .base import (
    CaregiverRow,
    ConflictError,
    ImportCounts,
    InboundLog,
    InboundRecord,
    NewMessage,
    OfferRow,
    OutboxRow,
    Persisted,
    ProviderMessageRow,
    ProviderStatusUpdate,
    SendOutcome,
    ShiftRow,
    StaleState,
    StoreError,
    StoreUnavailable,
    provider_status_rank,
)

log = get_logger(__name__)
T = TypeVar("T")

# Texts an opted-out phone still gets: the answers to STOP, START and HELP.
_COMPLIANCE_ANSWERS = "('opt_out', 'opt_in', 'help')"
_HOLDER_NOTICES = "('confirm', 'released', 'shift_cancelled')"
_MAX_CODE = 99  # reply codes stay two digits; they cycle so a code is not reused quickly

# MIGRATIONS[n] takes the schema from version n to n + 1. Never edit a released step;
# append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE caregivers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL,
        phone TEXT NOT NULL UNIQUE,
        tags TEXT NOT NULL DEFAULT '[]',
        last_code INTEGER NOT NULL DEFAULT 0,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX caregivers_role ON caregivers(role);
    CREATE TABLE shifts (
        id TEXT PRIMARY KEY,
        organization_id TEXT NOT NULL,
        role_required TEXT NOT NULL,
        start_time TEXT NOT NULL,
        end_time TEXT NOT NULL,
        state TEXT NOT NULL,
        claimed_by TEXT REFERENCES caregivers(id),
        claimed_at TEXT,
        fanout_started_at TEXT,
        escalate_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX shifts_state ON shifts(state);
    CREATE TABLE offers (
        shift_id TEXT NOT NULL REFERENCES shifts(id),
        caregiver_id TEXT NOT NULL REFERENCES caregivers(id),
        code INTEGER NOT NULL,
        offered_at TEXT NOT NULL,
        declined_at TEXT,
        PRIMARY KEY (shift_id, caregiver_id)
    ) WITHOUT ROWID;
    CREATE INDEX offers_caregiver ON offers(caregiver_id);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        key TEXT NOT NULL UNIQUE,
        shift_id TEXT,
        caregiver_id TEXT NOT NULL,
        channel TEXT NOT NULL,
        purpose TEXT NOT NULL,
        to_phone TEXT NOT NULL,
        body TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending',
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        sent_at TEXT,
        provider_id TEXT,
        error TEXT
    );
    CREATE INDEX outbox_pending ON outbox(id) WHERE state = 'pending';
    CREATE INDEX outbox_shift ON outbox(shift_id, caregiver_id);
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        shift_id TEXT NOT NULL,
        ts TEXT NOT NULL,
        kind TEXT NOT NULL,
        caregiver_id TEXT,
        detail TEXT
    );
    CREATE INDEX events_shift ON events(shift_id, id);
    CREATE TABLE inbound (
        id INTEGER PRIMARY KEY,
        provider_id TEXT UNIQUE,
        ts TEXT NOT NULL,
        from_phone TEXT NOT NULL,
        caregiver_id TEXT,
        channel TEXT NOT NULL,
        body TEXT NOT NULL,
        shift_id TEXT,
        outcome TEXT NOT NULL,
        reply TEXT
    );
    CREATE INDEX inbound_shift ON inbound(shift_id) WHERE shift_id IS NOT NULL;
    """,
    # v2: provider delivery reports. Webhooks find a row by the provider's message/call sid
    # (index), and status callbacks record how far delivery got (`provider_status`).
    """
    ALTER TABLE outbox ADD COLUMN provider_status TEXT;
    ALTER TABLE outbox ADD COLUMN provider_status_at TEXT;
    CREATE INDEX outbox_provider_id ON outbox(provider_id) WHERE provider_id IS NOT NULL;
    """,
    # v3: escalation policies and the rest of a coordinator's life. A fanout keeps the plan
    # it started with (`plan`, JSON waves) and where it is in it (`next_step`, due at
    # `escalate_at`); `generation` counts reopenings after a release; offers close at
    # `expires_at`. A releaser's offer keeps `released_at` (never offered that shift again).
    # `opt_outs` holds the phones that texted STOP; `location` is what caregivers see of
    # where a shift is (a city or facility, never a client). Fanouts already running get
    # the plan they were following: texts at once, calls at their escalation time.
    """
    ALTER TABLE shifts ADD COLUMN location TEXT;
    ALTER TABLE shifts ADD COLUMN plan TEXT;
    ALTER TABLE shifts ADD COLUMN next_step INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE shifts ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE shifts ADD COLUMN expires_at TEXT;
    ALTER TABLE offers ADD COLUMN released_at TEXT;
    CREATE INDEX shifts_claimed_by ON shifts(claimed_by) WHERE claimed_by IS NOT NULL;
    CREATE INDEX outbox_pending_phone ON outbox(to_phone) WHERE state = 'pending';
    CREATE TABLE opt_outs (
        phone TEXT PRIMARY KEY,
        opted_out_at TEXT NOT NULL,
        keyword TEXT NOT NULL
    ) WITHOUT ROWID;
    UPDATE shifts SET plan = json_array(
            json_array(0, 'sms', 'all', json_array(), 0, 0),
            json_array(
                round((julianday(escalate_at) - julianday(fanout_started_at)) * 86400, 3),
                'voice', 'offered', json_array(), 1, 0)),
        next_step = CASE state WHEN 'offering' THEN 1 ELSE 2 END
        WHERE fanout_started_at IS NOT NULL AND escalate_at IS NOT NULL;
    """,
    # v4: the coordinator's page. Coordinator accounts (a password hash, never the password;
    # see `shiftd.web.passwords`), and the board's question "which shifts end from today
    # on?" answered by an index instead of a scan of every shift ever.
    """
    CREATE TABLE coordinators (
        name TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE INDEX shifts_end_time ON shifts(end_time);
    """,
    # v5: a caregiver who left is deactivated, never deleted: never offered a shift again,
    # their offers, messages and claims stay in the history.
    """
    ALTER TABLE caregivers ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
    """,
    # v6: the language a caregiver reads (BCP 47; NULL: her organization's), and the phones
    # shiftd has texted an offer (the first offer to a phone says how to opt out).
    """
    ALTER TABLE caregivers ADD COLUMN language TEXT;
    CREATE TABLE texted_phones (phone TEXT PRIMARY KEY, first_at TEXT NOT NULL) WITHOUT ROWID;
    INSERT OR IGNORE INTO texted_phones (phone, first_at)
        SELECT to_phone, min(created_at) FROM outbox WHERE channel = 'sms' GROUP BY to_phone;
    """,
    # v7: the calls to a phone, to space them (`escalation.call_gap`).
    """
    CREATE INDEX outbox_phone_calls ON outbox(to_phone) WHERE channel = 'voice';
    """,
    # v8: a caregiver's latest offers without sorting all they ever had (a reply reads them;
    # a busy caregiver collects hundreds a month).
    """
    CREATE INDEX offers_caregiver_recent ON offers(caregiver_id, offered_at);
    """,
    # v9: a fanout picks each new reply code by looking up that caregiver's offers with that
    # code, instead of reading every open offer of the role.
    """
    CREATE INDEX offers_caregiver_code ON offers(caregiver_id, code);
    """,
    # v10: a holder's notice (confirmation, release, cancellation) that ended `failed` is
    # flagged once (`lost_at`) and followed up; the partial index finds the unflagged ones.
    """
    ALTER TABLE outbox ADD COLUMN lost_at TEXT;
    CREATE INDEX outbox_lost ON outbox(id) WHERE state = 'failed' AND lost_at IS NULL
        AND purpose IN ('confirm', 'released', 'shift_cancelled');
    """,
    # v11: a shift's actor is its only writer; `version` counts its writes, and each write
    # is refused unless it was made from the version stored.
    """
    ALTER TABLE shifts ADD COLUMN version INTEGER NOT NULL DEFAULT 0;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


@dataclass(slots=True)
class _Write:
    fn: Callable[[sqlite3.Connection], Any]
    done: trio.Event
    result: Any = None
    error: BaseException | None = None


@dataclass(slots=True)
class WriterStats:
    """Counters for the operator's view: how well group commit is batching."""

    commits: int = 0
    writes: int = 0
    commit_seconds: float = 0.0
    max_batch: int = 0


class SqliteStore:
    """The SQLite backend. Start it with `await nursery.start(store.run)`."""

    def __init__(self, path: Path, *, synchronous: str = "normal", batch_max: int = 512) -> None:
        self.path = path
        self._synchronous = synchronous.upper()
        self._batch_max = batch_max
        self._conn: sqlite3.Connection | None = None
        self._send, self._recv = trio.open_memory_channel[_Write](batch_max * 4)
        self.stats = WriterStats()
        # What waves read of the roster, kept in memory (see `candidates`).
        self._roster: dict[str, tuple[Candidate, ...]] = {}
        self._phone_sets: dict[str, set[str]] = {}
        self.on_commit: Callable[[int, float], None] | None = None  # (batch size, seconds)

    # ---- lifecycle -------------------------------------------------------------------

    async def run(
        self, *, task_status: trio.TaskStatus[SqliteStore] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Open and migrate the database, report started, then commit writes until cancelled.

        Raises StoreError if the database cannot be opened or is newer than this code. On
        cancellation it commits every write already queued, then closes the database.
        """
        self._conn = self._open()
        log.info("store.opened", path=str(self.path), schema_version=SCHEMA_VERSION)
        task_status.started(self)
        try:
            while True:
                batch = [await self._recv.receive()]
                # Group commit: before committing, let the tasks that are ready to run (often
                # those the last commit woke) queue their writes too: one scheduling round, and
                # a second if the first brought more. A round costs microseconds, a commit saved
                # tens of them. Never with batch_max=1. The pause is shielded: a batch in hand
                # is always committed.
                for pause in range(3):
                    queued = len(batch)
                    while len(batch) < self._batch_max:
                        try:
                            batch.append(self._recv.receive_nowait())
                        except trio.WouldBlock:
                            break
                    full = len(batch) >= self._batch_max
                    if full or pause == 2 or (pause == 1 and len(batch) == queued):
                        break
                    await trio.lowlevel.cancel_shielded_checkpoint()
                self._commit(batch)
        finally:
            self._drain()
            self._conn.close()
            self._conn = None
            log.info("store.closed", commits=self.stats.commits, writes=self.stats.writes)

    def _open(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = None
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
            conn = self._connect(self.path)
        except BaseException as exc:
            if isinstance(exc, sqlite3.Error | OSError):
                hint = _DAMAGED_HINT if _damaged(exc) else ""
                raise StoreError(f"cannot open {self.path}: {exc}{hint}") from exc
            raise
        return conn

    def _connect(self, path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")
            _migrate(conn)
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

    def _drain(self) -> None:
        batch: list[_Write] = []
        while True:
            try:
                batch.append(self._recv.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        if batch:
            self._commit(batch)

    def _commit(self, batch: list[_Write]) -> None:
        conn = self._require()
        started = time.perf_counter()
        try:
            conn.execute("BEGIN IMMEDIATE")
            for item in batch:
                conn.execute("SAVEPOINT w")
                try:
                    item.result = item.fn(conn)
                except Exception as exc:
                    conn.execute("ROLLBACK TO w")
                    item.error = _unavailable(exc) or exc
                conn.execute("RELEASE w")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            log.error("store.commit_failed", error=str(exc), batch=len(batch))
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for item in batch:
                hint = _DAMAGED_HINT if _damaged(exc) else ""
                item.error = _unavailable(exc) or StoreError(f"commit failed: {exc}{hint}")
        self.stats.commits += 1
        self.stats.writes += len(batch)
        self.stats.max_batch = max(self.stats.max_batch, len(batch))
        elapsed = time.perf_counter() - started
        self.stats.commit_seconds += elapsed
        if self.on_commit is not None:
            self.on_commit(len(batch), elapsed)
        for item in batch:
            item.done.set()

    def _require(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("store is not running")
        return self._conn

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Queue `fn` for the writer and return its result once committed.

        Raises what `fn` raised (its changes rolled back), or StoreError if the commit failed
        or the store is not running. If cancelled after queueing, the write still commits.
        """
        self._require()  # once stopped, nobody would ever commit it: fail, do not hang
        item = _Write(fn, trio.Event())
        try:
            # Not `send`: its extra checkpoint is a task switch per write. Waiting for the
            # commit below is the checkpoint.
            self._send.send_nowait(item)
        except trio.WouldBlock:
            await self._send.send(item)  # the queue is full: wait for room (backpressure)
        await item.done.wait()
        if item.error is not None:
            raise item.error
        return item.result  # type: ignore[no-any-return]

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        conn = self._require()
        try:
            cur = conn.execute(sql, params)
            cur.row_factory = sqlite3.Row
            return cur.fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"read failed: {exc}") from exc

    # ---- roster ------------------------------------------------------------------------

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

        def write(conn: sqlite3.Connection) -> tuple[ImportCounts, ImportCounts]:
            self._roster.clear()
            counts = _upsert_caregivers(conn, caregivers, at), _upsert_shifts(conn, shifts, at)
            if dry_run:
                raise _RolledBack(counts)
            return counts

        try:
            return await self._write(write)
        except _RolledBack as done:
            return done.counts

    async def set_caregiver_active(self, caregiver_id: str, active: bool, at: datetime) -> bool:
        """Mark a caregiver active or not; False if there is no such caregiver. Offers and
        messages they already have stay as they are."""

        def write(conn: sqlite3.Connection) -> bool:
            self._roster.clear()
            cur = conn.execute(
                "UPDATE caregivers SET active = ?, updated_at = ? WHERE id = ?",
                (int(active), iso(at), caregiver_id),
            )
            return cur.rowcount > 0

        return await self._write(write)

    async def add_shift(self, shift: Shift, at: datetime) -> ShiftRow:
        """Create a shift in state `open`; ConflictError if the id exists."""

        def write(conn: sqlite3.Connection) -> ShiftRow:
            try:
                _insert_shift(conn, shift, at)
            except sqlite3.IntegrityError as exc:
                raise ConflictError(f"shift {shift.id!r} already exists") from exc
            _event(conn, shift.id, at, "created")
            return _shift_row(conn.execute(_SHIFT_SQL + " WHERE id = ?", (shift.id,)).fetchone())

        return await self._write(write)

    async def caregiver(self, caregiver_id: str) -> CaregiverRow | None:
        rows = self._read(_CAREGIVER_SQL + " WHERE id = ?", (caregiver_id,))
        return _caregiver_row(rows[0]) if rows else None

    async def caregiver_by_phone(self, phone: str) -> CaregiverRow | None:
        rows = self._read(_CAREGIVER_SQL + " WHERE phone = ?", (phone,))
        return _caregiver_row(rows[0]) if rows else None

    async def list_caregivers(self, role: str | None = None) -> list[CaregiverRow]:
        if role is None:
            rows = self._read(_CAREGIVER_SQL + " ORDER BY role, name")
        else:
            rows = self._read(_CAREGIVER_SQL + " WHERE role = ? ORDER BY name", (role,))
        return [_caregiver_row(r) for r in rows]

    # ---- shifts ------------------------------------------------------------------------

    async def shift(self, shift_id: str) -> ShiftRow | None:
        rows = self._read(_SHIFT_SQL + " WHERE id = ?", (shift_id,))
        return _shift_row(rows[0]) if rows else None

    async def list_shifts(self, state: ShiftState | None = None) -> list[ShiftRow]:
        if state is None:
            rows = self._read(_SHIFT_SQL + " ORDER BY start_time, id")
        else:
            rows = self._read(_SHIFT_SQL + " WHERE state = ? ORDER BY start_time, id", (state,))
        return [_shift_row(r) for r in rows]

    async def shifts_in_progress(self) -> list[ShiftRow]:
        rows = self._read(_SHIFT_SQL + " WHERE state IN ('offering', 'escalated')")
        return [_shift_row(r) for r in rows]

    async def offers_for_shift(self, shift_id: str) -> list[OfferRow]:
        return [
            _offer_row(r) for r in self._read(_OFFER_SQL + " WHERE o.shift_id = ?", (shift_id,))
        ]

    async def open_offers_for_caregiver(self, caregiver_id: str) -> list[OfferRow]:
        """Every offer of the caregiver whose shift is still offering or escalated, however
        many, oldest first."""
        rows = self._read(
            _OFFER_SQL + " WHERE o.caregiver_id = ? AND s.state IN ('offering', 'escalated')"
            " ORDER BY o.offered_at, o.shift_id",
            (caregiver_id,),
        )
        return [_offer_row(r) for r in rows]

    async def offer(self, shift_id: str, caregiver_id: str) -> OfferRow | None:
        """The caregiver's offer of the shift, open or closed, or None."""
        rows = self._read(
            _OFFER_SQL + " WHERE o.shift_id = ? AND o.caregiver_id = ?", (shift_id, caregiver_id)
        )
        return _offer_row(rows[0]) if rows else None

    async def offers_for_caregiver(self, caregiver_id: str, limit: int = 20) -> list[OfferRow]:
        """The caregiver's most recent offers, newest first (open and closed). For what she
        may still answer, see `open_offers_for_caregiver` (no limit)."""
        rows = self._read(
            _OFFER_SQL + " WHERE o.caregiver_id = ? ORDER BY o.offered_at DESC LIMIT ?",
            (caregiver_id, limit),
        )
        return [_offer_row(r) for r in rows]

    async def shift_detail(self, shift_id: str) -> dict[str, Any] | None:
        """Everything `shift.show` prints: contacts, declines and the merged timeline."""
        shift = await self.shift(shift_id)
        if shift is None:
            return None
        contacts = [
            {
                "caregiver_id": r["caregiver_id"],
                "name": r["name"],
                "channel": r["channel"],
                "purpose": r["purpose"],
                "state": r["state"],
                "provider_status": r["provider_status"],
                "at": r["sent_at"] or r["updated_at"],
            }
            for r in self._read(
                "SELECT o.caregiver_id, c.name, o.channel, o.purpose, o.state, o.sent_at,"
                " o.updated_at, o.provider_status"
                " FROM outbox o LEFT JOIN caregivers c ON c.id = o.caregiver_id"
                " WHERE o.shift_id = ? ORDER BY o.id",
                (shift_id,),
            )
        ]
        declines = [
            {"caregiver_id": r["caregiver_id"], "name": r["name"], "at": r["declined_at"]}
            for r in self._read(
                "SELECT o.caregiver_id, c.name, o.declined_at FROM offers o"
                " JOIN caregivers c ON c.id = o.caregiver_id"
                " WHERE o.shift_id = ? AND o.declined_at IS NOT NULL ORDER BY o.declined_at",
                (shift_id,),
            )
        ]
        timeline = [
            {
                "ts": r["ts"],
                "kind": r["kind"],
                "caregiver_id": r["caregiver_id"],
                "detail": json.loads(r["detail"]) if r["detail"] else None,
            }
            for r in self._read(
                "SELECT ts, kind, caregiver_id, detail, id, 0 AS src FROM events WHERE shift_id = ?"
                " UNION ALL SELECT ts, 'reply', caregiver_id,"
                " json_object('channel', channel, 'body', body, 'outcome', outcome), id, 1"
                " FROM inbound WHERE shift_id = ? ORDER BY ts, src, id",
                (shift_id, shift_id),
            )
        ]
        lost = [
            {
                "caregiver_id": r["caregiver_id"],
                "purpose": r["purpose"],
                "channel": r["channel"],
                "error": r["error"],
                "at": r["updated_at"],
            }
            for r in self._read(
                "SELECT caregiver_id, purpose, channel, error, updated_at FROM outbox"
                f" WHERE shift_id = ? AND state = 'failed' AND purpose IN {_HOLDER_NOTICES}"
                " ORDER BY id",
                (shift_id,),
            )
        ]
        return {
            "shift": shift,
            "contacts": contacts,
            "declines": declines,
            "timeline": timeline,
            "lost_notices": lost,
        }

    async def export(
        self,
        kind: str,
        since: datetime,
        until: datetime | None,
        after: tuple[str, str, int] | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """One page of the audit record in [since, until) (None: no end), oldest first:
        `messages` (every
        text, call and webhook queued, `direction` "out", and every message received,
        "in") or `timeline` (every shift event). `after` is the last row's `(ts, direction
        or kind, id)`, from which the page continues. A scan, not an index: for exports."""
        sql = _EXPORT_SQL[kind]
        params: list[Any] = [iso(since)]
        where = "ts >= ?"
        if until is not None:
            where += " AND ts < ?"
            params.append(iso(until))
        if after is not None:
            where += " AND (ts, tag, id) > (?, ?, ?)"
            params += list(after)
        rows = self._read(
            f"SELECT * FROM ({sql}) WHERE {where} ORDER BY ts, tag, id LIMIT ?", [*params, limit]
        )
        return [dict(r) for r in rows]

    async def blank_reply_texts(self, before: datetime) -> int:
        """Blank the stored text of every message received before `before` (retention):
        its outcome and everything else stay. Returns how many were blanked."""

        def write(conn: sqlite3.Connection) -> int:
            cur = conn.execute(
                "UPDATE inbound SET body = '' WHERE ts < ? AND body != ''", (iso(before),)
            )
            return cur.rowcount

        return await self._write(write)

    async def counts(self) -> dict[str, dict[str, int]]:
        shifts = {s.value: 0 for s in ShiftState}
        for r in self._read("SELECT state, count(*) AS n FROM shifts GROUP BY state"):
            shifts[r["state"]] = r["n"]
        outbox = dict.fromkeys(
            ("pending", "sending", "sent", "failed", "cancelled", "suppressed"), 0
        )
        for r in self._read("SELECT state, count(*) AS n FROM outbox GROUP BY state"):
            outbox[r["state"]] = r["n"]
        caregivers = self._read("SELECT count(*) AS n FROM caregivers")[0]["n"]
        return {"shifts": shifts, "outbox": outbox, "caregivers": {"total": caregivers}}

    # ---- a shift's facts and transitions -----------------------------------------------

    async def shift_state(self, shift_id: str) -> tuple[ShiftRow, dict[str, Offer]] | None:
        """A shift with its offers, as its actor keeps them: each offer with the tails of the
        offer messages queued to her (see `machine.Offer.reached`). None if no such shift."""
        rows = self._read(_SHIFT_SQL + " WHERE id = ?", (shift_id,))
        if not rows:
            return None
        return _shift_row(rows[0]), await self.offers_state(shift_id)

    async def offers_state(
        self, shift_id: str, caregiver_id: str | None = None
    ) -> dict[str, Offer]:
        """The shift's offers as its actor keeps them (see `shift_state`); with
        `caregiver_id`, hers only (an answer to a closed shift needs no more)."""
        which = " WHERE shift_id = ?"
        params: tuple[str, ...] = (shift_id,)
        if caregiver_id is not None:
            which, params = " WHERE shift_id = ? AND caregiver_id = ?", (shift_id, caregiver_id)
        reached: dict[str, set[str]] = {}
        prefix = len("offer:") + len(shift_id) + 1
        conn = self._require()
        for cg, key in conn.execute(
            "SELECT caregiver_id, key FROM outbox" + which + " AND purpose = 'offer'", params
        ):
            reached.setdefault(cg, set()).add(key[prefix + len(cg) + 1 :])
        return {
            cg: Offer(
                code, declined is not None, released is not None, frozenset(reached.get(cg, ()))
            )
            for cg, code, declined, released in conn.execute(
                "SELECT caregiver_id, code, declined_at, released_at FROM offers" + which, params
            )
        }

    async def candidates(
        self, role: str, window: tuple[datetime, datetime], exclude: str
    ) -> Candidates:
        """The facts a wave decides from: the active caregivers with `role` (by id), the
        filled shifts other than `exclude` overlapping `window`, and the phones that opted
        out or were texted an offer before. The roster and the phone sets are kept in
        memory (this process is the database's only writer) and refreshed on each write
        that changes them."""
        roster = self._roster.get(role)
        if roster is None:
            roster = self._roster[role] = tuple(
                Candidate(cg, phone, _tags(tags), language)
                for cg, phone, tags, language in self._require().execute(
                    "SELECT id, phone, tags, language FROM caregivers"
                    " WHERE role = ? AND active = 1 ORDER BY id",
                    (role,),
                )
            )
        return Candidates(
            roster, self._holdings(window, exclude), self._phones("opt_outs"), self._phones()
        )

    def _phones(self, table: str = "texted_phones") -> set[str]:
        """The phones in `table` (opt_outs or texted_phones), read once and kept."""
        phones = self._phone_sets.get(table)
        if phones is None:
            rows = self._require().execute(f"SELECT phone FROM {table}")
            phones = self._phone_sets[table] = {phone for (phone,) in rows}
        return phones

    def _holdings(
        self, window: tuple[datetime, datetime], exclude: str, caregiver_id: str | None = None
    ) -> tuple[Holding, ...]:
        sql = (
            "SELECT id, claimed_by, start_time, end_time FROM shifts WHERE state = 'filled'"
            " AND id != ? AND start_time < ? AND end_time > ?"
        )
        params: tuple[Any, ...] = (exclude, iso(window[1]), iso(window[0]))
        if caregiver_id is not None:
            sql += " AND claimed_by = ?"
            params += (caregiver_id,)
        return tuple(
            Holding(sid, cg, _dt(start), _dt(end))
            for sid, cg, start, end in self._require().execute(sql, params)
        )

    async def claimant(
        self, shift_id: str, caregiver_id: str, window: tuple[datetime, datetime]
    ) -> Claimant:
        """The facts an answer decides from: her roster row, her filled shifts overlapping
        `window`, and when she was last told this shift is filled."""
        rows = self._read("SELECT * FROM caregivers WHERE id = ?", (caregiver_id,))
        told = self._read(
            "SELECT max(created_at) AS t FROM outbox WHERE shift_id = ? AND caregiver_id = ?"
            " AND purpose = 'filled' AND state != 'cancelled'",
            (shift_id, caregiver_id),
        )
        return Claimant(
            _caregiver_row(rows[0]) if rows else None,
            self._holdings(window, shift_id, caregiver_id),
            parse_iso(told[0]["t"]),
        )

    async def reached(self, shift_id: str) -> tuple[Reached, ...]:
        """The caregivers an offer of the shift reached (handed to the provider) since it
        last reopened, by id."""
        conn = self._require()
        (reopened_at,) = conn.execute(
            "SELECT max(ts) FROM events WHERE shift_id = ? AND kind = 'released'", (shift_id,)
        ).fetchone()
        return tuple(
            Reached(cg, language)
            for cg, language in conn.execute(
                "SELECT DISTINCT ob.caregiver_id, c.language FROM outbox ob"
                " JOIN caregivers c ON c.id = ob.caregiver_id"
                " WHERE ob.shift_id = ? AND ob.purpose = 'offer'"
                " AND ob.state IN ('sending', 'sent') AND ob.created_at >= ?"
                " ORDER BY ob.caregiver_id",
                (shift_id, reopened_at or ""),
            )
        )

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

        persisted = await self._write(
            lambda conn: _persist(conn, shift_id, version, transition, at, call_gap, inbound)
        )
        self._texted(transition)
        return persisted

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

        def write(conn: sqlite3.Connection) -> list[Persisted]:
            return [
                _persist(conn, shift_id, version, transition, at, call_gap, inbound)
                for version, transition, inbound in steps
            ]

        persisted = await self._write(write)
        for _, transition, _ in steps:
            self._texted(transition)
        return persisted

    def _texted(self, transition: Transition) -> None:
        """Keep the texted phones in memory in step with a transition just written."""
        phones = self._phone_sets.get("texted_phones")
        if phones is not None:
            phones.update(c.phone for c in transition.contacts if c.channel is Channel.SMS)

    async def log_inbound(self, inbound: InboundLog) -> OutboxRow | None:
        """Log an inbound message that changes no shift, with its reply (if any) in the same
        transaction. Returns the reply's row, or None when there is none or a message with
        its key exists already (then no reply is logged)."""
        return await self._write(lambda conn: _log_inbound(conn, iso(inbound.at), inbound))

    async def contacted(self, shift_id: str) -> int:
        """How many caregivers were offered the shift (an offer message not withdrawn)."""
        count: int = (
            self._require()
            .execute(
                "SELECT count(DISTINCT caregiver_id) FROM outbox WHERE shift_id = ?"
                " AND purpose = 'offer' AND state != 'cancelled'",
                (shift_id,),
            )
            .fetchone()[0]
        )
        return count

    async def queue(self, messages: Sequence[NewMessage], *, at: datetime) -> int:
        """Queue messages; those whose key is already queued are ignored. Returns how many
        were new."""
        return await self._write(lambda conn: _queue(conn, messages, iso(at)))

    # ---- inbound -----------------------------------------------------------------------

    async def inbound_seen(self, provider_id: str) -> InboundRecord | None:
        rows = self._read(
            "SELECT outcome, shift_id, caregiver_id, reply FROM inbound WHERE provider_id = ?",
            (provider_id,),
        )
        if not rows:
            return None
        r = rows[0]
        return InboundRecord(r["outcome"], r["shift_id"], r["caregiver_id"], r["reply"])

    # ---- compliance --------------------------------------------------------------------

    async def set_opted_out(
        self, phone: str, *, keyword: str, at: datetime, reply: NewMessage | None
    ) -> bool:
        """Record that `phone` opted out of SMS (STOP…), in one transaction with `reply`, the
        confirmation, which is queued only if the phone was not opted out already. Returns
        True if it was not (a repeat keeps the first time and keyword). Texts still pending
        for the phone are not touched here (they belong to their shifts' actors): the
        sender suppresses each one when its turn comes."""

        def write(conn: sqlite3.Connection) -> bool:
            # At commit time, not after: a wave decided meanwhile must see the change.
            self._phone_sets.pop("opt_outs", None)
            stamp = iso(at)
            changed = (
                conn.execute(
                    "INSERT OR IGNORE INTO opt_outs (phone, opted_out_at, keyword)"
                    " VALUES (?, ?, ?)",
                    (phone, stamp, keyword[:32]),
                ).rowcount
                == 1
            )
            if changed and reply is not None:
                _queue(conn, [reply], stamp)
            return changed

        return await self._write(write)

    async def set_opted_in(self, phone: str, *, at: datetime, reply: NewMessage | None) -> bool:
        """Forget `phone`'s opt-out (START…), in one transaction with `reply`, the
        confirmation, which is queued only if the phone was opted out. Returns True if it
        was."""

        def write(conn: sqlite3.Connection) -> bool:
            self._phone_sets.pop("opt_outs", None)  # at commit time (see set_opted_out)
            changed = conn.execute("DELETE FROM opt_outs WHERE phone = ?", (phone,)).rowcount == 1
            if changed and reply is not None:
                _queue(conn, [reply], iso(at))
            return changed

        return await self._write(write)

    async def is_opted_out(self, phone: str) -> bool:
        return phone in self._phones("opt_outs")

    async def held_shifts(self, caregiver_id: str, *, now: datetime) -> list[ShiftRow]:
        """The filled shifts `caregiver_id` holds that start after `now`, soonest first."""
        rows = self._read(
            _SHIFT_SQL + " WHERE claimed_by = ? AND state = 'filled' AND start_time > ?"
            " ORDER BY start_time, id",
            (caregiver_id, iso(now)),
        )
        return [_shift_row(r) for r in rows]

    # ---- outbox ------------------------------------------------------------------------

    async def due_outbox(self, *, after_id: int, now: datetime, limit: int) -> list[OutboxRow]:
        rows = self._read(
            "SELECT id, shift_id, caregiver_id, channel, purpose, to_phone, body, state,"
            " attempts, created_at FROM outbox WHERE state = 'pending' AND id > ?"
            " AND (next_attempt_at IS NULL OR next_attempt_at <= ?) ORDER BY id LIMIT ?",
            (after_id, iso(now), limit),
        )
        return [
            OutboxRow(**_outbox_fields(r), attempts=r["attempts"], created_at=_dt(r["created_at"]))
            for r in rows
        ]

    async def next_retry_at(self) -> datetime | None:
        rows = self._read(
            "SELECT min(next_attempt_at) AS t FROM outbox"
            " WHERE state = 'pending' AND next_attempt_at IS NOT NULL"
        )
        return parse_iso(rows[0]["t"]) if rows else None

    async def mark_sending(self, outbox_id: int, *, at: datetime) -> bool:
        """pending → sending; False if the row is no longer pending (withdrawn), or if it is
        a text to a phone that opted out: then, in the same transaction, it becomes
        `suppressed` (error 'opted out') and is never handed to the provider. Compliance
        answers (purposes opt_out, opt_in, help) still go; calls are never suppressed here
        (whether an opted-out caregiver is called is decided when the call is queued)."""

        def write(conn: sqlite3.Connection) -> bool:
            stamp = iso(at)
            suppressed = conn.execute(
                "UPDATE outbox SET state = 'suppressed', error = 'opted out', updated_at = ?"
                " WHERE id = ? AND state = 'pending' AND channel = 'sms'"
                f" AND purpose NOT IN {_COMPLIANCE_ANSWERS}"
                " AND EXISTS (SELECT 1 FROM opt_outs WHERE opt_outs.phone = outbox.to_phone)",
                (stamp, outbox_id),
            ).rowcount
            if suppressed:
                return False
            return (
                conn.execute(
                    "UPDATE outbox SET state = 'sending', attempts = attempts + 1, updated_at = ?"
                    " WHERE id = ? AND state = 'pending'",
                    (stamp, outbox_id),
                ).rowcount
                == 1
            )

        return await self._write(write)

    async def mark_sending_many(
        self, outbox_ids: Sequence[int], *, at: datetime
    ) -> tuple[set[int], set[int]]:
        """`mark_sending` for a batch, in one transaction: returns the ids now `sending`
        and those `suppressed` (texts to opted-out phones); the rest were withdrawn."""

        def write(conn: sqlite3.Connection) -> tuple[set[int], set[int]]:
            stamp = iso(at)
            marks = ",".join("?" * len(outbox_ids))
            suppressed = {
                row_id
                for (row_id,) in conn.execute(
                    "UPDATE outbox SET state = 'suppressed', error = 'opted out', updated_at = ?"
                    f" WHERE id IN ({marks}) AND state = 'pending' AND channel = 'sms'"
                    f" AND purpose NOT IN {_COMPLIANCE_ANSWERS} AND EXISTS"
                    " (SELECT 1 FROM opt_outs WHERE opt_outs.phone = outbox.to_phone)"
                    " RETURNING id",
                    (stamp, *outbox_ids),
                )
            }
            taken = {
                row_id
                for (row_id,) in conn.execute(
                    "UPDATE outbox SET state = 'sending', attempts = attempts + 1,"
                    f" updated_at = ? WHERE id IN ({marks}) AND state = 'pending' RETURNING id",
                    (stamp, *outbox_ids),
                )
            }
            return taken, suppressed

        return await self._write(write)

    async def finish_sends(self, outcomes: Sequence[SendOutcome]) -> None:
        """Record what became of rows handed to the provider, in one transaction."""

        def write(conn: sqlite3.Connection) -> None:
            for o in outcomes:
                if o.state == "sent":
                    stamp = iso(o.at)
                    conn.execute(
                        "UPDATE outbox SET state = 'sent', sent_at = ?, provider_id = ?,"
                        " updated_at = ? WHERE id = ?",
                        (stamp, o.provider_id, stamp, o.outbox_id),
                    )
                elif o.state == "retry":
                    stamp = iso(o.next_at)
                    conn.execute(
                        "UPDATE outbox SET state = 'pending', next_attempt_at = ?, error = ?,"
                        " updated_at = ? WHERE id = ?",
                        (stamp, (o.error or "")[:500], stamp, o.outbox_id),
                    )
                else:
                    conn.execute(
                        "UPDATE outbox SET state = 'failed', error = ?, updated_at = ?"
                        " WHERE id = ?",
                        ((o.error or "")[:500], iso(o.at), o.outbox_id),
                    )

        await self._write(write)

    async def abandon_sending(self, *, at: datetime) -> int:
        """After a crash: rows caught in `sending` may or may not have reached the provider.
        They are marked failed, never re-sent (at-most-once). Returns how many."""
        return await self._write(
            lambda conn: (
                conn.execute(
                    "UPDATE outbox SET state = 'failed', updated_at = ?,"
                    " error = 'interrupted while sending; not retried (at-most-once)'"
                    " WHERE state = 'sending'",
                    (iso(at),),
                ).rowcount
            )
        )

    async def flag_lost_notices(
        self, *, at: datetime, follow_up: Callable[[OutboxRow, ShiftRow], list[NewMessage]]
    ) -> list[OutboxRow]:
        """Flag every holder notice (confirm, released, shift_cancelled) that ended `failed`
        and is not flagged yet: a `notice_lost` timeline event, and the messages
        `follow_up(row, shift)` returns queued, in one transaction with the flag, so a crash
        loses no follow-up and none is queued twice. Returns the rows flagged now."""

        def write(conn: sqlite3.Connection) -> list[OutboxRow]:
            cur = conn.execute(
                "SELECT * FROM outbox WHERE state = 'failed' AND lost_at IS NULL"
                f" AND purpose IN {_HOLDER_NOTICES} ORDER BY id"
            )
            cur.row_factory = sqlite3.Row
            rows = cur.fetchall()
            flagged = []
            stamp = iso(at)
            for r in rows:
                row = OutboxRow(
                    **_outbox_fields(r), attempts=r["attempts"], created_at=_dt(r["created_at"])
                )
                shift = conn.execute(_SHIFT_SQL + " WHERE id = ?", (row.shift_id,)).fetchone()
                conn.execute("UPDATE outbox SET lost_at = ? WHERE id = ?", (stamp, row.id))
                if shift is None:
                    continue
                detail = {
                    "purpose": row.purpose.value,
                    "channel": row.channel.value,
                    "outbox_id": row.id,
                    "error": r["error"],
                }
                _event(conn, row.shift_id or "", at, "notice_lost", row.caregiver_id, detail=detail)
                _queue(conn, follow_up(row, _shift_row(shift)), stamp)
                flagged.append(row)
            return flagged

        return await self._write(write)

    # ---- provider delivery reports (schema v2) ------------------------------------------

    async def outbox_by_provider_id(self, provider_id: str) -> ProviderMessageRow | None:
        """The outbox row the provider knows as `provider_id` (its message or call sid)."""
        rows = self._read(
            "SELECT id, shift_id, caregiver_id, channel, purpose, to_phone, body, state,"
            " provider_id, provider_status FROM outbox WHERE provider_id = ?"
            " ORDER BY id LIMIT 1",
            (provider_id,),
        )
        if not rows:
            return None
        r = rows[0]
        return ProviderMessageRow(
            **_outbox_fields(r),
            provider_id=r["provider_id"],
            provider_status=r["provider_status"],
        )

    async def update_provider_status(
        self, provider_id: str, status: str, *, at: datetime
    ) -> ProviderStatusUpdate:
        """Record the provider's status for the row with `provider_id` if it is further along
        than the stored one (see `MESSAGE_STATUS_RANK` / `CALL_STATUS_RANK`): callbacks that
        arrive late or twice never move a status backwards. Returns what it did."""

        def write(conn: sqlite3.Connection) -> ProviderStatusUpdate:
            found = conn.execute(
                "SELECT id, channel, provider_status FROM outbox WHERE provider_id = ?"
                " ORDER BY id LIMIT 1",
                (provider_id,),
            ).fetchone()
            if found is None:
                return "not_found"
            outbox_id, channel, current = found
            rank = provider_status_rank(channel, status)
            if rank is None:
                return "unknown_status"
            if current is not None:
                current_rank = provider_status_rank(channel, current)
                if current_rank is not None and current_rank >= rank:
                    return "stale"
            conn.execute(
                "UPDATE outbox SET provider_status = ?, provider_status_at = ? WHERE id = ?",
                (status, iso(at), outbox_id),
            )
            return "updated"

        return await self._write(write)

    # ---- coordinators (the board's accounts) ------------------------------------------

    async def put_coordinator(self, name: str, password_hash: str, *, at: datetime) -> bool:
        """Create the account `name`, or set its password hash. True if it was created."""

        def write(conn: sqlite3.Connection) -> bool:
            created = conn.execute(
                "INSERT INTO coordinators (name, password_hash, created_at, updated_at)"
                " VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING",
                (name, password_hash, iso(at), iso(at)),
            ).rowcount
            if not created:
                conn.execute(
                    "UPDATE coordinators SET password_hash = ?, updated_at = ? WHERE name = ?",
                    (password_hash, iso(at), name),
                )
            return bool(created)

        return await self._write(write)

    async def remove_coordinator(self, name: str) -> bool:
        """Delete the account `name`; False if there was none."""

        def write(conn: sqlite3.Connection) -> bool:
            return bool(conn.execute("DELETE FROM coordinators WHERE name = ?", (name,)).rowcount)

        return await self._write(write)

    async def coordinator_hash(self, name: str) -> str | None:
        rows = self._read("SELECT password_hash FROM coordinators WHERE name = ?", (name,))
        return str(rows[0]["password_hash"]) if rows else None

    async def list_coordinators(self) -> list[dict[str, str]]:
        return [
            {"name": r["name"], "created_at": r["created_at"], "updated_at": r["updated_at"]}
            for r in self._read(
                "SELECT name, created_at, updated_at FROM coordinators ORDER BY name"
            )
        ]

    # ---- the board --------------------------------------------------------------------

    async def board_shifts(self, ending_after: datetime) -> list[tuple[ShiftRow, str | None]]:
        """Shifts that end after `ending_after` or are in progress, soonest first, each with
        the name of the caregiver holding it (None when nobody does)."""
        rows = self._read(
            _SHIFT_SQL.replace(
                " FROM shifts",
                ", (SELECT name FROM caregivers WHERE id = claimed_by) AS holder FROM shifts",
            )
            + " WHERE end_time > ? OR state IN ('offering', 'escalated') ORDER BY start_time, id",
            (iso(ending_after),),
        )
        return [(_shift_row(r), r["holder"]) for r in rows]

    async def roles(self) -> list[str]:
        """Every role some caregiver has, sorted (from the role index, not a scan)."""
        return [r["role"] for r in self._read("SELECT DISTINCT role FROM caregivers ORDER BY role")]

    async def fanout_outcomes(self, since: datetime) -> list[tuple[datetime, str, float | None]]:
        """For each shift fanned out at or after `since`: when, its state, and seconds from
        fanout to claim (None unless filled)."""
        rows = self._read(
            "SELECT state, fanout_started_at, claimed_at FROM shifts WHERE fanout_started_at >= ?",
            (iso(since),),
        )
        out = []
        for r in rows:
            started = _dt(r["fanout_started_at"])
            filled = r["state"] == ShiftState.FILLED and r["claimed_at"] is not None
            seconds = (_dt(r["claimed_at"]) - started).total_seconds() if filled else None
            out.append((started, str(r["state"]), seconds))
        return out

    async def decline_times(self, since: datetime) -> list[datetime]:
        """When each decline at or after `since` happened."""
        return [
            _dt(r["declined_at"])
            for r in self._read(
                "SELECT declined_at FROM offers WHERE declined_at >= ?", (iso(since),)
            )
        ]

    # ---- operator's view (shiftctl stats) -------------------------------------------------

    async def fill_stats(self, since: datetime) -> dict[str, Any]:
        """How the shifts whose fanout started at or after `since` fared, and the messages
        queued since then. A read (it scans the window's shifts and outbox rows).

        Returns `since`, `fanned_out`, `filled`, `unfilled`, `cancelled`, `in_progress`,
        `fill_rate`
        (filled / fanned out; None when nothing was fanned out), `time_to_fill_s` (`median`,
        `p90`, `max` of fanout start → claim over the filled ones, None when there are none;
        percentiles interpolate linearly, as SQL's percentile_cont) and `messages`
        (channel → outbox state → count).
        """
        stamp = iso(since)
        tally = {"filled": 0, "unfilled": 0, "cancelled": 0, "in_progress": 0}
        fills: list[float] = []
        rows = self._read(
            "SELECT state, fanout_started_at, claimed_at FROM shifts WHERE fanout_started_at >= ?",
            (stamp,),
        )
        for r in rows:
            state = ShiftState(r["state"])
            if state.in_progress:
                tally["in_progress"] += 1
            elif state.value in tally:
                tally[state.value] += 1
            if state is ShiftState.FILLED and r["claimed_at"] is not None:
                fills.append((_dt(r["claimed_at"]) - _dt(r["fanout_started_at"])).total_seconds())
        fills.sort()
        messages: dict[str, dict[str, int]] = {}
        for r in self._read(
            "SELECT channel, state, count(*) AS n FROM outbox WHERE created_at >= ?"
            " GROUP BY channel, state ORDER BY channel, state",
            (stamp,),
        ):
            messages.setdefault(r["channel"], {})[r["state"]] = r["n"]
        return {
            "since": stamp,
            "fanned_out": len(rows),
            **tally,
            "fill_rate": tally["filled"] / len(rows) if rows else None,
            "time_to_fill_s": {
                "median": self._percentile(fills, 0.5),
                "p90": self._percentile(fills, 0.9),
                "max": fills[-1] if fills else None,
            },
            "messages": messages,
        }

    @staticmethod
    def _percentile(ordered: Sequence[float], q: float) -> float | None:
        """The `q` quantile of sorted values, interpolating between the closest ranks."""
        if not ordered:
            return None
        rank = (len(ordered) - 1) * q
        low = int(rank)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


# ---- SQL helpers (run inside the writer's transaction) ------------------------------------

_EXPORT_SQL = {
    "messages": (
        "SELECT created_at AS ts, 'out' AS tag, id, 'out' AS direction, shift_id,"
        " caregiver_id, channel, purpose, to_phone AS phone, body, state, sent_at,"
        " provider_id, provider_status, error, NULL AS outcome FROM outbox"
        " UNION ALL SELECT ts, 'in', id, 'in', shift_id, caregiver_id, channel, NULL,"
        " from_phone, body, NULL, NULL, provider_id, NULL, NULL, outcome FROM inbound"
    ),
    "timeline": ("SELECT ts, kind AS tag, id, shift_id, kind, caregiver_id, detail FROM events"),
}
_CAREGIVER_SQL = "SELECT id, name, role, phone, tags, active, language FROM caregivers"
_SHIFT_SQL = (
    "SELECT id, organization_id, role_required, start_time, end_time, state, claimed_by,"
    " claimed_at, fanout_started_at, escalate_at, location, expires_at, next_step, generation,"
    " plan, version FROM shifts"
)
_OFFER_SQL = (
    "SELECT o.shift_id, o.caregiver_id, o.code, o.declined_at, s.state, o.released_at"
    " FROM offers o JOIN shifts s ON s.id = o.shift_id"
)
_INSERT_OUTBOX = (
    "INSERT OR IGNORE INTO outbox (key, shift_id, caregiver_id, channel, purpose, to_phone,"
    " body, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


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


def _migrate(conn: sqlite3.Connection) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"database schema is version {version}, newer than this shiftd ({SCHEMA_VERSION})"
        )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in MIGRATIONS[target - 1].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        log.info("store.migrated", to_version=target)


def _dt(text: str) -> datetime:
    value = parse_iso(text)
    assert value is not None
    return value


def _outbox_fields(r: sqlite3.Row) -> dict[str, Any]:
    """The columns every view of an outbox row shares."""
    return {
        "id": r["id"],
        "shift_id": r["shift_id"],
        "caregiver_id": r["caregiver_id"],
        "channel": Channel(r["channel"]),
        "purpose": Purpose(r["purpose"]),
        "to_phone": r["to_phone"],
        "body": r["body"],
        "state": r["state"],
    }


def _caregiver_row(r: sqlite3.Row) -> CaregiverRow:
    tags = tuple(json.loads(r["tags"]))
    return CaregiverRow(
        r["id"], r["name"], r["role"], r["phone"], tags, bool(r["active"]), r["language"]
    )


def _shift_row(r: sqlite3.Row | tuple[Any, ...]) -> ShiftRow:
    # Thousands of actors keep their row: the strings most rows share are kept once.
    plan = sys.intern(r[14]) if r[14] is not None else None
    return ShiftRow(
        id=r[0],
        organization_id=sys.intern(r[1]),
        role_required=sys.intern(r[2]),
        start_time=_dt(r[3]),
        end_time=_dt(r[4]),
        state=ShiftState(r[5]),
        claimed_by=r[6],
        claimed_at=parse_iso(r[7]),
        fanout_started_at=parse_iso(r[8]),
        escalate_at=parse_iso(r[9]),
        location=r[10],
        expires_at=parse_iso(r[11]),
        next_step=r[12],
        generation=r[13],
        plan=plan,
        version=r[15],
    )


def _offer_row(r: sqlite3.Row | tuple[Any, ...]) -> OfferRow:
    return OfferRow(r[0], r[1], r[2], parse_iso(r[3]), ShiftState(r[4]), parse_iso(r[5]))


def _space_calls(
    conn: sqlite3.Connection, calls: Sequence[OutboxRow], at: datetime, gap: timedelta
) -> set[int]:
    """Hold each new call until `gap` after the latest other call to the same phone that is
    pending, sending or sent, so a phone rings once at a time. Returns the ids held."""
    held = set()
    for call in calls:
        (latest,) = conn.execute(
            "SELECT max(coalesce(next_attempt_at, created_at)) FROM outbox"
            " WHERE to_phone = ? AND channel = 'voice' AND id != ?"
            " AND state IN ('pending', 'sending', 'sent')",
            (call.to_phone, call.id),
        ).fetchone()
        if latest is not None and parse_iso(latest) + gap > at:
            due = parse_iso(latest) + gap
            conn.execute("UPDATE outbox SET next_attempt_at = ? WHERE id = ?", (iso(due), call.id))
            held.add(call.id)
    return held


def _persist(
    conn: sqlite3.Connection,
    shift_id: str,
    version: int,
    transition: Transition,
    at: datetime,
    call_gap: timedelta,
    inbound: InboundLog | None,
) -> Persisted:
    """One transition's writes (see `SqliteStore.persist`)."""
    stamp = iso(at)
    if transition.state is not None:
        s = transition.state.shift
        cur = conn.execute(
            "UPDATE shifts SET state = ?, claimed_by = ?, claimed_at = ?,"
            " fanout_started_at = ?, escalate_at = ?, expires_at = ?, plan = ?,"
            " next_step = ?, generation = ?, version = version + 1, updated_at = ?"
            " WHERE id = ? AND version = ?",
            (
                s.state,
                s.claimed_by,
                iso(s.claimed_at),
                iso(s.fanout_started_at),
                iso(s.escalate_at),
                iso(s.expires_at),
                s.plan,
                s.next_step,
                s.generation,
                stamp,
                shift_id,
                version,
            ),
        )
        if cur.rowcount != 1:
            raise StaleState(f"shift {shift_id} changed since version {version}")
    guard = transition.free_of_overlap
    if guard is not None:
        cg, start, end = guard
        if conn.execute(
            "SELECT 1 FROM shifts WHERE claimed_by = ? AND state = 'filled' AND id != ?"
            " AND start_time < ? AND end_time > ? LIMIT 1",
            (cg, shift_id, iso(end), iso(start)),
        ).fetchone():
            raise StaleState(f"caregiver {cg} took an overlapping shift meanwhile")
    if transition.declined is not None:
        conn.execute(
            "UPDATE offers SET declined_at = ? WHERE shift_id = ? AND caregiver_id = ?",
            (stamp, shift_id, transition.declined),
        )
    if transition.released is not None:
        conn.execute(
            "UPDATE offers SET released_at = ? WHERE shift_id = ? AND caregiver_id = ?",
            (stamp, shift_id, transition.released),
        )
    withdrawn = sum(_withdraw(conn, shift_id, stamp, w) for w in transition.withdraw)
    codes: dict[str, int] = {}
    rows = _contact(conn, shift_id, transition.contacts, codes, stamp)
    held: set[int] = set()
    if call_gap:
        calls = [r for r in rows if r.channel is Channel.VOICE]
        held = _space_calls(conn, calls, at, call_gap)
        rows = [r for r in rows if r.id not in held]
    queued: set[str] = set()
    for m in transition.messages:
        row = _insert(
            conn,
            m.key,
            m.shift_id,
            m.caregiver_id,
            m.channel,
            m.purpose,
            m.to or _phone_of(conn, m.caregiver_id),
            m.body,
            stamp,
        )
        if row is not None:
            rows.append(row)
            queued.add(m.key)
    for record in transition.records:
        if record.if_queued and not queued:
            continue
        detail = dict(record.detail or {})
        if record.withdrawn:
            detail["withdrawn"] = withdrawn
        _event(conn, shift_id, at, record.kind, record.caregiver_id, detail=detail or None)
    replied = None
    if inbound is not None:
        replied = _log_inbound(conn, stamp, inbound)
        if replied is not None:
            rows.append(replied)
    return Persisted(tuple(rows), codes, replied is not None, bool(held))


def _contact(
    conn: sqlite3.Connection,
    shift_id: str,
    contacts: Sequence[Contact],
    codes: dict[str, int],
    stamp: str,
) -> list[OutboxRow]:
    """Queue a wave's messages, offering the shift with a fresh reply code to each contact
    who has none yet (`codes` gets them). Returns the rows queued (a key queued already is
    skipped). A wave may reach thousands: the statements go in batches."""
    needs = [c.phone for c in contacts if c.opted_in]
    for start in range(0, len(needs), 500):
        chunk = needs[start : start + 500]
        marks = ",".join("?" * len(chunk))
        if conn.execute(
            f"SELECT 1 FROM opt_outs WHERE phone IN ({marks}) LIMIT 1", chunk
        ).fetchone():
            raise StaleState(f"shift {shift_id}: a phone in the wave opted out meanwhile")
    new = [c.caregiver_id for c in contacts if c.code is None]
    last: dict[str, int] = {}
    for start in range(0, len(new), 500):
        chunk = new[start : start + 500]
        marks = ",".join("?" * len(chunk))
        last.update(
            conn.execute(f"SELECT id, last_code FROM caregivers WHERE id IN ({marks})", chunk)
        )
    for cg in new:
        codes[cg] = _fresh_code(conn, cg, last[cg])
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
    (before,) = conn.execute("SELECT coalesce(max(id), 0) FROM outbox").fetchone()
    by_key = {}
    values = []
    for c in contacts:
        body = c.render(c.code if c.code is not None else codes[c.caregiver_id])
        by_key[c.key] = (c, body)
        values.append(
            (c.key, shift_id, c.caregiver_id, c.channel, Purpose.OFFER, c.phone, body, stamp, stamp)
        )
    conn.executemany(_INSERT_OUTBOX, values)
    created = _dt(stamp)
    rows = []
    for row_id, key in conn.execute(
        "SELECT id, key FROM outbox WHERE id > ? ORDER BY id", (before,)
    ):
        c, body = by_key[key]
        rows.append(
            OutboxRow(
                row_id,
                shift_id,
                c.caregiver_id,
                c.channel,
                Purpose.OFFER,
                c.phone,
                body,
                "pending",
                0,
                created,
            )
        )
    return rows


def _insert(
    conn: sqlite3.Connection,
    key: str,
    shift_id: str | None,
    caregiver_id: str,
    channel: Channel,
    purpose: Purpose,
    to: str,
    body: str,
    stamp: str,
) -> OutboxRow | None:
    """Queue one message; None if its key is queued already."""
    found = conn.execute(
        _INSERT_OUTBOX + " RETURNING id",
        (key, shift_id, caregiver_id, channel, purpose, to, body, stamp, stamp),
    ).fetchone()
    if found is None:
        return None
    return OutboxRow(
        found[0], shift_id, caregiver_id, channel, purpose, to, body, "pending", 0, _dt(stamp)
    )


@functools.lru_cache(maxsize=1024)
def _tags(text: str) -> tuple[str, ...]:
    """A roster row's tags (JSON); most rows share a few tag lists."""
    return tuple(json.loads(text))


def _phone_of(conn: sqlite3.Connection, caregiver_id: str) -> str:
    found = conn.execute("SELECT phone FROM caregivers WHERE id = ?", (caregiver_id,)).fetchone()
    if found is None:
        raise StoreError(f"no caregiver {caregiver_id!r} to send to")
    return str(found[0])


def _log_inbound(conn: sqlite3.Connection, stamp: str, inbound: InboundLog) -> OutboxRow | None:
    """Log an inbound message with its outcome, and queue `inbound.reply` if it is not
    queued already (then the log keeps no reply). Returns the reply's row if queued."""
    m = inbound.reply
    row = None
    if m is not None:
        to = m.to or _phone_of(conn, m.caregiver_id)
        row = _insert(
            conn, m.key, m.shift_id, m.caregiver_id, m.channel, m.purpose, to, m.body, stamp
        )
    result = inbound.result
    conn.execute(
        "INSERT OR IGNORE INTO inbound (provider_id, ts, from_phone, caregiver_id,"
        " channel, body, shift_id, outcome, reply) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            inbound.provider_id,
            stamp,
            inbound.from_phone,
            result.caregiver_id,
            inbound.channel,
            inbound.body[:1600],
            result.shift_id,
            result.outcome,
            result.reply if m is None or row is not None else None,
        ),
    )
    return row


OPEN_OFFER_WITH_CODE = (
    "SELECT 1 FROM offers o JOIN shifts s ON s.id = o.shift_id"
    " WHERE o.caregiver_id = ? AND o.code = ? AND s.state IN ('offering', 'escalated')"
    " LIMIT 1"
)
"""Whether one caregiver holds an open offer with one code: the fanout's only question about
codes, answered from the index `offers_caregiver_code`."""
_OPEN_CODES = (
    "SELECT o.code FROM offers o JOIN shifts s ON s.id = o.shift_id"
    " WHERE o.caregiver_id = ? AND s.state IN ('offering', 'escalated')"
)


def _fresh_code(conn: sqlite3.Connection, caregiver_id: str, last: int) -> int:
    """The next reply code after `last` that none of the caregiver's open offers holds,
    cycling through 1..99 so codes are not reused soon after a shift closes; past 99 open
    offers, codes grow beyond two digits. Asks about this caregiver's own offers only, one
    indexed look-up per code tried (one, unless she holds the next codes; each reads her
    offers with that code, about one in 99 of hers): what a fanout costs depends on its
    audience, never on how many offers the role has open."""
    for step in range(1, _MAX_CODE + 1):
        code = (last + step - 1) % _MAX_CODE + 1
        if conn.execute(OPEN_OFFER_WITH_CODE, (caregiver_id, code)).fetchone() is None:
            return code
    codes: list[int] = [code for (code,) in conn.execute(_OPEN_CODES, (caregiver_id,))]
    return max(codes) + 1


def _event(
    conn: sqlite3.Connection,
    shift_id: str,
    at: datetime,
    kind: str,
    caregiver_id: str | None = None,
    *,
    detail: dict[str, Any] | None = None,
) -> None:
    conn.execute(
        "INSERT INTO events (shift_id, ts, kind, caregiver_id, detail) VALUES (?, ?, ?, ?, ?)",
        (shift_id, iso(at), kind, caregiver_id, json.dumps(detail) if detail else None),
    )


def _withdraw(conn: sqlite3.Connection, shift_id: str, stamp: str, w: Withdrawal) -> int:
    """Cancel the shift's pending messages `w` names; returns how many."""
    sql = (
        "UPDATE outbox SET state = 'cancelled', updated_at = ?"
        " WHERE shift_id = ? AND state = 'pending'"
    )
    params: list[Any] = [stamp, shift_id]
    if w.caregiver_id is not None:
        sql += " AND caregiver_id = ?"
        params.append(w.caregiver_id)
    if w.purpose is not None:
        sql += " AND purpose = ?"
        params.append(w.purpose)
    return conn.execute(sql, params).rowcount


def _queue(conn: sqlite3.Connection, messages: Iterable[NewMessage], stamp: str | None) -> int:
    before = conn.total_changes
    for m in messages:
        to = m.to
        if to is None:
            phone = conn.execute("SELECT phone FROM caregivers WHERE id = ?", (m.caregiver_id,))
            found = phone.fetchone()
            if found is None:
                raise StoreError(f"no caregiver {m.caregiver_id!r} to send to")
            to = found[0]
        conn.execute(
            _INSERT_OUTBOX,
            (
                m.key,
                m.shift_id,
                m.caregiver_id,
                m.channel,
                m.purpose,
                to,
                m.body,
                stamp,
                stamp,
            ),
        )
    return conn.total_changes - before


def _upsert_caregivers(
    conn: sqlite3.Connection, caregivers: Sequence[Caregiver], at: datetime
) -> ImportCounts:
    """Upsert by id; `active` None keeps what is stored (a new caregiver is active), and so
    does `language` None (a new caregiver reads her organization's). Each change is listed
    in `changes` too."""
    counts = ImportCounts()
    stamp = iso(at)
    for cg in caregivers:
        tags = json.dumps(list(cg.tags))
        old = conn.execute(
            "SELECT name, role, phone, tags, active, language FROM caregivers WHERE id = ?",
            (cg.id,),
        ).fetchone()
        was_active = bool(old[4]) if old is not None else True
        active = was_active if cg.active is None else cg.active
        stored_language = old[5] if old is not None else None
        language = stored_language if cg.language is None else cg.language
        new = (cg.name, cg.role, cg.phone, tags, int(active), language)
        if old == new:
            counts.unchanged += 1
            continue
        holder = conn.execute("SELECT id FROM caregivers WHERE phone = ?", (cg.phone,)).fetchone()
        if holder is not None and holder[0] != cg.id:
            counts.skipped.append({"id": cg.id, "reason": f"phone already used by {holder[0]}"})
            continue
        if old is None:
            conn.execute(
                "INSERT INTO caregivers (id, name, role, phone, tags, active, language,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (cg.id, *new, stamp),
            )
            counts.created += 1
            counts.changes.append({"id": cg.id, "change": "created"})
            continue
        conn.execute(
            "UPDATE caregivers SET name = ?, role = ?, phone = ?, tags = ?, active = ?,"
            " language = ?, updated_at = ? WHERE id = ?",
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


_CAREGIVER_FIELDS = ("name", "role", "phone", "tags", "active", "language")


class _RolledBack(Exception):
    """Carries a dry run's counts out of its write, so the writer rolls the write back."""

    def __init__(self, counts: tuple[ImportCounts, ImportCounts]) -> None:
        super().__init__("dry run")
        self.counts = counts


def _insert_shift(conn: sqlite3.Connection, shift: Shift, at: datetime) -> None:
    stamp = iso(at)
    conn.execute(
        "INSERT INTO shifts (id, organization_id, role_required, start_time, end_time, location,"
        " state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'open', ?, ?)",
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


def _upsert_shifts(conn: sqlite3.Connection, shifts: Sequence[Shift], at: datetime) -> ImportCounts:
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
            "SELECT organization_id, role_required, start_time, end_time, location, state"
            " FROM shifts WHERE id = ?",
            (shift.id,),
        ).fetchone()
        if old is None:
            _insert_shift(conn, shift, at)
            _event(conn, shift.id, at, "created")
            counts.created += 1
        elif tuple(old[:5]) == fields:
            counts.unchanged += 1
        elif old[5] != ShiftState.OPEN:
            counts.skipped.append({"id": shift.id, "reason": f"shift is {old[5]}; not changed"})
        else:
            # Only before its fanout (the one write to a shift not made by its actor); the
            # version moves, so an actor that read the shift before decides afresh.
            conn.execute(
                "UPDATE shifts SET organization_id = ?, role_required = ?, start_time = ?,"
                " end_time = ?, location = ?, updated_at = ?, version = version + 1"
                " WHERE id = ? AND state = 'open'",
                (*fields, iso(at), shift.id),
            )
            _event(conn, shift.id, at, "updated")
            counts.updated += 1
    return counts
