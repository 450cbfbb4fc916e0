"""The shiftd scenarios: the real Engine, SqliteStore in a temporary directory, the control
socket server where a socket is involved, on the real clock.

Each function returns what it measured as a plain dict; `bench.report` turns the dicts into
the figures table (with the ceilings of `bench.ceilings`).
"""

from __future__ import annotations

import gc
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trio
import trio.testing

from shiftd import gcpolicy
from shiftd.engine import Engine
from shiftd.models import Caregiver, Channel, Outcome, Shift, ShiftState
from shiftd.shifts.machine import FanoutResult
from shiftd.store.base import InboundLog, InboundRecord
from shiftd.store.sqlite import SqliteStore

from . import postgres
from .common import (
    InstantProvider,
    Size,
    bench_config,
    create_schema,
    measured,
    run_loadgen,
    running_engine,
    workdir,
)
from .seed import seed
from .stats import GcWatch, LongestStep, latency_ms, percentile, phone_of, raise_fd_limit, rss_bytes

# Generous guards so a broken build ends instead of hanging; never a measured bound.
_GUARD = 600.0


class TimedStore(SqliteStore):
    """The real store, plus two measuring hooks: how long each commit takes, and how late
    each escalation starts against the instant stored for it."""

    def __init__(self, path: Path, **kwargs: Any) -> None:
        super().__init__(path, **kwargs)
        self.commit_seconds: list[float] = []
        self.batches: list[int] = []
        self.lateness: list[float] = []
        self.escalations_expected = 0
        self.escalations_done = trio.Event()
        self.offer_loads = 0  # an actor (re)loading its shift's offers

    async def offers_state(self, shift_id: str, caregiver_id: str | None = None) -> Any:
        self.offer_loads += 1
        return await super().offers_state(shift_id, caregiver_id)

    def _commit(self, batch: list[Any]) -> None:
        started = time.perf_counter()
        super()._commit(batch)
        self.commit_seconds.append(time.perf_counter() - started)
        self.batches.append(len(batch))

    async def persist(self, shift_id: str, version: int, transition: Any, **kwargs: Any) -> Any:
        # Wave 0 goes out when the fanout starts; a later wave is an escalation timer firing,
        # late by how far its write is past the instant stored for it.
        escalating = any(
            r.kind in ("wave", "escalated") and (r.detail or {}).get("step", 0) > 0
            for r in transition.records
        )
        row = await self.shift(shift_id) if escalating else None
        if row is not None and row.escalate_at is not None:
            self.lateness.append((kwargs["at"] - row.escalate_at).total_seconds())
            if len(self.lateness) >= self.escalations_expected:
                self.escalations_done.set()
        return await super().persist(shift_id, version, transition, **kwargs)


def _caregivers(n: int, role: str = "RN", first: int = 0) -> list[Caregiver]:
    return [
        Caregiver(id=f"cg-{i:07d}", name=f"Carer {i}", role=role, phone=phone_of(i))
        for i in range(first, first + n)
    ]


def _shift(shift_id: str, role: str = "RN", organization_id: str = "default") -> Shift:
    start = datetime.now(UTC) + timedelta(days=1)
    return Shift(
        id=shift_id,
        organization_id=organization_id,
        role_required=role,
        start_time=start,
        end_time=start + timedelta(hours=8),
    )


# ---- fanout --------------------------------------------------------------------------------


async def _one_fanout(n: int, latency: float, *, profiled: bool = False) -> dict[str, Any]:
    with workdir("fanout") as d:
        config = bench_config(d / "state")
        provider = InstantProvider(latency=latency, expect=n)
        async with running_engine(config, provider) as (engine, _):
            await engine.import_roster(_caregivers(n), [_shift("sh-fanout")])
            with trio.move_on_after(_GUARD), measured(profiled):
                cpu = time.process_time()
                started = time.perf_counter()
                result: FanoutResult = await engine.fanout("sh-fanout")
                answered = time.perf_counter() - started
                await provider.done.wait()
                cpu = time.process_time() - cpu
            stats = engine.store.stats  # type: ignore[attr-defined]
            return {
                "caregivers": n,
                "provider_latency_s": latency,
                "concurrency": config.sender.concurrency,
                "status": result.status.value,
                "offered": result.offered,
                "handed_to_provider": provider.count,
                "command_answered_s": round(answered, 4),
                "seconds": round(provider.last_at - started, 4),
                "messages_per_s": round(provider.count / (provider.last_at - started), 1),
                # The whole process's CPU (SQLite runs inline) from the command to the last
                # text handed over: other processes disturb it much less than the wall time.
                "cpu_s": round(cpu, 4),
                "cpu_us_per_text": round(cpu / max(1, provider.count) * 1e6, 1),
                "commits": stats.commits,
                "writes": stats.writes,
            }


