"""How simulated caregivers answer: given as parameters, or learned from a store's history.

A responder decides, for one message reaching one caregiver, whether they answer, after how
long, and whether they take the shift. Every draw comes from the hash of the run's seed and
the message's identity (shift, caregiver, channel, how many messages of
that channel this caregiver already had for the shift), never from a shared sequence: the
order in which the engine happens to send simultaneous messages cannot change the answers,
so a seed gives the same month every time.
"""

from __future__ import annotations

import hashlib
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Protocol

from ..models import Channel

ACCEPT = {Channel.SMS: "yes", Channel.VOICE: "1"}
DECLINE = {Channel.SMS: "no", Channel.VOICE: "2"}
_SHRINK = 5.0
"""Pseudo-observations pulling a caregiver's own rates towards everybody's: with few offers
on record a caregiver looks like the average, with many like themselves."""
_OWN_DELAYS = 5
"""A caregiver's own delays are sampled once they have this many on record."""


@dataclass(frozen=True, slots=True)
class Reply:
    """A caregiver's answer to one message: ``after`` it reached them, ``body`` on ``channel``."""

    after: timedelta
    body: str
    channel: Channel
    accepts: bool


class Responder(Protocol):
    def respond(
        self, seed: int, shift_id: str, caregiver_id: str, channel: Channel, nth: int, at: datetime
    ) -> Reply | None:
        """The answer to the ``nth`` (0-based) offer on ``channel`` for ``shift_id`` reaching
        ``caregiver_id`` at ``at``, or None when they do not answer. Deterministic in its
        arguments."""
        ...


_DRAW_MASK = (1 << 53) - 1


class Draws:
    """The random draws owned by one message: up to eight uniform numbers, the BLAKE2b hash of
    its identity cut in eight (the same on every run and machine). Five times cheaper than
    seeding a `random.Random` per message, which a month does hundreds of thousands of times.
    """

    __slots__ = ("_bits",)

    def __init__(self, identity: str) -> None:
        digest = hashlib.blake2b(identity.encode(), digest_size=64).digest()
        # A one above the hash's 512 bits marks where they end.
        self._bits = int.from_bytes(digest, "little") | 1 << 512

    def random(self) -> float:
        """A number in [0, 1): 53 of the next 64 bits of the hash. IndexError past the
        eighth draw."""
        if self._bits == 1:
            raise IndexError("a message's draws are spent (eight at most)")
        value = self._bits & _DRAW_MASK
        self._bits >>= 64
        return value * 2.0**-53

    def gauss(self, mu: float, sigma: float) -> float:
        """A normal draw (Box-Muller, two uniform draws)."""
        radius = math.sqrt(-2.0 * math.log(1.0 - self.random()))
        return mu + sigma * radius * math.cos(2.0 * math.pi * self.random())

    def choice(self, values: Sequence[float]) -> float:
        return values[int(self.random() * len(values))]


def rng_for(seed: int, shift_id: str, caregiver_id: str, channel: Channel, nth: int) -> Draws:
    """The draws owned by one message."""
    return Draws(f"{seed}\x1f{shift_id}\x1f{caregiver_id}\x1f{channel.value}\x1f{nth}")


@dataclass(frozen=True, slots=True)
class Parameters:
    """Everybody answers alike: the model when there is no history to learn from.

    Delays are log-normal around their median (``spread`` is the sigma of the log), so most
    answers come soon and a few much later, as in life.
    """

    answer_sms: float = 0.6
    answer_voice: float = 0.5
    accept: float = 0.35
    delay_sms: timedelta = timedelta(minutes=6)
    delay_voice: timedelta = timedelta(seconds=40)
    spread: float = 1.0

    def __post_init__(self) -> None:
        for name in ("answer_sms", "answer_voice", "accept"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name.replace('_', '-')} must be between 0 and 1, got {value}")
        for name in ("delay_sms", "delay_voice"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name.replace('_', '-')} must be longer than 0s")
        if self.spread < 0:
            raise ValueError(f"spread must not be negative, got {self.spread}")

    def answer_rate(self, channel: Channel) -> float:
        return self.answer_voice if channel is Channel.VOICE else self.answer_sms

    def median_delay(self, channel: Channel) -> timedelta:
        return self.delay_voice if channel is Channel.VOICE else self.delay_sms

    def respond(
        self, seed: int, shift_id: str, caregiver_id: str, channel: Channel, nth: int, at: datetime
    ) -> Reply | None:
        rng = rng_for(seed, shift_id, caregiver_id, channel, nth)
        if rng.random() >= self.answer_rate(channel):
            return None
        median = self.median_delay(channel).total_seconds()
        after = timedelta(seconds=median * math.exp(rng.gauss(0.0, self.spread)))
        return _reply(after, channel, rng.random() < self.accept)


def _reply(after: timedelta, channel: Channel, accepts: bool) -> Reply:
    body = ACCEPT[channel] if accepts else DECLINE[channel]
    # Never the same instant as the message: an answer takes at least a second.
    return Reply(max(after, timedelta(seconds=1)), body, channel, accepts)


@dataclass(frozen=True, slots=True)
class Offered:
    """One offer from the history: who got it, on which channel, when; what came of it."""

    shift_id: str
    caregiver_id: str
    channel: Channel
    at: datetime
    answered_after: timedelta | None = None
    accepted: bool | None = None


