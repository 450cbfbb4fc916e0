"""An engine to test against: a fake provider that records what each phone received, a
small roster, a config for a temporary state directory, and store-level stand-ins for what
a shift's actor does (`store_transition`, `text_everyone`, `cancel_at_store`).

Public the way `trio.testing` is: the suite's fixtures build on it, and so may anyone
testing code that drives shiftd's engine."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import trio
import trio.testing

from ..config import Config
from ..engine import Engine
from ..models import Caregiver, Channel, FanoutStatus, Purpose, Shift
from ..notify.base import Outgoing, TransientSendError
from ..shifts import machine
from ..shifts.organizations import Organizations

EPOCH = datetime(2025, 7, 1, 14, 0, tzinfo=UTC)  # the afternoon before the sample shifts


@dataclass
class FakeProvider:
    """Records every message handed to it; can be told to fail the next sends."""

    sent: list[Outgoing] = field(default_factory=list)
    fail_next: int = 0
    latency: float = 0.0

    async def send(self, message: Outgoing) -> str | None:
        if self.latency:
            await trio.sleep(self.latency)
        if self.fail_next:
            self.fail_next -= 1
            raise TransientSendError("provider answered 503")
        self.sent.append(message)
        return f"fake-{len(self.sent)}"

    async def aclose(self) -> None:
        return None

    def to(self, caregiver_id: str, purpose: Purpose | None = None) -> list[Outgoing]:
        """What one caregiver received, optionally of one purpose."""
        return [
            m
            for m in self.sent
            if m.caregiver_id == caregiver_id and (purpose is None or m.purpose is purpose)
        ]

    def of(self, purpose: Purpose, channel: Channel | None = None) -> list[Outgoing]:
        return [
            m
            for m in self.sent
            if m.purpose is purpose and (channel is None or m.channel is channel)
        ]


def caregiver(n: int, role: str = "RN") -> Caregiver:
    return Caregiver(id=f"cg-{n}", name=f"Carer {n}", role=role, phone=f"+1555000{n:04d}")


def phone(n: int) -> str:
    return f"+1555000{n:04d}"


def shift(shift_id: str = "shift-1", role: str = "RN", *, start_in_h: int = 18) -> Shift:
    start = EPOCH + timedelta(hours=start_in_h)
    return Shift(
        id=shift_id,
        organization_id="org-1",
        role_required=role,
        start_time=start,
        end_time=start + timedelta(hours=8),
    )


async def text_everyone(
    store: Any,
    shift_id: str = "shift-1",
    *,
    at: datetime = EPOCH,
    calls_at: datetime | None = None,
    render_offer: Callable[[int, str | None, bool], str] = lambda code, *_: str(code),
) -> int | None:
    """At the store's level, what a default-policy fanout does at once: start the fanout
    and run its first wave (an SMS offer to everyone with the role), written as one
    transition. Returns how many were texted, 0 if nobody could be, None if the shift was
    not open."""
    calls_at = calls_at or at + timedelta(minutes=10)

    def decide(state: machine.State, rules: machine.Rules, facts: Any) -> machine.Transition:
        done = machine.start_fanout(state, at, facts, rules)
        # The texts say what the test asks them to (`render_offer`), not the templates.
        contacts = tuple(
            replace(c, render=functools.partial(_render, render_offer, c.caregiver_id))
            for c in done.contacts
        )
        return replace(done, contacts=contacts)

    transition = await store_transition(store, shift_id, decide, at=at, delay=calls_at - at)
    if transition.state is None:
        return 0 if transition.answer.status is FanoutStatus.NO_CANDIDATES else None
    return len(transition.contacts)


async def store_transition(
    store: Any,
    shift_id: str,
    decide: Callable[[machine.State, machine.Rules, Any], machine.Transition],
    *,
    at: datetime = EPOCH,
    delay: timedelta = timedelta(minutes=10),
) -> machine.Transition:
    """What a shift's actor does for one event, at the store's level: read the shift and
    the wave facts, `decide(state, rules, facts)`, write the transition (if it changes
    anything). The default organization's policy calls after `delay`."""
    found = await store.shift_state(shift_id)
    assert found is not None
    row, offers = found
    config = Config.model_validate(
        {"state_dir": "/nonexistent", "escalation": {"delay": f"{delay.seconds}s"}}
    )
    rules = machine.Rules(Organizations(config).get(row.organization_id))
    facts = await store.candidates(row.role_required, rules.window(row), row.id)
    transition = decide(machine.State(row, offers, row.version), rules, facts)
    if transition.state is not None or transition.messages:
        await store.persist(shift_id, row.version, transition, at=at)
    return transition


async def cancel_at_store(store: Any, shift_id: str, at: datetime = EPOCH) -> None:
    """A coordinator's cancel, at the store's level (every pending message withdrawn)."""
    await store_transition(store, shift_id, lambda s, r, _: machine.cancel(s, at, r, None), at=at)


def _render(render: Callable[[int, str | None, bool], str], _cg: str, code: int) -> str:
    return render(code, None, True)


def offer_code(h: Harness, caregiver_id: str, shift_id: str) -> int:
    """The reply code `caregiver_id` was texted for `shift_id` (its "YES <code>")."""
    [offer] = [
        m
        for m in h.provider.to(caregiver_id, Purpose.OFFER)
        if m.shift_id == shift_id and m.channel is Channel.SMS
    ]
    match = re.search(r"YES (\d+)", offer.body)
    assert match, offer.body
    return int(match.group(1))


def make_config(tmp_path: Path, **overrides: Any) -> Config:
    data: dict[str, Any] = {
        "state_dir": tmp_path / "state",
        "notifier": {"kind": "console"},
        "agency_name": "Sunrise Care",
        "timezone": "America/New_York",
    }
    data.update(overrides)
    return Config.model_validate(data)


@dataclass
class Harness:
    """A running engine and the provider it sends through."""

    engine: Engine
    provider: FakeProvider
    nursery: trio.Nursery

    async def settle(self) -> None:
        """Let queued sends reach the provider (virtual time barely moves)."""
        await trio.testing.wait_all_tasks_blocked()


StartEngine = Callable[..., Any]
"""The `start_engine` fixture: `await start_engine(cfg=None, prov=None)` → a Harness."""
