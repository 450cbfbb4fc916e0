"""The store, on every backend (the `backend` fixture: SQLite and PostgreSQL): schema, roster
import, the transitions that matter, and group commit. Tests of SQLite's own mechanics
(WAL, query plans) run on SQLite only.

Clock: `autojump_clock` throughout; on PostgreSQL the `backend` fixture makes it jump only
after 0.25 s of real idleness, so a query waited for on a worker thread never lets virtual
time leap to a deadline (the `fail_after` below)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from store_backends import Backend

from shiftd.inbound.intent import Intent
from shiftd.models import Channel, Roster, ShiftState
from shiftd.shifts import machine
from shiftd.shifts.organizations import Organizations
from shiftd.store.base import CaregiverRow, StaleState, StoreError
from shiftd.store.sqlite import (
    OPEN_OFFER_WITH_CODE,
    SCHEMA_VERSION,
    SqliteStore,
    open_offers_with_codes,
)
from shiftd.testing.engine import (
    EPOCH,
    cancel_at_store,
    caregiver,
    make_config,
    shift,
    store_transition,
    text_everyone,
)

SAMPLE = Path(__file__).parents[1] / "data" / "sample_data.json"  # ../shared/reference, copied
LATER = EPOCH + timedelta(minutes=10)


@asynccontextmanager
async def running(path: Path, **options: object) -> AsyncIterator[SqliteStore]:
    """A started store; stopped (its queue drained) when the block ends."""
    async with trio.open_nursery() as n:
        store = await n.start(SqliteStore(path, **options).run)  # type: ignore[arg-type]
        yield store
        n.cancel_scope.cancel()


def offer_text(code: int, language: str | None = None, first: bool = False) -> str:
    return f"RN shift tomorrow 08:00. Reply YES {code} to take it."


def sample_roster() -> Roster:
    return Roster.model_validate(json.loads(SAMPLE.read_text()))


def sql(path: Path, query: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Read the database file directly, as an operator with sqlite3 would."""
    with sqlite3.connect(path) as conn:
        return conn.execute(query, params).fetchall()


async def outbox(backend: Backend, store: Any, shift_id: str) -> dict[tuple[str, str, str], str]:
    """(caregiver, channel, purpose) → state for every outbox row of a shift."""
    rows = await backend.read(
        store,
        "SELECT caregiver_id, channel, purpose, state FROM outbox WHERE shift_id = ?",
        (shift_id,),
    )
    return {(r[0], r[1], r[2]): r[3] for r in rows}


async def set_outbox_state(
    backend: Backend, store: Any, shift_id: str, caregiver_id: str, state: str
) -> None:
    await backend.execute(
        store,
        "UPDATE outbox SET state = ? WHERE shift_id = ? AND caregiver_id = ?",
        (state, shift_id, caregiver_id),
    )


async def fanout(store: Any, shift_id: str = "shift-1") -> int | None:
    return await text_everyone(store, shift_id, calls_at=LATER, render_offer=offer_text)


# ---- schema -----------------------------------------------------------------------------


