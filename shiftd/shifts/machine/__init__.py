"""A shift's rules as pure transitions: `(state, event, now, facts) → Transition`.

No Trio, no SQL, no clock of its own. The shift's actor keeps a `State` in memory, reads the
facts an event needs from the store (one named query each: `Candidates` for a wave,
`Claimant` for an accept, `reached` for who hears "filled"), asks a function here, and
persists the `Transition` it gets back in one transaction. Every rule about a shift is
decided here: who a wave reaches, who may take the shift (role, overlap with the travel
buffer, released, deactivated), who is told it is filled, what is withdrawn, when the next
wave is due, what the coordinator hears and when.

Life of a shift: open → offering (waves of offers, see `shiftd.shifts.policy`) → escalated (once a
wave has called) → filled by the first eligible accept, or unfilled when offers close, or
cancelled by a coordinator. A filled shift reopens when its holder releases it (or a
coordinator unassigns it): the plan starts again from its first wave, without the releaser.
A transition from a closed state changes nothing but may answer (a late accept is told the
shift is filled).

Reply codes are the one thing a transition does not choose: like row ids, the store
allocates them when it writes an offer, so an offer text is rendered from its code then
(`Contact.render`).
"""

from __future__ import annotations

from .answers import answer, ineligible, needs_claimant, overlapping
from .facts import (
    Candidate,
    Candidates,
    Claimant,
    Holding,
    Offer,
    Reached,
    Roster,
    Rules,
    State,
)
from .notices import RETELL_AFTER, coordinator_messages, notices_pending, notify, shift_link
from .release import cancel, release
from .transition import (
    AnswerResult,
    Contact,
    FanoutResult,
    Record,
    ReleaseResult,
    Transition,
    Unpublished,
    Withdrawal,
)
from .waves import deadline_passed, expire, next_deadline, run_due_waves, start_fanout

__all__ = [
    "RETELL_AFTER",
    "AnswerResult",
    "Candidate",
    "Candidates",
    "Claimant",
    "Contact",
    "FanoutResult",
    "Holding",
    "Offer",
    "Reached",
    "Record",
    "ReleaseResult",
    "Roster",
    "Rules",
    "State",
    "Transition",
    "Unpublished",
    "Withdrawal",
    "answer",
    "cancel",
    "coordinator_messages",
    "deadline_passed",
    "expire",
    "ineligible",
    "needs_claimant",
    "next_deadline",
    "notices_pending",
    "notify",
    "overlapping",
    "release",
    "run_due_waves",
    "shift_link",
    "start_fanout",
]
