"""`python -m bench`: run every benchmark, print the figures, write results.json and results.md.

    python -m bench                       # full size, what `make bench` runs (~6 min + the cluster)
    python -m bench --size smoke          # tiny sizes: proves the code runs, measures nothing
                                          # (the cluster scenarios only if named in --only)
    python -m bench --only echo,inbound   # some scenarios (ratios need their ceilings)
    python -m bench --in-process          # no subprocess per scenario (the smoke test)
    python -m bench --only http_inbound --in-process --profile /tmp/prof
                                          # cProfile each scenario: /tmp/prof.http_inbound
    python -m bench --only inbound --bounds   # also its CPU by layer (bench/bounds.py); a
                                          # full run does this for each target it missed

Each scenario runs in a fresh Python process (`--run NAME`), so memory figures start clean and
one scenario's garbage does not slow the next. Nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import dataclasses
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import trio

from . import board, bounds, ceilings, cluster, failover, postgres, report, scenarios, web
from .common import SIZES, Size, profiling, quiet_logging
from .stats import MachineWatch

Scenario = Callable[[Size], Awaitable[dict[str, Any]]]
_BUSY = 0.05  # share of the machine's CPU other processes may take while we measure

#: In the order they run: the ceilings first, then shiftd.
SCENARIOS: dict[str, Scenario] = {
    "echo": ceilings.echo,
    "raw_sqlite": ceilings.raw_sqlite,
    "bare_actors": ceilings.bare_actors,
    "bare_spawn_gc_on": ceilings.bare_spawn_gc_on,
    "http_ceiling": web.http_ceiling,
    "store": scenarios.store,
    "pg_drivers": postgres.drivers,
    "fanout": scenarios.fanout,
    "fanout_rate": scenarios.fanout_rate,
    "claim_storm": scenarios.claim_storm,
    "inbound": scenarios.inbound,
    "open_shifts": scenarios.open_shifts,
    "recovery": scenarios.recovery,
    "http_inbound": web.http_inbound,
    "http_storm": web.http_storm,
    "board": board.board,
    "failover": failover.failover,
    "cluster_inbound": cluster.cluster_inbound,
    "cluster_storm": cluster.cluster_storm,
}

#: Left out of `--size smoke` unless named in `--only`: each starts several daemons and
#: databases, too slow for the smoke test's budget (tests/test_bench_smoke.py).
NOT_IN_SMOKE = frozenset({"cluster_inbound", "cluster_storm"})


def run_one(
    name: str,
    size: Size,
    log_path: Path,
    profile: Path | None = None,
    bounds_to: Path | None = None,
) -> dict[str, Any]:
    """Run one scenario in this process (its own trio.run); under cProfile if `profile`
    (the statistics go to `<profile>.<name>`: `python -m pstats` reads them), or with its
    measured windows alone profiled into `bounds_to`. The profile counts CPU time, not wall
    time: waiting (for the load generator, or for a CPU that other processes hold) is not
    charged to whatever happened to be waiting."""
    quiet_logging(log_path)
    profiler = cProfile.Profile(time.process_time) if profile is not None else None
    windows = cProfile.Profile(time.process_time)
    started = time.perf_counter()
    with MachineWatch() as machine, profiling(windows) if bounds_to else contextlib.nullcontext():
        if profiler is not None:
            profiler.enable()
        try:
            result = trio.run(SCENARIOS[name], size)
        finally:
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(f"{profile}.{name}")
            if bounds_to is not None:
                windows.dump_stats(bounds_to)
    result["wall_s"] = round(time.perf_counter() - started, 2)
    result["machine"] = machine.summary(also_ours=result.get("database_cpu_s", 0.0))
    return result


def _run_isolated(
    name: str, size: Size, log_path: Path, bounds_to: Path | None = None
) -> dict[str, Any]:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--run",
            name,
            "--size-json",
            json.dumps(dataclasses.asdict(size)),
            "--log",
            str(log_path),
            *(["--bounds-to", str(bounds_to)] if bounds_to else []),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"scenario {name} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def run_all(
    size: Size,
    *,
    only: list[str] | None = None,
    out_dir: Path | None = None,
    in_process: bool = False,
    profile: Path | None = None,
    retries: int = 1,
    with_bounds: bool | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the scenarios, print each one's figures, write the results; return them.

    A scenario during which other processes took more than 5% of the CPUs is run again (up
    to `retries` times) and the quietest run kept; one still disturbed is flagged. Then
    (`with_bounds`; by default, in a full run of every scenario) each scenario of
    `bench.bounds.PROFILED` that missed a target (with `with_bounds=True`, each one run)
    runs once more, its measured windows profiled, and its CPU by layer is printed and
    kept under "bounds"."""
    if only is None and size.name == "smoke":
        only = [n for n in SCENARIOS if n not in NOT_IN_SMOKE]
    names = [n for n in SCENARIOS if only is None or n in only]
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sb-logs-") as logs:
        for name in names:
            echo(f"== {name} ({size.name})")
            log_path = Path(logs) / f"{name}.jsonl"
            for attempt in range(1 + retries):
                if in_process:
                    result = run_one(name, size, log_path, profile)
                else:
                    result = _run_isolated(name, size, log_path)
                share = result["machine"]["other_share"]
                if name not in results or share < results[name]["machine"]["other_share"]:
                    results[name] = result
                if share <= _BUSY:
                    break
                echo(f"  other processes used {share:.0%} of the CPUs meanwhile")
                if attempt < retries:
                    echo("  running it again")
            echo(report.describe(name, results[name]))
            share = results[name]["machine"]["other_share"]
            if share > _BUSY:
                echo(f"  WARNING: other processes used {share:.0%} of the CPUs meanwhile")
    document = report.build(size, results)
    if with_bounds is None:
        with_bounds = only is None and size.name == "full"
    if with_bounds:
        ran = [n for n in bounds.PROFILED.values() if n in results]
        wanted = ran if only is not None else bounds.missed(document["figures"])
        document["bounds"] = _bounds(wanted, size, in_process, echo)
    echo("")
    echo(report.markdown(document))
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "results.json").write_text(json.dumps(document, indent=2) + "\n")
        (out_dir / "results.md").write_text(report.markdown(document))
        echo(f"\nwrote {out_dir / 'results.json'} and {out_dir / 'results.md'}")
    return document


