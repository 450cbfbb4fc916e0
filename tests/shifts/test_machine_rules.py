"""The shift's rules on their own: any sequence of events, from any policy, keeps the
invariants a coordinator relies on.

A hypothesis rule-based state machine drives `shiftd.shifts.machine` the way an actor
does (fanout, time passing, accepts and declines, releases, unassigns, cancels, STOP),
keeps what a store would (the messages queued, who a message reached, who declined or
released), and checks after every step:

- at most one holder, and a holder only while the shift is filled (or, cancelled, who
  held it);
- never an offer or a call to a decliner or releaser, nor a text to an opted-out phone
  (nor a call, unless the policy allows calls after STOP);
- never the same offer twice on a channel, but in a repeat round;
- a stored deadline never moves earlier (within one reopening);
- every event on a cancelled or unfilled shift changes nothing.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from shiftd.config import Config
from shiftd.inbound.intent import Intent
from shiftd.models import Channel, Purpose, ShiftState
from shiftd.shifts import machine
from shiftd.shifts.organizations import Organizations
from shiftd.store.base import CaregiverRow, ShiftRow

START = datetime(2025, 7, 1, 14, 0, tzinfo=UTC)
PEOPLE = [f"cg-{n}" for n in range(1, 6)]
TERMINAL = (ShiftState.CANCELLED, ShiftState.UNFILLED)

policies = st.sampled_from(
    [
        None,  # the default: texts at once, calls after 10 minutes
        [
            {"at": "0s", "channel": "sms", "tags": ["preferred"]},
            {"at": "15m", "channel": "sms"},
            {"at": "30m", "channel": "voice", "audience": "offered"},
        ],
        [
            {"at": "0s", "channel": "sms"},
            {
                "at": "5m",
                "channel": "voice",
                "audience": "offered",
                "repeat": {"every": "10m", "times": 2},
            },
        ],
    ]
)


def phone_of(cg: str) -> str:
    return f"+1555000000{cg[-1]}"


class ShiftRules(RuleBasedStateMachine):
    @initialize(
        policy=policies,
        voice_after_opt_out=st.booleans(),
        tagged=st.sets(st.sampled_from(PEOPLE)),
        opted_out=st.sets(st.sampled_from(PEOPLE)),
        lead_hours=st.integers(min_value=1, max_value=6),
    )
    def open_shift(
        self,
        policy: list[dict[str, Any]] | None,
        voice_after_opt_out: bool,
        tagged: set[str],
        opted_out: set[str],
        lead_hours: int,
    ) -> None:
        org: dict[str, Any] = {"voice_after_opt_out": voice_after_opt_out}
        if policy is not None:
            org["policy"] = policy
        config = Config.model_validate(
            {"state_dir": "/nonexistent", "organizations": {"default": org}}
        )
        self.rules = machine.Rules(Organizations(config).get("default"))
        self.now = START
        start = START + timedelta(hours=lead_hours)
        row = ShiftRow(
            "shift-1", "default", "RN", start, start + timedelta(hours=8), ShiftState.OPEN
        )
        self.state = machine.State(row, {}, 0)
        self.opted_out = set(opted_out)
        self.candidates = machine.Candidates(
            machine.Roster(  # as the stores give it
                machine.Candidate(cg, phone_of(cg), ("preferred",) if cg in tagged else (), None)
                for cg in PEOPLE
            ),
            opted_out=frozenset(phone_of(cg) for cg in opted_out),
        )
        self.keys: set[str] = set()
        self.reached: set[str] = set()
        self.declined: set[str] = set()
        self.released: set[str] = set()
        self.claims: dict[int, set[str]] = {}
        self.deadline: tuple[int, datetime | None] = (0, None)
        self.codes = iter(range(1, 1000))

    # ---- applying a transition as the store and the actor would -------------------------

    def apply(self, transition: machine.Transition) -> None:
        before = self.state
        if before.shift.state in TERMINAL:
            assert transition.state is None or transition.state.shift == before.shift, (
                "an event on a closed shift changed it"
            )
        for contact in transition.contacts:
            assert contact.caregiver_id not in self.declined | self.released, contact
            if contact.caregiver_id in self.opted_out:
                assert contact.channel is Channel.VOICE and self.rules.org.voice_after_opt_out
            assert contact.key not in self.keys, f"{contact.key} queued twice"
            self.keys.add(contact.key)
            self.reached.add(contact.caregiver_id)
        for message in transition.messages:
            if message.purpose is Purpose.CONFIRM:
                self.claims.setdefault(before.shift.generation, set()).add(message.caregiver_id)
        if transition.declined:
            self.declined.add(transition.declined)
        if transition.released:
            self.released.add(transition.released)
        new = transition.state
        if new is None:
            return
        offers = {
            cg: replace(offer, code=next(self.codes)) if offer.code == 0 else offer
            for cg, offer in new.offers.items()
        }
        self.state = replace(new, offers=offers)

    def facts_for(self, cg: str) -> machine.Claimant:
        return machine.Claimant(CaregiverRow(cg, cg, "RN", "+15550000000"))

    def reached_now(self) -> tuple[machine.Reached, ...]:
        return tuple(machine.Reached(cg, None) for cg in sorted(self.reached))

    # ---- events ----------------------------------------------------------------------

    @rule()
    def start_fanout(self) -> None:
        self.apply(machine.start_fanout(self.state, self.now, self.candidates, self.rules))

    @rule(minutes=st.integers(min_value=1, max_value=90))
    def time_passes(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        due = machine.next_deadline(self.state.shift, self.rules, self.state.told)
        if due is not None and due <= self.now:
            self.apply(machine.deadline_passed(self.state, self.now, self.candidates, self.rules))

    @rule(cg=st.sampled_from(PEOPLE), intent=st.sampled_from([Intent.ACCEPT, Intent.DECLINE]))
    def answer(self, cg: str, intent: Intent) -> None:
        def decide(facts: machine.Claimant) -> machine.Transition:
            return machine.answer(
                self.state, self.now, cg, intent, Channel.SMS, facts, self.rules, self.reached_now()
            )

        decided = decide(self.facts_for(cg))
        if not machine.needs_claimant(self.state, cg, intent, self.now):
            # What a fresh read could add (she holds an overlapping shift, was told it is
            # filled long ago) changes nothing: an actor does not read it.
            shift = self.state.shift
            other = machine.Holding("other", cg, shift.start_time, shift.end_time)
            fresh = replace(self.facts_for(cg), holdings=(other,), told_filled_at=START)
            assert decide(fresh) == decided
        self.apply(decided)

    @rule(by_holder=st.booleans())
    def release(self, by_holder: bool) -> None:
        holder = self.state.shift.claimed_by if by_holder else None
        self.apply(machine.release(self.state, self.now, holder, self.rules, None, self.candidates))

    @rule()
    def cancel(self) -> None:
        self.apply(machine.cancel(self.state, self.now, self.rules, None))

    @precondition(lambda self: len(self.opted_out) < len(PEOPLE))
    @rule(cg=st.sampled_from(PEOPLE))
    def stop(self, cg: str) -> None:
        """She texts STOP: from then on the store hands her in as opted out."""
        self.opted_out.add(cg)
        stopped = frozenset(phone_of(cg) for cg in self.opted_out)
        self.candidates = replace(self.candidates, opted_out=stopped)

    # ---- invariants ------------------------------------------------------------------

    @invariant()
    def at_most_one_holder(self) -> None:
        shift = self.state.shift
        if shift.state is not ShiftState.CANCELLED:  # a cancelled shift names who held it
            assert (shift.claimed_by is not None) == (shift.state is ShiftState.FILLED)
        assert all(len(winners) <= 1 for winners in self.claims.values()), self.claims

    @invariant()
    def a_stored_deadline_never_moves_earlier(self) -> None:
        shift = self.state.shift
        generation, last = self.deadline
        due = shift.escalate_at if shift.state.in_progress else None
        if due is not None and generation == shift.generation and last is not None:
            assert due >= last, (due, last)
        if due is not None:
            self.deadline = (shift.generation, due)


ShiftRules.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_shift_rules = ShiftRules.TestCase
