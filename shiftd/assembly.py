"""The engine's layers built and wired to each other: the sender (with the follow-up of lost
notices and the send events), the shifts' actors' supervisor, the inbound router and, in a
cluster, the forwarder. Building starts nothing; `Engine.run` starts and stops them in order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .clock import Clock
from .config import ClusterConfig, Config
from .events import EventBus
from .inbound.intent import Classifier
from .inbound.replyguard import ReplyGuard
from .inbound.router import InboundRouter
from .messages import Messages
from .metrics import MeteredNotifier, Metrics
from .models import EventKind, SendResult
from .notify import Notifier
from .outbox.lostnotices import LostNotices
from .outbox.sender import Sender
from .shifts.context import ActorContext
from .shifts.organizations import Organizations
from .shifts.supervisor import Supervisor
from .shutdown import Shutdown
from .store.base import OutboxRow, Store

if TYPE_CHECKING:
    from .cluster.forward import Forwarder
    from .cluster.leases import LeaseManager
    from .cluster.ownership import Ownership


@dataclass(frozen=True)
class Layers:
    sender: Sender
    supervisor: Supervisor
    inbound_router: InboundRouter
    forwarder: Forwarder | None
    """In a cluster, what forwards requests to the owner of a shift (and answers those
    forwarded here); None on one instance."""


def build_layers(
    config: Config,
    *,
    store: Store,
    clock: Clock,
    notifier: Notifier,
    classifier: Classifier,
    organizations: Organizations,
    messages: Messages,
    events: EventBus,
    metrics: Metrics | None,
    reply_guard: ReplyGuard,
    shutdown: Shutdown,
    ownership: Ownership | None,
    leases: LeaseManager | None,
) -> Layers:
    """The layers over `store`, sending through `notifier` bounded by `shutdown`'s deadline.
    `ownership`: which shifts this instance owns (None: all); `leases`: the leases that
    decide it in a cluster (their fencing stops an actor); `metrics`: where provider calls
    are timed (None: nowhere). Raises nothing; opens nothing."""
    public_url = str(config.http.public_url) if config.http and config.http.public_url else None
    sender: Sender

    def on_send_outcomes(rows: Sequence[OutboxRow], outcome: SendResult) -> None:
        if metrics is not None:
            metrics.count_messages(rows, outcome)
        kind = _SEND_EVENTS[outcome]
        if not events.wants(kind):  # a watcher or the board: otherwise nobody
            return
        for row in rows:
            events.publish(
                kind,
                shift_id=row.shift_id,
                caregiver_id=row.caregiver_id,
                channel=row.channel.value,
                purpose=row.purpose.value,
                outbox_id=row.id,
            )

    lost_notices = LostNotices(
        store, clock, organizations, events, lambda: sender.wake(), public_url
    )
    sender = Sender(
        store,
        _metered(notifier, metrics),
        clock,
        concurrency=config.sender.concurrency,
        max_attempts=config.sender.max_attempts,
        backoff_initial=config.sender.backoff_initial,
        backoff_max=config.sender.backoff_max,
        timeout=config.sender.timeout,
        shutdown=shutdown,
        on_outcomes=on_send_outcomes,
        after_failure=lost_notices.follow_up,
        ownership=ownership,
        abandon_on_start=leases is None,
    )
    ctx = ActorContext(
        store=store,
        clock=clock,
        organizations=organizations,
        send_now=sender.send_now,
        wake_sender=sender.wake,
        escalation_jitter=config.escalation.jitter,
        call_gap=config.escalation.call_gap,
        reply_guard=reply_guard,
        events=events,
        public_url=public_url,
        shutdown=shutdown,
    )
    forwarder = _forwarder(config, ownership)
    supervisor = Supervisor(
        ctx,
        inbox_size=config.actor.inbox_size,
        max_restarts=config.actor.max_restarts,
        restart_window=config.actor.restart_window,
        remote=forwarder,
        ownership=ownership,
        on_fenced=leases.fenced if leases is not None else None,
    )
    inbound_router = InboundRouter(
        store,
        clock,
        supervisor,
        classifier,
        messages,
        sender.wake,
        events=events,
        reply_guard=reply_guard,
        messages_for=lambda org, language: organizations.get(org).messages_for(language),
    )
    return Layers(sender, supervisor, inbound_router, forwarder)


def _forwarder(config: Config, ownership: Ownership | None) -> Forwarder | None:
    url = config.store.url
    if ownership is None or url is None:
        return None
    from .cluster.forward import Forwarder  # imports PostgreSQL's driver: only then

    cluster = config.cluster or ClusterConfig()
    return Forwarder(
        url,
        ownership,
        wait=cluster.forward_wait,
        retention=cluster.inbox_retention,
        statement_timeout=config.store.statement_timeout,
        lock_timeout=config.store.lock_timeout,
    )


_SEND_EVENTS = {
    SendResult.SENT: EventKind.SENT,
    SendResult.RETRY: EventKind.SEND_RETRY,
    SendResult.FAILED: EventKind.SEND_FAILED,
    SendResult.SUPPRESSED: EventKind.SEND_SUPPRESSED,
}


def _metered(notifier: Notifier, metrics: Metrics | None) -> Notifier:
    """`notifier` with its provider calls timed and counted in `metrics`, if any."""
    return notifier if metrics is None else MeteredNotifier(notifier, metrics)
