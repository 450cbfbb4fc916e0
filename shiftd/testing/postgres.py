"""Fresh PostgreSQL databases on the local test server, one per test or harness run.

The server is $SHIFTD_TEST_POSTGRES (default postgresql://postgres@127.0.0.1:5432/postgres,
trust auth). Where it does not answer, `postgres_unreachable` says why in one line, so the
tests that need it skip with one reason.
"""

from __future__ import annotations

import atexit
import os
import secrets

import psycopg

from ..store.url import redacted

ADMIN_URL = os.environ.get("SHIFTD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
_unreachable: str | None = None
_checked = False


def postgres_unreachable() -> str | None:
    """Why PostgreSQL cannot be used for tests (one line), or None if it answers. Asked
    once per process."""
    global _checked, _unreachable
    if not _checked:
        _checked = True
        try:
            with psycopg.connect(ADMIN_URL, connect_timeout=3, autocommit=True) as conn:
                conn.execute("SELECT 1")
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            _unreachable = (
                f"PostgreSQL is not answering at {redacted(ADMIN_URL)} ({first}):"
                " the PostgreSQL store tests are skipped"
            )
    return _unreachable


def create_database(*, migrated: bool = True) -> str:
    """A fresh database on the test server of its own; its URL. Raises psycopg.Error if the
    server refuses.

    `migrated`: a copy of a template already at the schema version (made once per process:
    copying it costs about half of creating an empty database and migrating it); otherwise
    empty, for the tests of the migration itself."""
    name = f"shiftd_test_{secrets.token_hex(6)}"
    template = f' TEMPLATE "{_migrated_template()}"' if migrated else ""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{template}')
    return _url_of(name)


def drop_database(url: str) -> None:
    """Drop the database at `url`, closing what is still connected to it."""
    name = url.rpartition("/")[2]
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_template: str | None = None


def _migrated_template() -> str:
    """The name of this process's template database, migrated by the store's own `migrate`;
    made on first use and dropped when the process ends."""
    global _template
    if _template is None:
        from ..store.postgres.schema import migrate

        url = create_database(migrated=False)
        atexit.register(drop_database, url)
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
        _template = url.rpartition("/")[2]
    return _template


def _url_of(name: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{name}"
