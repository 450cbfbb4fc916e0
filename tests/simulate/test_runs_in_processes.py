"""Runs replayed in a pool of processes, split by role: the same report as one after
another in this process, and a progress count that ends at every fanout of every run."""

from __future__ import annotations

from collections import Counter

import pytest
from roles_month import EXAMPLES, POLICIES, month, roster

from shiftd.simulate import Parameters, compare
from shiftd.simulate.inputs import load_policy
from shiftd.simulate.pool import Run, run_all


@pytest.mark.slow
def test_compare_in_two_processes_gives_the_summaries_of_one() -> None:
    policies = [load_policy(EXAMPLES / name) for name in POLICIES]
    one, two = (
        compare(policies, roster(), month(), Parameters(), runs=2, seed=5, jobs=jobs)
        for jobs in (1, 2)
    )
    assert two == one
    assert one[0] != one[1]  # not vacuous: the policies differ


@pytest.mark.slow
def test_the_pool_reports_each_fanout_of_each_run_once() -> None:
    policy = load_policy(EXAMPLES / POLICIES[0])
    shifts = month(15)
    fanouts: Counter[int] = Counter()
    run_all(
        [Run(policy.config, seed) for seed in (1, 2)],
        roster(),
        shifts,
        Parameters(),
        jobs=2,
        on_fanout=lambda run: fanouts.update([run]),
    )
    assert fanouts == {0: len(shifts), 1: len(shifts)}
