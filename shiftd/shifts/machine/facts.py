"""What a transition is decided from: the shift's state in memory and the facts read for it."""

from __future__ import annotations

from collections.abc import Collection, Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from ...store.base import CaregiverRow, ShiftRow
from ..organizations import Organization
from ..policy import Wave, load_plan


@dataclass(frozen=True, slots=True)
class Offer:
    """One caregiver's offer of the shift, as far as the rules care."""

    code: int
    declined: bool = False
    released: bool = False
    """She gave the shift back: never offered it again."""
    reached: frozenset[str] = frozenset()
    """Tails of the offer messages queued to her (`sms`, `voice:g1`, `voice:s1r1`…): a
    first round never reaches her twice on a channel."""

    def with_code(self, code: int) -> Offer:
        """This offer with the reply code the store gave it (`replace` costs several times
        more, and a wave of thousands makes one each)."""
        return Offer(code, self.declined, self.released, self.reached)

    def as_declined(self) -> Offer:
        """This offer, declined."""
        return Offer(self.code, True, self.released, self.reached)


@dataclass(frozen=True, slots=True)
class State:
    """What an actor knows of its shift. `version` guards every write: the store refuses a
    transition made from a state that is no longer the stored one."""

    shift: ShiftRow
    offers: Mapping[str, Offer]
    version: int
    told: frozenset[tuple[str, int]] = frozenset()
    """Coordinator notices sent (or found sent) this run, as (notice, generation)."""
    told_filled: frozenset[str] = frozenset()
    """Who the claim (this run) told the shift is filled: a late accept from one of them
    soon after is not answered again (`Claimant.told_filled_at` says it after a restart)."""

    # An answer copies the state once or twice: these cost a third of `dataclasses.replace`.
    def with_offer(self, caregiver_id: str, offer: Offer) -> State:
        """This state with `caregiver_id`'s offer now `offer` (the others as they are)."""
        offers = {**self.offers, caregiver_id: offer}
        return State(self.shift, offers, self.version, self.told, self.told_filled)

    def at_version(self, version: int) -> State:
        """This state, as stored at `version`."""
        return State(self.shift, self.offers, version, self.told, self.told_filled)


@dataclass(frozen=True, slots=True)
class Candidate:
    """One caregiver with the shift's role, as a wave sees her."""

    id: str
    phone: str
    tags: tuple[str, ...]
    language: str | None


class Roster(tuple[Candidate, ...]):
    """The caregivers of one role in roster order, as the store keeps them for every fanout
    of the role: who carries a tag, and who is on the roster at all, are answered without
    going through all of them (each index is built at its first use)."""

    @cached_property
    def ids(self) -> frozenset[str]:
        return frozenset(c.id for c in self)

    @cached_property
    def _by_tag(self) -> dict[str, tuple[int, ...]]:
        index: dict[str, list[int]] = {}
        for i, c in enumerate(self):
            for tag in c.tags:
                index.setdefault(tag, []).append(i)
        return {tag: tuple(at) for tag, at in index.items()}

    def tagged(self, tags: Collection[str]) -> list[Candidate]:
        """Those carrying any of `tags`, in roster order."""
        by_tag = self._by_tag
        found: set[int] = set()
        for tag in tags:
            found.update(by_tag.get(tag, ()))
        return [self[i] for i in sorted(found)]


def tagged(caregivers: Sequence[Candidate], tags: Collection[str]) -> Sequence[Candidate]:
    """Those of `caregivers` carrying any of `tags` (all of them when `tags` is empty), in
    their order."""
    if not tags:
        return caregivers
    if isinstance(caregivers, Roster):
        return caregivers.tagged(tags)
    wanted = set(tags)
    return [c for c in caregivers if not wanted.isdisjoint(c.tags)]


def count_free(caregivers: Sequence[Candidate], busy: Collection[str]) -> int:
    """How many of `caregivers` are not `busy` (caregiver ids, each once)."""
    if isinstance(caregivers, Roster):
        ids = caregivers.ids
        return len(caregivers) - sum(1 for cg in busy if cg in ids)
    return sum(1 for c in caregivers if c.id not in busy)


@dataclass(frozen=True, slots=True)
class Holding:
    """A filled shift someone holds: what the overlap rule is decided from."""

    shift_id: str
    caregiver_id: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Candidates:
    """The facts a wave (or a fanout's start) needs: the active caregivers with the role,
    and the filled shifts overlapping the shift's window (`Rules.window`)."""

    caregivers: Sequence[Candidate]
    """In roster order; a `Roster` (what the stores give) spares waves a pass over them."""
    holdings: tuple[Holding, ...] = ()
    opted_out: Container[str] = frozenset()
    """The phones that opted out of texts (STOP)."""
    texted: Container[str] = frozenset()
    """The phones an offer was texted to before (the first one says how to opt out)."""


@dataclass(frozen=True, slots=True)
class Claimant:
    """The facts an answer needs about the caregiver who sent it: her roster row (None if
    she is gone), the filled shifts of hers overlapping the window, and when she was last
    told this shift is filled (None: never)."""

    caregiver: CaregiverRow | None
    holdings: tuple[Holding, ...] = ()
    told_filled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Reached:
    """A caregiver an offer of this generation reached (handed to the provider)."""

    caregiver_id: str
    language: str | None
    phone: str | None = None
    """Her phone as read with this (None: looked up as the message is queued)."""


@dataclass(frozen=True, slots=True)
class Rules:
    """What the rules depend on besides the state: the shift's organization and the
    engine-wide settings."""

    org: Organization
    call_gap: timedelta = timedelta(0)
    public_url: str | None = None

    def waves(self, shift: ShiftRow) -> tuple[Wave, ...]:
        # A fanout follows the plan it started with, whatever the configuration says now.
        return load_plan(shift.plan) if shift.plan else self.org.waves

    def window(self, shift: ShiftRow) -> tuple[datetime, datetime]:
        """The span another shift of the same caregiver may not overlap (travel included)."""
        buffer = self.org.travel_buffer
        return shift.start_time - buffer, shift.end_time + buffer
