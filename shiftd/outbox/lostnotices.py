"""Lost notices: a holder's notice (confirmation, release, cancellation) that ended `failed`
is flagged on its shift (timeline, `shift show`, the `notice_lost` event and metric) and
followed up once: a failed confirmation text becomes a call to the winner, and the
organization's coordinator is told (text, email and/or webhook)."""

from __future__ import annotations

import json
from collections.abc import Callable

from ..clock import Clock
from ..events import EventBus
from ..logs import get_logger
from ..models import Channel, EventKind, Purpose, ShiftState
from ..shifts.machine import shift_link
from ..shifts.organizations import Organizations
from ..store.base import NewMessage, OutboxRow, ShiftRow, Store
from . import keys

log = get_logger(__name__)


class LostNotices:
    """The sender's after-failure hook (`Sender(after_failure=lost.follow_up)`)."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        organizations: Organizations,
        events: EventBus,
        wake_sender: Callable[[], None],
        public_url: str | None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._organizations = organizations
        self._events = events
        self._wake_sender = wake_sender
        self._public_url = public_url

    async def follow_up(self) -> None:
        """Flag every notice newly failed and queue its follow-ups, in one store write.

        Raises StoreError when the store refuses the write (the sender logs it; the next
        failure flags what this one missed). Cancelled, nothing is flagged."""
        flagged = await self._store.flag_lost_notices(
            at=self._clock.now(), follow_up=self._messages
        )
        if flagged:
            self._wake_sender()
        for row in flagged:
            context = {
                "shift_id": row.shift_id,
                "caregiver_id": row.caregiver_id,
                "purpose": row.purpose.value,
                "channel": row.channel.value,
            }
            log.warning("notice.lost", **context)
            self._events.publish(EventKind.NOTICE_LOST, **context)

    def _messages(self, row: OutboxRow, shift: ShiftRow) -> list[NewMessage]:
        org = self._organizations.get(shift.organization_id)
        out = []
        still_theirs = shift.state is ShiftState.FILLED and shift.claimed_by == row.caregiver_id
        if row.purpose is Purpose.CONFIRM and row.channel is Channel.SMS and still_theirs:
            out.append(
                NewMessage(
                    keys.lost_notice(row.id, "call"),
                    row.caregiver_id,
                    Channel.VOICE,
                    row.purpose,
                    org.messages.confirm(shift),
                    shift.id,
                )
            )
        coordinator, to = org.coordinator, f"coordinator:{org.id}"
        if coordinator is None:
            return out
        link = shift_link(self._public_url, shift.id) if self._public_url else None
        text = org.messages.notice_lost(shift, row.purpose.value, row.caregiver_id, link)
        payload = {
            "event": "shift.notice_lost",
            "shift_id": shift.id,
            "organization_id": shift.organization_id,
            "caregiver_id": row.caregiver_id,
            "notice": row.purpose.value,
            "channel": row.channel.value,
            "called": bool(out),
            "link": link,
        }
        for channel, address, body in (
            (Channel.SMS, coordinator.phone, text),
            (Channel.EMAIL, coordinator.email, text),
            (Channel.WEBHOOK, coordinator.webhook, json.dumps(payload)),
        ):
            if address is not None:
                out.append(
                    NewMessage(
                        keys.lost_notice(row.id, channel.value),
                        to,
                        channel,
                        Purpose.NOTICE_LOST,
                        body,
                        shift.id,
                        str(address),
                    )
                )
        return out
