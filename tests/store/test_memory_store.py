"""A store in memory (the simulator's) makes nothing durable, so each write runs at once in
the task that makes it: no batch to gather, no hop to the writer task. It keeps the
promises every store makes: a failing write is rolled back alone, a write cancelled before
it runs writes nothing, and every write is a checkpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from shiftd.store.sqlite import SqliteStore

STOP = "INSERT INTO opt_outs (phone, opted_out_at, keyword) VALUES (?, 'now', 'STOP')"


@asynccontextmanager
async def in_memory() -> AsyncIterator[SqliteStore]:
    store = SqliteStore(Path(":memory:"), synchronous="off")
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        yield store
        nursery.cancel_scope.cancel()


def opted_out(store: SqliteStore) -> list[str]:
    return [row[0] for row in store._read("SELECT phone FROM opt_outs ORDER BY phone")]


def stop(phone: str) -> Any:
    return lambda conn: conn.execute(STOP, (phone,))


async def test_a_write_in_memory_is_done_when_it_returns(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with in_memory() as store:
        await store._write(stop("+15550000001"))

        assert opted_out(store) == ["+15550000001"]


async def test_a_failing_write_in_memory_is_rolled_back_alone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    def half_then_fail(conn: Any) -> None:
        conn.execute(STOP, ("+15550000002",))
        raise RuntimeError("the write gave up half way")

    async with in_memory() as store:
        await store._write(stop("+15550000001"))
        with pytest.raises(RuntimeError, match="half way"):
            await store._write(half_then_fail)
        await store._write(stop("+15550000003"))

        assert opted_out(store) == ["+15550000001", "+15550000003"]


async def test_a_write_in_memory_cancelled_before_it_runs_writes_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with in_memory() as store:
        with trio.CancelScope() as scope:
            scope.cancel()
            await store._write(stop("+15550000001"))

        assert scope.cancelled_caught
        assert opted_out(store) == []


async def test_a_write_in_memory_is_a_checkpoint(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with in_memory() as store:
        with trio.testing.assert_checkpoints():
            await store._write(stop("+15550000001"))
