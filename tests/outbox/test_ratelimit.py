"""Rate limits on Trio's clock, and the sender waiting for a turn before it marks a row sending."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from shiftd.clock import Clock
from shiftd.models import Channel, Outcome, Purpose
from shiftd.notify.base import Outgoing, Throttled
from shiftd.outbox.ratelimit import RatePool, TokenBucket
from shiftd.outbox.sender import Sender
from shiftd.store.base import NewMessage
from shiftd.store.sqlite import SqliteStore
from shiftd.testing.engine import EPOCH, cancel_at_store, caregiver, phone, shift

# ---- the bucket and the pool ------------------------------------------------------------------


def test_a_bucket_refuses_a_rate_or_burst_that_is_not_positive() -> None:
    for rate, burst in [(0, 1), (-1, 1), (float("inf"), 1), (float("nan"), 1), (1, 0)]:
        with pytest.raises(ValueError):
            TokenBucket(rate, burst)
    with pytest.raises(ValueError):
        RatePool([], 1)
    with pytest.raises(ValueError):
        RatePool(["+1", "+1"], 1)


def test_a_bucket_starts_full_and_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate=2, burst=3)
    assert bucket.tokens(100.0) == 3
    for _ in range(3):
        assert bucket.ready_at() <= 100.0
        bucket.take(100.0)
    assert bucket.tokens(100.0) == 0
    assert bucket.ready_at() == 100.5
    assert bucket.tokens(100.5) == 1
    assert bucket.tokens(101.0) == 2
    bucket.give_back(100.0)
    assert bucket.tokens(100.0) == 1
    assert bucket.tokens(1000.0) == 3  # never more than the burst, however long the quiet


async def times_of(pool: RatePool, n: int) -> list[tuple[float, str]]:
    """Start n waiters in order; (time, key) of each turn, in the order they were served."""
    got: list[tuple[float, str]] = []

    async def one() -> None:
        key = await pool.acquire()
        got.append((trio.current_time(), key))

    start = trio.current_time()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(one)
            await trio.testing.wait_all_tasks_blocked()  # arrive in this order
    return [(round(t - start, 6), key) for t, key in got]


async def test_one_number_sends_at_its_rate(autojump_clock: trio.testing.MockClock) -> None:
    pool = RatePool(["+15550100001"], rate=2)
    assert [t for t, _ in await times_of(pool, 5)] == [0, 0.5, 1, 1.5, 2]


async def test_a_burst_goes_at_once_then_the_rate_applies(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pool = RatePool(["+15550100001"], rate=1, burst=3)
    assert [t for t, _ in await times_of(pool, 6)] == [0, 0, 0, 1, 2, 3]


async def test_a_pool_shares_the_load_and_each_number_keeps_its_rate(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pool = RatePool(["+15550100001", "+15550100002"], rate=1)
    turns = await times_of(pool, 10)
    assert [t for t, _ in turns] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    for key in pool.keys:
        mine = [t for t, k in turns if k == key]
        assert len(mine) == 5
        assert all(b - a >= 1 for a, b in itertools.pairwise(mine))


async def test_after_a_quiet_spell_the_least_recently_used_number_goes_first(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pool = RatePool(["+15550100001", "+15550100002"], rate=1)
    assert await pool.acquire() == "+15550100001"
    await trio.sleep(0.5)
    assert await pool.acquire() == "+15550100002"
    await trio.sleep(60)
    assert await pool.acquire() == "+15550100001"
    assert await pool.acquire() == "+15550100002"


async def test_waiters_are_served_in_arrival_order(autojump_clock: trio.testing.MockClock) -> None:
    pool = RatePool(["a"], rate=1)
    order: list[int] = []

    async def waiter(i: int) -> None:
        await pool.acquire()
        order.append(i)

    async with trio.open_nursery() as nursery:
        for i in range(8):
            nursery.start_soon(waiter, i)
            await trio.testing.wait_all_tasks_blocked()
    assert order == list(range(8))


async def test_a_turn_handed_back_goes_to_the_next_waiter_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    pool = RatePool(["a"], rate=1)
    start = trio.current_time()
    key = await pool.acquire()  # t=0; the next turn would be at t=1
    got: list[float] = []

    async def waiter() -> None:
        await pool.acquire()
        got.append(trio.current_time() - start)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.sleep(0.25)
        assert pool.waiting == 1
        pool.release(key)  # the first message was withdrawn: its turn is unused
    assert got == [0.25]


async def test_a_cancelled_waiter_spends_nothing(autojump_clock: trio.testing.MockClock) -> None:
    pool = RatePool(["a"], rate=1)
    start = trio.current_time()
    await pool.acquire()
    with trio.move_on_after(0.5):
        await pool.acquire()
    assert pool.waiting == 0
    await pool.acquire()
    assert trio.current_time() - start == 1  # not 2: the cancelled wait took no turn


# ---- the sender's hook ------------------------------------------------------------------------


@dataclass
class Paced:
    """A Throttled notifier over a RatePool that notes when each message went out."""

    pool: RatePool
    sent: list[tuple[float, str | None, int]] = field(default_factory=list)
    released: int = 0

    async def acquire(self, message: Outgoing) -> str | None:
        return await self.pool.acquire()

    def release(self, message: Outgoing) -> None:
        assert message.from_number is not None
        self.released += 1
        self.pool.release(message.from_number)

    async def send(self, message: Outgoing) -> str | None:
        assert message.from_number in self.pool.keys
        self.sent.append((trio.current_time(), message.from_number, message.outbox_id))
        return f"paced-{message.outbox_id}"

    async def aclose(self) -> None:
        return None


class SpyStore(SqliteStore):
    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.marked: dict[int, bool] = {}

    async def mark_sending(self, outbox_id: int, *, at: Any) -> bool:
        taken = await super().mark_sending(outbox_id, at=at)
        self.marked[outbox_id] = taken
        return taken


@asynccontextmanager
async def store_with_rows(path: Path, rows: dict[str, int]) -> AsyncIterator[SpyStore]:
    """A running store with caregivers cg-1…cg-20, shifts, and `n` offers queued per shift."""
    async with trio.open_nursery() as nursery:
        store: SpyStore = await nursery.start(SpyStore(path).run)
        await store.import_roster(
            [caregiver(k) for k in range(1, 21)], [shift(s) for s in ("shift-1", "shift-2")], EPOCH
        )
        k = 0
        for shift_id, n in rows.items():
            messages = []
            for _ in range(n):
                k += 1
                cg = f"cg-{k}"
                messages.append(
                    NewMessage(f"m-{k}", cg, Channel.SMS, Purpose.OFFER, f"offer {k}", shift_id)
                )
            await store.queue(messages, at=EPOCH)
        yield store
        nursery.cancel_scope.cancel()


def states(store: SqliteStore) -> list[str]:
    return [r["state"] for r in store._read("SELECT state FROM outbox ORDER BY id")]


def test_paced_is_a_throttled_notifier() -> None:
    assert isinstance(Paced(RatePool(["a"], 1)), Throttled)


async def test_a_row_withdrawn_while_waiting_for_a_turn_is_skipped_and_its_turn_handed_back(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    notifier = Paced(RatePool(["+15550100001"], rate=1))
    async with store_with_rows(tmp_path / "s.sqlite3", {"shift-1": 8}) as store:
        sender = Sender(store, notifier, Clock(EPOCH), concurrency=4)
        async with trio.open_nursery() as nursery:
            start = trio.current_time()
            await nursery.start(sender.run)
            await trio.sleep(2.5)  # three went out (t=0, 1, 2); four workers wait for turns
            await cancel_at_store(store, "shift-1")  # e.g. filled meanwhile
            await store.queue(
                [NewMessage("late", "cg-20", Channel.SMS, Purpose.CONFIRM, "yours", "shift-2")],
                at=EPOCH,
            )
            sender.wake()
            await trio.sleep(30)
            nursery.cancel_scope.cancel()
        # Which waiting worker gets a turn first is up to Trio's scheduler; the times are not.
        assert [round(t - start, 6) for t, _, _ in notifier.sent] == [0, 1, 2, 3]
        sent = [outbox_id for _, _, outbox_id in notifier.sent]
        assert sent[-1] == 9  # the confirmation went at t=3, not after four wasted turns
        by_id = dict(enumerate(states(store), start=1))
        assert {i for i, state in by_id.items() if state == "sent"} == set(sent)
        assert sorted(state for i, state in by_id.items() if i not in sent) == ["cancelled"] * 5
        # The rows that were in workers' hands were never marked sending: each found its row
        # withdrawn after its turn came, and handed the turn back.
        skipped = [i for i, taken in store.marked.items() if not taken]
        assert skipped and not set(skipped) & set(sent)
        assert notifier.released == len(skipped)


async def test_stopping_while_waiting_for_turns_leaves_the_rows_pending(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    notifier = Paced(RatePool(["+15550100001"], rate=1))
    async with store_with_rows(tmp_path / "s.sqlite3", {"shift-1": 10}) as store:
        sender = Sender(store, notifier, Clock(EPOCH), concurrency=4)
        async with trio.open_nursery() as nursery:
            start = trio.current_time()
            await nursery.start(sender.run)
            await trio.sleep(2.5)
            nursery.cancel_scope.cancel()
        assert trio.current_time() - start == 2.5  # nobody waited for a turn to stop
        assert states(store) == ["sent"] * 3 + ["pending"] * 7
        assert len(notifier.sent) == sender.sent == 3


async def test_a_claim_stops_the_offers_still_waiting_for_their_turn_at_once(
    start_engine: Any, autojump_clock: trio.testing.MockClock
) -> None:
    """The shift's actor delivers its offers in its own nursery: when the shift is claimed,
    the offers still waiting for a turn stop there (spending none), and the confirmation
    and "filled" texts take the next turns."""
    notifier = Paced(RatePool(["+15550100001"], rate=1))
    h = await start_engine(prov=notifier)
    await h.engine.import_roster([caregiver(n) for n in range(1, 11)], [shift()])
    start = trio.current_time()
    await h.engine.fanout("shift-1")
    await trio.sleep(2.5)  # offers went out at t=0, 1, 2; seven wait for turns
    store = h.engine.store
    [first] = store._read("SELECT caregiver_id FROM outbox WHERE id = ?", (notifier.sent[0][2],))

    claimed = await h.engine.inbound(phone(int(first["caregiver_id"][3:])), "YES")
    await trio.sleep(30)

    assert claimed.outcome is Outcome.CLAIMED
    purpose = {r["id"]: r["purpose"] for r in store._read("SELECT id, purpose FROM outbox")}
    went = [(round(t - start, 6), purpose[i]) for t, _, i in notifier.sent]
    assert went[:3] == [(0, "offer"), (1, "offer"), (2, "offer")]
    assert sorted(p for _, p in went[3:]) == ["confirm", "filled", "filled"]
    assert [t for t, _ in went[3:]] == [3, 4, 5]  # no turn spent on a withdrawn offer
    assert notifier.released == 0
    unsent = store._read("SELECT state FROM outbox WHERE purpose = 'offer' AND state != 'sent'")
    assert [r["state"] for r in unsent] == ["cancelled"] * 7
