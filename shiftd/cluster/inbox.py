"""The inbox: requests for a shift's actor that reached an instance not owning the shift.

One table in the store's PostgreSQL database (`shiftd_inbox`, made by its migrations,
`shiftd.store.postgres.schema`). The instance that received a request (a
webhook, a control command) posts it as a row with the shift's partition and NOTIFYs
`shiftd_inbox` in the same transaction; the partition's owner claims unanswered rows of
the partitions it holds (`FOR UPDATE SKIP LOCKED`, so two instances never claim the same
row at once), has its actor handle them, writes the answer and NOTIFYs `shiftd_answer` in
one transaction. The sender waits for that answer a bounded time.

A request is posted once per request id (`request_id` is unique): posting it again (a
client retrying after "unavailable") finds the same row, so the owner handles it once.
An answer that says the owner could not handle it (`{"unavailable": ...}`) is not final:
posting the same request again clears it and the owner is asked afresh.

Every function here runs on a worker thread with an autocommit psycopg connection of its
own (`shiftd.cluster.forward`), and raises psycopg.Error as the driver does.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg

Conn = psycopg.Connection[Any]

REQUESTS = "shiftd_inbox"
"""The channel a posted request is announced on; the payload is its partition."""
ANSWERS = "shiftd_answer"
"""The channel an answer is announced on; the payload is its row id."""


def open_inbox(conn: Conn) -> None:
    """Check that the inbox can be read; raises psycopg.Error if not (no connection, or a
    database the store has not migrated)."""
    conn.execute("SELECT 1 FROM shiftd_inbox LIMIT 0")


@dataclass(frozen=True, slots=True)
class Posted:
    """A posted request's row, and its answer if it has one already (a retried request
    the owner answered meanwhile)."""

    id: int
    answer: str | None


def post(
    conn: Conn, *, request_id: str, partition: int, shift_id: str, request: str, sender: str
) -> Posted:
    """Post `request` (JSON) for `shift_id`'s owner, once per `request_id`, and announce
    it. A request posted before is announced again if still unanswered (the owner may
    have missed it), and asked afresh if its answer was "unavailable"."""
    with conn.transaction():
        row = conn.execute(
            """
            INSERT INTO shiftd_inbox AS i (request_id, partition, shift_id, request, sender)
            VALUES (%s, %s, %s, %s::jsonb, %s)
            ON CONFLICT (request_id) DO UPDATE
                SET answer = NULL, answered_at = NULL, claimed_by = NULL, claimed_at = NULL
                WHERE i.answer ->> 'unavailable' IS NOT NULL
            RETURNING id, answer::text
            """,
            (request_id, partition, shift_id, request, sender),
        ).fetchone()
        if row is None:  # posted before, and answered or still waiting
            row = conn.execute(
                "SELECT id, answer::text FROM shiftd_inbox WHERE request_id = %s",
                (request_id,),
            ).fetchone()
            assert row is not None
        if row[1] is None:
            conn.execute("SELECT pg_notify(%s, %s)", (REQUESTS, str(partition)))
    return Posted(row[0], row[1])


def answer_of(conn: Conn, row_id: int) -> str | None:
    """The answer of a posted request (JSON), or None while it has none."""
    row = conn.execute("SELECT answer::text FROM shiftd_inbox WHERE id = %s", (row_id,)).fetchone()
    return None if row is None else row[0]


@dataclass(frozen=True, slots=True)
class Claimed:
    """A request this instance now handles."""

    id: int
    request_id: str
    shift_id: str
    request: str
    sender: str


def claim(
    conn: Conn, *, me: str, partitions: Collection[int], busy: Collection[int], limit: int
) -> list[Claimed]:
    """Claim up to `limit` unanswered requests of `partitions`, oldest first, but those in
    `busy` (in hand here). A row another instance claimed and left unanswered is claimed
    too: its claimant no longer holds the partition (this instance does), so it died or
    gave the partition up before answering."""
    rows = conn.execute(
        """
        UPDATE shiftd_inbox SET claimed_by = %(me)s, claimed_at = clock_timestamp()
        WHERE id IN (
            SELECT id FROM shiftd_inbox
            WHERE answered_at IS NULL AND partition = ANY(%(partitions)s)
              AND NOT (id = ANY(%(busy)s))
            ORDER BY id
            LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
        )
        RETURNING id, request_id, shift_id, request::text, sender
        """,
        {"me": me, "partitions": list(partitions), "busy": list(busy), "limit": limit},
    ).fetchall()
    return sorted((Claimed(*row) for row in rows), key=lambda c: c.id)


def answer(conn: Conn, answers: Iterable[tuple[int, str]]) -> None:
    """Write each `(row id, answer JSON)` and announce it, in one transaction. A row
    answered already keeps its first answer."""
    with conn.transaction():
        for row_id, text in answers:
            conn.execute(
                """
                UPDATE shiftd_inbox SET answer = %s::jsonb, answered_at = clock_timestamp()
                WHERE id = %s AND answered_at IS NULL
                """,
                (text, row_id),
            )
            conn.execute("SELECT pg_notify(%s, %s)", (ANSWERS, str(row_id)))


def purge(conn: Conn, *, answered_before: timedelta) -> int:
    """Delete the requests answered more than `answered_before` ago (server time); how
    many."""
    cur = conn.execute(
        "DELETE FROM shiftd_inbox WHERE answered_at < clock_timestamp() - %s",
        (answered_before,),
    )
    return cur.rowcount
