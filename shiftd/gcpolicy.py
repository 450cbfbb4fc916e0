"""The garbage collector's policy for a daemon holding many long-lived actors
(`shiftd run` applies it; so do the benchmarks and the simulator, which run the engine).

While the engine starts, the collector is paused: recovering allocates much and frees
little, so it would only walk the growing heap again and again (at 100,000 actors, seconds
of pauses). Once recovered, what exists lives until its shift closes, and so does what later
survives a middle-generation collection: both are frozen, out of the collector's sight, so
collections stay short (README, "Tuned while measuring": the figures).
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager


def _freeze_survivors(phase: str, info: dict[str, int]) -> None:
    """Collector callback: an object that survived a collection of the middle generation is
    long-lived (an actor's state after a message, mostly), so freeze it with the rest.

    The price: a frozen object that later dies in a reference cycle is not freed; the
    benchmarks found none (an actor's state is freed by reference counting)."""
    if phase == "stop" and info["generation"] >= 1:
        gc.freeze()


@contextmanager
def applied() -> Iterator[Callable[[], None]]:
    """Inside, the collector is paused until the `recovered()` it yields is called; that
    freezes what exists and resumes the collector, which from then on freezes what survives
    a middle-generation collection. On exit (even by an exception) nothing more is frozen,
    what stopping leaves is garbage, and the collector is as it was on entry."""
    was_enabled = gc.isenabled()
    gc.disable()
    gc.callbacks.append(_freeze_survivors)

    def recovered() -> None:
        # Frozen before the collector resumes: a first collection of the young generation
        # would otherwise walk everything allocated while it was paused.
        gc.freeze()
        if was_enabled:
            gc.enable()

    try:
        yield recovered
    finally:
        gc.callbacks.remove(_freeze_survivors)
        if was_enabled:
            gc.enable()
