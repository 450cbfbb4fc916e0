"""Messages received (the inbound log, for replay detection and the timeline) and the
phones that opted out of texts (carriers require honouring STOP from any number)."""

from __future__ import annotations

from datetime import datetime

from ...clock import iso
from ..base import InboundLog, InboundRecord, NewMessage, OutboxRow
from .backend import SqlBackend
from .dialect import Conn
from .transitions import log_inbound, queue


class Inbound(SqlBackend):
    """The inbound log and the opt-outs."""

    async def inbound_seen(self, provider_id: str) -> InboundRecord | None:
        sql = self.dialect.sql(
            "SELECT outcome, shift_id, caregiver_id, reply FROM inbound WHERE provider_id = ?"
        )

        def read(conn: Conn) -> InboundRecord | None:
            found = conn.execute(sql, (provider_id,)).fetchone()
            return InboundRecord(*found) if found is not None else None

        return await self._reading(read)

    async def log_inbound(self, inbound: InboundLog) -> OutboxRow | None:
        """Log an inbound message that changes no shift, with its reply (if any) in the same
        transaction. Returns the reply's row, or None when there is none or a message with
        its key exists already (then no reply is logged)."""
        d = self.dialect
        stamp = iso(inbound.at)
        assert stamp is not None
        return await self._write(lambda conn: log_inbound(d, conn, stamp, inbound))

    async def blank_reply_texts(self, before: datetime) -> int:
        """Blank the stored text of every message received before `before` (retention):
        its outcome and everything else stay. Returns how many were blanked."""
        sql = self.dialect.sql("UPDATE inbound SET body = '' WHERE ts < ? AND body != ''")
        return await self._write(lambda conn: int(conn.execute(sql, (iso(before),)).rowcount))

    async def set_opted_out(
        self, phone: str, *, keyword: str, at: datetime, reply: NewMessage | None
    ) -> bool:
        """Record that `phone` opted out of SMS (STOP…), in one transaction with `reply`, the
        confirmation, which is queued only if the phone was not opted out already. Returns
        True if it was not (a repeat keeps the first time and keyword). Texts still pending
        for the phone are not touched here (they belong to their shifts' actors): the
        sender suppresses each one when its turn comes."""
        d = self.dialect
        sql = d.insert_ignore("opt_outs (phone, opted_out_at, keyword) VALUES (?, ?, ?)")

        def write(conn: Conn) -> bool:
            # At commit time, not after: a wave decided meanwhile must see the change.
            self._opt_outs_changed()
            stamp = iso(at)
            changed = conn.execute(sql, (phone, stamp, keyword[:32])).rowcount == 1
            if changed and reply is not None:
                queue(d, conn, [reply], stamp)
            return bool(changed)

        return await self._write(write)

    async def set_opted_in(self, phone: str, *, at: datetime, reply: NewMessage | None) -> bool:
        """Forget `phone`'s opt-out (START…), in one transaction with `reply`, the
        confirmation, which is queued only if the phone was opted out. Returns True if it
        was."""
        d = self.dialect
        sql = d.sql("DELETE FROM opt_outs WHERE phone = ?")

        def write(conn: Conn) -> bool:
            self._opt_outs_changed()  # at commit time (see set_opted_out)
            changed = conn.execute(sql, (phone,)).rowcount == 1
            if changed and reply is not None:
                queue(d, conn, [reply], iso(at))
            return bool(changed)

        return await self._write(write)
