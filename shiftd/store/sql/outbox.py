"""The outbox: messages queued, handed to the provider, and what became of them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from ...clock import iso, parse_iso
from ...models import ProviderStatusUpdate, SendResult
from ..base import (
    NewMessage,
    OutboxRow,
    ProviderMessageRow,
    SendOutcome,
    ShiftRow,
    provider_status_rank,
)
from .backend import SqlBackend
from .dialect import Conn
from .rows import (
    COMPLIANCE_ANSWERS,
    HOLDER_NOTICES,
    OUTBOX_COLUMNS,
    OUTBOX_SQL,
    SHIFT_SQL,
    outbox_row,
    provider_message_row,
    shift_row,
)
from .transitions import event, queue


class Outbox(SqlBackend):
    """What the sender reads and records."""

    async def due_outbox(self, *, after_id: int, now: datetime, limit: int) -> list[OutboxRow]:
        sql = self.dialect.sql(
            OUTBOX_SQL + " WHERE state = 'pending' AND id > ?"
            " AND (next_attempt_at IS NULL OR next_attempt_at <= ?) ORDER BY id LIMIT ?"
        )
        params = (after_id, iso(now), limit)
        return await self._reading(
            lambda conn: [outbox_row(r) for r in conn.execute(sql, params).fetchall()]
        )

    async def next_retry_at(self) -> datetime | None:
        sql = (
            "SELECT min(next_attempt_at) FROM outbox"
            " WHERE state = 'pending' AND next_attempt_at IS NOT NULL"
        )
        return await self._reading(lambda conn: parse_iso(conn.execute(sql).fetchone()[0]))

    async def mark_sending(self, outbox_id: int, *, at: datetime) -> bool:
        """pending → sending; False if the row is no longer pending (withdrawn), or if it is
        a text to a phone that opted out: then, in the same transaction, it becomes
        `suppressed` (error 'opted out') and is never handed to the provider. Compliance
        answers (purposes opt_out, opt_in, help) still go; calls are never suppressed here
        (whether an opted-out caregiver is called is decided when the call is queued)."""
        taken, _ = await self.mark_sending_many([outbox_id], at=at)
        return outbox_id in taken

    async def mark_sending_many(
        self, outbox_ids: Sequence[int], *, at: datetime
    ) -> tuple[set[int], set[int]]:
        """`mark_sending` for a batch, in one transaction: returns the ids now `sending`
        and those `suppressed` (texts to opted-out phones); the rest were withdrawn, also
        offers whose caregiver declined or released, or whose shift is no longer offered."""
        d = self.dialect
        among, ids = d.any_of("id", outbox_ids)
        opted_out = (
            f"channel = 'sms' AND purpose NOT IN {COMPLIANCE_ANSWERS} AND EXISTS"
            " (SELECT 1 FROM opt_outs WHERE opt_outs.phone = outbox.to_phone)"
        )
        # An offer may wait for a retry after its caregiver declined or released, or after
        # its shift closed: those transitions withdraw what is pending, and a row that was
        # with the provider then came back pending after them. A row never tried was
        # pending all along: those transitions withdrew it if it was theirs to withdraw.
        withdrawn = (
            "attempts > 0 AND purpose = 'offer' AND ("
            " EXISTS (SELECT 1 FROM offers f WHERE f.shift_id = outbox.shift_id"
            " AND f.caregiver_id = outbox.caregiver_id"
            " AND (f.declined_at IS NOT NULL OR f.released_at IS NOT NULL))"
            " OR EXISTS (SELECT 1 FROM shifts s WHERE s.id = outbox.shift_id"
            " AND s.state IN ('filled', 'cancelled', 'unfilled')))"
        )
        take = d.sql(
            "UPDATE outbox SET state = 'sending', attempts = attempts + 1, updated_at = ?"
            f" WHERE {among} AND state = 'pending' AND NOT ({opted_out})"
            f" AND NOT ({withdrawn}) RETURNING id"
        )
        suppress = d.sql(
            "UPDATE outbox SET state = 'suppressed', error = 'opted out', updated_at = ?"
            f" WHERE {among} AND state = 'pending' AND {opted_out} RETURNING id"
        )
        withdraw = d.sql(
            "UPDATE outbox SET state = 'cancelled', updated_at = ?"
            f" WHERE {among} AND state = 'pending' AND {withdrawn}"
        )

        def write(conn: Conn) -> tuple[set[int], set[int]]:
            stamp = iso(at)
            taken = {row_id for (row_id,) in conn.execute(take, (stamp, *ids))}
            suppressed: set[int] = set()
            if len(taken) < len(outbox_ids):  # most batches are taken whole: one statement
                suppressed = {row_id for (row_id,) in conn.execute(suppress, (stamp, *ids))}
                conn.execute(withdraw, (stamp, *ids))
            return taken, suppressed

        return await self._write(write)

    async def finish_sends(self, outcomes: Sequence[SendOutcome]) -> None:
        """Record what became of rows handed to the provider, in one transaction."""
        d = self.dialect
        sent = d.sql(
            "UPDATE outbox SET state = 'sent', sent_at = ?, provider_id = ?,"
            " updated_at = ? WHERE id = ?"
        )
        retry = d.sql(
            "UPDATE outbox SET state = 'pending', next_attempt_at = ?, error = ?,"
            " updated_at = ? WHERE id = ?"
        )
        failed = d.sql("UPDATE outbox SET state = 'failed', error = ?, updated_at = ? WHERE id = ?")

        def write(conn: Conn) -> None:
            done = []  # most batches are sent whole: one statement, prepared once
            for o in outcomes:
                if o.state is SendResult.SENT:
                    stamp = iso(o.at)
                    done.append((stamp, o.provider_id, stamp, o.outbox_id))
                elif o.state is SendResult.RETRY:
                    stamp = iso(o.next_at)
                    conn.execute(retry, (stamp, (o.error or "")[:500], stamp, o.outbox_id))
                else:
                    conn.execute(failed, ((o.error or "")[:500], iso(o.at), o.outbox_id))
            d.execute_each(conn, sent, done)

        await self._write(write)

    async def abandon_sending(self, *, at: datetime) -> int:
        """After a crash: rows caught in `sending` may or may not have reached the provider.
        They are marked failed, never re-sent (at-most-once). Returns how many."""
        sql = self.dialect.sql(
            "UPDATE outbox SET state = 'failed', updated_at = ?,"
            " error = 'interrupted while sending; not retried (at-most-once)'"
            " WHERE state = 'sending'"
        )
        return await self._write(lambda conn: int(conn.execute(sql, (iso(at),)).rowcount))

    async def flag_lost_notices(
        self, *, at: datetime, follow_up: Callable[[OutboxRow, ShiftRow], list[NewMessage]]
    ) -> list[OutboxRow]:
        """Flag every holder notice (confirm, released, shift_cancelled) that ended `failed`
        and is not flagged yet: a `notice_lost` timeline event, and the messages
        `follow_up(row, shift)` returns queued, in one transaction with the flag, so a crash
        loses no follow-up and none is queued twice. Returns the rows flagged now."""
        d = self.dialect

        def write(conn: Conn) -> list[OutboxRow]:
            found = conn.execute(
                f"SELECT {OUTBOX_COLUMNS}, error FROM outbox"
                " WHERE state = 'failed' AND lost_at IS NULL"
                f" AND purpose IN {HOLDER_NOTICES} ORDER BY id"
            ).fetchall()
            flagged = []
            stamp = iso(at)
            for r in found:
                row = outbox_row(r)
                shift = conn.execute(d.sql(SHIFT_SQL + " WHERE id = ?"), (row.shift_id,)).fetchone()
                conn.execute(d.sql("UPDATE outbox SET lost_at = ? WHERE id = ?"), (stamp, row.id))
                if shift is None:
                    continue
                detail = {
                    "purpose": row.purpose.value,
                    "channel": row.channel.value,
                    "outbox_id": row.id,
                    "error": r[10],
                }
                event(
                    d, conn, row.shift_id or "", at, "notice_lost", row.caregiver_id, detail=detail
                )
                queue(d, conn, follow_up(row, shift_row(shift)), stamp)
                flagged.append(row)
            return flagged

        return await self._write(write)

    # ---- provider delivery reports (schema v2) ------------------------------------------

    async def outbox_by_provider_id(self, provider_id: str) -> ProviderMessageRow | None:
        """The outbox row the provider knows as `provider_id` (its message or call sid)."""
        sql = self.dialect.sql(
            "SELECT id, shift_id, caregiver_id, channel, purpose, to_phone, body, state,"
            " provider_id, provider_status FROM outbox WHERE provider_id = ?"
            " ORDER BY id LIMIT 1"
        )

        def read(conn: Conn) -> ProviderMessageRow | None:
            r = conn.execute(sql, (provider_id,)).fetchone()
            if r is None:
                return None
            return provider_message_row(r)

        return await self._reading(read)

    async def update_provider_status(
        self, provider_id: str, status: str, *, at: datetime
    ) -> ProviderStatusUpdate:
        """Record the provider's status for the row with `provider_id` if it is further along
        than the stored one (see `MESSAGE_STATUS_RANK` / `CALL_STATUS_RANK`): callbacks that
        arrive late or twice never move a status backwards. Returns what it did."""
        d = self.dialect
        select = d.sql(
            "SELECT id, channel, provider_status FROM outbox WHERE provider_id = ?"
            " ORDER BY id LIMIT 1" + d.for_update
        )
        update = d.sql("UPDATE outbox SET provider_status = ?, provider_status_at = ? WHERE id = ?")

        def write(conn: Conn) -> ProviderStatusUpdate:
            found = conn.execute(select, (provider_id,)).fetchone()
            if found is None:
                return ProviderStatusUpdate.NOT_FOUND
            outbox_id, channel, current = found
            rank = provider_status_rank(channel, status)
            if rank is None:
                return ProviderStatusUpdate.UNKNOWN_STATUS
            if current is not None:
                current_rank = provider_status_rank(channel, current)
                if current_rank is not None and current_rank >= rank:
                    return ProviderStatusUpdate.STALE
            conn.execute(update, (status, iso(at), outbox_id))
            return ProviderStatusUpdate.UPDATED

        return await self._write(write)
