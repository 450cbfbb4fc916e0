"""`shiftd simulate`: replay a month of shifts under several policies on the real engine and
compare them (fill rate, time to fill, cost, how often the same caregivers are asked).

Public surface: `compare` (runs and summaries), the input loaders in `inputs`, the
responders in `behaviour`, `runner.run_once` for a single run, `report` for the output.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..models import Caregiver
from .behaviour import Learned, Parameters, Responder
from .inputs import InputError, Policy, SimShift
from .report import Summary, summarize
from .runner import RunResult, run_once

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
) -> list[Summary]:
    """Run every policy ``runs`` times and summarize each.

    Run ``r`` of every policy uses the seed ``seed + r``: the policies meet the same
    caregivers, who answer a given message the same way under either policy, so the
    difference between policies is not noise between runs. ``on_fanout(policy, run)`` is
    called after each fanout (for a progress bar). Raises ValueError for ``runs < 1``.
    """
    if runs < 1:
        raise ValueError("runs must be at least 1")
    summaries = []
    for policy in policies:
        results = []
        for run in range(runs):
            tick = None if on_fanout is None else _ticker(on_fanout, policy.name, run)
            results.append(
                run_once(policy.config, caregivers, shifts, responder, seed + run, on_fanout=tick)
            )
        summaries.append(summarize(policy.name, results))
    return summaries


def _ticker(on_fanout: Callable[[str, int], None], name: str, run: int) -> Callable[[], None]:
    return lambda: on_fanout(name, run)
