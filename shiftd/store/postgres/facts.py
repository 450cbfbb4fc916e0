"""What waves read of the roster and the phones: read afresh each time (SQLite keeps these
in memory as the database's only writer; here the database is the truth)."""

from __future__ import annotations

from datetime import datetime

from ...shifts.machine import Candidate, Candidates, Roster
from ..sql.dialect import Conn
from ..sql.rows import tags
from ..sql.shifts import holdings
from .writer import PostgresWriter


class ReadFacts(PostgresWriter):
    """The roster by role and the phones' opt-outs, read from the database."""

    async def candidates(
        self, role: str, window: tuple[datetime, datetime], exclude: str
    ) -> Candidates:
        """The active caregivers with `role` (by id), the filled shifts other than `exclude`
        overlapping `window`, and which of the caregivers' phones opted out or were texted
        an offer before, in one round trip for the roster."""

        def read(conn: Conn) -> Candidates:
            caregivers: list[Candidate] = []
            opted_out: set[str] = set()
            texted: set[str] = set()
            for cg, phone, text, language, opted, was_texted in conn.execute(
                "SELECT c.id, c.phone, c.tags, c.language, oo.phone IS NOT NULL,"
                " tp.phone IS NOT NULL FROM caregivers c"
                " LEFT JOIN opt_outs oo ON oo.phone = c.phone"
                " LEFT JOIN texted_phones tp ON tp.phone = c.phone"
                " WHERE c.role = %s AND c.active ORDER BY c.id",
                (role,),
            ):
                caregivers.append(Candidate(cg, phone, tags(text), language))
                if opted:
                    opted_out.add(phone)
                if was_texted:
                    texted.add(phone)
            return Candidates(
                Roster(caregivers),
                holdings(self.dialect, conn, window, exclude),
                frozenset(opted_out),
                frozenset(texted),
            )

        return await self._reading(read)

    async def is_opted_out(self, phone: str) -> bool:
        return await self._reading(
            lambda conn: (
                conn.execute("SELECT 1 FROM opt_outs WHERE phone = %s", (phone,)).fetchone()
                is not None
            )
        )
