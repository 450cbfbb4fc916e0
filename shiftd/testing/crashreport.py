"""The crash run's settings and what it found: restarts, lost messages, violations."""

from __future__ import annotations

import statistics
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class CrashSettings:
    """What a crash run does. Times in seconds of real time."""

    kills: int = 20
    """Faults to make: kills (and, with several instances, pauses)."""
    seed: int = 0
    workdir: Path | None = None
    """Where the daemon's state goes (default: a fresh directory under /tmp, removed after
    a run without violations)."""
    caregivers: int = 10
    escalation_delay: int = 2
    """The default policy's delay from texts to calls (whole seconds: the config's unit)."""
    longest_round: float = 1.5
    """Longest stretch of workload before a kill."""
    startup_kill_rate: float = 0.15
    """Share of kills that land during start-up (recovery) rather than under load."""
    restart_bound: float = 30.0
    """The daemon must answer `ping` this long after it is started, every time."""
    due_bound: float = 15.0
    """Waves due when the daemon comes back must have run this long after it answers."""
    send_grace: float = 5.0
    """A text handed to the provider just before a STOP may arrive this long after it."""
    python: str = sys.executable
    progress: bool = False
    """Print a line every 25 kills."""
    instances: int = 1
    """More than one: a cluster on a fresh PostgreSQL database (`crashcluster`)."""
    lease_ttl: float = 2.0
    """A cluster's `cluster.lease_ttl` (seconds)."""
    pause_rate: float = 0.4
    """In a cluster, the share of faults that SIGSTOP an instance (for a random time around
    the lease TTL, then SIGCONT) rather than SIGKILL it."""
    takeover_margin: float = 10.0
    """In a cluster, a wave falls due at most TTL + TTL/3 (a takeover) + this after its
    stored instant or the last fault, whichever is later (a busy machine's slack)."""


@dataclass
class CrashReport:
    """What a crash run measured and found."""

    seed: int
    kills: int = 0
    """Faults made: kills, and pauses (counted in `pauses` too)."""
    startup_kills: int = 0
    pauses: int = 0
    instances: int = 1
    restart_seconds: list[float] = field(default_factory=list)
    cost: list[int] = field(default_factory=list)
    """Per kill: outbox rows it caught `sending` (failed on restart, never re-sent)."""
    due_lag: list[float] = field(default_factory=list)
    """Per restart with waves due: seconds from answering to having run them all."""
    call_lateness: list[float] = field(default_factory=list)
    """Per fanout (and reopening) that reached its calls: seconds from the stored instant
    to the first call queued, read from the store at the end."""
    actions: Counter[str] = field(default_factory=Counter)
    outcomes: Counter[str] = field(default_factory=Counter)
    provider: Counter[str] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)
    final_exit: int | None = None
    workdir: str = ""
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.violations and self.final_exit == 0

    def summary(self) -> str:
        """The figures, as printed at the end of a run."""
        r = sorted(self.restart_seconds) or [0.0]
        lost = sum(self.cost)
        hit = sum(1 for c in self.cost if c)
        late = sorted(self.call_lateness) or [0.0]
        if self.instances > 1:
            first = (
                f"seed {self.seed}: {self.instances} instances, {self.kills} faults"
                f" ({self.kills - self.pauses} kills, {self.pauses} pauses) in {self.elapsed:.0f}s"
            )
        else:
            first = (
                f"seed {self.seed}: {self.kills} kills ({self.startup_kills} during start-up)"
                f" in {self.elapsed:.0f}s"
            )
        lines = [
            first,
            f"  restart to answering: median {statistics.median(r):.2f}s, max {r[-1]:.2f}s",
            f"  messages lost to crashes (caught `sending`, failed, never re-sent): {lost}"
            f" in total, {hit} of {len(self.cost)} faults cost any, at most"
            f" {max(self.cost, default=0)} per fault",
            f"  first call after its stored instant: median {statistics.median(late):.2f}s,"
            f" max {late[-1]:.2f}s ({len(self.call_lateness)} fanouts reached their calls)",
            "  workload: " + _counts(self.actions),
            "  answers: " + _counts(self.outcomes),
            "  provider: " + _counts(self.provider),
            f"  final SIGTERM exit code: {self.final_exit}",
        ]
        if self.instances == 1:
            lines.insert(
                3,
                f"  waves due at restart ran within {max(self.due_lag, default=0.0):.2f}s of"
                f" the start ({len(self.due_lag)} restarts had some due)",
            )
        if self.violations:
            lines.append(f"  VIOLATIONS ({len(self.violations)}):")
            lines += [f"    {v}" for v in self.violations[:50]]
        else:
            lines.append("  every invariant held after every restart")
        return "\n".join(lines)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items())) or "none"
