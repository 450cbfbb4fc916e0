"""Many runs at once: each run split into its parts (`parts.split`), the parts replayed in a
pool of processes, each run's parts merged back into its result.

A run is single-threaded Python (the engine on one Trio loop), so runs and parts go to
processes. The pool's processes are *spawned*: each starts a fresh interpreter that imports
shiftd and is handed the inputs once. A forked process would inherit whatever the parent
holds: a Trio run in progress (its run context is thread-local, so `trio.run` in the child
refuses to start), the logging configuration and the stream it writes to, objects the
collector policy froze, the threads of the parent (a pytest plugin's, the pool's own). A
spawned one costs about half a second of CPU to start, once per process.

Every part of a run is replayed on the whole run's clock (`runner.Span`), with the run's
seed: the result is the whole run's, whatever the number of processes. The largest parts
are handed out first, so no process is left with a large one at the end while the others
have nothing to do. Progress goes from the parts to the parent through a queue, a few
times a second, so a progress bar moves during a single long run too.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from multiprocessing.queues import Queue

from ..config import Config
from ..logs import configure_logging
from ..models import Caregiver
from .behaviour import Responder
from .inputs import SimShift
from .parts import Part, merge, split
from .runner import RunResult, Span, run_once, span_of

_REPORT_EVERY = 0.1
"""Seconds between a part's progress reports, and between the parent's looks at them."""


@dataclass(frozen=True, slots=True)
class Run:
    """One run: a policy's configuration and the seed its caregivers answer with."""

    config: Config
    seed: int