@pytest.mark.empty_database
async def test_a_fresh_database_is_migrated_to_the_schema_version(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running():
        pass
    assert backend.schema_version() == backend.latest_version
    assert {"caregivers", "shifts", "offers", "outbox", "events", "inbound"} <= backend.tables()


@pytest.mark.empty_database
async def test_reopening_a_database_does_not_run_migrations_again(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running() as store:
        await store.import_roster([caregiver(1)], [shift()], EPOCH)
    # Re-running the first migration would fail ("table caregivers already exists") or, if
    # it could not fail, lose the rows.
    async with backend.running() as store:
        assert await store.caregiver("cg-1") is not None
        assert await store.shift("shift-1") is not None
    assert backend.schema_version() == backend.latest_version


@pytest.mark.empty_database
async def test_a_database_newer_than_the_code_is_refused(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    backend.mark_newer()
    async with trio.open_nursery() as n:
        with pytest.raises(StoreError, match="newer"):
            await n.start(backend.new().run)
    assert backend.schema_version() == backend.latest_version + 1


def test_both_backends_are_at_the_same_schema_version() -> None:
    """A migration appended to one backend is appended to the other with the same number."""
    pytest.importorskip("psycopg")
    from shiftd.store import postgres

    assert postgres.SCHEMA_VERSION == SCHEMA_VERSION


async def test_the_database_is_in_wal_mode(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "s.sqlite3"
    async with running(path) as store:
        assert store._read("PRAGMA journal_mode")[0][0] == "wal"
    assert sql(path, "PRAGMA journal_mode") == [("wal",)]  # persistent, not per connection


# ---- roster import ----------------------------------------------------------------------


@pytest.mark.skipif(not SAMPLE.exists(), reason=f"{SAMPLE} not present")
async def test_the_reference_sample_roster_imports_unchanged(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    roster = sample_roster()
    async with backend.running() as store:
        people, shifts = await store.import_roster(roster.caregivers, roster.shifts, EPOCH)
        assert (people.created, people.skipped) == (3, [])
        assert (shifts.created, shifts.skipped) == (3, [])
        # Phones that are not valid NANP numbers and ids that are not UUIDs stay as they are.
        alice = await store.caregiver_by_phone("+15550001")
        assert alice is not None
        assert alice.id == "27e8d156-7fee-4f79-94d7-b45d306724d4"
        assert await store.shift("b2c3d4e5-f6g7-8901-bcde-f23456789012") is not None
        assert len(await store.list_caregivers()) == 3
        assert len(await store.list_shifts(ShiftState.OPEN)) == 3


@pytest.mark.skipif(not SAMPLE.exists(), reason=f"{SAMPLE} not present")
async def test_reimporting_the_same_roster_changes_nothing(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    roster = sample_roster()
    async with backend.running() as store:
        await store.import_roster(roster.caregivers, roster.shifts, EPOCH)
        people, shifts = await store.import_roster(roster.caregivers, roster.shifts, LATER)
        assert (people.created, people.updated, people.unchanged, people.skipped) == (0, 0, 3, [])
        assert (shifts.created, shifts.updated, shifts.unchanged, shifts.skipped) == (0, 0, 3, [])
        assert len(await store.list_caregivers()) == 3
        assert len(await store.list_shifts()) == 3


async def test_reimporting_a_changed_name_updates_the_caregiver_without_duplicating(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running() as store:
        await store.import_roster([caregiver(1), caregiver(2)], [], EPOCH)
        renamed = caregiver(1).model_copy(update={"name": "Alice Ongwele-Smith"})
        people, _ = await store.import_roster([renamed, caregiver(2)], [], LATER)
        assert (people.created, people.updated, people.unchanged) == (0, 1, 1)
        row = await store.caregiver("cg-1")
        assert row is not None
        assert row.name == "Alice Ongwele-Smith"
        assert [c.id for c in await store.list_caregivers()] == ["cg-1", "cg-2"]


async def test_a_second_caregiver_with_the_same_phone_is_skipped_with_a_reason(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    twin = caregiver(2).model_copy(update={"phone": caregiver(1).phone})
    async with backend.running() as store:
        people, _ = await store.import_roster([caregiver(1), twin], [], EPOCH)
        assert people.created == 1
        assert people.skipped == [{"id": "cg-2", "reason": "phone already used by cg-1"}]
        assert await store.caregiver("cg-2") is None
        found = await store.caregiver_by_phone(caregiver(1).phone)
        assert found is not None
        assert found.id == "cg-1"


async def test_reimport_does_not_change_a_shift_in_a_fanout(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running() as store:
        await store.import_roster([caregiver(1)], [shift()], EPOCH)
        assert await fanout(store) == 1
        before = await store.shift("shift-1")
        moved = shift(start_in_h=20)
        _, shifts = await store.import_roster([caregiver(1)], [moved], LATER)
        assert shifts.updated == 0
        assert shifts.skipped == [{"id": "shift-1", "reason": "shift is offering; not changed"}]
        assert await store.shift("shift-1") == before


async def test_caregiver_by_phone_uses_an_index_not_a_scan(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with running(tmp_path / "s.sqlite3") as store:
        plan = " ".join(
            str(r[3])
            for r in store._read(
                "EXPLAIN QUERY PLAN SELECT id, name, role, phone, tags FROM caregivers"
                " WHERE phone = ?",
                ("+15550001",),
            )
        )
    assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, plan
    assert "SCAN" not in plan, plan


async def test_an_answer_is_read_with_the_senders_open_offers_and_opt_out(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    shifts = [shift("shift-1"), shift("shift-2", start_in_h=30), shift("shift-3", start_in_h=42)]
    async with backend.running() as store:
        await store.import_roster([caregiver(1), caregiver(2)], shifts, EPOCH)
        for s in shifts:
            await fanout(store, s.id)
        await cancel_at_store(store, "shift-2", LATER)
        await store.set_opted_out(caregiver(2).phone, keyword="stop", at=EPOCH, reply=None)

        first = await store.answering(caregiver(1).phone)
        second = await store.answering(caregiver(2).phone)
        nobody = await store.answering("+15559999999")

    assert first is not None and second is not None
    assert first.caregiver == CaregiverRow("cg-1", "Carer 1", "RN", caregiver(1).phone)
    assert [o.shift_id for o in first.open_offers] == ["shift-1", "shift-3"]
    assert (first.opted_out, second.opted_out) == (False, True)
    assert second.caregiver.id == "cg-2"
    assert nobody is None


async def test_an_answer_that_names_its_shift_reads_that_offer_and_no_other(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running() as store:
        await store.import_roster([caregiver(1)], [shift("shift-1"), shift("shift-2")], EPOCH)
        await fanout(store, "shift-1")
        await fanout(store, "shift-2")
        found = await store.answering(caregiver(1).phone, shift_id="shift-2")
        not_offered = await store.answering(caregiver(1).phone, shift_id="shift-3")

    assert found is not None and not_offered is not None
    assert found.caregiver.id == "cg-1"
    assert found.named is not None and found.named.shift_id == "shift-2"
    assert (found.open_offers, found.latest, found.opted_out) == ([], None, False)
    assert not_offered.named is None


# ---- fanout and claim ---------------------------------------------------------------------


async def test_start_fanout_gives_each_caregiver_codes_unique_among_their_open_offers(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    shifts = [shift(f"shift-{n}", start_in_h=18 + 8 * n) for n in range(1, 4)]
    async with backend.running() as store:
        await store.import_roster([caregiver(1), caregiver(2)], shifts, EPOCH)
        for s in shifts:
            assert await fanout(store, s.id) == 2
        for cg in ("cg-1", "cg-2"):
            codes = [o.code for o in await store.offers_for_caregiver(cg)]
            assert len(codes) == 3
            assert len(set(codes)) == 3, codes


async def test_a_reply_code_is_not_reused_right_after_its_shift_closes(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running() as store:
        await store.import_roster([caregiver(1)], [shift("shift-1"), shift("shift-2")], EPOCH)
        await fanout(store, "shift-1")
        [first] = await store.offers_for_shift("shift-1")
        await cancel_at_store(store, "shift-1", LATER)
        # Code `first.code` is free again, but a late "YES <code>" for the closed shift
        # must not land on the new one: codes cycle instead of restarting at the lowest.
        await fanout(store, "shift-2")
        [second] = await store.offers_for_shift("shift-2")
        assert second.code != first.code
        assert second.code == first.code + 1


async def test_a_fanout_picks_reply_codes_by_index_from_each_caregivers_own_offers(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    """Whether a caregiver holds an open offer with a code is one indexed look-up: a fanout
    never reads the open offers of everyone else with the role."""
    async with running(tmp_path / "s.sqlite3") as store:
        plan = " ".join(
            str(row["detail"])
            for row in store._read("EXPLAIN QUERY PLAN " + OPEN_OFFER_WITH_CODE, ("cg-1", 7))
        )
        batch = " ".join(
            str(row["detail"])
            for row in store._read(
                "EXPLAIN QUERY PLAN " + open_offers_with_codes(2), ("cg-1", 7, "cg-2", 3)
            )
        )
    assert "offers_caregiver_code (caregiver_id=? AND code=?)" in plan, plan
    assert "SCAN" not in plan, plan
    # A wave asks about all its caregivers at once: still one look-up per caregiver.
    assert "offers_caregiver_code (caregiver_id=? AND code=?)" in batch, batch
    assert "SCAN o" not in batch and "SCAN s" not in batch, batch


async def test_a_new_caregiver_starts_at_code_1_whatever_others_of_her_role_hold(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running() as store:
        await store.import_roster([caregiver(1)], [shift("shift-1"), shift("shift-2")], EPOCH)
        await fanout(store, "shift-1")
        await store.import_roster([caregiver(2)], [], EPOCH)
        await fanout(store, "shift-2")
        codes = {o.caregiver_id: o.code for o in await store.offers_for_shift("shift-2")}
    assert codes == {"cg-1": 2, "cg-2": 1}


async def test_starting_a_fanout_twice_returns_none_and_inserts_nothing(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running() as store:
        await store.import_roster([caregiver(1), caregiver(2)], [shift()], EPOCH)
        assert await fanout(store) == 2
        before = await store.counts(), await store.offers_for_shift("shift-1")
        assert await fanout(store) is None
        assert (await store.counts(), await store.offers_for_shift("shift-1")) == before
        assert before[0]["outbox"]["pending"] == 2


def on_roster(cg: str) -> CaregiverRow:
    return CaregiverRow(cg, cg, "RN", "+15550000000")


async def claim(backend: Backend, store: Any, shift_id: str, cg: str) -> machine.Transition:
    """`cg` accepts, as her shift's actor would decide it (offers sent count as reached)."""
    reached = tuple(
        machine.Reached(row[0], None)
        for row in await backend.read(
            store,
            "SELECT DISTINCT caregiver_id FROM outbox WHERE shift_id = ?"
            " AND purpose = 'offer' AND state IN ('sending', 'sent') ORDER BY caregiver_id",
            (shift_id,),
        )
    )

    def decide(state: machine.State, rules: machine.Rules, _: Any) -> machine.Transition:
        facts = machine.Claimant(on_roster(cg))
        return machine.answer(state, LATER, cg, Intent.ACCEPT, Channel.SMS, facts, rules, reached)

    return await store_transition(store, shift_id, decide, at=LATER)


async def decline(backend: Backend, store: Any, shift_id: str, cg: str) -> None:
    def decide(state: machine.State, rules: machine.Rules, _: Any) -> machine.Transition:
        facts = machine.Claimant(on_roster(cg))
        return machine.answer(state, EPOCH, cg, Intent.DECLINE, Channel.SMS, facts, rules)

    await store_transition(store, shift_id, decide)


async def test_a_write_from_a_stale_version_of_the_shift_is_refused_and_changes_nothing(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running() as store:
        await store.import_roster([caregiver(1), caregiver(2)], [shift()], EPOCH)
        await fanout(store)
        found = await store.shift_state("shift-1")
        assert found is not None
        row, offers = found
        stale = machine.State(row, offers, row.version - 1)
        rules = machine.Rules(Organizations(make_config(backend.tmp_path)).get(row.organization_id))
        facts = machine.Claimant(on_roster("cg-2"))
        taken = machine.answer(stale, LATER, "cg-2", Intent.ACCEPT, Channel.SMS, facts, rules)

        with pytest.raises(StaleState):
            await store.persist("shift-1", stale.version, taken, at=LATER)

        after = await store.shift("shift-1")
        assert after is not None and (after.state, after.version) == (row.state, row.version)
        assert (await outbox(backend, store, "shift-1")).get(("cg-2", "sms", "confirm")) is None


async def test_claim_withdraws_pending_offers_and_tells_only_contacted_caregivers(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running() as store:
        await store.import_roster([caregiver(n) for n in range(1, 6)], [shift()], EPOCH)
        await fanout(store)
        await set_outbox_state(backend, store, "shift-1", "cg-1", "sent")  # the winner
        await set_outbox_state(backend, store, "shift-1", "cg-2", "sent")  # contacted
        await set_outbox_state(backend, store, "shift-1", "cg-3", "sending")  # maybe contacted
        await set_outbox_state(
            backend, store, "shift-1", "cg-4", "sent"
        )  # contacted, then declined
        await decline(backend, store, "shift-1", "cg-4")
        # cg-5's offer is still pending: never contacted

        await claim(backend, store, "shift-1", "cg-1")

        assert await outbox(backend, store, "shift-1") == {
            ("cg-1", "sms", "offer"): "sent",
            ("cg-1", "sms", "confirm"): "pending",
            ("cg-2", "sms", "offer"): "sent",
            ("cg-2", "sms", "filled"): "pending",
            ("cg-3", "sms", "offer"): "sending",
            ("cg-3", "sms", "filled"): "pending",
            ("cg-4", "sms", "offer"): "sent",
            ("cg-4", "sms", "declined"): "pending",
            ("cg-5", "sms", "offer"): "cancelled",
        }


async def test_steps_written_together_commit_all_or_none(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running() as store:
        await store.import_roster([caregiver(1), caregiver(2)], [shift()], EPOCH)
        await fanout(store)
        found = await store.shift_state("shift-1")
        assert found is not None
        row, offers = found
        rules = machine.Rules(Organizations(make_config(backend.tmp_path)).get(row.organization_id))
        facts = machine.Claimant(on_roster("cg-2"))
        state = machine.State(row, offers, row.version)
        no = machine.answer(state, LATER, "cg-2", Intent.DECLINE, Channel.SMS, facts, rules)
        assert no.state is not None

        # The second step claims the version the first one moved away from.
        with pytest.raises(StaleState):
            await store.persist_steps(
                "shift-1", [(row.version, no, None), (row.version, no, None)], at=LATER
            )
        offer = await store.offer("shift-1", "cg-2")
        assert offer is not None and offer.declined_at is None  # the first step is undone too

        await store.persist_steps("shift-1", [(row.version, no, None)], at=LATER)
        offer = await store.offer("shift-1", "cg-2")
        after = await store.shift("shift-1")
        assert offer is not None and offer.declined_at == LATER
        assert after is not None and after.version == row.version + 1


# ---- the writer ---------------------------------------------------------------------------


Write = Callable[[Any], Any]


def insert_event(backend: Backend, n: int) -> Write:
    insert = backend.write_fn(
        "INSERT INTO events (shift_id, ts, kind) VALUES (?, '2025-07-01T14:00:00Z', 'test')",
        (f"s-{n}",),
    )

    def write(conn: Any) -> int:
        insert(conn)
        return n

    return write


async def test_concurrent_writes_are_grouped_into_few_commits(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    results: list[int] = []

    async def write(n: int) -> None:
        results.append(await store._write(insert_event(backend, n)))

    async with backend.running() as store:
        base = store.stats.commits
        async with trio.open_nursery() as writers:
            for n in range(200):
                writers.start_soon(write, n)
        commits = store.stats.commits - base
        assert sorted(results) == list(range(200))
        assert commits <= 10, commits
        counted = await backend.read(store, "SELECT count(*) FROM events WHERE kind = 'test'")
        assert counted[0][0] == 200


async def test_a_failing_write_does_not_roll_back_its_neighbours_in_the_batch(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    insert_bad = backend.write_fn(
        "INSERT INTO events (shift_id, ts, kind) VALUES ('bad', '2025-07-01T14:00:00Z', 'x')"
    )

    def failing(conn: Any) -> None:
        insert_bad(conn)
        raise ValueError("this write fails half-way")

    outcomes: dict[str, object] = {}

    async def attempt(name: str, fn: Write) -> None:
        try:
            outcomes[name] = await store._write(fn)
        except ValueError as exc:
            outcomes[name] = exc

    async with backend.running() as store:
        base = store.stats.commits
        async with trio.open_nursery() as writers:
            writers.start_soon(attempt, "before", insert_event(backend, 1))
            writers.start_soon(attempt, "failing", failing)
            writers.start_soon(attempt, "after", insert_event(backend, 2))
        assert store.stats.commits - base == 1  # the three shared one transaction
        assert outcomes["before"] == 1
        assert outcomes["after"] == 2
        assert isinstance(outcomes["failing"], ValueError)
        kept = await backend.read(store, "SELECT shift_id FROM events ORDER BY shift_id")
        assert [r[0] for r in kept] == ["s-1", "s-2"]  # and not the failing write's half


async def test_writes_queued_when_the_store_is_cancelled_are_still_committed(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    store = backend.new(batch_max=1)  # one write per commit: the rest wait in the queue
    results: list[int] = []
    # Nothing here waits on virtual time: the clock moves only after seconds of real
    # idleness, so a busy machine's slow worker thread is not a hang, and a hang still ends.
    autojump_clock.autojump_threshold = 5.0

    async def write(n: int) -> None:
        results.append(await store._write(cancelling(n)))

    with trio.fail_after(60):  # a write left in the queue would hang its writer forever
        async with trio.open_nursery() as writers, trio.open_nursery() as store_nursery:

            def cancelling(n: int) -> Write:
                def write(conn: Any) -> int:
                    # stop the store mid-stream
                    backend.in_trio(store_nursery.cancel_scope.cancel)
                    return insert_event(backend, n)(conn)

                return write

            await store_nursery.start(store.run)
            for n in range(10):
                writers.start_soon(write, n)

    assert store.stats.commits == 2  # the first write, then the nine drained together
    assert sorted(results) == list(range(10))
    assert backend.sql("SELECT count(*) FROM events WHERE kind = 'test'") == [(10,)]


async def test_a_write_after_the_store_stopped_fails_instead_of_waiting_forever(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    async with backend.running() as store:
        pass
    with pytest.raises(StoreError, match="not running"):
        await store.queue([], at=EPOCH)


async def test_a_wave_decided_before_a_phone_opted_out_is_refused_and_decided_again(
    backend: Backend, autojump_clock: trio.testing.MockClock
) -> None:
    """A STOP committed between a wave's facts and its write: the write is refused (nothing
    queued), and the wave decided afresh leaves that phone out."""
    async with backend.running() as store:
        await store.import_roster([caregiver(1), caregiver(2)], [shift()], EPOCH)
        found = await store.shift_state("shift-1")
        assert found is not None
        row, offers = found
        rules = machine.Rules(Organizations(make_config(backend.tmp_path)).get(row.organization_id))
        facts = await store.candidates(row.role_required, rules.window(row), row.id)
        decided = machine.start_fanout(machine.State(row, offers, row.version), EPOCH, facts, rules)
        assert {c.caregiver_id for c in decided.contacts} == {"cg-1", "cg-2"}

        await store.set_opted_out(caregiver(2).phone, keyword="stop", at=EPOCH, reply=None)

        with pytest.raises(StaleState):
            await store.persist("shift-1", row.version, decided, at=EPOCH)
        assert await store.offers_for_shift("shift-1") == []
        assert await fanout(store) == 1  # decided again: cg-1 only
