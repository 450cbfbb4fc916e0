"""The sender: outbox rows to the provider, at most once each, retrying only what was not sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import trio
import trio.testing

from shiftd.clock import Clock
from shiftd.models import Channel, Purpose
from shiftd.notify.base import Notifier, Outgoing, PermanentSendError, TransientSendError
from shiftd.outbox.sender import Sender
from shiftd.store.base import NewMessage, StoreUnavailable
from shiftd.store.sqlite import SqliteStore
from shiftd.testing.engine import EPOCH, FakeProvider, cancel_at_store, caregiver, shift

# ---- fakes and helpers ----------------------------------------------------------------------


@dataclass
class Attempts:
    """A notifier wrapper that notes the virtual time of every attempt, then delegates."""

    inner: Notifier
    times: list[float] = field(default_factory=list)

    async def send(self, message: Outgoing) -> str | None:
        self.times.append(trio.current_time())
        return await self.inner.send(message)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Failing:
    """Raises a fresh `error()` on every send."""

    error: Any
    calls: int = 0

    async def send(self, message: Outgoing) -> str | None:
        self.calls += 1
        raise self.error()

    async def aclose(self) -> None:
        return None


@dataclass
class InFlight:
    """A slow provider that counts how many sends are in progress at once."""

    latency: float
    now: int = 0
    peak: int = 0
    done: int = 0

    async def send(self, message: Outgoing) -> str | None:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await trio.sleep(self.latency)
        finally:
            self.now -= 1
        self.done += 1
        return f"slow-{message.outbox_id}"

    async def aclose(self) -> None:
        return None


class SpyStore(SqliteStore):
    """Notes every `mark_sending` answer, and how often the sender polls for retries."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.marked: list[tuple[int, bool]] = []
        self.polls = 0

    async def mark_sending(self, outbox_id: int, *, at: Any) -> bool:
        taken = await super().mark_sending(outbox_id, at=at)
        self.marked.append((outbox_id, taken))
        return taken

    async def next_retry_at(self) -> Any:
        self.polls += 1
        assert self.polls < 1000, "the sender is polling in a busy loop"
        return await super().next_retry_at()


def message(n: int, shift_id: str | None = "shift-1") -> NewMessage:
    return NewMessage(f"m-{n}", f"cg-{n}", Channel.SMS, Purpose.OFFER, f"hello {n}", shift_id)


@asynccontextmanager
async def running_store(path: Path, store: SqliteStore | None = None) -> AsyncIterator[SqliteStore]:
    """A started store with caregivers cg-1…cg-9 and shifts shift-1, shift-2."""
    async with trio.open_nursery() as n:
        started: SqliteStore = await n.start((store or SqliteStore(path)).run)
        await started.import_roster(
            [caregiver(k) for k in range(1, 10)], [shift("shift-1"), shift("shift-2")], EPOCH
        )
        yield started
        n.cancel_scope.cancel()


@asynccontextmanager
async def running_sender(
    store: SqliteStore, notifier: Notifier, **options: Any
) -> AsyncIterator[Sender]:
    async with trio.open_nursery() as n:
        sender: Sender = await n.start(Sender(store, notifier, Clock(EPOCH), **options).run)
        yield sender
        n.cancel_scope.cancel()


def rows(store: SqliteStore) -> list[dict[str, Any]]:
    return [
        dict(r)
        for r in store._read(
            "SELECT id, caregiver_id, state, attempts, provider_id, error, sent_at FROM outbox"
            " ORDER BY id"
        )
    ]


async def queue(store: SqliteStore, *numbers: int, shift_id: str | None = "shift-1") -> None:
    await store.queue([message(n, shift_id) for n in numbers], at=EPOCH)


async def settle() -> None:
    await trio.testing.wait_all_tasks_blocked()


# ---- delivery -------------------------------------------------------------------------------


