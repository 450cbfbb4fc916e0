"""The crash loop across instances: N real daemons (`a`, `b`, …) on one fresh PostgreSQL
database with a short lease, under the crash loop's workload spread over them, while
instances are killed with SIGKILL (and restarted) or paused with SIGSTOP (and resumed) at
random moments. The workload goes on through every fault: requests go to a running
instance at random, so simultaneous accepts arrive through the sockets and webhooks of
different instances and are forwarded to the shift's owner, wherever it is.

A fault starts at a random instant of a round of workload and runs on its own: a kill
leaves the instance down for up to a TTL (sometimes killed again during its start-up), then
starts it and waits for it to answer; a pause lasts from half the TTL to twice it, so most
outlive the lease and the others take its partitions over. At least one instance is
running at any time; others may be faulted at once. After every round the invariants of
`invariants` are checked against the shared database and the provider's log (the one fake
Twilio every instance sends through: the union of what they all sent), with the bound on
due waves counting from the last fault: TTL + TTL/3 (a takeover) + a margin. At the end
every fault has ended, the instances share the partitions again, every due wave and send has
finished (a row still `sending` is a violation), the invariants hold, and SIGTERM stops each
instance with exit 0.

`python -m shiftd.testing.crashloop --instances 3 --kills 200` (`make crash INSTANCES=3`).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from pathlib import Path

import trio

from ..cluster.partitions import DEFAULT_PARTITIONS
from .crashdaemon import Daemon
from .crashloop import CrashLoop
from .crashreport import CrashReport, CrashSettings
from .postgres import create_database, drop_database, postgres_unreachable
from .storeread import PostgresReader

BALANCE_BOUND = 30.0
"""Seconds the instances may take to share every partition again after the last fault."""


class ClusterCrashLoop(CrashLoop):
    """`settings.instances` daemons on the database at `url`, faulted at random."""

    def __init__(self, settings: CrashSettings, workdir: Path, url: str) -> None:
        names = [chr(ord("a") + n) for n in range(settings.instances)]
        daemons = [Daemon(workdir / name, settings.python, name) for name in names]
        super().__init__(settings, workdir, daemons, PostgresReader(url))
        self.url = url
        self.report.instances = settings.instances
        ttl = settings.lease_ttl
        self.wave_bound = ttl + ttl / 3 + settings.takeover_margin
        self.faulted: set[str] = set()
        self.lost_counted = 0
        """Rows failed as interrupted, so far attributed to a fault (`report.cost`)."""
        self.journal = workdir / "faults.log"

    def note(self, line: str) -> None:
        """One line in `faults.log` (UTC time first, as the daemons' logs have it)."""
        with self.journal.open("a") as journal:
            journal.write(f"{datetime.now(UTC).isoformat(timespec='milliseconds')} {line}\n")

    def _cluster_config(self, daemon: Daemon) -> str:
        return (
            f'store:\n  url: "{self.url}"\n'
            f'cluster:\n  name: "{daemon.name}"\n'
            f'  lease_ttl: "{round(self.s.lease_ttl * 1000)}ms"\n  forward_wait: "3s"\n'
        )

    async def faults(self, api_base: str) -> None:
        """Start every instance, then make the run's faults under the workload; returns
        once every fault has ended and the instances share the partitions again."""
        for daemon in self.daemons:
            daemon.workdir.mkdir(parents=True, exist_ok=True)
            daemon.write_config(
                api_base=api_base,
                delay=self.s.escalation_delay,
                extra=self._cluster_config(daemon),
            )
            await daemon.spawn()
        for daemon in self.daemons:
            await daemon.wait_answering(self.s.restart_bound)
        await self.wait_balanced()
        await self.work.setup(self.s.caregivers)
        async with trio.open_nursery() as faults:
            rounds = 0
            while self.report.kills < self.s.kills:
                rounds += 1
                await self.one_round(faults, rounds)
        await self.wait_balanced()

    async def one_round(self, faults: trio.Nursery, n: int) -> None:
        """Workload for a random stretch, a fault started at a random instant of it (if an
        instance may be faulted now), then the invariants."""
        self.progress()
        now = trio.current_time()
        until = now + self.rng.uniform(0.05, self.s.longest_round)
        fault_at = self.rng.uniform(now, until)
        async with trio.open_nursery() as nursery:
            # In-flight requests finish before the check: what they were answered is in
            # the ledger the check compares with the store.
            nursery.start_soon(functools.partial(self.work.drive, until, drain=True))
            await trio.sleep_until(fault_at)
            healthy = [d for d in self.daemons if d.name not in self.faulted]
            if len(healthy) > 1:  # one instance always runs
                victim = self.rng.choice(healthy)
                self.faulted.add(victim.name)
                await self.count_lost()
                self.report.cost.append(0)
                self.report.kills += 1
                pause = self.rng.random() < self.s.pause_rate
                faults.start_soon(self.pause if pause else self.kill, victim)
        await self.check(f"round {n}", running=True)
        self.note(f"round {n} checked")

    async def kill(self, daemon: Daemon) -> None:
        """SIGKILL, down for up to a TTL (sometimes killed again while it starts), then
        started; the fault ends when it answers."""
        self.ready_at = datetime.now(UTC)
        await daemon.kill9()
        self.note(f"kill {daemon.name}")
        await trio.sleep(self.rng.uniform(0.0, self.s.lease_ttl))
        if self.rng.random() < self.s.startup_kill_rate:
            await daemon.spawn()
            await trio.sleep(self.rng.uniform(0.0, 0.8))
            await daemon.kill9()
            self.note(f"kill {daemon.name} while it starts")
            self.report.startup_kills += 1
        await daemon.spawn()
        self.note(f"start {daemon.name}")
        seconds = await daemon.wait_answering(self.s.restart_bound)
        self.report.restart_seconds.append(seconds)
        self.note(f"{daemon.name} answers after {seconds:.2f}s")
        self.ready_at = datetime.now(UTC)
        self.faulted.discard(daemon.name)

    async def pause(self, daemon: Daemon) -> None:
        """SIGSTOP for half the TTL to twice it, then SIGCONT."""
        self.ready_at = datetime.now(UTC)
        self.report.pauses += 1
        daemon.pause()
        seconds = self.rng.uniform(0.5, 2.0) * self.s.lease_ttl
        self.note(f"pause {daemon.name} for {seconds:.2f}s")
        try:
            await trio.sleep(seconds)
        finally:
            daemon.resume()
        self.note(f"resume {daemon.name}")
        self.ready_at = datetime.now(UTC)
        self.faulted.discard(daemon.name)

    async def count_lost(self) -> None:
        """Attribute the rows failed as interrupted since the last count to the latest
        fault: a dead or paused instance's rows are failed when its partitions are taken
        over, after its fault began (with faults overlapping, the attribution is rough;
        the total is exact)."""
        now = await self._interrupted()
        if now is None:
            return
        if self.report.cost:
            self.report.cost[-1] += now - self.lost_counted
        self.lost_counted = now

    async def wait_balanced(self) -> None:
        """Until every partition is leased and every instance holds some; past
        BALANCE_BOUND a violation."""
        with trio.move_on_after(BALANCE_BOUND) as waited:
            while True:  # polling the database: no event to wait on
                if await self._balanced():
                    break
                await trio.sleep(0.1)
        if waited.cancelled_caught:
            self.report.violations.append(
                f"the instances did not share the partitions {BALANCE_BOUND}s after the faults"
            )
        self.ready_at = datetime.now(UTC)

    async def _balanced(self) -> bool:
        held = await self.work.query(
            "SELECT owner, count(*) FROM cluster_leases WHERE expires_at > now() GROUP BY owner"
        )
        return len(held) == len(self.daemons) and sum(n for _, n in held) == DEFAULT_PARTITIONS

    async def finish(self) -> None:
        await super().finish()
        await self.count_lost()

    async def stop(self) -> None:
        """SIGTERM to every instance at once; `final_exit` is 0 if each exited 0, else the
        first other status."""
        codes: dict[str, int] = {}

        async def one(daemon: Daemon) -> None:
            codes[daemon.name] = await daemon.terminate()

        async with trio.open_nursery() as nursery:
            for daemon in self.daemons:
                nursery.start_soon(one, daemon)
        self.report.final_exit = next((c for c in codes.values() if c != 0), 0)


def run_cluster(settings: CrashSettings, workdir: Path) -> CrashReport:
    """Run the loop across `settings.instances` instances on a fresh database, inside its
    own `trio.run`; the report. The database is dropped afterwards unless the run found a
    violation or `settings.workdir` was given (the report then names it). Raises
    RuntimeError if PostgreSQL does not answer, and what the loop raised (DaemonDied, an
    instance not answering in time)."""
    reason = postgres_unreachable()
    if reason is not None:
        raise RuntimeError(reason)
    url = create_database()
    loop = ClusterCrashLoop(settings, workdir, url)
    keep = settings.workdir is not None
    try:
        report = trio.run(loop.run)
    except BaseException:
        loop.kill_all()
        if not keep:
            drop_database(url)
        raise
    loop.kill_all()
    if report.ok and not keep:
        drop_database(url)
    else:  # kept to be looked into, as the work directory is
        report.workdir += f" and the database {url}"
    return report
