"""What only the PostgreSQL store does: server-side timeouts, the errors that mean "cannot
write now" mapped to StoreUnavailable (nothing changed), connections the server dropped
reopened, and the URL's password kept out of logs and errors.

Clock: `autojump_clock`, which the `backend` fixture makes jump only after 0.25 s of real
idleness on PostgreSQL, so a statement waited for on a worker thread never lets virtual time
leap.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import structlog
import trio
import trio.testing
from store_backends import ADMIN_URL, Backend

from shiftd.store.base import StoreUnavailable
from shiftd.testing.engine import EPOCH, caregiver

psycopg = pytest.importorskip("psycopg")

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


def admin(sql: str, params: tuple[Any, ...] = ()) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql, params)


def name_of(backend: Backend) -> str:
    assert backend.url is not None
    return backend.url.rpartition("/")[2]


def drop_connections(backend: Backend) -> None:
    """The server ends every session on the test's database (as a restart would)."""
    admin(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()",
        (name_of(backend),),
    )


def insert_event(shift_id: str) -> Any:
    def write(conn: Any) -> None:
        conn.execute(
            "INSERT INTO events (shift_id, ts, kind) VALUES (%s, '2025-07-01T14:00:00Z', 't')",
            (shift_id,),
        )

    return write


async def test_statement_and_lock_timeouts_are_set_on_the_server(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    options = {"statement_timeout": timedelta(seconds=7), "lock_timeout": timedelta(seconds=0.25)}
    async with backend.running(**options) as store:
        read = await backend.read(
            store, "SELECT current_setting('statement_timeout'), current_setting('lock_timeout')"
        )
        written = await store._write(
            lambda conn: conn.execute("SELECT current_setting('lock_timeout')").fetchone()[0]
        )
    assert read == [("7s", "250ms")]
    assert written == "250ms"


async def test_a_statement_past_statement_timeout_fails_alone_and_changes_nothing(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    def slow(conn: Any) -> None:
        insert_event("slow")(conn)
        conn.execute("SELECT pg_sleep(5)")

    outcomes: dict[str, object] = {}

    async def attempt(name: str, fn: Any) -> None:
        try:
            outcomes[name] = await store._write(fn)
        except StoreUnavailable as exc:
            outcomes[name] = exc

    async with backend.running(statement_timeout=timedelta(milliseconds=100)) as store:
        async with trio.open_nursery() as writers:
            writers.start_soon(attempt, "slow", slow)
            writers.start_soon(attempt, "fast", insert_event("fast"))
        kept = await backend.read(store, "SELECT shift_id FROM events")
    assert isinstance(outcomes["slow"], StoreUnavailable)
    assert "statement_timeout" in str(outcomes["slow"])
    assert outcomes["fast"] is None
    assert kept == [("fast",)]


async def test_a_row_locked_past_lock_timeout_fails_the_write_with_store_unavailable(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running(lock_timeout=timedelta(milliseconds=100)) as store:
        await store.import_roster([caregiver(1)], [], EPOCH)
        assert backend.url is not None
        with psycopg.connect(backend.url) as other:  # holds its transaction open
            other.execute("SELECT 1 FROM caregivers WHERE id = 'cg-1' FOR UPDATE")
            with pytest.raises(StoreUnavailable, match="lock_timeout"):
                await store.set_caregiver_active("cg-1", False, EPOCH)
        row = await store.caregiver("cg-1")
    assert row is not None and row.active


async def test_a_read_only_database_refuses_writes_with_store_unavailable_until_writable(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running() as store:
        await store.import_roster([caregiver(1)], [], EPOCH)
        admin(f'ALTER DATABASE "{name_of(backend)}" SET default_transaction_read_only = on')
        drop_connections(backend)
        with pytest.raises(StoreUnavailable, match="read-only"):
            await store.set_caregiver_active("cg-1", False, EPOCH)
        assert (await store.caregiver("cg-1")).active  # type: ignore[union-attr]

        admin(f'ALTER DATABASE "{name_of(backend)}" RESET default_transaction_read_only')
        drop_connections(backend)
        assert await store.set_caregiver_active("cg-1", False, EPOCH)
        assert not (await store.caregiver("cg-1")).active  # type: ignore[union-attr]


async def test_connections_the_server_dropped_are_reopened_without_failing_a_write_or_read(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running() as store:
        await store.import_roster([caregiver(1)], [], EPOCH)
        assert await store.caregiver("cg-1") is not None
        drop_connections(backend)

        assert await store.set_caregiver_active("cg-1", False, EPOCH)
        row = await store.caregiver("cg-1")
        offers = await store.offers_state("shift-1")
    assert row is not None and not row.active
    assert offers == {}


async def test_a_server_that_cannot_be_reached_makes_reads_and_writes_store_unavailable(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running() as store:
        await store.import_roster([caregiver(1)], [], EPOCH)
        admin(f'ALTER DATABASE "{name_of(backend)}" ALLOW_CONNECTIONS false')
        drop_connections(backend)
        with pytest.raises(StoreUnavailable):
            await store.set_caregiver_active("cg-1", False, EPOCH)
        with pytest.raises(StoreUnavailable):
            await store.caregiver("cg-1")

        admin(f'ALTER DATABASE "{name_of(backend)}" ALLOW_CONNECTIONS true')
        assert await store.set_caregiver_active("cg-1", False, EPOCH)


async def test_the_urls_password_is_never_logged(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    assert backend.url is not None
    # Trust authentication: the server never asks for the password, so any will do.
    with_password = backend.url.replace("://postgres@", "://postgres:s3cret-pw@")
    from shiftd.store.postgres import PostgresStore

    with structlog.testing.capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            await nursery.start(PostgresStore(with_password).run)
            nursery.cancel_scope.cancel()
    [opened] = [e for e in logs if e["event"] == "store.opened"]
    assert opened["url"] == with_password.replace(":s3cret-pw@", ":***@")
    assert "s3cret-pw" not in repr(logs)


async def test_a_server_not_answering_at_start_is_store_unavailable_without_the_password(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    from shiftd.store.postgres import PostgresStore

    nowhere = PostgresStore("postgresql://postgres:s3cret-pw@127.0.0.1:1/nowhere")
    async with trio.open_nursery() as nursery:
        with pytest.raises(StoreUnavailable) as refused:
            await nursery.start(nowhere.run)
    assert "postgres:***@127.0.0.1:1/nowhere" in str(refused.value)
    assert "s3cret-pw" not in str(refused.value)


# ---- the schema's upgrade from version 11 ------------------------------------------------

# The cluster's tables as an instance of schema version 11 made them at its start, outside
# the versioned steps.
CLUSTER_TABLES_OF_VERSION_11 = """
CREATE TABLE cluster_meta (partitions INTEGER NOT NULL);
CREATE TABLE cluster_instances (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    started timestamptz NOT NULL DEFAULT now(), heartbeat timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE cluster_leases (
    partition INTEGER PRIMARY KEY, owner TEXT, epoch BIGINT NOT NULL DEFAULT 0,
    acquired_at timestamptz, renewed_at timestamptz, expires_at timestamptz
);
CREATE TABLE shiftd_inbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id TEXT NOT NULL UNIQUE, partition INTEGER NOT NULL, shift_id TEXT NOT NULL,
    request JSONB NOT NULL, sender TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    claimed_by TEXT, claimed_at TIMESTAMPTZ, answer JSONB, answered_at TIMESTAMPTZ
);
CREATE INDEX shiftd_inbox_waiting ON shiftd_inbox (partition, id) WHERE answered_at IS NULL;
CREATE INDEX shiftd_inbox_answered ON shiftd_inbox (answered_at) WHERE answered_at IS NOT NULL;
"""
CLUSTER_TABLES = {"cluster_meta", "cluster_instances", "cluster_leases", "shiftd_inbox"}


def at_version_11(backend: Backend, *, cluster: bool) -> None:
    """The database as shiftd at schema version 11 left it; with `cluster`, as a cluster
    left it (its tables made beside the schema, a lease held, a request answered)."""
    from shiftd.store.postgres import MIGRATIONS

    with psycopg.connect(backend.url, autocommit=True) as conn:
        conn.execute(MIGRATIONS[0])
        conn.execute("CREATE TABLE shiftd_schema (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO shiftd_schema (version) VALUES (11)")
        if cluster:
            conn.execute(CLUSTER_TABLES_OF_VERSION_11)
            conn.execute("INSERT INTO cluster_meta (partitions) VALUES (8)")
            conn.execute("INSERT INTO cluster_leases (partition, owner, epoch) VALUES (3, 'a', 5)")
            conn.execute(
                "INSERT INTO shiftd_inbox (request_id, partition, shift_id, request, sender,"
                " answer, answered_at) VALUES (%s, 3, %s, %s, 'b', %s, now())",
                ("sms:SM1", "shift-1", '{"kind": "cancel"}', '{"outcome": "declined"}'),
            )


@pytest.mark.empty_database
async def test_a_version_11_database_gains_the_cluster_tables_at_version_12(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    at_version_11(backend, cluster=False)
    async with backend.running():
        pass
    assert backend.schema_version() == backend.latest_version
    assert backend.tables() >= CLUSTER_TABLES
    assert backend.sql("SELECT count(*) FROM cluster_leases") == [(0,)]


@pytest.mark.empty_database
async def test_a_version_11_clusters_tables_are_adopted_with_their_rows(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    at_version_11(backend, cluster=True)
    async with backend.running():
        pass
    assert backend.schema_version() == backend.latest_version
    assert backend.sql("SELECT partitions FROM cluster_meta") == [(8,)]
    assert backend.sql("SELECT partition, owner, epoch FROM cluster_leases") == [(3, "a", 5)]
    assert backend.sql("SELECT request_id, answer ->> 'outcome' FROM shiftd_inbox") == [
        ("sms:SM1", "declined")
    ]