async def test_pending_rows_are_sent_once_and_marked_sent_with_the_provider_id(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    provider = FakeProvider()
    async with running_store(tmp_path / "s.sqlite3") as store:
        await queue(store, 1, 2, 3)
        async with running_sender(store, provider) as sender:
            await settle()
            await trio.sleep(600)  # nothing is sent again later
        assert sorted(m.caregiver_id for m in provider.sent) == ["cg-1", "cg-2", "cg-3"]
        assert sorted((r["state"], r["attempts"], r["provider_id"]) for r in rows(store)) == [
            ("sent", 1, "fake-1"),
            ("sent", 1, "fake-2"),
            ("sent", 1, "fake-3"),
        ]
        assert sender.sent == 3


class FullDiskStore(SqliteStore):
    """Refuses every write (StoreUnavailable) while `full`, as SQLite on a full disk."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.full = False

    async def _write(self, fn: Any) -> Any:
        if self.full:
            raise StoreUnavailable("the store cannot write now (the disk is full)")
        return await super()._write(fn)


async def test_a_full_disk_holds_rows_back_and_they_go_once_when_space_returns(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    provider = FakeProvider()
    async with running_store(
        tmp_path / "s.sqlite3", FullDiskStore(tmp_path / "s.sqlite3")
    ) as store:
        assert isinstance(store, FullDiskStore)
        async with running_sender(store, provider) as sender:
            await queue(store, 1, 2)  # committed, then the disk fills up
            store.full = True
            sender.wake()
            await trio.sleep(30)
            assert provider.sent == []
            store.full = False
            await trio.sleep(5)
        assert sorted(m.caregiver_id for m in provider.sent) == ["cg-1", "cg-2"]
        assert sorted(r["state"] for r in rows(store)) == ["sent", "sent"]


async def test_a_send_the_disk_cannot_record_is_recorded_once_space_returns_never_resent(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    provider = FakeProvider(latency=1.0)
    async with running_store(
        tmp_path / "s.sqlite3", FullDiskStore(tmp_path / "s.sqlite3")
    ) as store:
        assert isinstance(store, FullDiskStore)
        await queue(store, 1)
        async with running_sender(store, provider):
            await trio.sleep(0.5)  # `sending`, in the provider's hands
            store.full = True
            await trio.sleep(3)
            store.full = False
            await trio.sleep(60)
        assert [m.caregiver_id for m in provider.sent] == ["cg-1"]
        assert [(r["state"], r["provider_id"]) for r in rows(store)] == [("sent", "fake-1")]


async def test_rows_queued_while_running_are_sent_after_a_wake(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    provider = FakeProvider()
    async with (
        running_store(tmp_path / "s.sqlite3") as store,
        running_sender(store, provider) as sender,
    ):
        await settle()
        await queue(store, 4)
        sender.wake()
        await settle()
        assert [m.body for m in provider.sent] == ["hello 4"]


async def test_rows_left_sending_by_a_crash_are_failed_and_never_sent_again(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "s.sqlite3"
    async with running_store(path) as store:
        await queue(store, 1, 2)
        first, second = (r["id"] for r in rows(store))
        # The sender marked both `sending` and then the process died before it learnt more.
        assert await store.mark_sending(first, at=EPOCH)
        assert await store.mark_sending(second, at=EPOCH)

    provider = FakeProvider()
    async with running_store(path) as store:  # restart
        await queue(store, 3)
        async with running_sender(store, provider):
            await settle()
        assert [m.caregiver_id for m in provider.sent] == ["cg-3"]
        crashed = [r for r in rows(store) if r["caregiver_id"] != "cg-3"]
        assert [(r["state"], r["attempts"]) for r in crashed] == [("failed", 1), ("failed", 1)]
        assert all("at-most-once" in r["error"] for r in crashed)


# ---- failures -------------------------------------------------------------------------------


async def test_a_transient_failure_is_retried_with_backoff_and_delivered_once(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    fake = FakeProvider(fail_next=2)
    provider = Attempts(fake)
    async with running_store(tmp_path / "s.sqlite3") as store:
        await queue(store, 1)
        async with running_sender(store, provider, backoff_initial=timedelta(seconds=10)):
            await trio.sleep(600)
        assert len(fake.sent) == 1
        [row] = rows(store)
        assert (row["state"], row["attempts"], row["provider_id"]) == ("sent", 3, "fake-1")
    first, second, third = provider.times
    # Equal jitter: the n-th retry waits between half and all of 10 s * 2**(n-1).
    assert 5 <= second - first <= 10
    assert 10 <= third - second <= 20


async def test_a_message_that_always_fails_transiently_is_given_up_after_max_attempts(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    provider = Attempts(FakeProvider(fail_next=1_000))
    async with running_store(tmp_path / "s.sqlite3") as store:
        await queue(store, 1)
        async with running_sender(store, provider, max_attempts=4) as sender:
            await trio.sleep(3600)
        [row] = rows(store)
        assert (row["state"], row["attempts"]) == ("failed", 4)
        assert "gave up after 4 attempts" in row["error"]
        assert len(provider.times) == 4
        assert sender.failed == 1


async def test_a_permanent_failure_is_marked_failed_and_not_retried(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    provider = Failing(lambda: PermanentSendError("invalid number"))
    async with running_store(tmp_path / "s.sqlite3") as store:
        await queue(store, 1)
        async with running_sender(store, provider):
            await trio.sleep(3600)
        [row] = rows(store)
        assert (row["state"], row["attempts"], provider.calls) == ("failed", 1, 1)
        assert "invalid number" in row["error"]


async def test_an_unexpected_notifier_error_is_marked_failed_and_not_retried(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    provider = Failing(lambda: ConnectionResetError("reset after the request was written"))
    async with running_store(tmp_path / "s.sqlite3") as store:
        await queue(store, 1)
        async with running_sender(store, provider) as sender:
            await trio.sleep(3600)
        [row] = rows(store)
        assert (row["state"], row["attempts"], provider.calls) == ("failed", 1, 1)
        assert "ConnectionResetError" in row["error"]
        assert sender.failed == 1


async def test_a_provider_slower_than_the_timeout_is_failed_as_may_have_been_sent(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    provider = Attempts(FakeProvider(latency=60))
    async with running_store(tmp_path / "s.sqlite3") as store:
        await queue(store, 1)
        async with running_sender(store, provider, timeout=timedelta(seconds=10)):
            await trio.sleep(3600)
        [row] = rows(store)
        assert (row["state"], row["attempts"]) == ("failed", 1)
        assert "may have been sent" in row["error"]
        assert len(provider.times) == 1


async def test_retry_after_from_the_provider_is_honoured(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    @dataclass
    class Throttled:
        times: list[float] = field(default_factory=list)

        async def send(self, message: Outgoing) -> str | None:
            self.times.append(trio.current_time())
            if len(self.times) == 1:
                raise TransientSendError("429 Too Many Requests", retry_after=30)
            return "ok"

        async def aclose(self) -> None:
            return None

    provider = Throttled()
    async with running_store(tmp_path / "s.sqlite3") as store:
        await queue(store, 1)
        async with running_sender(store, provider, backoff_initial=timedelta(seconds=1)):
            await trio.sleep(600)
        [row] = rows(store)
        assert (row["state"], row["attempts"]) == ("sent", 2)
    first, second = provider.times
    assert second - first >= 30


# ---- withdrawal and concurrency ---------------------------------------------------------------


async def test_a_row_withdrawn_before_a_worker_takes_it_is_skipped(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "s.sqlite3"
    provider = FakeProvider(latency=5)
    async with running_store(path, SpyStore(path)) as store:
        assert isinstance(store, SpyStore)
        await queue(store, 1, shift_id="shift-2")
        await queue(store, 2, shift_id="shift-1")
        first, second = (r["id"] for r in rows(store))
        async with running_sender(store, provider, concurrency=1):
            await trio.sleep(1)  # the only worker is busy with the first; the second waits
            await cancel_at_store(store, "shift-1")
            await trio.sleep(60)
        assert [m.caregiver_id for m in provider.sent] == ["cg-1"]
        assert store.marked == [(first, True), (second, False)]  # taken, then skipped
        assert [(r["state"], r["attempts"]) for r in rows(store)] == [
            ("sent", 1),
            ("cancelled", 0),
        ]


async def test_no_more_than_concurrency_sends_are_in_flight(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    provider = InFlight(latency=2)
    async with running_store(tmp_path / "s.sqlite3") as store:
        await queue(store, *range(1, 10))
        async with running_sender(store, provider, concurrency=4):
            await trio.sleep(60)
        assert provider.done == 9
        assert provider.peak == 4


async def test_a_due_retry_waiting_for_a_busy_worker_does_not_spin_the_sender(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    # The first send fails fast and is due again in ~1 s while the only worker spends 8 s on
    # the second. Until then the sender must sleep, not poll in a loop that never yields
    # to the clock (under autojump the test would hang; in production it burns a core).
    path = tmp_path / "s.sqlite3"
    provider = FakeProvider(fail_next=1)
    slow = InFlight(latency=8)

    @dataclass
    class FailFirstThenSlow:
        async def send(self, message: Outgoing) -> str | None:
            if provider.fail_next:
                return await provider.send(message)
            return await slow.send(message)

        async def aclose(self) -> None:
            return None

    async with running_store(path, SpyStore(path)) as store:
        assert isinstance(store, SpyStore)
        await queue(store, 1, 2)
        async with running_sender(store, FailFirstThenSlow(), concurrency=1):
            await trio.sleep(120)
        assert [r["state"] for r in rows(store)] == ["sent", "sent"]
        assert store.polls < 50


async def test_stopping_finishes_sends_in_flight_and_leaves_the_rest_pending(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    provider = FakeProvider(latency=5)
    async with running_store(tmp_path / "s.sqlite3") as store:
        await queue(store, 1, 2, 3)
        async with running_sender(store, provider, concurrency=1) as sender:
            await trio.sleep(1)  # the first is with the provider, the others wait
        assert trio.current_time() >= 5  # stopping waited for the send in flight
        assert [m.caregiver_id for m in provider.sent] == ["cg-1"]
        assert [(r["state"], r["attempts"]) for r in rows(store)] == [
            ("sent", 1),  # not left `sending`, which would mean "failed" after a restart
            ("pending", 0),
            ("pending", 0),
        ]
        assert sender.sent == 1


# ---- an actor's batch (send_now) ------------------------------------------------------------


async def _queued(store: SqliteStore, *numbers: int) -> list[Any]:
    await queue(store, *numbers)
    return await store.due_outbox(after_id=0, now=EPOCH, limit=100)


async def test_a_batch_has_no_more_than_concurrency_calls_in_flight_and_sends_every_row(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    provider = InFlight(latency=2)
    async with running_store(tmp_path / "s.sqlite3") as store:
        sender = Sender(store, provider, Clock(EPOCH), concurrency=4)
        await sender.send_now(await _queued(store, *range(1, 10)))
        assert provider.peak == 4
        assert [r["state"] for r in rows(store)] == ["sent"] * 9
        assert sender.sent == 9


async def test_a_call_of_a_batch_cut_by_the_timeout_is_failed_and_the_rest_still_go(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    hangs = FakeProvider(latency=60)
    answers = FakeProvider()

    @dataclass
    class FirstHangs:
        async def send(self, message: Outgoing) -> str | None:
            inner = hangs if message.caregiver_id == "cg-1" else answers
            return await inner.send(message)

        async def aclose(self) -> None:
            return None

    async with running_store(tmp_path / "s.sqlite3") as store:
        # One lane takes the rows one after another: the rows after the cut one go too.
        sender = Sender(
            store, FirstHangs(), Clock(EPOCH), concurrency=1, timeout=timedelta(seconds=10)
        )
        started = trio.current_time()
        await sender.send_now(await _queued(store, 1, 2, 3))
        assert trio.current_time() - started == 10
        first, *others = rows(store)
        assert first["state"] == "failed"
        assert first["error"] == "provider timed out; may have been sent, not retried"
        assert [r["state"] for r in others] == ["sent", "sent"]
        assert [m.caregiver_id for m in answers.sent] == ["cg-2", "cg-3"]
