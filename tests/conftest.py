"""Shared fixtures: a real engine (SQLite in tmp_path) on Trio's autojump clock, with a fake
provider that records what each phone received (`shiftd.testing.engine`)."""

from __future__ import annotations

import inspect
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from store_backends import Backend, create_database, drop_database, postgres_unreachable

from shiftd.clock import Clock
from shiftd.config import Config
from shiftd.engine import Engine
from shiftd.logs import configure_logging
from shiftd.testing.engine import (
    EPOCH,
    FakeProvider,
    Harness,
    StartEngine,
    caregiver,
    make_config,
    shift,
)

# The daemons, shiftctl commands and benchmarks the suite starts as subprocesses each import
# shiftd from source; where PYTHONDONTWRITEBYTECODE is set, every one of them compiled every
# module again (about 0.4 s of CPU per process). Their caches go to __pycache__ (ignored).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)


@pytest.fixture(autouse=True)
def _logs_as_the_daemon_writes_them() -> None:
    """Each test logs as `shiftd run` does: JSON lines, redacted, tracebacks without locals.

    Unconfigured, structlog renders an exception with rich and every local variable,
    which takes seconds for a test that logs one failing request (and shows unredacted
    values)."""
    configure_logging("info", "json")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every async test runs on a MockClock: time in unit tests is virtual, never real.

    pytest-trio only uses a clock that is a direct argument of the test, so demand one.

    Where PostgreSQL does not answer, its store tests are left out, and the summary says
    so in one line (`pytest_terminal_summary`).

    The tests marked `slow` run first (each module's tests staying together): the workers
    of a parallel run take tests in this order, so none of them starts a long one near the
    end while the others have nothing left to do.
    """
    for item in items:
        function = getattr(item, "function", None)
        if function is None or not inspect.iscoroutinefunction(function):
            continue
        clocks = {"autojump_clock", "mock_clock", "loopback_clock"}
        if not clocks & set(inspect.signature(function).parameters):
            raise pytest.UsageError(f"{item.nodeid}: async tests must take autojump_clock")
    on_postgres = [item for item in items if _backend_of(item) == "postgres"]
    reason = postgres_unreachable() if on_postgres else None
    if reason is not None:
        config.hook.pytest_deselected(items=on_postgres)
        items[:] = [item for item in items if _backend_of(item) != "postgres"]
        _LEFT_OUT.append(f"SKIPPED {len(on_postgres)} tests: {reason}")
    if hasattr(config, "workeroutput"):  # a worker of a parallel run (pytest-xdist)
        config.workeroutput["left_out"] = _LEFT_OUT
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


_LEFT_OUT: list[str] = []


def _backend_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("backend") if callspec is not None else None


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """In a parallel run the workers collect, and the controller prints the summary: each
    worker hands over its lines when it ends (`workeroutput`), the same lines, kept once."""
    for line in getattr(node, "workeroutput", {}).get("left_out", []):
        if line not in _LEFT_OUT:
            _LEFT_OUT.append(line)


#: Test modules whose tests share one costly module-scoped fixture (a daemon and a browser,
#: the later tests reading what the first did; a staged `make install`, which two workers
#: would build in the same build/ directory at once): a parallel run gives each, whole, to one
#: worker. Every other test is scheduled on its own.
ONE_WORKER = frozenset({"tests/process/test_board_browser.py", "tests/process/test_install.py"})


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`pytest -n N` (pytest-xdist's default `--dist load`): a worker takes the next test (or
    `ONE_WORKER` module) in collection order whenever it has fewer than three queued, so the
    slow tests sorted first start first, each on the first free worker. Another `--dist`
    keeps its own scheduler."""
    if config.getvalue("dist") != "load":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class TestsAndWholeModules(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in ONE_WORKER else nodeid

    config.option.loadscopereorder = False  # collection order, not the biggest module first
    return TestsAndWholeModules(config, log)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in _LEFT_OUT:
        terminalreporter.write_line(line, yellow=True)


PG_AUTOJUMP = 0.25


@pytest.fixture(params=["sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> Iterator[Backend]:
    """Each store backend in turn, on a database of the test's own (see store_backends):
    on PostgreSQL already at the schema version, or empty under `@pytest.mark.empty_database`.

    On PostgreSQL the test's autojump clock jumps only after `PG_AUTOJUMP` s of real
    idleness: a task waiting for the server on a worker thread looks idle to Trio, and the
    clock must not leap to a deadline while a query runs."""
    if request.param == "sqlite":
        yield Backend("sqlite", tmp_path)
        return
    reason = postgres_unreachable()
    if reason is not None:
        pytest.skip(reason)
    autojump_clock.autojump_threshold = PG_AUTOJUMP
    url = create_database(migrated=request.node.get_closest_marker("empty_database") is None)
    try:
        yield Backend("postgres", tmp_path, url)
    finally:
        drop_database(url)


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
