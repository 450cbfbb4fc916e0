"""What waves read of the roster and the phones, kept in memory: this process is the
database's only writer, so each write that changes them updates or drops them at its
commit (inside the write), and a failed commit drops them all."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from ...shifts.machine import Candidate, Candidates, Roster
from ..sql.rows import tags
from ..sql.shifts import holdings
from .writer import SqliteWriter


class KeptFacts(SqliteWriter):
    """The roster by role and the opted-out and texted phones, read once and kept."""

    def __init__(self, path: Path, *, synchronous: str = "normal", batch_max: int = 512) -> None:
        super().__init__(path, synchronous=synchronous, batch_max=batch_max)
        self._roster: dict[str, Roster] = {}
        self._phone_sets: dict[str, set[str]] = {}

    async def candidates(
        self, role: str, window: tuple[datetime, datetime], exclude: str
    ) -> Candidates:
        """The facts a wave decides from: the active caregivers with `role` (by id), the
        filled shifts other than `exclude` overlapping `window`, and the phones that opted
        out or were texted an offer before. The roster and the phone sets come from memory;
        the holdings are read. A checkpoint before it reads, none after."""
        return await self._reading(
            lambda conn: Candidates(
                self._candidates(role),
                holdings(self.dialect, conn, window, exclude),
                self._phones("opt_outs"),
                self._phones(),
            )
        )

    def _candidates(self, role: str) -> Roster:
        roster = self._roster.get(role)
        if roster is None:
            roster = self._roster[role] = Roster(
                Candidate(cg, phone, tags(text), language)
                for cg, phone, text, language in self._require().execute(
                    "SELECT id, phone, tags, language FROM caregivers"
                    " WHERE role = ? AND active = 1 ORDER BY id",
                    (role,),
                )
            )
        return roster

    async def is_opted_out(self, phone: str) -> bool:
        return await self._reading(lambda conn: phone in self._phones("opt_outs"))

    def _phones(self, table: str = "texted_phones") -> set[str]:
        """The phones in `table` (opt_outs or texted_phones), read once and kept."""
        phones = self._phone_sets.get(table)
        if phones is None:
            rows = self._require().execute(f"SELECT phone FROM {table}")
            phones = self._phone_sets[table] = {phone for (phone,) in rows}
        return phones

    def _roster_changed(self) -> None:
        self._roster.clear()

    def _opt_outs_changed(self) -> None:
        self._phone_sets.pop("opt_outs", None)

    def _texted(self, phones: Iterable[str]) -> None:
        kept = self._phone_sets.get("texted_phones")
        if kept is not None:
            kept.update(phones)

    def _forget(self) -> None:
        self._roster.clear()
        self._phone_sets.clear()
