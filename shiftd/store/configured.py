"""The store a configuration asks for: SQLite in `state_dir`, or PostgreSQL at `store.url`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .sqlite import SqliteStore

if TYPE_CHECKING:
    from ..config import Config
    from .postgres import PostgresStore


def configured_store(
    config: Config, on_commit: Callable[[int, float], None] | None = None
) -> SqliteStore | PostgresStore:
    """A store, not started, reporting each group commit (batch size, seconds) to
    `on_commit`. PostgreSQL's driver is imported only when `store.url` is set, so the
    embedded default never loads it."""
    store = config.store
    built: SqliteStore | PostgresStore
    if store.url is None:
        built = SqliteStore(
            Path(config.state_dir) / "shiftd.sqlite3",
            synchronous=store.synchronous,
            batch_max=store.batch_max,
        )
    else:
        from .postgres import PostgresStore

        built = PostgresStore(
            store.url,
            batch_max=store.batch_max,
            readers=store.readers,
            statement_timeout=store.statement_timeout,
            lock_timeout=store.lock_timeout,
        )
    built.on_commit = on_commit
    return built
