"""The cluster's figures: real daemons (`shiftd run`) on one fresh PostgreSQL database, the
load spread over their control sockets by the load generator.

- `cluster_inbound`: durable declines over 50 connections (the `inbound` scenario's shape),
  against one, two and three instances of a cluster; beside one daemon on SQLite, one on
  PostgreSQL without a `cluster` section (no fencing, no forwarding), and `pgbench -N`
  (simple-update: one commit per transaction) on a database of its own.
- `cluster_storm`: a fanout through the first instance, then one YES per caregiver, all at
  the same instant, spread over three instances: exactly one winner; beside the same storm
  on one daemon on SQLite.

Each daemon and database backend is measured for the CPU it used during the load (from
/proc), so a figure comes with where its time went. Where PostgreSQL does not answer, each
scenario returns the reason and nothing else.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trio

from shiftd.testing.cluster import Cluster
from shiftd.testing.daemon import Daemon
from shiftd.testing.waiting import wait_for

from . import postgres
from .common import Size, run_loadgen, workdir
from .seed import seed_database
from .stats import phone_of, raise_fd_limit

_TTL = "15s"  # the default: shorter leases drop partitions when a loaded machine is slow
_FORWARD_WAIT = "30s"  # a storm's forwarded accepts are answered, not timed out
# A storm's last answers on a loaded machine may come later than the default 30 s of
# `control.request_timeout`: they are measured rather than cut.
_REQUEST_TIMEOUT = "60s"
_CONTROL = f'control:\n  request_timeout: "{_REQUEST_TIMEOUT}"\n'
_START = 180.0  # seconds a daemon may take to answer its first ping on a loaded machine
_PER_SHIFT = 40  # offers per seeded shift (each caregiver holds one)
_TICK = os.sysconf("SC_CLK_TCK")


# ---- CPU from /proc ------------------------------------------------------------------------


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds process `pid` has used (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _backends(database: str) -> dict[int, float]:
    """The PostgreSQL server processes serving `database` (their title names it), with
    their CPU seconds so far: visible where the server runs on this machine."""
    found: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                title = f.read().decode(errors="replace")
        except OSError:
            continue
        if title.startswith("postgres:") and f" {database} " in title:
            found[int(entry)] = _cpu_s(int(entry))
    return found


class CpuWatch:
    """CPU used by the daemons and by their database's server processes between `start()`
    and `stop()`. A backend that ends before `stop()` is not seen (the daemons keep their
    connections open)."""

    def __init__(self, daemons: list[Daemon], database: str | None) -> None:
        self._pids = [d.proc.pid for d in daemons if d.proc is not None]
        self._database = database

    def start(self) -> None:
        self._daemons = sum(_cpu_s(p) for p in self._pids)
        self._db = _backends(self._database) if self._database else {}

    def stop(self) -> dict[str, float | None]:
        daemons = sum(_cpu_s(p) for p in self._pids) - self._daemons
        db: float | None = None
        if self._database:
            now = _backends(self._database)
            db = sum(cpu - self._db.get(pid, 0.0) for pid, cpu in now.items()) if now else None
        return {"daemons_cpu_s": round(daemons, 3), "database_cpu_s": _round(db)}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _per_message_us(cpu: dict[str, float | None], n: int) -> dict[str, float | None]:
    return {
        f"{key.removesuffix('_cpu_s')}_cpu_us_per_message": (
            None if value is None else round(value / n * 1e6, 1)
        )
        for key, value in cpu.items()
    }


# ---- the daemons ---------------------------------------------------------------------------


def _warnings(daemons: list[Daemon]) -> dict[str, int]:
    """How many times each warning or error event was logged, over the daemons' logs (a
    lost lease, a fenced write, a forwarded request unanswered: what a slow figure may
    owe to)."""
    found: Counter[str] = Counter()
    for daemon in daemons:
        for line in daemon.log_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("level") in ("warning", "error"):
                found[str(entry.get("event"))] += 1
    return dict(found)


def _measured_load(
    daemons: list[Daemon], database: str | None, spec: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, float | None]]:
    """The load generator's run of `spec` over the daemons' sockets (from this worker
    thread, through Trio), with the warnings the daemons logged; and the CPU the daemons
    and their database used meanwhile."""
    cpu = CpuWatch(daemons, database)
    cpu.start()
    load = trio.from_thread.run(run_loadgen, {"sockets": [str(d.socket) for d in daemons], **spec})
    load["daemon_warnings"] = _warnings(daemons)
    return load, cpu.stop()


Seed = Callable[[Path | str], object]


def _no_seed(where: Path | str) -> None:
    return None


@contextmanager
def _instances(
    backend: str, count: int, root: Path, seed: Seed = _no_seed
) -> Iterator[tuple[list[Daemon], str | None]]:
    """`count` daemons in `root`, started, each answering on its control socket; and the
    name of their PostgreSQL database (None on SQLite). `backend`: "sqlite" (one daemon),
    "postgres" (one daemon on a fresh database, no `cluster` section) or "cluster". `seed`
    fills the database (an SQLite path, or a URL) before the daemons start. Escalations
    are an hour away: none fires while we measure. Killed on leaving."""
    started: list[Daemon] = []
    try:
        yield from _started(backend, count, root, seed, started)
    except BaseException:
        for daemon in started:  # the workdir goes with the run: say what the daemons said
            print(f"--- {daemon.workdir.name}: daemon.log (end)", file=sys.stderr)
            print(daemon.log_text()[-3000:], file=sys.stderr)
        raise


def _started(
    backend: str, count: int, root: Path, seed: Seed, started: list[Daemon]
) -> Iterator[tuple[list[Daemon], str | None]]:
    if backend == "sqlite":
        (root / "a" / "state").mkdir(parents=True)
        seed(root / "a" / "state" / "shiftd.sqlite3")
        with _alone(
            Daemon(root / "a", escalation_delay="1h", extra_config=_CONTROL), started
        ) as one:
            yield one, None
        return
    with postgres.database() as url:
        database = url.rpartition("/")[2]
        seed(url)
        if backend == "postgres":
            (root / "a").mkdir()
            store = f'store:\n  url: "{url}"\n'
            daemon = Daemon(root / "a", escalation_delay="1h", extra_config=store + _CONTROL)
            with _alone(daemon, started) as one:
                yield one, database
            return
        cluster = Cluster(
            url,
            root,
            ttl=_TTL,
            escalation_delay="1h",
            forward_wait=_FORWARD_WAIT,
            request_timeout=_REQUEST_TIMEOUT,
        )
        try:
            for name in "abc"[:count]:
                started.append(cluster.start(name, _START))
            daemons = list(started)
            wait_for(cluster.balanced, _START, "every instance to hold its share of the partitions")
            yield daemons, database
        finally:
            cluster.stop()


@contextmanager
def _alone(daemon: Daemon, started: list[Daemon]) -> Iterator[list[Daemon]]:
    """`daemon` started (and added to `started`), alone; killed on leaving."""
    started.append(daemon)
    try:
        yield [daemon.start(_START)]
    finally:
        daemon.ensure_gone()


# ---- inbound throughput --------------------------------------------------------------------


def _inbound_run(backend: str, count: int, messages: int, connections: int) -> dict[str, Any]:
    """`messages` declines ("NO", each from a caregiver holding one offer) over
    `connections` connections spread over the instances' sockets, closed loop."""
    shifts = -(-messages // _PER_SHIFT)
    spec = {"shifts": shifts, "offers_per_shift": _PER_SHIFT, "stride": _PER_SHIFT}
    with (
        workdir("cluster") as root,
        _instances(backend, count, root, lambda db: seed_database(db, **spec)) as (
            daemons,
            database,
        ),
    ):
        load, used = _measured_load(
            daemons,
            database,
            {
                "mode": "closed",
                "connections": connections,
                "total": messages,
                "requests": {"kind": "inbound", "body": "NO", "first": 0, "count": messages},
            },
        )
    return {
        "backend": backend,
        "instances": count,
        "load": load,
        **used,
        **_per_message_us(used, messages),
    }


def _pgbench(seconds: int, clients: int) -> dict[str, Any]:
    """`pgbench -N` (simple-update: an UPDATE, a SELECT and an INSERT, one commit per
    transaction) with `clients` clients for `seconds`, on a fresh database initialised by
    `pgbench -i`."""
    if shutil.which("pgbench") is None:
        return {"skipped": "pgbench is not installed: no database ceiling"}
    with postgres.database() as url:
        init = subprocess.run(["pgbench", "-i", "-q", url], capture_output=True, text=True)
        if init.returncode != 0:
            return {"skipped": f"pgbench -i failed: {init.stderr.strip()[-300:]}"}
        args = ["-N", "-c", str(clients), "-j", str(min(clients, 2)), "-T", str(seconds)]
        run = subprocess.run(["pgbench", *args, url], capture_output=True, text=True)
    found = re.search(r"tps = ([0-9.]+) \(without initial connection time\)", run.stdout)
    if run.returncode != 0 or found is None:
        return {"skipped": f"pgbench failed: {(run.stderr or run.stdout).strip()[-300:]}"}
    latency = re.search(r"latency average = ([0-9.]+) ms", run.stdout)
    return {
        "clients": clients,
        "seconds": seconds,
        "tps": float(found.group(1)),
        "latency_avg_ms": float(latency.group(1)) if latency else None,
    }


async def cluster_inbound(size: Size) -> dict[str, Any]:
    """Inbound declines/s through one, two and three instances of a cluster, beside one
    daemon on SQLite, one on PostgreSQL without a cluster and pgbench's simple-update rate."""
    reason = postgres.unreachable()
    if reason is not None:
        return {"skipped": f"PostgreSQL is not answering: {reason}"}
    raise_fd_limit()
    n, conns = size.cluster_messages, size.inbound_connections
    runs = [("sqlite", 1), ("postgres", 1), ("cluster", 1), ("cluster", 2), ("cluster", 3)]
    out: dict[str, Any] = {}
    for backend, count in runs:
        key = f"{backend}_{count}" if backend == "cluster" else backend
        out[key] = await trio.to_thread.run_sync(_inbound_run, backend, count, n, conns)
    out["pgbench"] = await trio.to_thread.run_sync(_pgbench, size.pgbench_seconds, 8)
    # Server processes of our own databases, which the machine watch counts as others'.
    out["database_cpu_s"] = round(
        sum(r.get("database_cpu_s") or 0.0 for r in out.values() if isinstance(r, dict)), 3
    )
    return out


# ---- claim storm across instances ------------------------------------------------------------

_STORM_SHIFT = "sh-storm"


def _import_storm_roster(daemon: Daemon, n: int) -> None:
    """Caregivers 0…n-1 (RN, phone `phone_of(i)`) and one RN shift tomorrow, imported in
    pieces that fit a control request line."""
    for first in range(0, n, 200):
        caregivers = [
            {"id": f"cg-{i:07d}", "name": f"Carer {i}", "role": "RN", "phone": phone_of(i)}
            for i in range(first, min(n, first + 200))
        ]
        daemon.call("roster.import", caregivers=caregivers, shifts=[])
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    shift = {
        "id": _STORM_SHIFT,
        "role_required": "RN",
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(hours=8)).isoformat(),
    }
    daemon.call("roster.import", caregivers=[], shifts=[shift])


