"""The real daemon killed with SIGKILL at random moments of a mixed workload (concurrent and
repeated fanouts, simultaneous accepts over the socket and signed webhooks, declines,
releases, STOP/START, a provider answering 429/500 or too late), restarted each time, keeps
every promise: one holder, nothing twice, calls on time, never the wrong people, opt-outs
kept, back within a bound. A short run here; `make crash KILLS=500` runs the long one.

The seed is random and printed on failure: `CRASH_SEED=<seed>` replays the same run.
"""

from __future__ import annotations

import pytest

from shiftd.testing.crashloop import CrashSettings, run_keeping_promises, seed_to_replay

pytestmark = [pytest.mark.process, pytest.mark.slow]


def test_twenty_random_kills_break_no_promise() -> None:
    settings = CrashSettings(
        kills=20,
        seed=seed_to_replay(),
        longest_round=0.8,
        startup_kill_rate=0.3,
        # A bound against a hang, not a speed target: a busy machine starts Python slowly.
        restart_bound=120,
    )
    report = run_keeping_promises(settings)
    summary = report.summary()
    assert report.kills == 20
    assert len(report.restart_seconds) >= 20 - report.startup_kills
    assert report.outcomes["claimed"] > 0 and report.provider["calls_accepted"] > 0, summary
