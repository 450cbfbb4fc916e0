"""PostgreSQL's spelling of the shared SQL (`%s` placeholders, `ON CONFLICT DO NOTHING`,
`= ANY(array)`, `FOR UPDATE`, byte-wise `COLLATE "C"`, `json_build_object`), and how a
wave's offers are written: a fixed number of array statements whatever the wave's size, so
a wave of thousands costs a few round trips, not a few per caregiver."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import psycopg.errors

from ...models import Channel
from ...shifts.machine import Contact
from ..base import OutboxRow, StaleState
from ..sql.dialect import Conn, Dialect
from ..sql.transitions import next_code, offer_rows


class PostgresDialect(Dialect):
    name = "postgresql"
    unique_violation = psycopg.errors.UniqueViolation
    for_update = " FOR UPDATE"
    collate_c = ' COLLATE "C"'

    def __init__(self) -> None:
        self._spelled: dict[str, str] = {}

    def sql(self, text: str) -> str:
        spelled = self._spelled.get(text)
        if spelled is None:
            # Shared SQL holds no literal `?` or `%`: every `?` is a placeholder.
            spelled = self._spelled[text] = text.replace("?", "%s")
        return spelled

    def insert_ignore(self, rest: str, returning: str = "") -> str:
        tail = f" RETURNING {returning}" if returning else ""
        return self.sql(f"INSERT INTO {rest} ON CONFLICT DO NOTHING{tail}")

    def any_of(self, column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
        return f"{column} = ANY(?)", [list(values)]

    def json_text(self, pairs: str) -> str:
        return f"json_build_object({pairs})::text"

    def queue_rows(self, conn: Conn, values: Sequence[Sequence[Any]]) -> list[tuple[int, str]]:
        """See `Dialect.queue_rows`: one statement over arrays, whatever the count."""
        first: dict[str, Sequence[Any]] = {}
        for row in values:
            first.setdefault(row[0], row)  # as ON CONFLICT: the first row with a key
        # Every column is text (the enums' values too), a shift id may be None.
        columns = [
            [str(v) if v is not None else None for v in column]
            for column in zip(*first.values(), strict=True)
        ]
        found = conn.execute(
            "INSERT INTO outbox (key, shift_id, caregiver_id, channel, purpose, to_phone, body,"
            " created_at, updated_at)"
            " SELECT key, shift_id, cg, channel, purpose, phone, body, created, updated"
            " FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],"
            " %s::text[], %s::text[], %s::text[], %s::text[]) WITH ORDINALITY"
            " AS t(key, shift_id, cg, channel, purpose, phone, body, created, updated, n)"
            " ORDER BY n ON CONFLICT (key) DO NOTHING RETURNING id, key",
            columns,
        ).fetchall()
        return sorted(found)

    def contact(
        self,
        conn: Conn,
        shift_id: str,
        contacts: Sequence[Contact],
        codes: dict[str, int],
        stamp: str,
    ) -> list[OutboxRow]:
        """See `Dialect.contact`."""
        needs = [c.phone for c in contacts if c.opted_in]
        if (
            needs
            and conn.execute(
                "SELECT 1 FROM opt_outs WHERE phone = ANY(%s) LIMIT 1", (needs,)
            ).fetchone()
        ):
            raise StaleState(f"shift {shift_id}: a phone in the wave opted out meanwhile")
        new = list(dict.fromkeys(c.caregiver_id for c in contacts if c.code is None))
        if new:
            last = dict(
                conn.execute(
                    "SELECT id, last_code FROM caregivers WHERE id = ANY(%s) FOR UPDATE", (new,)
                ).fetchall()
            )
            held: dict[str, set[int]] = {}
            for cg, code in conn.execute(
                "SELECT o.caregiver_id, o.code FROM offers o JOIN shifts s ON s.id = o.shift_id"
                " WHERE o.caregiver_id = ANY(%s) AND s.state IN ('offering', 'escalated')",
                (new,),
            ):
                held.setdefault(cg, set()).add(code)
            for cg in new:
                codes[cg] = _code_after(last.get(cg, 0), held.get(cg, set()))
            conn.execute(
                "INSERT INTO offers (shift_id, caregiver_id, code, offered_at)"
                " SELECT %s, cg, code, %s FROM unnest(%s::text[], %s::int[]) AS t(cg, code)",
                (shift_id, stamp, new, [codes[cg] for cg in new]),
            )
            conn.execute(
                "UPDATE caregivers c SET last_code = t.code"
                " FROM unnest(%s::text[], %s::int[]) AS t(id, code) WHERE c.id = t.id",
                (new, [codes[cg] for cg in new]),
            )
        texted = sorted({c.phone for c in contacts if c.channel is Channel.SMS})
        if texted:
            conn.execute(
                "INSERT INTO texted_phones (phone, first_at) SELECT phone, %s"
                " FROM unnest(%s::text[]) AS t(phone) ON CONFLICT (phone) DO NOTHING",
                (stamp, texted),
            )
        by_key: dict[str, tuple[Contact, str]] = {}
        for c in contacts:
            if c.key not in by_key:  # as ON CONFLICT: the first message with a key is the one
                code = c.code if c.code is not None else codes[c.caregiver_id]
                by_key[c.key] = (c, c.render(code))
        keys = list(by_key)
        found = conn.execute(
            "INSERT INTO outbox (key, shift_id, caregiver_id, channel, purpose, to_phone, body,"
            " created_at, updated_at)"
            " SELECT key, %s, cg, channel, 'offer', phone, body, %s, %s"
            " FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[])"
            " WITH ORDINALITY AS t(key, cg, channel, phone, body, n) ORDER BY n"
            " ON CONFLICT (key) DO NOTHING RETURNING id, key",
            (
                shift_id,
                stamp,
                stamp,
                keys,
                [by_key[k][0].caregiver_id for k in keys],
                [str(by_key[k][0].channel) for k in keys],
                [by_key[k][0].phone for k in keys],
                [by_key[k][1] for k in keys],
            ),
        ).fetchall()
        return offer_rows(shift_id, found, by_key, stamp)


def _code_after(last: int, held: set[int]) -> int:
    """`next_code` for a caregiver whose open offers hold the codes `held`."""
    return next_code(last, held.__contains__, lambda: held)


POSTGRES = PostgresDialect()
