"""The inbox table: a request posted once per request id, claimed by one instance at a
time, an "unavailable" answer asked afresh, answered requests deleted after retention.

Direct calls on a fresh PostgreSQL database, as the forwarder makes them on its threads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from store_backends import Backend

from shiftd.cluster import inbox
from shiftd.store.postgres.schema import migrate

pytestmark = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


@pytest.fixture
def conn(backend: Backend) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(backend.url or "", autocommit=True) as c:
        migrate(c)
        yield c


def post(conn: psycopg.Connection[Any], request_id: str = "req-1") -> inbox.Posted:
    return inbox.post(
        conn,
        request_id=request_id,
        partition=7,
        shift_id="shift-1",
        request='{"kind": "cancel"}',
        sender="b",
    )


def test_a_request_posted_again_is_the_same_request(conn: psycopg.Connection[Any]) -> None:
    first = post(conn)
    again = post(conn)

    assert again == first == inbox.Posted(first.id, None)


def test_a_request_answered_meanwhile_is_posted_again_with_its_answer(
    conn: psycopg.Connection[Any],
) -> None:
    first = post(conn)
    inbox.answer(conn, [(first.id, '{"ok": "cancelled"}')])

    assert post(conn) == inbox.Posted(first.id, '{"ok": "cancelled"}')


def test_a_request_answered_unavailable_is_asked_afresh_when_posted_again(
    conn: psycopg.Connection[Any],
) -> None:
    first = post(conn)
    inbox.answer(conn, [(first.id, '{"unavailable": "internal error"}')])

    assert post(conn) == inbox.Posted(first.id, None)
    [claimed] = inbox.claim(conn, me="a", partitions=[7], busy=[], limit=10)
    assert claimed.id == first.id


def test_only_the_partitions_held_and_not_in_hand_are_claimed(
    conn: psycopg.Connection[Any],
) -> None:
    mine, in_hand = post(conn, "req-1"), post(conn, "req-2")

    assert inbox.claim(conn, me="a", partitions=[8], busy=[], limit=10) == []
    claimed = inbox.claim(conn, me="a", partitions=[7], busy=[in_hand.id], limit=10)
    assert [c.id for c in claimed] == [mine.id]


def test_a_request_another_instance_claimed_and_never_answered_is_claimed_again(
    conn: psycopg.Connection[Any],
) -> None:
    posted = post(conn)
    inbox.claim(conn, me="dead", partitions=[7], busy=[], limit=10)

    [claimed] = inbox.claim(conn, me="a", partitions=[7], busy=[], limit=10)

    assert claimed.id == posted.id


def test_answered_requests_are_deleted_after_retention_and_waiting_ones_kept(
    conn: psycopg.Connection[Any],
) -> None:
    answered, waiting = post(conn, "req-1"), post(conn, "req-2")
    inbox.answer(conn, [(answered.id, '{"ok": "cancelled"}')])

    assert inbox.purge(conn, answered_before=timedelta(hours=1)) == 0
    assert inbox.purge(conn, answered_before=timedelta(0)) == 1
    assert [r[0] for r in conn.execute("SELECT id FROM shiftd_inbox")] == [waiting.id]
