"""Three real daemons on one PostgreSQL database (a 1 s lease) under the crash loop's mixed
workload spread over them (fanouts, repeated and concurrent, through any instance;
simultaneous accepts through the sockets and signed webhooks of different instances;
declines, releases, STOP/START; a provider answering 429/500 or too late), while instances
are killed with SIGKILL and restarted, or paused with SIGSTOP past their lease and resumed,
at random moments; the workload goes on meanwhile. Every promise holds after every round
and at the end: one holder, nothing twice, no call before its stored instant and none long
after a takeover, never the wrong people, opt-outs kept, nothing left `sending`. A short
run here; `make crash INSTANCES=3 KILLS=200` runs the long one.

The seed is random and printed on failure: `CRASH_SEED=<seed>` replays the same choices.
"""

from __future__ import annotations

import pytest

from shiftd.testing.crashloop import CrashSettings, run_keeping_promises, seed_to_replay
from shiftd.testing.postgres import postgres_unreachable

pytestmark = [pytest.mark.process, pytest.mark.slow]

FAULTS = 8


def test_random_kills_and_pauses_across_three_instances_break_no_promise(
    cluster_turn: None,
) -> None:
    reason = postgres_unreachable()
    if reason is not None:
        pytest.skip(reason)
    settings = CrashSettings(
        kills=FAULTS,
        seed=seed_to_replay(),
        instances=3,
        lease_ttl=1.0,
        longest_round=0.6,
        pause_rate=0.6,
        startup_kill_rate=0.1,
        # Bounds against a hang, not speed targets: a busy machine starts Python slowly.
        restart_bound=120,
        takeover_margin=30,
    )
    report = run_keeping_promises(settings)
    assert report.kills == FAULTS
    assert report.outcomes["claimed"] > 0, report.summary()
