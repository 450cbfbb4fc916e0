"""The crash loop: the real daemon under a mixed workload, killed with SIGKILL at random
moments, restarted, and checked against `invariants` after every restart and at the end.

The workload, all at once and at random (one seed drives every choice; it is printed so a
failure replays with `--seed`): shifts added and fanned out by several coordinators at once
and again later; caregivers declining, accepting the same shift at the same instant through
the control socket and through Twilio-signed webhooks, releasing shifts they hold, texting
STOP and START; and a provider (the in-package fake Twilio, on 127.0.0.1) that now and then
answers 429 or 500, or takes a message and answers after the notifier's timeout.

Each kill lands at a random instant of that workload, or during start-up (recovery). After
each restart the loop measures how long the daemon took to answer, how many messages the
crash cost (rows it caught `sending`, failed for good: the price of at-most-once), and how
long the waves that fell due while it was down took to run; then it checks the invariants.
At the end it lets every due wave and send finish, checks once more and stops the daemon
with SIGTERM (exit 0 expected).

`python -m shiftd.testing.crashloop --kills 500` (what `make crash` runs) prints the figures;
the exit status is 1 when any invariant was violated. With `--instances 3` it runs a cluster
instead, its instances killed and paused (`crashcluster`).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import random
import shutil
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import trio

from ..models import ShiftState
from .crashdaemon import ACCOUNT_SID, Daemon, DaemonDied
from .crashreport import CrashReport, CrashSettings
from .fakeprovider import FakeTwilio
from .invariants import ProviderRequest, StoreView, call_lateness, check
from .storeread import SqliteReader, StoreReader, StoreUnreadable
from .workload import Workload

__all__ = [
    "CrashReport",
    "CrashSettings",
    "DaemonDied",
    "main",
    "run_crash_loop",
    "run_keeping_promises",
    "seed_to_replay",
]


class CrashLoop:
    """One daemon on SQLite, killed and restarted (`ClusterCrashLoop`: several instances)."""

    def __init__(
        self, settings: CrashSettings, workdir: Path, daemons: Sequence[Daemon], store: StoreReader
    ) -> None:
        self.s = settings
        self.rng = random.Random(settings.seed)
        self.report = CrashReport(seed=settings.seed, workdir=str(workdir))
        self.daemons = list(daemons)
        self.daemon = self.daemons[0]
        self.store = store
        self.fake = FakeTwilio(account_sid=ACCOUNT_SID)
        self.work = Workload(self.daemons, store, self.fake, self.rng, self.report)
        self.ready_at: datetime | None = None
        """When the daemon last answered after a start (a cluster: when its membership
        last changed): waves due before are owed from then."""
        self.wave_bound = settings.due_bound
        """How long after it (or after its stored instant, if later) a wave must have run."""
        self.seen: set[str] = set()
        self.progressed = 0

    def provider_log(self) -> list[ProviderRequest]:
        return [
            ProviderRequest(r.at, r.kind, r.form.get("To", ""), r.form.get("Body"), r.sid)
            for r in self.fake.requests
            if r.accepted and r.kind in ("message", "call")
        ]

    async def check(self, when: str, *, running: bool) -> StoreView | None:
        """Check every invariant now; the store as it was read (None if it could not be)."""
        found = await self.work.resolve_webhooks()
        provider = self.provider_log()  # before the store, `made` after it: see `check`
        try:
            view = await trio.to_thread.run_sync(StoreView.load, self.store)
        except StoreUnreadable as exc:
            self.report.violations.append(f"{when}: the store cannot be read: {exc}")
            return None
        made = {r.sid for r in self.fake.requests if r.sid is not None}
        found += await trio.to_thread.run_sync(
            functools.partial(
                check,
                view,
                self.work.ledger,
                provider,
                delay=timedelta(seconds=self.s.escalation_delay),
                now=datetime.now(UTC),
                ready_at=self.ready_at if running else None,
                due_bound=timedelta(seconds=self.wave_bound),
                made=made,
                send_grace=self.s.send_grace,
            )
        )
        for violation in found:  # each once, with the first check that saw it
            if violation not in self.seen:
                self.seen.add(violation)
                self.report.violations.append(f"{when}: {violation}")
                if self.s.progress:
                    print(f"  VIOLATION {when}: {violation}", flush=True)
        return view

    async def restart(self) -> None:
        """Start the daemon; measure until it answers, and until the waves due when it was
        started have run (its recovery runs them: their lag counts from the start)."""
        before = await self._interrupted()
        due = await self._due_waves(datetime.now(UTC))
        started = trio.current_time()
        await self.daemon.spawn()
        seconds = await self.daemon.wait_answering(self.s.restart_bound)
        self.ready_at = datetime.now(UTC)
        self.report.restart_seconds.append(seconds)
        if before is not None:
            after = await self._interrupted()
            self.report.cost.append((after or 0) - before)
        await self.wait_due(due, started)

    async def _interrupted(self) -> int | None:
        rows = await self.work.query(
            "SELECT count(*) FROM outbox WHERE state = 'failed' AND error LIKE 'interrupted%'"
        )
        return rows[0][0] if rows else None

    async def _due_waves(self, by: datetime) -> dict[str, int]:
        """shift → the step of its wave due at `by` (not run yet)."""
        return {
            shift_id: step
            for shift_id, step, plan, at in await self.work.query(
                "SELECT id, next_step, plan, escalate_at FROM shifts"
                " WHERE state IN ('offering', 'escalated')"
            )
            if plan and step < len(json.loads(plan)) and at <= _iso(by)
        }

    async def wait_due(self, due: dict[str, int], since: float) -> None:
        """Wait until every wave in `due` has run; the time from `since` is a figure, past
        `due_bound` a violation."""
        if not due:
            return
        with trio.move_on_at(since + self.s.due_bound) as waited:
            while due:
                for shift_id, step, state in await self.work.query(
                    "SELECT id, next_step, state FROM shifts"
                ):
                    if shift_id in due and (
                        step > due[shift_id] or not ShiftState(state).in_progress
                    ):
                        del due[shift_id]
                if due:
                    await trio.sleep(0.02)
        if waited.cancelled_caught:
            self.report.violations.append(
                f"waves still not run {self.s.due_bound}s after restart: {sorted(due)}"
            )
        self.report.due_lag.append(trio.current_time() - since)

    async def run(self) -> CrashReport:
        """The whole run, the fake provider served meanwhile; the report."""
        began = trio.current_time()
        async with trio.open_nursery() as nursery:
            api_base = await nursery.start(self.fake.serve, "127.0.0.1", 0)
            await self.faults(api_base)
            await self.finish()
            nursery.cancel_scope.cancel()
        self.report.elapsed = trio.current_time() - began
        accepted = self.provider_log()
        self.report.provider["texts_accepted"] = sum(p.kind == "message" for p in accepted)
        self.report.provider["calls_accepted"] = sum(p.kind == "call" for p in accepted)
        return self.report

    async def faults(self, api_base: str) -> None:
        """Start the daemon, then make the run's kills under the workload."""
        self.daemon.write_config(api_base=api_base, delay=self.s.escalation_delay)
        await self.restart()
        await self.work.setup(self.s.caregivers)
        while self.report.kills < self.s.kills:
            await self.one_kill()

    def progress(self) -> None:
        """Every 25 faults, with `settings.progress`: a line of how it goes."""
        kills = self.report.kills
        if self.s.progress and kills and kills % 25 == 0 and kills != self.progressed:
            self.progressed = kills
            print(
                f"  {self.report.kills} faults, {len(self.report.violations)} violations,"
                f" {sum(self.report.cost)} messages lost so far",
                flush=True,
            )

    async def one_kill(self) -> None:
        self.progress()
        kill_at = trio.current_time() + self.rng.uniform(0.05, self.s.longest_round)
        await self.work.drive(kill_at)
        await self.daemon.kill9()
        self.report.kills += 1
        n = self.report.kills
        await self.check(f"after kill {n}", running=False)
        if self.rng.random() < self.s.startup_kill_rate and self.report.kills < self.s.kills:
            await self.daemon.spawn()
            await trio.sleep(self.rng.uniform(0.0, 0.8))
            await self.daemon.kill9()
            self.report.kills += 1
            self.report.startup_kills += 1
        await self.restart()
        await self.check(f"restart {n}", running=True)

    async def finish(self) -> None:
        """Let due waves and sends finish, check once more, stop with SIGTERM. A row still
        `sending`, or `pending` and due, by then is a violation: a crash left it for nobody
        (a call paced to a later instant is not due)."""
        await trio.sleep(self.s.escalation_delay + 0.5)
        await self.wait_due(await self._due_waves(datetime.now(UTC)), trio.current_time())
        busy: list[tuple[int, str, str]] = []
        with trio.move_on_after(self.s.due_bound):
            while True:  # polling another process's store: no event to wait on
                busy = await self.work.query(
                    "SELECT id, state, purpose FROM outbox WHERE state = 'sending'"
                    " OR (state = 'pending' AND coalesce(next_attempt_at, '') <= ?)",
                    (_iso(datetime.now(UTC)),),
                )
                if not busy:
                    break
                await trio.sleep(0.1)
        if busy:
            self.report.violations.append(
                f"{len(busy)} rows still due or sending {self.s.due_bound}s after the end:"
                f" {busy[:10]}"
            )
        view = await self.check("at the end", running=True)
        if view is not None:
            delay = timedelta(seconds=self.s.escalation_delay)
            self.report.call_lateness = call_lateness(view, delay)
        await self.stop()

    async def stop(self) -> None:
        """SIGTERM; its exit status is the report's `final_exit`."""
        self.report.final_exit = await self.daemon.terminate()

    def kill_all(self) -> None:
        """Whatever the run ended with: no instance outlives it (a paused one included), and
        their ports are given back."""
        for daemon in self.daemons:
            if daemon.alive:
                assert daemon.proc is not None
                daemon.proc.kill()
            daemon.release_port()


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def run_crash_loop(settings: CrashSettings) -> CrashReport:
    """Run the loop (inside its own `trio.run`); the report. The work directory is removed
    after a run without violations unless `settings.workdir` was given."""
    prefix = "shiftd-cluster-" if settings.instances > 1 else "shiftd-crash-"
    workdir = settings.workdir or Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    workdir.mkdir(parents=True, exist_ok=True)
    if settings.instances > 1:
        from .crashcluster import run_cluster  # it builds on this module

        report = run_cluster(settings, workdir)
    else:
        daemon = Daemon(workdir, settings.python)
        loop = CrashLoop(settings, workdir, [daemon], SqliteReader(daemon.db))
        try:
            report = trio.run(loop.run)
        finally:
            loop.kill_all()
    if report.ok and settings.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return report


