"""The real daemon killed with SIGKILL at random moments of a mixed workload (concurrent and
repeated fanouts, simultaneous accepts over the socket and signed webhooks, declines,
releases, STOP/START, a provider answering 429/500 or too late), restarted each time, keeps
every promise: one holder, nothing twice, calls on time, never the wrong people, opt-outs
kept, back within a bound. A short run here; `make crash KILLS=500` runs the long one.

The seed is random and printed on failure: `CRASH_SEED=<seed>` replays the same run.
"""

from __future__ import annotations

import os
import random

import pytest

from shiftd.testing.crashloop import CrashSettings, run_crash_loop

pytestmark = pytest.mark.process


def test_twenty_random_kills_break_no_promise() -> None:
    seed = int(os.environ.get("CRASH_SEED") or random.SystemRandom().randrange(1 << 32))
    settings = CrashSettings(kills=20, seed=seed, longest_round=0.8, startup_kill_rate=0.3)
    try:
        report = run_crash_loop(settings)
    except Exception as exc:  # the daemon died, or did not come back in time
        raise AssertionError(f"replay with CRASH_SEED={seed}: {exc!r}") from exc
    summary = report.summary()
    assert report.ok, f"replay with CRASH_SEED={seed}\n{summary}\nstate in {report.workdir}"
    assert report.kills == 20
    assert len(report.restart_seconds) >= 20 - report.startup_kills
    assert report.outcomes["claimed"] > 0 and report.provider["calls_accepted"] > 0, summary