def available_cpus() -> int:
    """How many CPUs this process may run on (its affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def run_all(
    runs: Sequence[Run],
    caregivers: Sequence[Caregiver],
    shifts: Sequence[SimShift],
    responder: Responder | None,
    *,
    jobs: int,
    on_fanout: Callable[[int], None] | None = None,
) -> list[RunResult]:
    """Replay each of ``runs`` with ``caregivers`` and ``shifts``; their results, in order.

    ``jobs`` 1: one whole run after another, in this process. More: the runs' parts in a
    pool of at most ``jobs`` processes (the same results). ``on_fanout(i)`` is called in
    this process for each fanout of run ``i``: as it happens with ``jobs`` 1, else a few
    times a second and, for a part that ends, for all of its fanouts not reported yet.
    Raises ValueError for ``jobs < 1``; raises what a run raises, after the processes
    still replaying a part have finished it (the parts not started are dropped).

    With ``jobs`` over 1, each process of the pool imports the program's main module, as
    `multiprocessing` does when it spawns: it must not run the program on import (``if
    __name__ == "__main__"``).
    """
    if jobs < 1:
        raise ValueError("jobs must be at least 1")
    if jobs == 1:
        return [
            run_once(
                run.config,
                caregivers,
                shifts,
                responder,
                run.seed,
                on_fanout=None if on_fanout is None else _fanout_of(on_fanout, i),
            )
            for i, run in enumerate(runs)
        ]
    configs = _distinct([run.config for run in runs])
    parts = [split(config, caregivers, shifts) for config in configs]
    shared = _Shared(configs, parts, responder, span_of(shifts))
    plans = [parts[configs.index(run.config)] for run in runs]
    tasks = [
        _Task(i, j, configs.index(run.config), run.seed, plans[i][j])
        for i, run in enumerate(runs)
        for j in range(len(plans[i]))
    ]
    tasks.sort(key=lambda t: -t.part.weight)  # stable: runs and parts in order on ties
    if min(jobs, len(tasks)) == 1:
        done = {(t.run, t.part_index): _in_process(shared, t, on_fanout) for t in tasks}
    else:
        done = _in_pool(shared, tasks, min(jobs, len(tasks)), on_fanout)
    return [
        merge(parts, [done[(i, j)] for j in range(len(parts))]) for i, parts in enumerate(plans)
    ]


def _fanout_of(on_fanout: Callable[[int], None], run: int) -> Callable[[], None]:
    return lambda: on_fanout(run)


def _distinct(configs: list[Config]) -> list[Config]:
    out: list[Config] = []
    for config in configs:
        if config not in out:
            out.append(config)
    return out


@dataclass(frozen=True, slots=True)
class _Task:
    run: int
    part_index: int
    config: int
    """Index in `_Shared.configs`."""
    seed: int
    part: Part


@dataclass(frozen=True, slots=True)
class _Shared:
    """What the parts of every run are replayed from: handed to each process once."""

    configs: list[Config]
    parts: list[list[Part]]
    """The parts of a run under each of `configs`."""
    responder: Responder | None
    span: Span
    """The clock of every run (they all replay the same shifts)."""

    def replay(self, config: int, part: int, seed: int, on_fanout: Callable[[], None]) -> RunResult:
        """Part ``part`` of the run under ``configs[config]`` with ``seed``."""
        chosen = self.parts[config][part]
        return run_once(
            self.configs[config],
            chosen.caregivers,
            chosen.shifts,
            self.responder,
            seed,
            on_fanout=on_fanout,
            span=self.span,
        )


def _in_process(shared: _Shared, task: _Task, on_fanout: Callable[[int], None] | None) -> RunResult:
    tick = (lambda: None) if on_fanout is None else _fanout_of(on_fanout, task.run)
    return shared.replay(task.config, task.part_index, task.seed, tick)


def _in_pool(
    shared: _Shared,
    tasks: list[_Task],
    workers: int,
    on_fanout: Callable[[int], None] | None,
) -> dict[tuple[int, int], RunResult]:
    context = multiprocessing.get_context("spawn")
    progress: Queue[tuple[int, int]] = context.Queue()
    reported = [0] * len(tasks)
    finished = [False] * len(tasks)

    def report(task: int, fanouts: int) -> None:
        if finished[task] or on_fanout is None:
            return  # a finished part's fanouts were all counted when it finished
        reported[task] += fanouts
        for _ in range(fanouts):
            on_fanout(tasks[task].run)

    done: dict[tuple[int, int], RunResult] = {}
    try:
        with ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_start_process,
            initargs=(shared, progress),
        ) as pool:
            futures: dict[Future[RunResult], int] = {
                pool.submit(_replay, n, t.config, t.part_index, t.seed): n
                for n, t in enumerate(tasks)
            }
            try:
                pending: set[Future[RunResult]] = set(futures)
                while pending:
                    ended, pending = wait(
                        pending, timeout=_REPORT_EVERY, return_when=FIRST_COMPLETED
                    )
                    _drain(progress, report)
                    for future in ended:
                        n = futures[future]
                        task = tasks[n]
                        done[(task.run, task.part_index)] = future.result()
                        report(n, len(task.part.shifts) - reported[n])
                        finished[n] = True
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        progress.close()
        progress.join_thread()
    return done


def _drain(progress: Queue[tuple[int, int]], report: Callable[[int, int], None]) -> None:
    while True:
        try:
            task, fanouts = progress.get_nowait()
        except queue.Empty:
            return
        report(task, fanouts)


# ---- in each process of the pool ---------------------------------------------------------

_shared: _Shared | None = None
_progress: Queue[tuple[int, int]] | None = None
_stopping = False


def _start_process(shared: _Shared, progress: Queue[tuple[int, int]]) -> None:
    """A pool process's start: the inputs kept, the engine's logging as `shiftd simulate`
    sets it (errors only: an unfilled shift is a figure here, not a warning)."""
    global _shared, _progress
    configure_logging("error", "auto")
    _shared, _progress = shared, progress


def _replay(task: int, config: int, part: int, seed: int) -> RunResult:
    """Replay one part (in a pool process), reporting its fanouts as it goes (the parent
    counts those not reported yet when the part ends).

    Once one part was interrupted (Ctrl-C reaches every process of the pool), the parts
    this process is handed after it are not started: they raise KeyboardInterrupt."""
    global _stopping
    shared, progress = _shared, _progress
    assert shared is not None and progress is not None, "the process was not started"
    if _stopping:
        raise KeyboardInterrupt
    fanouts = _Fanouts(progress, task)
    try:
        return shared.replay(config, part, seed, fanouts.tick)
    except KeyboardInterrupt:
        _stopping = True
        raise


class _Fanouts:
    """Counts a part's fanouts and tells the parent every `_REPORT_EVERY` seconds."""

    def __init__(self, progress: Queue[tuple[int, int]], task: int) -> None:
        self.progress = progress
        self.task = task
        self.count = 0
        self.told = time.monotonic()

    def tick(self) -> None:
        self.count += 1
        now = time.monotonic()
        if now - self.told >= _REPORT_EVERY:
            self.told = now
            self.flush()

    def flush(self) -> None:
        if self.count:
            self.progress.put((self.task, self.count))
            self.count = 0