async def fanout(size: Size) -> dict[str, Any]:
    """One shift, `fanout_caregivers` eligible caregivers: from the fanout command to the
    last message handed to the provider, with an instant and with a slow provider."""
    return {
        "instant": await _one_fanout(size.fanout_caregivers, 0.0, profiled=True),
        "slow": await _one_fanout(size.fanout_caregivers, size.fanout_latency),
    }


# ---- fanout rate against open offers ------------------------------------------------------------

_GROUP = 5  # caregivers each measured fanout reaches
_GROUPS = 50
_BACKGROUND_CAREGIVERS = 400
_BACKGROUND_PER_SHIFT = 50


def _rate_config(state_dir: Path) -> Any:
    """Organizations `org-g<k>`, each offering its shifts by text to caregivers tagged `g<k>`
    only (five of them): many fanouts of one role, each with an audience of five."""
    tags = [f"g{k:02d}" for k in range(_GROUPS)]
    return bench_config(
        state_dir,
        caregiver_tags=tags,
        organizations={
            f"org-{tag}": {"policy": [{"at": "0s", "channel": "sms", "tags": [tag]}]}
            for tag in tags
        },
    )


async def _fanout_rate(open_offers: int, fanouts: int, concurrency: int) -> dict[str, Any]:
    """`fanouts` fanouts of five caregivers each, `concurrency` at a time, in a store where
    `open_offers` offers of the same role are already open (on other shifts, held by 400
    other caregivers of the role)."""
    with workdir("rate") as d:
        (d / "state").mkdir()
        config = _rate_config(d / "state")
        db = Path(config.state_dir) / "shiftd.sqlite3"
        seeded = await seed(
            db,
            shifts=max(1, open_offers // _BACKGROUND_PER_SHIFT),
            offers_per_shift=min(open_offers, _BACKGROUND_PER_SHIFT),
            stride=1,
            caregivers=_BACKGROUND_CAREGIVERS,
        )
        provider = InstantProvider(expect=fanouts * _GROUP)
        async with running_engine(config, provider) as (engine, _):
            audience = [
                Caregiver(
                    id=f"cg-a{i:05d}",
                    name=f"Carer a{i}",
                    role="RN",
                    phone=phone_of(_BACKGROUND_CAREGIVERS + i),
                    tags=(f"g{i // _GROUP:02d}",),
                )
                for i in range(_GROUPS * _GROUP)
            ]
            shifts = [
                _shift(f"sh-r{i:05d}", organization_id=f"org-g{i % _GROUPS:02d}")
                for i in range(fanouts)
            ]
            await engine.import_roster(audience, shifts)
            todo = iter(shifts)
            offered: list[int] = []

            async def worker() -> None:
                for item in todo:
                    offered.append((await engine.fanout(item.id)).offered)

            with measured():
                cpu = time.process_time()
                started = time.perf_counter()
                async with trio.open_nursery() as nursery:
                    for _ in range(concurrency):
                        nursery.start_soon(worker)
                elapsed = time.perf_counter() - started
                with trio.move_on_after(_GUARD):
                    await provider.done.wait()
                cpu = time.process_time() - cpu  # to the last text handed over
            return {
                "open_offers": seeded.offers,
                "role_caregivers": seeded.caregivers + len(audience),
                "fanouts": fanouts,
                "concurrency": concurrency,
                "offered": sum(offered),
                "seconds": round(elapsed, 4),
                "fanouts_per_s": round(fanouts / elapsed, 1),
                "cpu_us_per_fanout": round(cpu / fanouts * 1e6, 1),
            }


async def fanout_rate(size: Size) -> dict[str, Any]:
    """The fanout rate (fanouts answered per second, five caregivers each, 8 at a time) with
    few and with many offers of the same role open: a fanout's cost must depend on its own
    audience, so the two rates should match."""
    few, many = size.fanout_rate_open_counts
    return {
        "few": await _fanout_rate(few, size.fanout_rate_fanouts, 8),
        "many": await _fanout_rate(many, size.fanout_rate_fanouts, 8),
    }


# ---- claim storm ---------------------------------------------------------------------------


async def claim_storm(size: Size) -> dict[str, Any]:
    """`claim_caregivers` caregivers, each on its own control connection, answer YES to the
    same shift at the same instant."""
    raise_fd_limit()
    n = size.claim_caregivers
    with workdir("claim") as d:
        config = bench_config(d / "state")
        provider = InstantProvider(expect=n)
        store = TimedStore(Path(config.state_dir) / "shiftd.sqlite3")
        async with running_engine(config, provider, store=store, socket=True) as (engine, path):
            await engine.import_roster(_caregivers(n), [_shift("sh-claim")])
            await engine.fanout("sh-claim")
            with trio.move_on_after(_GUARD):
                await provider.done.wait()  # every offer is out before anyone answers
            cpu_before = time.process_time()
            loads_before, sent_before = store.offer_loads, provider.count
            with measured():
                storm = await run_loadgen(
                    {
                        "socket": str(path),
                        "mode": "storm",
                        "connections": n,
                        "requests": {"kind": "inbound", "body": "YES", "first": 0, "count": n},
                    }
                )
            cpu = time.process_time() - cpu_before  # includes the warm-up pings
            row = await engine.shift("sh-claim")
            winners = storm["winners"]
            stored_winner = row.claimed_by
            return {
                "caregivers": n,
                "storm": storm,
                "server_cpu_ms": round(cpu * 1e3, 1),
                # A closed shift's actor retires; later answers spawn a fresh one that loads
                # every offer again.
                "actor_loads_during_storm": store.offer_loads - loads_before,
                "texts_sent_during_storm": provider.count - sent_before,
                "winners": len(winners),
                "winner": f"cg-{winners[0]:07d}" if winners else None,
                "stored_state": row.state.value,
                "stored_winner": stored_winner,
                "exactly_one_winner": (
                    len(winners) == 1
                    and row.state is ShiftState.FILLED
                    and stored_winner == f"cg-{winners[0]:07d}"
                    and storm["outcomes"].get(Outcome.CLAIMED.value) == 1
                    and storm["outcomes"].get(Outcome.ALREADY_FILLED.value) == n - 1
                ),
            }


# ---- inbound throughput ---------------------------------------------------------------------


async def inbound(size: Size) -> dict[str, Any]:
    """Declines ("NO") over the control socket, each from a caregiver with one open offer:
    the actor records the decline and queues a reply, the inbound message is logged, all
    committed before the answer; the sender then sends the replies. Closed loop, one request
    in flight per connection (not pipelined); first on 1 connection, then on
    `inbound_connections`."""
    raise_fd_limit()
    many = size.inbound_messages
    one = max(many // 8, 10)
    per_shift = 40
    shifts = (many + one + per_shift - 1) // per_shift
    with workdir("inbound") as d:
        config = bench_config(d / "state")
        (d / "state").mkdir()
        db = d / "state" / "shiftd.sqlite3"
        seeded = await seed(db, shifts=shifts, offers_per_shift=per_shift, stride=per_shift)
        provider = InstantProvider()
        store = TimedStore(db)
        async with running_engine(config, provider, store=store, socket=True) as (_engine, path):
            await trio.testing.wait_all_tasks_blocked()
            base = {"socket": str(path), "mode": "closed"}
            single = await run_loadgen(
                {
                    **base,
                    "connections": 1,
                    "total": one,
                    "requests": {"kind": "inbound", "body": "NO", "first": 0, "count": one},
                }
            )
            sent_before = provider.count
            commits_before = len(store.batches)
            cpu_before = time.process_time()
            with measured():
                multi = await run_loadgen(
                    {
                        **base,
                        "connections": size.inbound_connections,
                        "total": many,
                        "requests": {"kind": "inbound", "body": "NO", "first": one, "count": many},
                    }
                )
            cpu = time.process_time() - cpu_before
            replies_during = provider.count - sent_before
            # The thinnest durable path, for comparison: numbers not on the roster (looked up,
            # logged durably, no actor, no reply).
            unknown = await run_loadgen(
                {
                    **base,
                    "connections": size.inbound_connections,
                    "total": many // 2,
                    "requests": {
                        "kind": "inbound",
                        "body": "YES",
                        "first": seeded.caregivers + 1,
                        "count": many // 2,
                    },
                }
            )
            batches = store.batches[commits_before:]
            drain_started = time.perf_counter()
            provider.expect = one + many
            if provider.count >= provider.expect:
                provider.done.set()
            with trio.move_on_after(_GUARD):
                await provider.done.wait()
            drained = time.perf_counter() - drain_started
            return {
                "seeded": {"shifts": seeded.shifts, "caregivers": seeded.caregivers},
                "one_connection": single,
                "many_connections": multi,
                "server_cpu_us_per_message": round(cpu / many * 1e6, 1),
                "unknown_sender": unknown,
                "replies_sent_during_run": replies_during,
                "replies_drained_after_s": round(drained, 3),
                "commits_during_run": len(batches),
                "mean_batch": round(sum(batches) / len(batches), 2) if batches else None,
                "commit": latency_ms(store.commit_seconds[commits_before:]),
            }


# ---- open shifts and recovery ---------------------------------------------------------------


async def recovery(size: Size) -> dict[str, Any]:
    """`recovery_shifts` shifts in progress in the store: time from start to READY (the
    engine's `task_status.started`), to every actor loaded and asleep, and to stopped."""
    n = size.recovery_shifts
    with workdir("recovery") as d:
        config = bench_config(d / "state")
        (d / "state").mkdir()
        db = d / "state" / "shiftd.sqlite3"
        seeded = await seed(db, shifts=n, offers_per_shift=2, stride=1)
        provider = InstantProvider()
        engine = Engine(config, notifier=provider)
        async with trio.open_nursery() as nursery:
            before = rss_bytes()
            with GcWatch() as gc_start, gcpolicy.applied() as recovered, measured():
                started = time.perf_counter()
                cpu = time.process_time()
                await nursery.start(engine.run)
                recovered()  # as `shiftd run` does
                ready = time.perf_counter() - started
                ready_cpu = time.process_time() - cpu
                await trio.testing.wait_all_tasks_blocked()
                settled = time.perf_counter() - started
                after = rss_bytes()
                actors = engine.supervisor.actors
            gc_stop = GcWatch().__enter__()
            stopping = time.perf_counter()
            engine.stop()
        stopped = time.perf_counter() - stopping
        gc_stop.__exit__()
        return {
            "shifts": n,
            "seed_seconds": round(seeded.seconds, 3),
            "actors": actors,
            "ready_s": round(ready, 4),
            "ready_cpu_s": round(ready_cpu, 4),
            "settled_s": round(settled, 4),
            "us_per_actor": round(settled / n * 1e6, 2),
            "rss_bytes_per_actor": round((after - before) / n, 1),
            "stop_s": round(stopped, 4),
            "gc_start": gc_start.summary(),
            "gc_stop": gc_stop.summary(),
        }


async def open_shifts(size: Size) -> dict[str, Any]:
    """`open_shifts` fanouts in progress (bulk-written, recovered as real ShiftActors, each
    with 2 offers and an escalation an hour away). Then, for `open_window` seconds, inbound
    declines arrive at `open_rate`/s over the control socket while `open_escalating` new
    fanouts start, evenly over the first half of the window, with `escalation.delay` and
    `escalation.jitter` each a sixth of it (so the escalations fall between 1/6 and 5/6 of
    the window): how late do their escalation timers fire?"""
    raise_fd_limit()
    n = size.open_shifts
    window = size.open_window
    e = size.open_escalating
    with workdir("open") as d:
        delay_ms = jitter_ms = int(window / 6 * 1000)
        config = bench_config(
            d / "state", escalation={"delay": f"{delay_ms}ms", "jitter": f"{jitter_ms}ms"}
        )
        (d / "state").mkdir()
        db = d / "state" / "shiftd.sqlite3"
        seeded = await seed(db, shifts=n, offers_per_shift=2, stride=1)
        provider = InstantProvider()
        store = TimedStore(db)
        gc.collect()
        before = rss_bytes()
        started = time.perf_counter()
        async with running_engine(config, provider, store=store, socket=True) as (engine, path):
            await trio.testing.wait_all_tasks_blocked()
            settled = time.perf_counter() - started
            gc.collect()
            after = rss_bytes()
            actors = engine.supervisor.actors
            # The escalating fanouts: each its own role, so 2 candidates each.
            first = seeded.caregivers
            roster, shifts = [], []
            for k in range(e):
                role = f"E{k}"
                roster += _caregivers(2, role, first + 2 * k)
                shifts.append(_shift(f"esc-{k:05d}", role))
            await engine.import_roster(roster, shifts)
            store.escalations_expected = e
            fanout_results: list[str] = []

            async def issue_fanouts() -> None:
                step = window / 2 / max(e, 1)
                t0 = trio.current_time()
                for k in range(e):
                    await trio.sleep_until(t0 + k * step)
                    result = await engine.fanout(f"esc-{k:05d}")
                    fanout_results.append(result.status.value)

            steps = LongestStep()
            trio.lowlevel.add_instrument(steps)
            with GcWatch() as gcw:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(issue_fanouts)
                    load = await run_loadgen(
                        {
                            "socket": str(path),
                            "mode": "paced",
                            "connections": 20,
                            "rate": size.open_rate,
                            "duration": window,
                            "requests": {
                                "kind": "inbound",
                                "body": "NO 1",  # caregiver c's code 1 is shift c
                                "first": 0,
                                "count": int(size.open_rate * window),
                            },
                        }
                    )
                with trio.move_on_after(window):  # stragglers
                    await store.escalations_done.wait()
            trio.lowlevel.remove_instrument(steps)
            lateness = list(store.lateness)
            return {
                "shifts": n,
                "actors": actors,
                "settled_s": round(settled, 4),
                "us_per_actor": round(settled / n * 1e6, 2),
                "rss_bytes_per_actor": round((after - before) / n, 1),
                "escalation_delay_ms": delay_ms,
                "escalation_jitter_ms": jitter_ms,
                "fanouts_started": fanout_results.count("started"),
                "escalations_measured": len(lateness),
                "lateness": latency_ms(lateness),
                "lateness_p999_ms": round(percentile(lateness, 99.9) * 1e3, 3),
                "load": load,
                "gc_during_window": gcw.summary(),
                "longest_task_steps": steps.summary(),
            }


# ---- the store ------------------------------------------------------------------------------


async def _store_run(
    path: Path, batch_max: int, writers: int, seconds: float, *, url: str | None = None
) -> dict[str, Any]:
    """`writers` tasks logging inbound messages for `seconds`, on SQLite at `path` or, with
    `url`, on PostgreSQL (its commit times from the store's `on_commit`)."""
    store: Any
    if url is None:
        store = TimedStore(path, batch_max=batch_max)
    else:
        from shiftd.store.postgres import PostgresStore

        store = PostgresStore(url, batch_max=batch_max)
        store.batches, store.commit_seconds = [], []
        store.on_commit = lambda n, s: (store.batches.append(n), store.commit_seconds.append(s))
    latencies: list[float] = []
    record = InboundRecord(Outcome.DECLINED.value, "sh-0000001", "cg-0000001", None)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.run)
        now = datetime.now(UTC)
        stop_at = trio.current_time() + seconds

        async def writer() -> None:
            while trio.current_time() < stop_at:
                t = time.perf_counter()
                await store.log_inbound(
                    InboundLog(now, None, "+15550000001", Channel.SMS, "NO", record)
                )
                latencies.append(time.perf_counter() - t)

        started = time.perf_counter()
        async with trio.open_nursery() as writers_nursery:
            for _ in range(writers):
                writers_nursery.start_soon(writer)
        elapsed = time.perf_counter() - started
        nursery.cancel_scope.cancel()
    commits = len(store.batches)
    return {
        "batch_max": batch_max,
        "writers": writers,
        "writes_per_s": round(len(latencies) / elapsed, 1),
        "commits_per_s": round(commits / elapsed, 1),
        "mean_batch": round(sum(store.batches) / commits, 2) if commits else None,
        "write": latency_ms(latencies),
        "commit": latency_ms(store.commit_seconds),
    }


async def store(size: Size) -> dict[str, Any]:
    """The writer alone: `store_writers` tasks each logging inbound messages (one INSERT per
    write) as fast as commits allow, with group commit (batch_max=512) and without (1); then
    the same group commit on PostgreSQL (`store_pg`, beside raw psycopg inserting the same
    rows `store_writers` per commit), where the local server answers."""
    out: dict[str, Any] = {}
    for label, batch_max in (("group", 512), ("single", 1)):
        with workdir("store") as d:
            db = d / "store.sqlite3"
            await create_schema(db)
            out[label] = await _store_run(db, batch_max, size.store_writers, size.store_seconds)
    reason = postgres.unreachable()
    if reason is not None:
        out["store_pg"] = {"skipped": f"PostgreSQL is not answering: {reason}"}
        return out
    with postgres.database() as url:
        group = await _store_run(Path(), 512, size.store_writers, size.store_seconds, url=url)
        raw = postgres.raw_inserts(url, size.store_writers, size.store_seconds)
    out["store_pg"] = {"group": group, "raw": raw, "server": postgres.server_version()}
    return out