def _bounds(
    names: list[str], size: Size, in_process: bool, echo: Callable[[str], None]
) -> dict[str, dict[str, float]]:
    """Each scenario of `names` run again with its measured windows profiled: its CPU
    shares by layer."""
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="sb-bounds-") as tmp:
        for name in names:
            echo(f"== {name}: what bounds it ({size.name})")
            path, log_path = Path(tmp) / f"{name}.prof", Path(tmp) / f"{name}.jsonl"
            if in_process:
                run_one(name, size, log_path, bounds_to=path)
            else:
                _run_isolated(name, size, log_path, bounds_to=path)
            out[name] = bounds.layers(pstats.Stats(str(path)))
            echo(bounds.describe(name, out[name]))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--only", help="comma-separated scenarios: " + ", ".join(SCENARIOS))
    parser.add_argument(
        "--out", type=Path, help="where results.json/.md go (default: bench/, not with --only)"
    )
    parser.add_argument("--in-process", action="store_true")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="PREFIX",
        help="with --in-process: cProfile each scenario into PREFIX.<scenario>",
    )
    parser.add_argument(
        "--retries", type=int, default=1, help="re-runs of a scenario disturbed by other load"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=N",
        help="override one size field, e.g. --set inbound_messages=5000",
    )
    parser.add_argument(
        "--bounds",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="profile what bounds each scenario (default: a full run, its missed targets)",
    )
    parser.add_argument("--run", choices=sorted(SCENARIOS), help=argparse.SUPPRESS)
    parser.add_argument("--bounds-to", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--log", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--size-json", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    size = SIZES[args.size]
    if args.set:
        changes = {}
        for item in args.set:
            key, _, value = item.partition("=")
            if key not in Size.__dataclass_fields__ or key == "name":
                parser.error(f"--set: no size field {key!r}")
            changes[key] = type(getattr(size, key))(value)
        size = dataclasses.replace(size, **changes)
    if args.size_json:
        size = Size(**json.loads(args.size_json))
    if args.run:
        log_path = args.log or Path(os.devnull)
        print(json.dumps(run_one(args.run, size, log_path, bounds_to=args.bounds_to)))
        return 0
    only = args.only.split(",") if args.only else None
    if only:
        unknown = set(only) - set(SCENARIOS)
        if unknown:
            parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    out = args.out or (None if only else Path(__file__).parent)
    retries = 0 if size.name == "smoke" else args.retries  # smoke figures mean nothing
    if args.profile is not None and not args.in_process:
        parser.error("--profile needs --in-process")
    run_all(
        size,
        only=only,
        out_dir=out,
        in_process=args.in_process,
        profile=args.profile,
        retries=retries,
        with_bounds=args.bounds,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
