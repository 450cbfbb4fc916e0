"""A run split into parts that never meet: one per role, each replayed on its own engine.

Whom a wave reaches and who may take a shift is decided by an exact match of the shift's
role with the caregiver's, both as the roster import normalises them (`roles.Roles`); all
else that ties one shift to another (a caregiver's holdings and overlaps, her reply codes,
the reply-loop guard's count, opt-outs and texted phones, the spacing of calls to a phone) is
a caregiver's or a phone's, and each caregiver has one role and one phone. So the shifts of
one role and the caregivers of that role are a run of their own: replayed alone, on the
whole run's clock (`runner.Span`), they end exactly as they do in the whole run, and the
parts' results together are the whole run's (`merge`).

A run is not split when that would not hold:

- two roster entries share an id or a phone, or two shifts an id (the import keeps one of
  them, which depends on what else is imported with it);
- a role is not on the policy's list (the whole run fails on import, and so it does here);
- the roster has more caregivers than the reply-loop guard keeps counts for (past that it
  forgets caregivers of any role, the least recently answered first).

Runs with scripted messages, a history file or a timeline are never split: a script names
caregivers of any role, a history is one store, and a timeline's order within an instant is
the order the whole engine sent in, which no merge can reproduce.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..config import Config
from ..inbound.replyguard import DEFAULT_MAX_KEYS
from ..models import Caregiver
from ..rosterimport import with_roles
from ..shifts.roles import Roles
from .inputs import SimShift
from .runner import RunResult


@dataclass(frozen=True, slots=True)
class Part:
    """Shifts of a run and the caregivers who may be offered them (none: they end unfilled)."""

    caregivers: tuple[Caregiver, ...]
    shifts: tuple[SimShift, ...]

    @property
    def weight(self) -> int:
        """How much replaying it costs, roughly: a policy that texts everyone sends each
        shift's offers to every caregiver of its role."""
        return len(self.shifts) * max(1, len(self.caregivers))


def split(
    config: Config, caregivers: Sequence[Caregiver], shifts: Sequence[SimShift]
) -> list[Part]:
    """The parts of a run of ``shifts`` with ``caregivers`` under ``config``: one per role
    some shift requires, in the order of those roles (normalised); or the whole run as its
    one part when it may not be split (see the module docstring). Caregivers of a role no
    shift requires are in no part. Raises nothing."""
    whole = [Part(tuple(caregivers), tuple(shifts))]
    if (
        len(caregivers) > DEFAULT_MAX_KEYS
        or _repeats(c.id for c in caregivers)
        or _repeats(c.phone for c in caregivers)
        or _repeats(s.shift.id for s in shifts)
    ):
        return whole
    named, posted, problems = with_roles(Roles(config.roles), caregivers, [s.shift for s in shifts])
    if problems:
        return whole
    by_role: dict[str, tuple[list[Caregiver], list[SimShift]]] = {}
    for shift, required in zip(shifts, posted, strict=True):
        by_role.setdefault(required.role_required, ([], []))[1].append(shift)
    for caregiver, normal in zip(caregivers, named, strict=True):
        if normal.role in by_role:
            by_role[normal.role][0].append(caregiver)
    if len(by_role) < 2:
        return whole
    return [Part(tuple(cgs), tuple(ss)) for _, (cgs, ss) in sorted(by_role.items())]


def _repeats(values: Iterable[str]) -> bool:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            return True
        seen.add(value)
    return False


def merge(parts: Sequence[Part], results: Sequence[RunResult]) -> RunResult:
    """The result of the whole run from its parts' (``results[i]`` is ``parts[i]``'s):
    the shifts in the order the whole run lists them (by start, then id), the offers per
    caregiver added up, the timelines (if any) merged in time order, ties in part order.
    Raises ValueError when ``results`` does not match ``parts``."""
    if len(parts) != len(results):
        raise ValueError(f"{len(results)} results for {len(parts)} parts")
    if len(results) == 1:
        return results[0]
    start = {s.shift.id: s.shift.start_time for part in parts for s in part.shifts}
    outcomes = sorted(
        (o for r in results for o in r.shifts), key=lambda o: (start[o.shift_id], o.shift_id)
    )
    contacts: Counter[str] = Counter()
    for r in results:
        contacts.update(r.contacts)
    return RunResult(
        outcomes,
        contacts,
        sorted((s for r in results for s in r.sent), key=lambda s: s.at),
        sorted((a for r in results for a in r.answered), key=lambda a: a.at),
    )
