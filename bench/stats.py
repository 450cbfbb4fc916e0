"""Measuring helpers with no shiftd imports, so the load generator starts quickly."""

from __future__ import annotations

import gc
import os
import resource
import time
from collections.abc import Sequence
from typing import Any

PAGE = os.sysconf("SC_PAGE_SIZE")


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of `values` (need not be sorted); NaN when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def latency_ms(values: Sequence[float]) -> dict[str, float]:
    """p50/p99/max (and n) of latencies given in seconds, in milliseconds."""
    return {
        "n": len(values),
        "p50_ms": round(percentile(values, 50) * 1e3, 3),
        "p99_ms": round(percentile(values, 99) * 1e3, 3),
        "max_ms": round(max(values) * 1e3, 3) if values else float("nan"),
    }


def rss_bytes() -> int:
    """Resident set size of this process now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def raise_fd_limit() -> None:
    """1,000 connections need more than the common soft limit of 1,024 descriptors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def phone_of(n: int) -> str:
    """Caregiver n's phone; normalisation keeps it as it is."""
    return f"+1555{n:07d}"


class GcWatch:
    """Counts garbage collections and their pauses while active (a context manager)."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._started))

    def __enter__(self) -> GcWatch:
        gc.callbacks.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self)

    def summary(self) -> dict[str, Any]:
        by_gen = {g: sum(1 for gen, _ in self.pauses if gen == g) for g in (0, 1, 2)}
        longest = max((p for _, p in self.pauses), default=0.0)
        return {
            "collections_by_generation": by_gen,
            "longest_pause_ms": round(longest * 1e3, 3),
            "total_pause_ms": round(sum(p for _, p in self.pauses) * 1e3, 3),
        }


def _busy_seconds() -> float:
    """CPU seconds all processes of the machine have used since boot (from /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # finished children: load generators
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


class MachineWatch:
    """How much CPU other processes used while we measured: a benchmark on a busy machine
    is flagged rather than trusted."""

    def __enter__(self) -> MachineWatch:
        self._wall = time.perf_counter()
        self._busy = _busy_seconds()
        self._own = _own_seconds()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self._wall
        self.own = _own_seconds() - self._own
        self.other = max(0.0, _busy_seconds() - self._busy - self.own)

    def summary(self, also_ours: float = 0.0) -> dict[str, float]:
        """`also_ours`: CPU seconds of processes this one did not start but set to work (the
        database server's processes for our databases), not counted as others' load."""
        cpus = len(os.sched_getaffinity(0))
        other = max(0.0, self.other - also_ours)
        return {
            "own_cpu_s": round(self.own, 2),
            "other_cpu_s": round(other, 2),
            "other_share": round(other / (self.wall * cpus), 3) if self.wall else 0.0,
        }


class LongestStep:
    """A Trio instrument: the longest task steps (the loop runs nothing else meanwhile) and
    which tasks took them, to explain a late timer."""

    def __init__(self, keep: int = 5) -> None:
        self._keep = keep
        self._started = time.perf_counter()  # the task that installs it is mid-step
        self.steps: list[tuple[float, str]] = []

    def before_task_step(self, task: Any) -> None:
        self._started = time.perf_counter()

    def after_task_step(self, task: Any) -> None:
        took = time.perf_counter() - self._started
        if len(self.steps) < self._keep or took > self.steps[-1][0]:
            self.steps.append((took, task.name))
            self.steps.sort(reverse=True)
            del self.steps[self._keep :]

    def summary(self) -> list[dict[str, Any]]:
        return [{"ms": round(took * 1e3, 2), "task": name} for took, name in self.steps]
