"""Escalation policies: who hears of an open shift, over which channel, and when.

A policy is an ordered list of steps (see `StepConfig`). When a fanout starts, its steps are
expanded into *waves* (a step, then each of its repeats) and the plan is stored with the
shift, so a restart or a configuration reload never changes a fanout already running. The
actor runs the waves in order, each at its offset from the start (a release restarts the
plan from its first wave, timed from the release). Quiet hours may hold a wave back; the
waves after it keep their spacing.

Who a wave reaches is decided by the rules (`shiftd.shifts.machine`): everyone
with the role (`all`) or only those an earlier wave reached (`offered`), optionally only
those carrying one of `tags`, never a decliner, a releaser, someone holding an overlapping
shift, or an opted-out phone (for calls, unless the policy allows it). A wave's first round
skips anyone already reached on its channel; a repeat round reaches the step's audience
again, which is what a second call round is for.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo
from functools import lru_cache

from ..config import QuietHoursConfig, StepConfig
from ..models import Channel


@dataclass(frozen=True, slots=True)
class Wave:
    """One round of one policy step, as planned when the fanout starts."""

    offset: timedelta
    """From the start of the fanout (or of the reopening after a release)."""
    channel: Channel
    audience: str
    """``all`` or ``offered``."""
    tags: tuple[str, ...]
    step: int
    round: int
    """0 for the step itself, 1… for its repeats."""

    @property
    def key_suffix(self) -> str:
        """What makes a repeat's outbox keys differ from the first round's (which skip
        anyone already reached on the channel)."""
        return f":s{self.step}r{self.round}" if self.round else ""

    def describe(self) -> dict[str, object]:
        """For the timeline and the operator's view."""
        return {
            "step": self.step,
            "round": self.round,
            "channel": self.channel.value,
            "audience": self.audience,
            "tags": list(self.tags),
        }


def default_steps(delay: timedelta) -> tuple[StepConfig, ...]:
    """The built-in policy: SMS to everyone with the role at once, calls to those who have
    not declined after `delay`."""
    return (
        StepConfig(at=timedelta(0), channel="sms"),
        StepConfig(at=delay, channel="voice", audience="offered"),
    )


def plan(steps: Sequence[StepConfig]) -> tuple[Wave, ...]:
    """Expand steps and their repeats into waves ordered by offset (steps in order on ties)."""
    waves = [
        Wave(
            offset=step.at + (step.repeat.every * r if step.repeat else timedelta(0)),
            channel=Channel(step.channel),
            audience=step.audience,
            tags=tuple(step.tags),
            step=index,
            round=r,
        )
        for index, step in enumerate(steps)
        for r in range((step.repeat.times if step.repeat else 0) + 1)
    ]
    return tuple(sorted(waves, key=lambda w: (w.offset, w.step, w.round)))


def dump_plan(waves: Sequence[Wave]) -> str:
    """The plan as stored with the shift (compact JSON)."""
    return json.dumps(
        [
            [w.offset.total_seconds(), w.channel.value, w.audience, list(w.tags), w.step, w.round]
            for w in waves
        ],
        separators=(",", ":"),
    )


@lru_cache(maxsize=256)
def load_plan(text: str) -> tuple[Wave, ...]:
    """The inverse of `dump_plan`. Cached: thousands of shifts share a handful of plans.

    Raises ValueError for text that `dump_plan` did not write.
    """
    try:
        return tuple(
            Wave(timedelta(seconds=o), Channel(c), a, tuple(t), s, r)
            for o, c, a, t, s, r in json.loads(text)
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a stored plan: {exc}") from None


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Hours (local time, possibly spanning midnight) when some channels stay silent."""

    start: time
    end: time
    channels: frozenset[Channel]
    unless_starts_within: timedelta
    tz: tzinfo

    @classmethod
    def from_config(cls, config: QuietHoursConfig, tz: tzinfo) -> QuietHours:
        return cls(
            config.start,
            config.end,
            frozenset(Channel(c) for c in config.channels),
            config.unless_starts_within,
            tz,
        )

    def hold_until(self, channel: Channel, at: datetime, shift_start: datetime) -> datetime | None:
        """When a wave on `channel` due at `at` may run: the end of the quiet hours `at` falls
        in, or None if it may run now (not quiet, another channel, or the shift starts within
        `unless_starts_within`)."""
        if channel not in self.channels or self.start == self.end:
            return None
        if shift_start - at <= self.unless_starts_within:
            return None
        local = at.astimezone(self.tz)
        now = local.time()
        if self.start < self.end:
            quiet, ends_on = self.start <= now < self.end, local.date()
        else:  # spans midnight, e.g. 21:00-07:00
            quiet = now >= self.start or now < self.end
            ends_on = local.date() + timedelta(days=1 if now >= self.start else 0)
        if not quiet:
            return None
        return datetime.combine(ends_on, self.end, tzinfo=self.tz).astimezone(UTC)
