"""CPU per answer, in process: what the engine spends on one decline, and on one answer of
a claim storm, from the control request line to the reply handed to the provider.

    python -m bench.answers                        # 4,000 declines by 50 callers, a 1,000 storm
    python -m bench.answers --declines 500 --storm 100
    python -m bench.answers --profile /tmp/prof    # also /tmp/prof.declines, /tmp/prof.storm

Everything runs in one process on one Trio thread, with no socket and no load generator:
each caller hands its request lines to the control server's `handle_line` (the JSON, the
command table, the router, the actor, the store, the reply's delivery), one in flight per
caller. `time.process_time` is taken around the answers and the work they cause, until
every task is idle again (the replies sent and recorded), so other processes on the
machine disturb the figures much less than wall time; the load average is printed with
them. The control socket's own connection loop is not in these figures (`python -m bench
--only inbound` measures the whole path, with `server_cpu_us_per_message`).

The declines come from caregivers with one open offer each (`bench.seed`, 40 offers per
shift), as in the `inbound` scenario; the storm is `claim_storm`'s: `--storm` caregivers
offered one shift, all answering YES at once (exactly one wins). Logging is the daemon's
under journald: JSON lines at info, into a file.

With `--profile`, each part runs a second time under cProfile (CPU time) to count Python
calls and SQL statements per answer (counted on the store's connection); those runs are
slower and give no CPU figure.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trio
import trio.testing

from shiftd.control.server import handle_line
from shiftd.models import Caregiver, Shift
from shiftd.store.sqlite import SqliteStore

from .common import InstantProvider, bench_config, quiet_logging, running_engine, workdir
from .seed import seed
from .stats import phone_of

_PER_SHIFT = 40
_GUARD = 600.0  # a broken build ends instead of hanging; never a measured bound


class _Statements:
    """Counts the SQL statements run on a connection while it is installed."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, _statement: str) -> None:
        self.count += 1

    @contextmanager
    def on(self, conn: sqlite3.Connection | None) -> Iterator[_Statements]:
        assert conn is not None
        conn.set_trace_callback(self)
        try:
            yield self
        finally:
            conn.set_trace_callback(None)


def _line(i: int, phone: str, body: str) -> bytes:
    args = {"from": phone, "body": body}
    return json.dumps({"id": i, "cmd": "inbound", "args": args}).encode() + b"\n"


async def _answer_all(engine: Any, lines: list[list[bytes]]) -> list[bytes]:
    """Each list of `lines` handed to `handle_line` in turn by its own caller, all callers
    at once; the answers, once every task (the deliveries too) is idle."""
    answers: list[bytes] = []

    async def caller(mine: list[bytes]) -> None:
        for line in mine:
            answers.append(await handle_line(engine, line))

    with trio.fail_after(_GUARD):
        async with trio.open_nursery() as nursery:
            for mine in lines:
                nursery.start_soon(caller, mine)
        await trio.testing.wait_all_tasks_blocked()
    return answers


