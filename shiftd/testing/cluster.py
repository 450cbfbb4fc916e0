"""Several real daemons on one PostgreSQL database (`cluster` configured), for process
tests of what happens across instances: who holds which partition, kills and pauses."""

from __future__ import annotations

import signal
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from ..cluster.partitions import DEFAULT_PARTITIONS, partition_of
from .daemon import Daemon


class Cluster:
    """Daemons named `a`, `b`… in `workdir/<name>`, each with its own state directory and
    record file, all on the database at `url`, with leases of `ttl` (e.g. "2s"); a request
    forwarded to a shift's owner waits `forward_wait` for its answer, a control request
    `request_timeout` (`control.request_timeout`)."""

    def __init__(
        self,
        url: str,
        workdir: Path,
        *,
        ttl: str = "2s",
        escalation_delay: str = "6s",
        forward_wait: str = "5s",
        request_timeout: str = "30s",
    ) -> None:
        self.url = url
        self.workdir = workdir
        self.ttl = ttl
        self.escalation_delay = escalation_delay
        self.forward_wait = forward_wait
        self.request_timeout = request_timeout
        self.daemons: dict[str, Daemon] = {}

    def start(self, name: str, timeout: float = 30) -> Daemon:
        """Start instance `name`; returns once it answers `ping` (it holds its first share
        of partitions by then), AssertionError if not within `timeout` seconds."""
        (self.workdir / name).mkdir()
        daemon = Daemon(self.workdir / name, escalation_delay=self.escalation_delay)
        with daemon.config.open("a") as config:
            config.write(
                f'store:\n  url: "{self.url}"\n'
                f'cluster:\n  name: "{name}"\n  lease_ttl: "{self.ttl}"\n'
                f'  forward_wait: "{self.forward_wait}"\n'
                f'control:\n  request_timeout: "{self.request_timeout}"\n'
            )
        self.daemons[name] = daemon
        return daemon.start(timeout)

    def sql(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Read the database directly (`%s` placeholders)."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description is not None else []

    def owner_of(self, shift_id: str) -> str | None:
        """The name of the instance whose live lease covers the shift, if any."""
        found = self.sql(
            "SELECT owner FROM cluster_leases WHERE partition = %s AND expires_at > now()",
            (partition_of(shift_id),),
        )
        owner = found[0][0] if found else None
        return str(owner).rsplit("-", 1)[0] if owner else None

    def balanced(self) -> bool:
        """Every partition leased, and every running instance holds some."""
        rows = self.sql(
            "SELECT owner, count(*) FROM cluster_leases WHERE expires_at > now() GROUP BY owner"
        )
        alive = sum(1 for d in self.daemons.values() if d.alive())
        return len(rows) == alive and sum(n for _, n in rows) == DEFAULT_PARTITIONS

    def escalate_at(self, shift_id: str) -> datetime:
        """The shift's stored escalation instant."""
        (at,) = self.sql("SELECT escalate_at FROM shifts WHERE id = %s", (shift_id,))[0]
        return datetime.fromisoformat(at)

    def messages(self) -> list[dict[str, Any]]:
        """Every message any instance handed to its provider (the union of the records)."""
        return [m for d in self.daemons.values() for m in d.messages()]

    def stop(self) -> None:
        """Kill every instance still running (resumed first if paused)."""
        for daemon in self.daemons.values():
            if daemon.alive() and daemon.proc is not None:
                daemon.proc.send_signal(signal.SIGCONT)
            daemon.ensure_gone()
