"""The crash runs read a daemon's store from outside with one spelling of SQL (`?`
placeholders, `%` in LIKE patterns) on either backend, all tables from one snapshot."""

from __future__ import annotations

import pytest
from store_backends import Backend

from shiftd.testing.storeread import PostgresReader, SqliteReader, StoreReader, StoreUnreadable


def reader(backend: Backend) -> StoreReader:
    if backend.name == "sqlite":
        return SqliteReader(backend.path)
    assert backend.url is not None
    return PostgresReader(backend.url)


def make_table(backend: Backend) -> None:
    backend.sql("CREATE TABLE t (id INTEGER, error TEXT)")
    backend.sql("INSERT INTO t VALUES (1, 'interrupted while sending'), (2, 'refused')")


def test_a_query_with_placeholders_and_a_like_pattern_reads_alike_on_both_backends(
    backend: Backend,
) -> None:
    make_table(backend)

    rows = reader(backend).rows("SELECT id FROM t WHERE error LIKE 'inter%' AND id >= ?", (1,))

    assert rows == [(1,)]


def test_tables_come_as_rows_of_columns_by_query_name(backend: Backend) -> None:
    make_table(backend)

    found = reader(backend).tables({"t": "SELECT * FROM t ORDER BY id", "none": "SELECT 1 AS x"})

    assert found == {
        "t": [{"id": 1, "error": "interrupted while sending"}, {"id": 2, "error": "refused"}],
        "none": [{"x": 1}],
    }


def test_a_store_that_cannot_be_read_says_so(backend: Backend) -> None:
    make_table(backend)

    with pytest.raises(StoreUnreadable):
        reader(backend).rows("SELECT nothing FROM nowhere")
