"""Every outbox key, built in one place.

A key names a message so that queueing it twice queues it once (`outbox.key` is unique).
The spellings are stored, so they never change: a message about a reopened shift carries
its generation (`:g<n>`) — always for a holder's or the coordinator's notices, only from
the first reopening on for the rest — and a repeat round of a wave its step and round.
"""

from __future__ import annotations

import uuid

from ..models import Channel, Purpose


def _since_reopened(generation: int) -> str:
    return f":g{generation}" if generation else ""


def offer(shift_id: str, caregiver_id: str, channel: Channel, generation: int, round_: str) -> str:
    """A wave's offer to one caregiver; `round_` is the wave's key suffix (`Wave.key_suffix`):
    a first round reaches her once per channel, a repeat again."""
    return offer_with_tail(shift_id, caregiver_id, offer_tail(channel, generation, round_))


def offer_with_tail(shift_id: str, caregiver_id: str, tail: str) -> str:
    """`offer` with its tail (`offer_tail`) made already: a wave's are all the same."""
    return f"offer:{shift_id}:{caregiver_id}:{tail}"


def offer_tail(channel: Channel, generation: int, round_: str) -> str:
    """What follows `offer:<shift>:<caregiver>:` in an offer's key."""
    return f"{channel.value}{_since_reopened(generation)}{round_}"


def about_shift(purpose: Purpose, shift_id: str, caregiver_id: str, generation: int) -> str:
    """A claim's confirmation, a "filled" notice, or a decline's thanks (generation 0 for
    those: one thanks per shift, whatever reopens)."""
    return f"{purpose.value}:{shift_id}:{caregiver_id}{_since_reopened(generation)}"


def answer(purpose: Purpose, shift_id: str, caregiver_id: str, generation: int, per: str) -> str:
    """An answer that changes nothing ("already filled"…): one per shift, caregiver and
    generation (and `per` reason, if any)."""
    key = about_shift(purpose, shift_id, caregiver_id, generation)
    return f"{key}:{per}" if per else key


def to_holder(purpose: Purpose, shift_id: str, caregiver_id: str, generation: int) -> str:
    """A notice to the caregiver who holds (held) the shift: released, cancelled."""
    return f"{purpose.value}:{shift_id}:{caregiver_id}:g{generation}"


def to_coordinator(notice: str, shift_id: str, generation: int, channel: Channel) -> str:
    """A coordinator's notice about a shift (unfilled, no_accept, closing, released)."""
    return f"{notice}:{shift_id}:g{generation}:{channel.value}"


def lost_notice(outbox_id: int, how: str) -> str:
    """The follow-up of a lost notice (`how`: `call`, or the coordinator's channel)."""
    return f"lost:{outbox_id}:{how}"


def reply() -> str:
    """A router's answer (HELP, "which one?"…): never the same as another."""
    return f"reply:{uuid.uuid4().hex}"