def _outcomes(answers: list[bytes]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for answer in answers:
        reply = json.loads(answer)
        outcome = reply["result"]["outcome"] if reply["ok"] else "error:" + reply["error"]["code"]
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


class _Measure:
    """CPU time of a block, or (profiling) its Python calls and SQL statements."""

    def __init__(self, store: SqliteStore, profile: str | None) -> None:
        self._store = store
        self._profile = profile
        self.figures: dict[str, Any] = {}

    @contextmanager
    def run(self, n: int, unit: str) -> Iterator[None]:
        if self._profile is None:
            cpu = time.process_time()
            yield
            cpu = time.process_time() - cpu
            self.figures[f"cpu_us_per_{unit}"] = round(cpu / n * 1e6, 1)
            return
        profiler = cProfile.Profile(time.process_time)
        with _Statements().on(self._store._conn) as statements:
            profiler.enable()
            try:
                yield
            finally:
                profiler.disable()
        profiler.dump_stats(f"{self._profile}.{unit}")
        calls = pstats.Stats(profiler).total_calls  # type: ignore[attr-defined]
        self.figures[f"python_calls_per_{unit}"] = round(calls / n, 1)
        self.figures[f"sql_statements_per_{unit}"] = round(statements.count / n, 2)


async def declines(n: int, callers: int, profile: str | None) -> dict[str, Any]:
    """`n` declines ("NO") from `n` caregivers with one open offer each, `callers` at once."""
    shifts = (n + _PER_SHIFT - 1) // _PER_SHIFT
    with workdir("answers") as d:
        (d / "state").mkdir()
        db = d / "state" / "shiftd.sqlite3"
        await seed(db, shifts=shifts, offers_per_shift=_PER_SHIFT, stride=_PER_SHIFT)
        store = SqliteStore(db)
        async with running_engine(bench_config(d / "state"), InstantProvider(), store=store) as (
            engine,
            _,
        ):
            await trio.testing.wait_all_tasks_blocked()
            lines = [[] for _ in range(callers)]  # type: list[list[bytes]]
            for i in range(n):
                lines[i % callers].append(_line(i, phone_of(i), "NO"))
            measure = _Measure(store, profile)
            with measure.run(n, "decline"):
                answers = await _answer_all(engine, lines)
            outcomes = _outcomes(answers)
            return {"declines": n, "callers": callers, **measure.figures, "outcomes": outcomes}


async def storm(n: int, profile: str | None) -> dict[str, Any]:
    """`n` caregivers offered one shift answer YES at the same instant."""
    with workdir("storm") as d:
        config = bench_config(d / "state")
        provider = InstantProvider(expect=n)
        store = SqliteStore(Path(config.state_dir) / "shiftd.sqlite3")
        async with running_engine(config, provider, store=store) as (engine, _):
            start = datetime.now(UTC) + timedelta(days=1)
            caregivers = [
                Caregiver(id=f"cg-{i:07d}", name=f"Carer {i}", role="RN", phone=phone_of(i))
                for i in range(n)
            ]
            shift = Shift(
                id="sh-storm",
                role_required="RN",
                start_time=start,
                end_time=start + timedelta(hours=8),
            )
            await engine.import_roster(caregivers, [shift])
            await engine.fanout("sh-storm")
            with trio.fail_after(_GUARD):
                await provider.done.wait()  # every offer is out before anyone answers
            await trio.testing.wait_all_tasks_blocked()
            lines = [[_line(i, phone_of(i), "YES")] for i in range(n)]
            measure = _Measure(store, profile)
            with measure.run(n, "claim_answer"):
                answers = await _answer_all(engine, lines)
            return {"caregivers": n, **measure.figures, "outcomes": _outcomes(answers)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.answers", description=__doc__)
    parser.add_argument("--declines", type=int, default=4_000)
    parser.add_argument("--callers", type=int, default=50)
    parser.add_argument("--storm", type=int, default=1_000, help="caregivers in the claim storm")
    parser.add_argument("--runs", type=int, default=3, help="of each part; the median is kept")
    parser.add_argument("--profile", metavar="PREFIX", help="also count calls and statements")
    parser.add_argument("--log", type=Path, help="the JSON log file (default: a temporary one)")
    args = parser.parse_args(argv)
    with workdir("answers-log") as d:
        quiet_logging(args.log or d / "shiftd.log")
        load = os.getloadavg()
        parts = {
            "declines": lambda profile: trio.run(declines, args.declines, args.callers, profile),
            "storm": lambda profile: trio.run(storm, args.storm, profile),
        }
        result: dict[str, Any] = {}
        for part, run in parts.items():
            runs = [run(None) for _ in range(args.runs)]
            key = next(k for k in runs[0] if k.startswith("cpu_us_per_"))
            runs.sort(key=lambda r: float(r[key]))
            result[part] = {**runs[len(runs) // 2], f"{key}_runs": [r[key] for r in runs]}
            if args.profile is not None:
                profiled = run(args.profile)
                result[part].update(
                    {k: v for k, v in profiled.items() if k.startswith(("python_", "sql_"))}
                )
        result["loadavg"] = {
            "before": [round(x, 2) for x in load],
            "after": [round(x, 2) for x in os.getloadavg()],
        }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
