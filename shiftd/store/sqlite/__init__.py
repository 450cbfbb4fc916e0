"""The embedded store: SQLite in WAL mode, one writer task, group commit (`writer`), its
schema (`schema`), the facts it keeps in memory (`facts`) and its spelling of the shared
SQL (`dialect`); the aggregates themselves are shared with PostgreSQL (`shiftd.store.sql`)."""

from __future__ import annotations

from ..sql.backend import WriterStats
from ..sql.inbound import Inbound
from ..sql.outbox import Outbox
from ..sql.roster import Roster
from ..sql.shifts import Shifts
from ..sql.views import Views
from .dialect import OPEN_OFFER_WITH_CODE, open_offers_with_codes
from .facts import KeptFacts
from .schema import MIGRATIONS, SCHEMA_VERSION

__all__ = [
    "MIGRATIONS",
    "OPEN_OFFER_WITH_CODE",
    "SCHEMA_VERSION",
    "SqliteStore",
    "WriterStats",
    "open_offers_with_codes",
]


class SqliteStore(KeptFacts, Roster, Shifts, Outbox, Inbound, Views):
    """The SQLite backend. Start it with `await nursery.start(store.run)`."""