def seed_to_replay() -> int:
    """For a test: the seed in $CRASH_SEED (a replay), else a fresh one."""
    return int(os.environ.get("CRASH_SEED") or random.SystemRandom().randrange(1 << 32))


def run_keeping_promises(settings: CrashSettings) -> CrashReport:
    """For a test: run the loop; its report if every promise held. AssertionError (naming
    the seed to replay with `CRASH_SEED`, the figures and where the state was kept) if one
    did not, or if the run could not go on (a daemon died, or did not come back in time)."""
    replay = f"replay with CRASH_SEED={settings.seed}"
    try:
        report = run_crash_loop(settings)
    except Exception as exc:
        raise AssertionError(f"{replay}: {exc!r}") from exc
    assert report.ok, f"{replay}\n{report.summary()}\nstate in {report.workdir}"
    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m shiftd.testing.crashloop", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--kills", type=int, default=500)
    parser.add_argument("--seed", type=int, help="replay a run (default: a fresh one, printed)")
    parser.add_argument("--workdir", type=Path, help="keep the daemon's state here")
    parser.add_argument(
        "--instances",
        type=int,
        default=1,
        help="more than 1: a cluster on a fresh PostgreSQL database, killed and paused",
    )
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 32)
    what = f"{args.instances} instances, {args.kills} faults" if args.instances > 1 else ""
    print(
        f"crash loop: seed {seed}, {what or f'{args.kills} kills'} (replay: --seed {seed})",
        flush=True,
    )
    settings = CrashSettings(
        kills=args.kills,
        seed=seed,
        workdir=args.workdir,
        progress=True,
        instances=args.instances,
        # Several Python start-ups at once are slow on a busy machine: a bound against a
        # hang; the figures say how long restarts took.
        restart_bound=120.0 if args.instances > 1 else CrashSettings.restart_bound,
    )
    report = run_crash_loop(settings)
    print(report.summary())
    if not report.ok or args.workdir:
        print(f"  state kept in {report.workdir}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
