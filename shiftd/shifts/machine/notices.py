"""What the coordinator hears and when: notices, their retelling, the shift's link."""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from datetime import datetime, timedelta
from urllib.parse import quote

from ...clock import iso, local_iso
from ...models import Channel, EventKind, Purpose
from ...outbox import keys
from ...store.base import NewMessage, ShiftRow
from .facts import Rules, State
from .transition import Record, Transition

_NOTICE_PURPOSES = {
    "unfilled": Purpose.UNFILLED,
    "no_accept": Purpose.NO_ACCEPT,
    "closing": Purpose.CLOSING,
    "released": Purpose.HOLDER_DROPPED,
}
RETELL_AFTER = timedelta(minutes=10)


def notices_pending(
    shift: ShiftRow, told: frozenset[tuple[str, int]], rules: Rules
) -> list[tuple[str, datetime]]:
    """The coordinator's timed notices not yet `told`, with when each is due: nobody has
    accepted `no_accept_after` into the first fanout; offers close in `warn_before_close`."""
    coordinator = rules.org.coordinator
    if coordinator is None:
        return []
    due = []
    started = shift.fanout_started_at
    if coordinator.no_accept_after is not None and started is not None and not shift.generation:
        due.append((Purpose.NO_ACCEPT, started + coordinator.no_accept_after))
    if coordinator.warn_before_close is not None and shift.expires_at is not None:
        due.append((Purpose.CLOSING, shift.expires_at - coordinator.warn_before_close))
    return [(n, at) for n, at in due if (n, shift.generation) not in told]


def notify(state: State, now: datetime, notice: str, rules: Rules) -> Transition:
    """A timed coordinator notice (no_accept, closing)."""
    shift = state.shift
    told = replace(state, told=state.told | {(notice, shift.generation)})
    messages = coordinator_messages(shift, len(state.offers), notice, rules)
    if not messages:
        return Transition(told)
    return Transition(
        told,
        messages=messages,
        records=(Record(EventKind.COORDINATOR_TOLD, detail={"notice": notice}, if_queued=True),),
        news=((EventKind.COORDINATOR_TOLD, {"notice": notice}),),
    )


def coordinator_messages(
    shift: ShiftRow, contacted: int, notice: str, rules: Rules
) -> tuple[NewMessage, ...]:
    """The coordinator's messages about `shift` (`notice`: unfilled, no_accept, closing,
    released): a text, a mail and/or a webhook, each with the shift's id, role, local
    start and a link to its page when `public_url` is set."""
    org = rules.org
    coordinator = org.coordinator
    if coordinator is None:
        return ()
    to = f"coordinator:{org.id}"
    key = functools.partial(keys.to_coordinator, notice, shift.id, shift.generation)
    purpose = _NOTICE_PURPOSES[notice]
    base = rules.public_url
    link = shift_link(base, shift.id) if base else None
    text = org.messages.coordinator(notice, shift, contacted, link)
    told = []
    if coordinator.phone is not None:
        told.append(
            NewMessage(
                key(Channel.SMS), to, Channel.SMS, purpose, text, shift.id, coordinator.phone
            )
        )
    if coordinator.email is not None:
        told.append(
            NewMessage(
                key(Channel.EMAIL), to, Channel.EMAIL, purpose, text, shift.id, coordinator.email
            )
        )
    if coordinator.webhook is not None:
        payload = {
            "event": f"shift.{notice}",
            "shift_id": shift.id,
            "organization_id": shift.organization_id,
            "role": shift.role_required,
            "start_time": iso(shift.start_time),
            "end_time": iso(shift.end_time),
            "start_local": local_iso(shift.start_time, org.tz),
            "location": shift.location,
            "contacted": contacted,
            "link": link,
        }
        told.append(
            NewMessage(
                key(Channel.WEBHOOK),
                to,
                Channel.WEBHOOK,
                purpose,
                json.dumps(payload),
                shift.id,
                coordinator.webhook,
            )
        )
    return tuple(told)


def shift_link(base: str, shift_id: str) -> str:
    """The address of a shift's page on the coordinator's board under `base`."""
    return f"{base.rstrip('/')}/board/shifts/{quote(shift_id, safe='')}"
