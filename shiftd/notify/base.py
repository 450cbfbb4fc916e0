"""The notifier interface: where SMS and voice providers plug in.

A notifier hands one message to a provider. What it raises tells the sender whether the
message may be retried: `TransientSendError` only when the provider certainly did not take
it (connection refused, HTTP 429/5xx before acceptance), `PermanentSendError` when it never
will (bad number, 4xx). Any other exception means "unknown" and is never retried
(at-most-once).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ..models import Channel, Purpose


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message as handed to a provider."""

    outbox_id: int
    channel: Channel
    purpose: Purpose
    to: str
    body: str
    caregiver_id: str
    shift_id: str | None
    at: datetime


class TransientSendError(Exception):
    """The provider did not take the message; retrying is safe."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentSendError(Exception):
    """The provider refused the message for good; it is recorded as failed."""


class Notifier(Protocol):
    async def send(self, message: Outgoing) -> str | None:
        """Deliver `message`; return the provider's id for it, if it has one.

        Raises TransientSendError or PermanentSendError as above. On cancellation the
        message may or may not have been taken.
        """
        ...

    async def aclose(self) -> None:
        """Release what the notifier holds (files, connections)."""
        ...
