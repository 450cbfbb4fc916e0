"""Shared pieces of the benchmarks: sizes, a real engine in a temporary directory, a provider
that records when it was called, and the load generator's launcher.

Nothing here asserts a time: the benchmarks measure and print.
"""

from __future__ import annotations

import contextlib
import cProfile
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

from shiftd import gcpolicy
from shiftd.config import Config
from shiftd.control.server import serve_control
from shiftd.engine import Engine
from shiftd.logs import configure_logging
from shiftd.notify.base import Outgoing
from shiftd.store.sqlite import SqliteStore

# ---- sizes --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Size:
    """How big each scenario runs. `full` is what `make bench` reports; `smoke` only proves
    that the code still runs (tests/test_bench_smoke.py)."""

    name: str
    # ceilings
    echo_messages: int  # closed-loop echo requests, for each of 1 and 50 connections
    raw_sqlite_seconds: float
    bare_actors: int
    # fanout
    fanout_caregivers: int
    fanout_latency: float  # seconds per provider call in the slow-provider run
    # fanout rate with few and with many offers open
    fanout_rate_fanouts: int
    fanout_rate_open: str  # comma-separated: few, many open offers of the role: "100,20000"
    # claim storm
    claim_caregivers: int
    storm_hold_seconds: float  # HTTP storm: from opening the connections to the requests
    # inbound throughput
    inbound_connections: int
    inbound_messages: int
    # open shifts
    open_shifts: int
    open_rate: float  # inbound messages/s during the timer measurement
    open_window: float  # seconds of inbound load
    open_escalating: int  # fanouts started in the window's first half: their timers are measured
    # recovery
    recovery_shifts: int
    # store
    store_seconds: float
    store_writers: int
    # HTTP inbound and its ceiling
    http_connections: str  # comma-separated connection counts, one run on each: "8,32"
    http_seconds: float  # of closed-loop load per run
    # the coordinator's page
    board_shifts: int = 1_000  # fanouts in progress on the board
    board_requests: int = 30  # loads of each page timed
    board_messages: int = 4_000  # declines per throughput run (without, then with pages)
    board_pages: int = 100  # live pages open during the second run
    board_hold_s: float = 60.0  # longest the live pages are held open
    # failover: kill -9 of a shift's owner in a two-instance cluster, for each lease TTL
    failover_ttls: tuple[int, ...] = (2, 5)
    failover_runs: int = 2
    # the cluster: declines through 1-3 instances, a claim storm spread over three
    cluster_messages: int = 4_000  # per run, over `inbound_connections` connections
    cluster_storm_caregivers: int = 500
    pgbench_seconds: int = 5  # of `pgbench -N`, the database's own update rate

    @property
    def fanout_rate_open_counts(self) -> tuple[int, int]:
        few, many = (int(n) for n in self.fanout_rate_open.split(","))
        return few, many

    @property
    def http_connection_counts(self) -> list[int]:
        return [int(n) for n in self.http_connections.split(",") if n.strip()]


FULL = Size(
    name="full",
    echo_messages=40_000,
    raw_sqlite_seconds=2.0,
    bare_actors=100_000,
    fanout_caregivers=10_000,
    fanout_latency=0.05,
    fanout_rate_fanouts=400,
    fanout_rate_open="100,20000",
    claim_caregivers=1_000,
    storm_hold_seconds=8.0,
    inbound_connections=50,
    inbound_messages=40_000,
    open_shifts=100_000,
    open_rate=1_000.0,
    open_window=30.0,
    open_escalating=1_000,
    recovery_shifts=100_000,
    store_seconds=3.0,
    store_writers=64,
    http_connections="8,32",
    http_seconds=8.0,
)

SMOKE = Size(
    name="smoke",
    echo_messages=100,
    raw_sqlite_seconds=0.02,
    bare_actors=300,
    fanout_caregivers=40,
    fanout_latency=0.002,
    fanout_rate_fanouts=10,
    fanout_rate_open="100,200",
    claim_caregivers=20,
    storm_hold_seconds=0.0,
    inbound_connections=4,
    inbound_messages=200,
    open_shifts=300,
    open_rate=200.0,
    open_window=0.4,
    open_escalating=20,
    recovery_shifts=300,
    store_seconds=0.05,
    store_writers=8,
    http_connections="2,4",
    http_seconds=0.05,
    board_shifts=30,
    board_requests=2,
    board_messages=100,
    board_pages=3,
    board_hold_s=20.0,
    failover_ttls=(1,),
    failover_runs=1,
    cluster_messages=100,
    cluster_storm_caregivers=20,
    pgbench_seconds=1,
)

