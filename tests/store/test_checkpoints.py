"""Every `async` method of the store is a checkpoint, on every backend: a caller may be
cancelled there, and other tasks may run, even when the answer comes from memory (SQLite
keeps the roster and the opted-out phones). Nothing may rely on a read not switching tasks
(`tests/inbound/test_replies.py` has the replay that once did)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
import trio
import trio.testing
from store_backends import Backend

from shiftd.testing.engine import EPOCH

READS: dict[str, Callable[[Any], Awaitable[object]]] = {
    "is_opted_out": lambda store: store.is_opted_out("+15550000001"),
    "candidates": lambda store: store.candidates(
        "RN", (EPOCH, EPOCH + timedelta(hours=8)), "shift-1"
    ),
    "inbound_seen": lambda store: store.inbound_seen("SM-1"),
    "caregiver_by_phone": lambda store: store.caregiver_by_phone("+15550000001"),
    "answering": lambda store: store.answering("+15550000001"),
    "shift": lambda store: store.shift("shift-1"),
    "offers_state": lambda store: store.offers_state("shift-1"),
}


@pytest.mark.parametrize("read", sorted(READS))
async def test_a_read_is_a_cancel_point(
    backend: Backend, autojump_clock: trio.testing.MockClock, read: str
) -> None:
    async with backend.running() as store:
        await READS[read](store)  # what SQLite keeps in memory is kept from here on
        with trio.CancelScope() as scope:
            scope.cancel()
            await READS[read](store)
        assert scope.cancelled_caught


@pytest.mark.parametrize("read", sorted(READS))
async def test_a_read_is_a_schedule_point(
    backend: Backend, autojump_clock: trio.testing.MockClock, read: str
) -> None:
    async with backend.running() as store:
        await READS[read](store)
        with trio.testing.assert_checkpoints():  # a cancel point and a schedule point
            await READS[read](store)
