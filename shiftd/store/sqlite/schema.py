"""SQLite's schema: the migrations from an empty database to the current version, kept in
`PRAGMA user_version`."""

from __future__ import annotations

import sqlite3

from ...logs import get_logger
from ..base import StoreError

log = get_logger(__name__)

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
    # v12: PostgreSQL's step 12 adds the cluster's tables; SQLite has no cluster, so only
    # the number moves (both backends count alike).
    "",
    # v13: `offers_caregiver` answers nothing the two indexes led by `caregiver_id` (v8, v9)
    # do not, and every offer written paid for it.
    """
    DROP INDEX offers_caregiver;
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the database to SCHEMA_VERSION, one transaction per step. Raises StoreError
    if it is newer than this code."""
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
