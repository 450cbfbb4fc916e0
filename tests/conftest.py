"""Shared fixtures: a real engine (SQLite in tmp_path) on Trio's autojump clock, with a fake
provider that records what each phone received (`shiftd.testing.engine`)."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.testing

from shiftd.clock import Clock
from shiftd.config import Config
from shiftd.engine import Engine
from shiftd.testing.engine import (
    EPOCH,
    FakeProvider,
    Harness,
    StartEngine,
    caregiver,
    make_config,
    shift,
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every async test runs on a MockClock: time in unit tests is virtual, never real.

    pytest-trio only uses a clock that is a direct argument of the test, so demand one.
    """
    for item in items:
        function = getattr(item, "function", None)
        if function is None or not inspect.iscoroutinefunction(function):
            continue
        clocks = {"autojump_clock", "mock_clock", "loopback_clock"}
        if not clocks & set(inspect.signature(function).parameters):
            raise pytest.UsageError(f"{item.nodeid}: async tests must take autojump_clock")


@pytest.fixture
def loopback_clock() -> trio.testing.MockClock:
    """For tests that talk over real loopback sockets: virtual time that jumps only after
    everything has been idle for 50 ms of real time, so I/O in flight never looks idle."""
    return trio.testing.MockClock(autojump_threshold=0.05)


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path)


@pytest.fixture
async def start_engine(
    autojump_clock: trio.testing.MockClock, provider: FakeProvider, config: Config
) -> AsyncIterator[StartEngine]:
    """`await start_engine()` → a Harness; engines stop when the test ends."""
    async with trio.open_nursery() as nursery:

        async def start(cfg: Config | None = None, prov: FakeProvider | None = None) -> Harness:
            engine = Engine(
                cfg or config,
                clock=Clock(EPOCH) if not hasattr(start, "clock") else start.clock,
                notifier=prov or provider,
            )
            start.clock = engine._clock  # type: ignore[attr-defined]  # one wall clock per test
            await nursery.start(engine.run)
            return Harness(engine, prov or provider, nursery)

        yield start
        nursery.cancel_scope.cancel()


@pytest.fixture
async def harness(start_engine: StartEngine) -> Harness:
    """An engine with RN caregivers 1-5, LPN 6-7 and one open RN shift `shift-1`."""
    h: Harness = await start_engine()
    roster = [caregiver(n) for n in range(1, 6)] + [caregiver(n, "LPN") for n in (6, 7)]
    await h.engine.import_roster(roster, [shift()])
    return h
