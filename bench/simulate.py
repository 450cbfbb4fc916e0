"""`python -m bench.simulate` (`make bench-simulate`): how long `shiftd simulate` takes for a
month of 3,000 shifts and 300 caregivers, per policy and run.

The month: 300 caregivers (60 RN, 60 LPN, 120 CNA, 60 HHA; a quarter of each tagged
``preferred``), 3,000 shifts over 30 days with roles in the same proportions, each posted
2 to 36 hours before it starts; caregivers answer with the default parameters of
``shiftd simulate``. Each policy of ``examples/`` runs once on it (the real engine, an
in-memory store, the virtual clock), as ``shiftd simulate`` runs it: split by role, the
parts replayed in a pool of ``--jobs`` processes (default: the CPUs available; 1: the whole
month in this process). Prints per policy-month the wall seconds, the CPU seconds of every
process (this one and the pool's, counted once the pool has stopped), the jobs and the
figures of the run, and writes them to ``bench/simulate_results.json``. Asserts nothing.

    python -m bench.simulate                    # the month above
    python -m bench.simulate --jobs 1           # one process, no pool
    python -m bench.simulate --shifts 300 --caregivers 30    # a smaller one
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shiftd.logs import configure_logging
from shiftd.models import Caregiver, Shift
from shiftd.simulate import Parameters, SimShift
from shiftd.simulate.inputs import load_policy
from shiftd.simulate.pool import Run, available_cpus, run_all
from shiftd.simulate.report import summarize, table

ROOT = Path(__file__).resolve().parent.parent
ROLES = {"RN": 0.2, "LPN": 0.2, "CNA": 0.4, "HHA": 0.2}
POLICIES = ("policy-text-everyone.yaml", "policy-preferred-first.yaml")


def month(shifts: int, caregivers: int, seed: int = 16) -> tuple[list[Caregiver], list[SimShift]]:
    """A synthetic month, the same for a seed."""
    rng = random.Random(seed)
    roster = []
    for role, share in ROLES.items():
        count = round(caregivers * share)
        for i in range(count):
            n = len(roster)
            tags = ("preferred",) if i < count // 4 else ()
            roster.append(
                Caregiver(
                    id=f"cg-{n:04d}",
                    name=f"Caregiver {n}",
                    role=role,
                    phone=f"+1555{n:07d}",
                    tags=tags,
                )
            )
    first = datetime(2026, 11, 1, tzinfo=UTC)
    out = []
    for i in range(shifts):
        role = rng.choices(list(ROLES), list(ROLES.values()))[0]
        start = first + timedelta(days=rng.randrange(30), hours=rng.choice([7, 15, 23]))
        shift = Shift(
            id=f"s-{i:05d}",
            role_required=role,
            start_time=start,
            end_time=start + timedelta(hours=8),
        )
        out.append(SimShift(shift, start - timedelta(minutes=rng.randint(120, 36 * 60))))
    return roster, out


def cpu_seconds() -> float:
    """CPU seconds of this process and of its children that have ended and been waited for
    (a pool's processes, once it has stopped)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.simulate")
    parser.add_argument("--shifts", type=int, default=3000)
    parser.add_argument("--caregivers", type=int, default=300)
    parser.add_argument("--jobs", type=int, default=available_cpus())
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "simulate_results.json")
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    configure_logging("error", "console")
    roster, shifts = month(args.shifts, args.caregivers)
    results = []
    summaries = []
    for name in POLICIES:
        policy = load_policy(ROOT / "examples" / name)
        wall, cpu = time.perf_counter(), cpu_seconds()
        [run] = run_all([Run(policy.config, 1)], roster, shifts, Parameters(), jobs=args.jobs)
        wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
        summary = summarize(policy.name, [run])
        summaries.append(summary)
        messages = summary.texts + summary.calls
        results.append(
            {
                "policy": policy.name,
                "shifts": len(shifts),
                "caregivers": len(roster),
                "jobs": args.jobs,
                "wall_s": round(wall, 1),
                "cpu_s": round(cpu, 1),
                "messages": int(messages),
                "cpu_us_per_message": round(cpu / max(1, messages) * 1e6),
            }
        )
        print(
            f"{policy.name}: {wall:.1f}s wall, {cpu:.1f}s CPU (all processes), jobs"
            f" {args.jobs}, for {len(shifts)} shifts, {len(roster)} caregivers,"
            f" {messages:,.0f} texts and calls",
            flush=True,
        )
    print()
    print(table(summaries))
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