@dataclass(slots=True)
class _Habits:
    offers: dict[Channel, int] = field(default_factory=lambda: defaultdict(int))
    answers: dict[Channel, int] = field(default_factory=lambda: defaultdict(int))
    delays: dict[Channel, list[float]] = field(default_factory=lambda: defaultdict(list))
    accepts: int = 0
    decisions: int = 0


class Learned:
    """Answers drawn from what each caregiver did before.

    - answer probability: everybody's rate for the channel at that local hour of the day,
      scaled by how this caregiver compares with everybody on that channel (shrunk towards 1
      when they have few offers on record);
    - delay: one of this caregiver's own delays on the channel when they have enough, else
      one of everybody's, else the fallback parameters' distribution;
    - accept or decline: the caregiver's own ratio, shrunk towards everybody's.

    A caregiver absent from the history behaves like the average caregiver.
    """

    def __init__(self, offers: Iterable[Offered], tz: tzinfo, fallback: Parameters) -> None:
        self.tz = tz
        self.fallback = fallback
        self.habits: dict[str, _Habits] = defaultdict(_Habits)
        hourly_offers = {c: [0] * 24 for c in (Channel.SMS, Channel.VOICE)}
        hourly_answers = {c: [0] * 24 for c in (Channel.SMS, Channel.VOICE)}
        self.pool: dict[Channel, list[float]] = {Channel.SMS: [], Channel.VOICE: []}
        accepts = decisions = 0
        self.offers = 0
        for offer in offers:
            if offer.channel not in hourly_offers:
                continue
            self.offers += 1
            habits = self.habits[offer.caregiver_id]
            hour = offer.at.astimezone(tz).hour
            habits.offers[offer.channel] += 1
            hourly_offers[offer.channel][hour] += 1
            if offer.answered_after is not None:
                habits.answers[offer.channel] += 1
                hourly_answers[offer.channel][hour] += 1
                seconds = max(1.0, offer.answered_after.total_seconds())
                habits.delays[offer.channel].append(seconds)
                self.pool[offer.channel].append(seconds)
            if offer.accepted is not None:
                habits.decisions += 1
                habits.accepts += offer.accepted
                decisions += 1
                accepts += offer.accepted
        for delays in (
            *self.pool.values(),
            *(d for h in self.habits.values() for d in h.delays.values()),
        ):
            delays.sort()  # so a draw does not depend on the order the history was read in
        self.accept_rate = accepts / decisions if decisions else fallback.accept
        self.channel_rate: dict[Channel, float] = {}
        self.hourly: dict[Channel, list[float]] = {}
        for channel in hourly_offers:
            sent, answered = sum(hourly_offers[channel]), sum(hourly_answers[channel])
            rate = answered / sent if sent else fallback.answer_rate(channel)
            self.channel_rate[channel] = rate
            self.hourly[channel] = [
                (a + _SHRINK * rate) / (n + _SHRINK)
                for n, a in zip(hourly_offers[channel], hourly_answers[channel], strict=True)
            ]

    def answer_probability(self, caregiver_id: str, channel: Channel, at: datetime) -> float:
        base = self.hourly[channel][at.astimezone(self.tz).hour]
        habits = self.habits.get(caregiver_id)
        overall = self.channel_rate[channel]
        if habits is None or overall <= 0:
            return base
        own = (habits.answers[channel] + _SHRINK * overall) / (habits.offers[channel] + _SHRINK)
        return min(1.0, base * own / overall)

    def accept_probability(self, caregiver_id: str) -> float:
        habits = self.habits.get(caregiver_id)
        if habits is None:
            return self.accept_rate
        return (habits.accepts + _SHRINK * self.accept_rate) / (habits.decisions + _SHRINK)

    def respond(
        self, seed: int, shift_id: str, caregiver_id: str, channel: Channel, nth: int, at: datetime
    ) -> Reply | None:
        rng = rng_for(seed, shift_id, caregiver_id, channel, nth)
        if rng.random() >= self.answer_probability(caregiver_id, channel, at):
            return None
        habits = self.habits.get(caregiver_id)
        own = habits.delays[channel] if habits is not None else []
        delays: Sequence[float] = own if len(own) >= _OWN_DELAYS else self.pool[channel]
        if delays:
            after = timedelta(seconds=rng.choice(delays))
        else:
            median = self.fallback.median_delay(channel).total_seconds()
            after = timedelta(seconds=median * math.exp(rng.gauss(0.0, self.fallback.spread)))
        return _reply(after, channel, rng.random() < self.accept_probability(caregiver_id))

    def describe(self) -> dict[str, object]:
        """The learned figures in brief, for the report."""
        return {
            "offers on record": self.offers,
            "caregivers on record": len(self.habits),
            "answer rate (sms)": round(self.channel_rate[Channel.SMS], 3),
            "answer rate (voice)": round(self.channel_rate[Channel.VOICE], 3),
            "accept ratio": round(self.accept_rate, 3),
            "median delay sms (s)": _median(self.pool[Channel.SMS]),
            "median delay voice (s)": _median(self.pool[Channel.VOICE]),
        }


def _median(values: Sequence[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None