SIZES = {s.name: s for s in (FULL, SMOKE)}


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    """A short temporary directory (Unix socket paths are limited to 107 bytes)."""
    with tempfile.TemporaryDirectory(prefix=f"sb-{prefix}-", dir="/tmp") as d:
        yield Path(d)


def quiet_logging(path: Path) -> None:
    """Log as the daemon does under journald (JSON lines at info), into a file."""
    stream = path.open("a", encoding="utf-8")  # closed at process exit
    configure_logging("info", "json", stream)


# ---- the measured window --------------------------------------------------------------------

_profiler: cProfile.Profile | None = None


@contextlib.contextmanager
def profiling(profiler: cProfile.Profile) -> Iterator[None]:
    """While in this block, every `measured()` window records into `profiler`."""
    global _profiler
    _profiler = profiler
    try:
        yield
    finally:
        _profiler = None


@contextlib.contextmanager
def measured(enabled: bool = True) -> Iterator[None]:
    """A scenario's measured window, the one its CPU figures are taken over: what
    `bench.bounds` profiles (the whole thread, every task). Does nothing unless profiling,
    or if not `enabled`."""
    profiler = _profiler if enabled else None
    if profiler is None:
        yield
        return
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()


# ---- the engine ---------------------------------------------------------------------------


def bench_config(state_dir: Path, **overrides: Any) -> Config:
    data: dict[str, Any] = {
        "state_dir": state_dir,
        "agency_name": "Bench Care",
        "timezone": "UTC",
        "notifier": {"kind": "console"},  # replaced by InstantProvider below
    }
    data.update(overrides)
    return Config.model_validate(data)


@dataclass
class InstantProvider:
    """Answers at once (or after `latency` seconds); counts calls and stamps the last one.

    `done` is set when `expect` messages have been handed over."""

    latency: float = 0.0
    expect: int = 0
    count: int = 0
    last_at: float = 0.0
    done: trio.Event = field(default_factory=trio.Event)
    by_purpose: dict[str, int] = field(default_factory=dict)

    async def send(self, message: Outgoing) -> str | None:
        if self.latency:
            await trio.sleep(self.latency)
        self.count += 1
        self.last_at = time.perf_counter()
        key = f"{message.channel.value}:{message.purpose.value}"
        self.by_purpose[key] = self.by_purpose.get(key, 0) + 1
        if self.expect and self.count >= self.expect:
            self.done.set()
        return f"b-{message.outbox_id}"

    async def aclose(self) -> None:
        return None


@contextlib.asynccontextmanager
async def running_engine(
    config: Config,
    provider: InstantProvider,
    *,
    store: SqliteStore | None = None,
    socket: bool = False,
) -> AsyncIterator[tuple[Engine, Path | None]]:
    """A real Engine (and the control socket server when `socket`), stopped in order after."""
    engine = Engine(config, notifier=provider, store=store)
    async with trio.open_nursery() as nursery:
        path: Path | None = None
        with gcpolicy.applied() as recovered:  # the collector as `shiftd run` sets it
            await nursery.start(engine.run)
            recovered()
            async with trio.open_nursery() as front:
                if socket:
                    path = await front.start(
                        lambda task_status: serve_control(
                            config.socket_path,
                            engine,
                            max_connections=4096,
                            task_status=task_status,
                        )
                    )
                yield engine, path
                front.cancel_scope.cancel()
        engine.stop()


async def create_schema(path: Path | str) -> None:
    """Create (migrate) an empty shiftd database by running the real store once: an SQLite
    file, or a PostgreSQL database given by its URL."""
    store: Any
    if isinstance(path, str):
        from shiftd.store.postgres import PostgresStore

        store = PostgresStore(path)
    else:
        store = SqliteStore(path)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        nursery.cancel_scope.cancel()


# ---- the load generator, run as a separate process -----------------------------------------


async def run_loadgen(spec: dict[str, Any], *, module: str = "bench.loadgen") -> dict[str, Any]:
    """Run `python -m bench.loadgen` (or `module`: `bench.httpgen`) with `spec` and return
    what it printed (JSON).

    The load generator is a separate process, as shiftctl and webhooks are: on this 2-core
    machine it gets the other core, and the server's figures are not charged for the
    client's work."""
    result = await trio.run_process(
        [sys.executable, "-m", module, json.dumps(spec)],
        capture_stdout=True,
        capture_stderr=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"load generator failed ({result.returncode}): {result.stderr.decode()[-2000:]}"
        )
    return json.loads(result.stdout)  # type: ignore[no-any-return]
