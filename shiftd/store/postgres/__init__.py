"""The PostgreSQL store: the same protocol as `SqliteStore`, one writer, group commit, on
psycopg's sync connections from worker threads (`writer`); its schema (`schema`), the facts
it reads afresh (`facts`) and its spelling of the shared SQL (`dialect`). The aggregates
themselves are shared with SQLite (`shiftd.store.sql`)."""

from __future__ import annotations

from ..sql.inbound import Inbound
from ..sql.outbox import Outbox
from ..sql.roster import Roster
from ..sql.shifts import Shifts
from ..sql.views import Views
from .facts import ReadFacts
from .schema import FIRST_VERSION, MIGRATIONS, SCHEMA_VERSION, schema_version

__all__ = ["FIRST_VERSION", "MIGRATIONS", "SCHEMA_VERSION", "PostgresStore", "schema_version"]


class PostgresStore(ReadFacts, Roster, Shifts, Outbox, Inbound, Views):
    """The PostgreSQL backend. Start it with `await nursery.start(store.run)`.

    `url` is a libpq URL or conninfo (`postgresql://user@host:5432/db`); a password may be
    in it, in ~/.pgpass or in $PGPASSWORD, and is never logged.
    """