def _storm_run(backend: str, count: int, n: int) -> dict[str, Any]:
    """`n` caregivers offered the shift through the first instance, then each answers YES
    on a connection of its own at the same instant, spread over the instances."""
    with workdir("storm") as root, _instances(backend, count, root) as (daemons, database):
        first = daemons[0]
        _import_storm_roster(first, n)
        first.call_when_available("fanout", shift_id=_STORM_SHIFT)

        def offers() -> bool:
            sent = [m for d in daemons for m in d.messages() if m["purpose"] == "offer"]
            return len(sent) >= n

        wait_for(offers, 120, "every offer to be handed to the provider")
        storm, used = _measured_load(
            daemons,
            database,
            {
                "mode": "storm",
                "connections": n,
                "requests": {"kind": "inbound", "body": "YES", "first": 0, "count": n},
            },
        )
        shift = first.call("shift.show", shift_id=_STORM_SHIFT)["shift"]
    winners = storm["winners"]
    winner = f"cg-{winners[0]:07d}" if winners else None
    return {
        "backend": backend,
        "instances": count,
        "caregivers": n,
        "storm": storm,
        **used,
        "winners": len(winners),
        "winner": winner,
        "stored_state": shift["state"],
        "stored_winner": shift["claimed_by"],
        "exactly_one_winner": (
            len(winners) == 1
            and shift["state"] == "filled"
            and shift["claimed_by"] == winner
            and storm["outcomes"] == {"claimed": 1, "already_filled": n - 1}
        ),
    }


async def cluster_storm(size: Size) -> dict[str, Any]:
    """A fanout through the first instance, then `cluster_storm_caregivers` simultaneous
    YES spread over three instances; beside the same storm on one daemon on SQLite."""
    reason = postgres.unreachable()
    if reason is not None:
        return {"skipped": f"PostgreSQL is not answering: {reason}"}
    raise_fd_limit()
    n = size.cluster_storm_caregivers
    out: dict[str, Any] = {
        "sqlite": await trio.to_thread.run_sync(_storm_run, "sqlite", 1, n),
        "cluster_3": await trio.to_thread.run_sync(_storm_run, "cluster", 3, n),
    }
    out["database_cpu_s"] = out["cluster_3"]["database_cpu_s"] or 0.0
    return out
