"""The engine: the store, the sender and the shifts' actors, started in order, and the one
door through which the transports (`shiftd.commands`, HTTP, the board) reach them.

Layers start inside-out and stop outside-in (actors, then the sender, then the store), all
by one deadline (`shutdown.Shutdown`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import trio

from . import rosterimport
from .assembly import build_layers
from .clock import Clock, iso
from .cluster.configured import configured_leases
from .cluster.ownership import Ownership
from .config import Config
from .events import EventBus
from .inbound.intent import Classifier, load_classifier
from .inbound.replyguard import ReplyGuard
from .inbound.router import InboundResult, InboundRouter
from .logs import get_logger
from .metrics import Metrics
from .models import (
    CancelStatus,
    Caregiver,
    Channel,
    EventKind,
    ProviderStatusUpdate,
    Shift,
    ShiftState,
)
from .notify import Notifier
from .notify.outbound import outbound_notifier
from .outbox.sender import Sender
from .retention import Retention
from .shifts.machine import FanoutResult, ReleaseResult
from .shifts.mailbox import Cancel, Release, StartFanout
from .shifts.organizations import DEFAULT, Organizations
from .shifts.roles import Roles, UnknownRole
from .shifts.supervisor import Supervisor
from .shutdown import RECORDING, Shutdown
from .store.base import (
    CaregiverRow,
    ProviderMessageRow,
    ShiftRow,
    Store,
    StoreError,
)
from .store.configured import configured_store

if TYPE_CHECKING:
    from .cluster.leases import LeaseManager

log = get_logger(__name__)


class NotFound(LookupError):
    """The named shift or caregiver does not exist."""


class InvalidInput(ValueError):
    """Arguments that are well-formed but mean nothing here (an unknown role)."""


class Engine:
    """Everything but the transports. Start with `await nursery.start(engine.run)`.

    What every operation shares, unless its docstring says otherwise: it raises StoreError
    when the store cannot do it (StoreUnavailable: it cannot write now, nothing changed).
    Cancelled, a read is abandoned; a write already queued still commits (the caller does
    not learn the result; see `Store`). A request to a shift's actor (`fanout`, `cancel`,
    `unassign`, an answer through `inbound`) raises ActorUnavailable when the actor fails
    with it in hand or shiftd is stopping; cancelled while it waits for room in the actor's
    inbox, nothing is asked; cancelled after, the actor still does it, the caller only
    misses the answer.
    """

    def __init__(
        self,
        config: Config,
        *,
        clock: Clock | None = None,
        notifier: Notifier | None = None,
        classifier: Classifier | None = None,
        store: Store | None = None,
        ownership: Ownership | None = None,
        measured: bool = True,
    ) -> None:
        """`ownership`: in a cluster (a PostgreSQL store), which shifts this instance
        owns; a request for another's is forwarded to it (`shiftd.cluster.forward`).
        `measured` False: `metrics` stay empty (no provider timing, commit figures or
        event counts), for a run nobody scrapes (`shiftd simulate`)."""
        self.config = config
        self._ownership = ownership
        self._clock = clock
        self._notifier = notifier
        self._classifier = classifier
        self._custom_store = store
        self._measured = measured
        self._stop = trio.Event()
        self.shutdown = Shutdown()
        """The stop's one deadline; the daemon may begin it earlier (at the signal)."""
        self.started_at: datetime | None = None
        # Set in run():
        self.clock: Clock
        self.store: Store
        self.sender: Sender
        self.supervisor: Supervisor
        self.inbound_router: InboundRouter
        self.leases: LeaseManager | None = None
        """In a cluster: the leases this instance holds (`cluster` in the config)."""
        self.organizations = Organizations(config)
        self.roles = Roles(config.roles)
        self.messages = self.organizations.get(DEFAULT).messages
        self.reply_guard = ReplyGuard(config.replies.max_per_hour)
        # What happens, as it happens (`shiftctl watch`), and the figures (GET /metrics).
        self.events = EventBus(lambda: self.clock.now())
        self.metrics = Metrics()

    def stop(self) -> None:
        """Begin the ordered stop; `run()` returns by the stop's deadline (`shutdown.grace`
        from now, or the one the daemon took at the signal). Never blocks."""
        self.shutdown.begin(self.config.shutdown.grace.total_seconds())
        self._stop.set()

    async def run(self, *, task_status: trio.TaskStatus[Engine] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the store, recover actors, start sending; report started; run until stopped or
        cancelled, then stop in order by the stop's deadline (see `stop`): work still in hand
        then (a provider that has not answered, a store write not done) is cut off.

        Raises StoreError if the store cannot be opened, ValueError for a bad classifier.
        """
        config = self.config
        self.clock = self._clock or Clock()
        classifier = self._classifier or load_classifier(config.classifier)
        # A notifier passed in (tests) sees the coordinators' webhooks and email too.
        notifier = self._notifier or await outbound_notifier(config, self.organizations)
        if self._ownership is None:  # in a cluster, the leases say what this instance owns
            self.leases = self._ownership = configured_leases(config, self.clock)
        self.store = self._custom_store or configured_store(config)
        metrics = self.metrics if self._measured else None
        if metrics is not None:
            self.store.on_commit = metrics.observe_commit
        layers = build_layers(
            config,
            store=self.store,
            clock=self.clock,
            notifier=notifier,
            classifier=classifier,
            organizations=self.organizations,
            messages=self.messages,
            events=self.events,
            metrics=metrics,
            reply_guard=self.reply_guard,
            shutdown=self.shutdown,
            ownership=self._ownership,
            leases=self.leases,
        )
        self.sender = layers.sender
        self.supervisor = layers.supervisor
        self.inbound_router = layers.inbound_router
        self.forwarder = layers.forwarder
        """In a cluster, what forwards requests to the owner of a shift; None on one instance."""
        self.metrics.bind(
            store=self.store,
            supervisor=self.supervisor,
            events=self.events if metrics is not None else None,
            leases=self.leases,
        )
        async with trio.open_nursery() as outer:
            outer.start_soon(self._stop_on_cancel)
            # Shielded: a cancellation from outside becomes the ordered stop (above), which
            # the stop's deadline bounds (and the store's last writes, RECORDING after it).
            with self.shutdown.bounded(trio.CancelScope(shield=True), after=RECORDING):
                await self._run_layers(task_status)
            outer.cancel_scope.cancel()
        try:
            await notifier.aclose()
        finally:
            log.info("engine.stopped")

    async def _stop_on_cancel(self) -> None:
        try:
            await trio.sleep_forever()
        finally:
            self.stop()

    async def _run_layers(self, task_status: trio.TaskStatus[Engine]) -> None:
        """The layers, inside-out; stopped outside-in once `_stop` is set. Actors and the
        sender end by the stop's deadline (a send still in flight then is cut off and
        recorded); the store closes after them, so what they record on the way out is
        written."""
        async with trio.open_nursery() as store_layer:
            await store_layer.start(self.store.run)
            with self.shutdown.bounded():
                async with trio.open_nursery() as sender_layer:
                    await sender_layer.start(self.sender.run)
                    keep = self.config.retention.reply_text
                    if keep is not None:
                        await sender_layer.start(Retention(self.store, self.clock, keep).run)
                    async with trio.open_nursery() as actor_layer:
                        await actor_layer.start(self.supervisor.run)
                        if self.leases is not None:
                            self.leases.attach(self.supervisor)
                            await actor_layer.start(self.leases.run)
                        if self.forwarder is not None:
                            await actor_layer.start(self.forwarder.run, self.supervisor.ask_here)
                        self.started_at = self.clock.now()
                        log.info("engine.started", actors=self.supervisor.actors)
                        task_status.started(self)
                        await self._stop.wait()
                        log.info("engine.stopping", actors=self.supervisor.actors)
                        if self.forwarder is not None:
                            # Claim nothing more before the actors stop: what is left is
                            # for the partitions' next owners.
                            self.forwarder.stop()
                        if self.leases is not None:
                            # Hand every partition over at once (actors stopped first), not
                            # after the TTL.
                            await self.leases.stop()
                        self.supervisor.stop()
                    sender_layer.cancel_scope.cancel()
            store_layer.cancel_scope.cancel()

    # ---- operations --------------------------------------------------------------------

    async def import_roster(
        self, caregivers: Sequence[Caregiver], shifts: Sequence[Shift], *, dry_run: bool = False
    ) -> dict[str, Any]:
        """Upsert caregivers and shifts by id, roles normalised (`roles.Roles`).

        Raises InvalidInput naming every item whose role is unknown (nothing is imported).
        The answer has the counts per kind, `warnings` for fields nobody knows (ignored), and
        with `dry_run` (nothing changes) each change that would be made.
        """
        caregivers, shifts, problems = rosterimport.with_roles(self.roles, caregivers, shifts)
        if problems:
            raise InvalidInput("; ".join(problems))
        warnings = rosterimport.unknown_fields(caregivers, shifts)
        cg, sh = await self.store.import_roster(
            caregivers, shifts, self.clock.now(), dry_run=dry_run
        )
        if not dry_run:
            log.info(
                "roster.imported",
                caregivers=rosterimport.counts(cg),
                shifts=rosterimport.counts(sh),
            )
            if sh.created or sh.updated or sh.deactivated:
                self.events.publish(
                    EventKind.ROSTER_IMPORTED, created=sh.created, updated=sh.updated
                )
        answer = rosterimport.answer(cg, sh, dry_run=dry_run)
        return {**answer, "warnings": warnings, "dry_run": dry_run}

    def role(self, raw: str) -> str:
        """`raw` as the roster spells roles; InvalidInput if it is not a known role."""
        try:
            return self.roles.normalize(raw)
        except UnknownRole as exc:
            raise InvalidInput(str(exc)) from None

    async def add_shift(self, shift: Shift) -> ShiftRow:
        """Add one shift (role normalised) and publish `created`; the stored row.

        Raises InvalidInput for an unknown role, ConflictError when the id exists."""
        shift = shift.model_copy(update={"role_required": self.role(shift.role_required)})
        row = await self.store.add_shift(shift, self.clock.now())
        log.info("shift.added", shift_id=shift.id, role=shift.role_required)
        self.events.publish(EventKind.CREATED, shift_id=shift.id)
        return row

    async def set_caregiver_active(self, caregiver_id: str, active: bool) -> None:
        """Activate or deactivate a caregiver: an inactive one is never offered a shift;
        offers already made and their history stay. NotFound for an unknown id."""
        if not await self.store.set_caregiver_active(caregiver_id, active, self.clock.now()):
            raise NotFound(f"no caregiver {caregiver_id!r}")
        log.info(
            "caregiver.activated" if active else "caregiver.deactivated", caregiver_id=caregiver_id
        )

    def new_shift_id(self) -> str:
        """A fresh opaque shift id for `shift.add` without one."""
        return f"shift-{uuid.uuid4().hex[:12]}"

    async def shift(self, shift_id: str) -> ShiftRow:
        """The shift as stored; NotFound for an unknown id."""
        row = await self.store.shift(shift_id)
        if row is None:
            raise NotFound(f"no shift {shift_id!r}")
        return row

    async def fanout(self, shift_id: str, *, request_id: str | None = None) -> FanoutResult:
        """Start the shift's fanout; a repeat starts nothing and says why. `request_id`
        (here and below): in a cluster, the same request retried is handled once, on
        whichever instance it lands. NotFound
        for an unknown id; see the class docstring for the actor's answer and cancellation."""
        await self.shift(shift_id)
        message = StartFanout()
        return await self.supervisor.ask(
            shift_id, message, message.reply, request_id=request_id, keep_answer=True
        )

    async def cancel(self, shift_id: str, *, request_id: str | None = None) -> CancelStatus:
        """Cancel the shift: nothing more is sent for it, and whoever held it is told.
        NotFound for an unknown id."""
        await self.shift(shift_id)
        message = Cancel()
        return await self.supervisor.ask(
            shift_id, message, message.reply, request_id=request_id, keep_answer=True
        )

    async def unassign(self, shift_id: str, *, request_id: str | None = None) -> ReleaseResult:
        """A coordinator takes a filled shift off its holder: the holder is told, and the
        shift reopens (the policy starts again without them) or, too late for that, ends
        unfilled. NotFound for an unknown id."""
        await self.shift(shift_id)
        message = Release(None)
        return await self.supervisor.ask(
            shift_id, message, message.reply, request_id=request_id, keep_answer=True
        )

    async def inbound(
        self,
        from_phone: str,
        body: str,
        channel: Channel = Channel.SMS,
        *,
        provider_id: str | None = None,
        shift_id: str | None = None,
    ) -> InboundResult:
        """Handle one message from a phone (a reply, a keyword, a digit on a call) and
        queue its answer; every input has an outcome, none raises but StoreError and
        ActorUnavailable. With `provider_id`, a message seen before is answered as it was
        then and nothing is done twice."""
        return await self.inbound_router.handle(
            from_phone, body, channel, provider_id=provider_id, shift_id=shift_id
        )

    async def status(self) -> dict[str, Any]:
        """Uptime, counts of shifts, messages and caregivers, and the actors' load (`shiftctl
        status`)."""
        counts = await self.store.counts()
        started = self.started_at or self.clock.now()
        return {
            "uptime_s": round((self.clock.now() - started).total_seconds(), 3),
            "started_at": iso(started),
            "shifts": counts["shifts"],
            "outbox": counts["outbox"],
            "caregivers": counts["caregivers"]["total"],
            "actors": self.supervisor.actors,
            "inbox_depth": self.supervisor.inbox_depth(),
            "actor_restarts": self.supervisor.restarts,
            "state_dir": str(self.config.state_dir),
            **({"cluster": await self.leases.overview()} if self.leases is not None else {}),
        }

    async def shifts(self, state: ShiftState | None = None) -> list[ShiftRow]:
        """Every shift, or those in `state`."""
        return await self.store.list_shifts(state)

    async def stats(self, since: timedelta) -> dict[str, Any]:
        """Fills, time-to-fill, fill rate and messages for shifts fanned out in the last
        `since` (see `Store.fill_stats`)."""
        now = self.clock.now()
        return {"until": iso(now), **await self.store.fill_stats(now - since)}

    # ---- what the transports read and record ---------------------------------------------

    async def ready(self) -> int:
        """How many actors are alive, once one indexed read shows the store answers.

        Raises StoreError when it does not, or when the engine has not started."""
        if not hasattr(self, "supervisor"):
            raise StoreError("the engine has not started")
        await self.store.shift("")
        return self.supervisor.actors

    async def caregiver(self, caregiver_id: str) -> CaregiverRow:
        """The caregiver by id; NotFound for an unknown one."""
        row = await self.store.caregiver(caregiver_id)
        if row is None:
            raise NotFound(f"no caregiver {caregiver_id!r}")
        return row

    async def caregivers(self, role: str | None = None) -> list[CaregiverRow]:
        """Every caregiver on the roster, active or not; of `role` only when given
        (InvalidInput for a role nobody knows)."""
        return await self.store.list_caregivers(None if role is None else self.role(role))

    async def shift_detail(self, shift_id: str) -> dict[str, Any]:
        """The shift (`"shift"`) with its contacts, declines, lost notices and timeline, as
        `shift show` and the board's story page show them; NotFound for an unknown id."""
        detail = await self.store.shift_detail(shift_id)
        if detail is None:
            raise NotFound(f"no shift {shift_id!r}")
        return detail

    async def export(
        self,
        kind: str,
        since: datetime,
        until: datetime | None,
        after: tuple[str, str, int] | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        """One page of the audit record (`kind` "messages" or "timeline"), oldest first,
        from `since` to `until` (None: now), after the key `after` of the last page."""
        return await self.store.export(kind, since, until, after, limit)

    async def put_coordinator(self, name: str, password_hash: str) -> bool:
        """Create a coordinator's account (True) or replace its password hash (False);
        whoever was signed in as `name` is signed out (`coordinator_changed`)."""
        created = await self.store.put_coordinator(name, password_hash, at=self.clock.now())
        self.events.publish(EventKind.COORDINATOR_CHANGED, name=name, change="password")
        return created

    async def remove_coordinator(self, name: str) -> None:
        """Remove a coordinator's account and sign them out; NotFound for an unknown name."""
        if not await self.store.remove_coordinator(name):
            raise NotFound(f"no coordinator {name!r}")
        self.events.publish(EventKind.COORDINATOR_CHANGED, name=name, change="removed")

    async def coordinators(self) -> list[dict[str, str]]:
        """Every coordinator's account (name and when it was made), never a hash."""
        return await self.store.list_coordinators()

    async def coordinator_hash(self, name: str) -> str | None:
        """The password hash a coordinator signs in against; None for an unknown name."""
        return await self.store.coordinator_hash(name)

    async def sent_message(self, provider_id: str) -> ProviderMessageRow | None:
        """The outbox row the provider knows as `provider_id` (a message or call sid)."""
        return await self.store.outbox_by_provider_id(provider_id)

    async def delivery_status(
        self, provider_id: str, status: str
    ) -> tuple[ProviderStatusUpdate, ProviderMessageRow | None]:
        """Record the provider's report on a message it was given (never moving it
        backwards); the result and, when it moved, its row, whose shift's watchers are
        told (`delivery` event)."""
        result = await self.store.update_provider_status(provider_id, status, at=self.clock.now())
        row = None
        if result is ProviderStatusUpdate.UPDATED:
            row = await self.store.outbox_by_provider_id(provider_id)
        if row is not None and row.shift_id is not None:
            self.events.publish(
                EventKind.DELIVERY,
                shift_id=row.shift_id,
                caregiver_id=row.caregiver_id,
                status=status,
            )
        return result, row

    async def board_shifts(self, ending_after: datetime) -> list[tuple[ShiftRow, str | None]]:
        """Shifts ending after `ending_after` or in progress, with their holder's name."""
        return await self.store.board_shifts(ending_after)

    async def roles_in_use(self) -> list[str]:
        """Every role some caregiver has, sorted."""
        return await self.store.roles()

    async def history(
        self, since: datetime
    ) -> tuple[list[tuple[datetime, str, float | None]], list[datetime]]:
        """Since `since`: each fanout's (start, state, seconds to fill or None) and each
        decline's instant (the board's daily figures)."""
        return await self.store.fanout_outcomes(since), await self.store.decline_times(since)
