"""`shiftd simulate`: replay a month of shifts under several policies on the real engine and
compare them (fill rate, time to fill, cost, how often the same caregivers are asked).

Public surface: `compare` (runs and summaries), the input loaders in `inputs`, the
responders in `behaviour`, `runner.run_once` for a single run, `pool.run_all` for many at
once (split by role into parts, in processes: `parts`, `pool`), `report` for the output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..models import Caregiver
from .behaviour import Learned, Parameters, Responder
from .inputs import InputError, Policy, SimShift
from .pool import Run, run_all
from .report import Summary, summarize
from .runner import RunResult

__all__ = [
    "InputError",
    "Learned",
    "Parameters",
    "Policy",
    "Responder",
    "RunResult",
    "SimShift",
    "Summary",
    "compare",
]


def compare(
    policies: Sequence[Policy],
    caregivers: Sequence[Caregiver],
    shifts: Sequence[SimShift],
    responder: Responder,
    *,
    runs: int,
    seed: int,
    on_fanout: Callable[[str, int], None] | None = None,
    jobs: int = 1,
) -> list[Summary]:
    """Run every policy ``runs`` times and summarize each.

    Run ``r`` of every policy uses the seed ``seed + r``: the policies meet the same
    caregivers, who answer a given message the same way under either policy, so the
    difference between policies is not noise between runs. ``jobs``: how many processes
    replay runs at once (`pool.run_all`; 1: one run after another, in this process); the
    summaries are the same whatever it is. ``on_fanout(policy, run)`` is called once for
    each fanout (for a progress bar). Raises ValueError for ``runs < 1`` or ``jobs < 1``.
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    plan = [(policy, run) for policy in policies for run in range(runs)]

    def tick(index: int) -> None:
        if on_fanout is not None:
            policy, run = plan[index]
            on_fanout(policy.name, run)

    results = run_all(
        [Run(policy.config, seed + run) for policy, run in plan],
        caregivers,
        shifts,
        responder,
        jobs=jobs,
        on_fanout=tick,
    )
    return [
        summarize(policy.name, results[k * runs : (k + 1) * runs])
        for k, policy in enumerate(policies)
    ]
