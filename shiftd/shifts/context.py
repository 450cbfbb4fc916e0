"""What every shift actor shares: the store, the clock, the organizations, the sender."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from ..clock import Clock
from ..events import EventBus
from ..inbound.replyguard import ReplyGuard
from ..shutdown import Shutdown
from ..store.base import OutboxRow, Store
from . import machine
from .organizations import Organizations


@dataclass(frozen=True, slots=True)
class ActorContext:
    """What every actor shares: the store, the clock, each organization's policy and words,
    the reply-loop guard, the sender, and the event bus each transition is published on
    (after it is committed)."""

    store: Store
    clock: Clock
    organizations: Organizations
    send_now: Callable[[Sequence[OutboxRow]], Awaitable[None]]
    """Delivers rows a transition queued, in the calling task (`Sender.send_now`)."""
    wake_sender: Callable[[], None]
    """Has the central sender look for due rows (a call held back to space calls)."""
    escalation_jitter: timedelta = timedelta(0)
    call_gap: timedelta = timedelta(0)
    """No phone is called twice within this gap (see `WaveRun.call_gap`)."""
    reply_guard: ReplyGuard = field(default_factory=ReplyGuard)
    events: EventBus = field(default_factory=EventBus)
    public_url: str | None = None
    """Base of the links to a shift's page in coordinators' notices (`http.public_url`)."""
    shutdown: Shutdown = field(default_factory=Shutdown)
    """The stop's deadline: a message in hand is finished, but not beyond it."""
    _rules: dict[str, machine.Rules] = field(default_factory=dict)

    def rules(self, organization_id: str) -> machine.Rules:
        """The rules a shift of the organization follows (made once per organization)."""
        rules = self._rules.get(organization_id)
        if rules is None:
            org = self.organizations.get(organization_id)
            rules = self._rules[organization_id] = machine.Rules(
                org, self.call_gap, self.public_url
            )
        return rules
