"""Prometheus metrics for one engine, in a registry of its own.

Each `Engine` owns a `Metrics` with its own `CollectorRegistry` (never the global one), so
tests and several engines in one process never collide. Figures come from four places:

* **events** — `Metrics.on_event` listens on the engine's event bus: inbound messages by
  outcome, time-to-fill (observed at each claim), shifts that ended unfilled and filled
  shifts released (by whom);
* **hooks** — the sender counts messages by channel, purpose and outcome, once per batch
  (`count_messages`); `MeteredNotifier` wraps the notifier (provider latency and errors);
  `observe_commit` is the SQLite writer's per-commit hook (commit latency, batch size);
  the control server counts requests by command and outcome;
* **callbacks at scrape time** — actors alive, inbox depth, actor restarts, watchers and
  the events they lost, read from the objects that already keep them;
* **the store at scrape time** — shifts by state and outbox rows by state
  (`Store.counts()`), which is why `exposition()` is async.

Families (all prefixed `shiftd_`): `shifts{state}`, `outbox_messages{state}`,
`time_to_fill_seconds`, `messages_total{channel,purpose,status}` (status `sent`, `retry`,
`failed` or `suppressed`), `shifts_unfilled_total`, `shifts_released_total{by}`,
`provider_request_seconds{channel}`, `provider_errors_total{channel,kind}`,
`inbound_messages_total{channel,outcome}`, `actors`, `inbox_depth`, `actor_restarts_total`,
`store_commit_seconds`, `store_commit_batch_size`, `control_requests_total{command,outcome}`,
`http_requests_total{route,method,status}` (for the HTTP front end), `watchers`,
`watch_events_dropped_total`; plus the standard `process_*` and `python_gc_*` families.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import trio
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from .events import Event, EventBus
from .logs import get_logger
from .models import EventKind, SendResult
from .notify.base import Notifier, Outgoing, PermanentSendError, TransientSendError
from .store.base import OutboxRow, StoreError

if TYPE_CHECKING:
    from .cluster.leases import LeaseManager
    from .shifts.supervisor import Supervisor
    from .store.base import Store

log = get_logger(__name__)

# From fanout start to claim: a good fill takes minutes, a hard one hours.
TIME_TO_FILL_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800, 86400)
# A provider call: tens of milliseconds to the configured timeout (default 10 s).
PROVIDER_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# A WAL commit here takes tens of microseconds; fsync-heavy disks take milliseconds.
COMMIT_BUCKETS = (50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 0.01, 0.025, 0.1, 0.5)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

# The classic text format (what generate_latest writes for names like ours), which every
# Prometheus version reads; newer clients default to announcing version 1.0.0.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LISTENS_TO = frozenset(
    {
        EventKind.REPLY,
        EventKind.CLAIMED,
        EventKind.UNFILLED,
        EventKind.NOTICE_LOST,
        EventKind.ACTOR_RESTARTED,
        EventKind.ACTOR_GAVE_UP,
        EventKind.RELEASED,
    }
)
"""The kinds of event `Metrics.on_event` counts."""
_RELEASED_BY = ("caregiver", "coordinator")


M = TypeVar("M", Counter, Histogram)


class Children(Generic[M]):
    """A labelled metric's children by their label values. prometheus_client's `labels()`
    checks and converts the values and takes a lock at every call, a few microseconds
    several times per message; the child found the first time is kept here (label values
    are bounded, so is this)."""

    __slots__ = ("_by_values", "_metric")

    def __init__(self, metric: M) -> None:
        self._metric: M = metric
        self._by_values: dict[tuple[object, ...], M] = {}

    def __call__(self, *values: object) -> M:
        child = self._by_values.get(values)
        if child is None:
            child = self._by_values[values] = self._metric.labels(*values)
        return child


class Metrics:
    """The engine's metrics. Create anywhere; `bind()` the running parts in `Engine.run`."""

    def __init__(self, *, process: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.time_to_fill = Histogram(
            "shiftd_time_to_fill_seconds",
            "Time from a shift's fanout start to its claim.",
            buckets=TIME_TO_FILL_BUCKETS,
            registry=r,
        )
        self.messages = Counter(
            "shiftd_messages",
            "Provider attempts per outbox message by channel, purpose and outcome"
            " (sent, retry: transient failure to be retried, failed: given up or refused,"
            " suppressed: a text to an opted-out phone, never handed over).",
            ["channel", "purpose", "status"],
            registry=r,
        )
        self.unfilled = Counter(
            "shiftd_shifts_unfilled",
            "Shifts whose offers closed (lead time reached, or released too late) with nobody"
            " holding them.",
            registry=r,
        )
        self.released = Counter(
            "shiftd_shifts_released",
            "Filled shifts taken off their holder, by who did it (caregiver or coordinator).",
            ["by"],
            registry=r,
        )
        for by in _RELEASED_BY:
            self.released.labels(by)  # both series from the start, at 0
        self.provider_latency = Histogram(
            "shiftd_provider_request_seconds",
            "Duration of each call to the SMS/voice provider, whatever its outcome.",
            ["channel"],
            buckets=PROVIDER_BUCKETS,
            registry=r,
        )
        self.provider_errors = Counter(
            "shiftd_provider_errors",
            "Failed provider calls by kind (transient, permanent, timeout, unknown).",
            ["channel", "kind"],
            registry=r,
        )
        self.inbound = Counter(
            "shiftd_inbound_messages",
            "Inbound texts and call answers by channel and outcome ('replayed' for a"
            " provider message id seen before).",
            ["channel", "outcome"],
            registry=r,
        )
        self.store_commit = Histogram(
            "shiftd_store_commit_seconds",
            "Duration of each store commit (one group-commit batch).",
            buckets=COMMIT_BUCKETS,
            registry=r,
        )
        self.store_batch = Histogram(
            "shiftd_store_commit_batch_size",
            "Writes grouped into each store commit.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.control_requests = Counter(
            "shiftd_control_requests",
            "Control socket requests by command and outcome (ok or the error code).",
            ["command", "outcome"],
            registry=r,
        )
        self.http_requests = Counter(
            "shiftd_http_requests",
            "HTTP requests by route template, method and status code.",
            ["route", "method", "status"],
            registry=r,
        )
        self.notices_lost = Counter(
            "shiftd_notices_lost",
            "Holder notices (confirm, released, shift_cancelled) that ended failed and were"
            " flagged and followed up.",
            ["purpose"],
            registry=r,
        )
        self.internal_errors = Counter(
            "shiftd_internal_errors",
            "Failures of shiftd's own code while handling one request or message, by where"
            " (control, http, actor); each was answered `internal` (or the actor restarted)"
            " and logged with a reference, and the daemon went on.",
            ["where"],
            registry=r,
        )
        for where in _INTERNAL_WHERE:
            self.internal_errors.labels(where)
        # The per-message series, by label values (see Children).
        self.messages_by = Children(self.messages)
        self.inbound_by = Children(self.inbound)
        self.control_by = Children(self.control_requests)
        self.http_by = Children(self.http_requests)
        self.provider_latency_by = Children(self.provider_latency)
        self._live = _LiveCollector()
        r.register(self._live)
        if process:
            ProcessCollector(registry=r)
            GCCollector(registry=r)

    def bind(
        self,
        *,
        store: Store | None = None,
        supervisor: Supervisor | None = None,
        events: EventBus | None = None,
        leases: LeaseManager | None = None,
    ) -> None:
        """Read scrape-time figures from these (the engine's running parts); listen on
        `events` for the event-driven ones."""
        live = self._live
        if leases is not None:
            live.leases = leases
        if store is not None:
            live.store = store
        if supervisor is not None:
            live.supervisor = supervisor
        if events is not None and live.events is not events:
            live.events = events
            events.add_listener(self.on_event, _LISTENS_TO)

    # ---- observations ------------------------------------------------------------------

    def count_messages(self, rows: Iterable[OutboxRow], outcome: SendResult) -> None:
        """The sender's hook: what became of `rows` (one batch's rows of one outcome)."""
        counts: dict[tuple[str, str], int] = {}
        for row in rows:
            key = (row.channel, row.purpose)
            counts[key] = counts.get(key, 0) + 1
        for (channel, purpose), n in counts.items():
            self.messages_by(channel, purpose, outcome).inc(n)

    def on_event(self, event: Event) -> None:
        """The event bus listener: counts replies, unfilled shifts and releases; observes
        time-to-fill."""
        detail = event.detail
        if event.kind == EventKind.REPLY:
            outcome = "replayed" if detail.get("replayed") else detail.get("outcome")
            self.inbound_by(detail.get("channel"), outcome).inc()
        elif event.kind == EventKind.CLAIMED:
            seconds = detail.get("time_to_fill_s")
            if isinstance(seconds, int | float):
                self.time_to_fill.observe(seconds)
        elif event.kind == EventKind.UNFILLED:
            self.unfilled.inc()
        elif event.kind == EventKind.NOTICE_LOST:
            self.notices_lost.labels(detail.get("purpose")).inc()
        elif event.kind in (EventKind.ACTOR_RESTARTED, EventKind.ACTOR_GAVE_UP):
            self.internal_errors.labels("actor").inc()
        elif event.kind == EventKind.RELEASED:
            by = detail.get("by")
            self.released.labels(by if by in _RELEASED_BY else "unknown").inc()

    def observe_commit(self, batch: int, seconds: float) -> None:
        """The store writer's hook: one commit of `batch` writes took `seconds`."""
        self.store_commit.observe(seconds)
        self.store_batch.observe(batch)

    def observe_control(self, command: str, outcome: str) -> None:
        """One control request; `command` must be a known name (bounded label values)."""
        self.control_by(command, outcome).inc()

    def observe_internal_error(self, where: str) -> None:
        """A failure of our own code in `where` (one of control, http, actor), survived."""
        self.internal_errors.labels(where).inc()

    def observe_http(self, route: str, method: str, status: int) -> None:
        """One HTTP request; `route` must be the route template, never the raw path."""
        self.http_by(route, method, status).inc()

    # ---- exposition --------------------------------------------------------------------

    async def exposition(self) -> tuple[bytes, str]:
        """The text exposition format and its content type, for GET /metrics.

        Reads the shift and outbox counts from the store first (a grouped count; the one
        part that costs a query). If the store cannot answer, those families are left out
        and everything else is still exposed.
        """
        live = self._live
        live.counts = None
        if live.store is not None:
            try:
                live.counts = await live.store.counts()
            except StoreError as exc:
                log.warning("metrics.counts_failed", error=str(exc))
        try:
            return generate_latest(self.registry), CONTENT_TYPE
        finally:
            live.counts = None

    async def text(self) -> str:
        body, _ = await self.exposition()
        return body.decode()


_INTERNAL_WHERE = ("control", "http", "actor")


class _LiveCollector(Collector):
    """Figures read at scrape time from the objects that keep them."""

    def __init__(self) -> None:
        self.store: Store | None = None
        self.supervisor: Supervisor | None = None
        self.events: EventBus | None = None
        self.leases: LeaseManager | None = None
        self.counts: dict[str, dict[str, int]] | None = None

    def describe(self) -> list[Metric]:
        return []  # families appear once their source is bound; no name checks needed

    def collect(self) -> Iterator[Metric]:
        counts = self.counts
        if counts is not None:
            yield _labelled(
                GaugeMetricFamily(
                    "shiftd_shifts", "Shifts by state, from the store.", labels=["state"]
                ),
                counts.get("shifts", {}),
            )
            yield _labelled(
                GaugeMetricFamily(
                    "shiftd_outbox_messages",
                    "Outbox rows by state, from the store.",
                    labels=["state"],
                ),
                counts.get("outbox", {}),
            )
        supervisor = self.supervisor
        if supervisor is not None:
            yield GaugeMetricFamily("shiftd_actors", "Shift actors alive.", value=supervisor.actors)
            yield GaugeMetricFamily(
                "shiftd_inbox_depth",
                "Messages waiting in all actors' inboxes.",
                value=supervisor.inbox_depth(),
            )
            yield CounterMetricFamily(
                "shiftd_actor_restarts",
                "Actors restarted after a crash.",
                value=supervisor.restarts,
            )
        leases = self.leases
        if leases is not None:
            yield GaugeMetricFamily(
                "shiftd_cluster_partitions_held",
                "Partitions whose lease this instance holds.",
                value=len(leases.held()),
            )
            yield CounterMetricFamily(
                "shiftd_cluster_lease_renewals",
                "Lease renewal rounds that reached the database.",
                value=leases.renewals,
            )
            yield CounterMetricFamily(
                "shiftd_cluster_lease_renewal_failures",
                "Lease renewal rounds that failed (the database did not answer in time).",
                value=leases.renewal_failures,
            )
            yield CounterMetricFamily(
                "shiftd_cluster_leases_lost",
                "Times partitions were dropped at once: a lease lapsed or a write was fenced.",
                value=leases.losses,
            )
        events = self.events
        if events is not None:
            yield GaugeMetricFamily(
                "shiftd_watchers",
                "Live event subscribers (shiftctl watch).",
                value=events.subscribers,
            )
            yield CounterMetricFamily(
                "shiftd_watch_events_dropped",
                "Events lost by subscribers that fell behind.",
                value=events.dropped,
            )


def _labelled(family: GaugeMetricFamily, values: dict[str, int]) -> GaugeMetricFamily:
    for label, value in sorted(values.items()):
        family.add_metric([label], value)
    return family


class MeteredNotifier:
    """A notifier that times every provider call and counts its failures by kind.

    Behaves exactly as the notifier it wraps (attributes are passed through); what the
    inner `send` raises is re-raised unchanged. A cancelled call (the sender's timeout)
    counts as `timeout`.
    """

    def __init__(self, inner: Notifier, metrics: Metrics) -> None:
        self.inner = inner
        self._latency = metrics.provider_latency_by
        self._errors = metrics.provider_errors

    async def send(self, message: Outgoing) -> str | None:
        channel = str(message.channel)
        started = trio.current_time()
        try:
            return await self.inner.send(message)
        except BaseException as exc:
            self._errors.labels(channel, _error_kind(exc)).inc()
            raise
        finally:
            self._latency(channel).observe(trio.current_time() - started)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _error_kind(exc: BaseException) -> str:
    if isinstance(exc, TransientSendError):
        return "transient"
    if isinstance(exc, PermanentSendError):
        return "permanent"
    if isinstance(exc, trio.Cancelled | trio.TooSlowError):
        return "timeout"
    return "unknown"
