"""The notifier interface: where SMS and voice providers plug in.

A notifier hands one message to a provider. What it raises tells the sender whether the
message may be retried: `TransientSendError` only when the provider certainly did not take
it (connection refused, HTTP 429/5xx before acceptance), `PermanentSendError` when it never
will (bad number, 4xx). `SendOutcomeUnknown` (or any other exception) means the provider may
or may not have taken it — the request went out and no answer came back — and is never
retried (at-most-once).

A notifier whose provider limits the sending rate also implements `Throttled`: the sender
then waits in `acquire()` for a turn *before* it marks the row `sending`, so a message
withdrawn while it waits (the shift was filled) is skipped and its turn handed back with
`release()`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

from ..models import Channel, Purpose


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message as handed to a provider.

    `from_number` is the sender number a `Throttled` notifier chose in `acquire()` (None for
    notifiers that have no numbers).
    """

    outbox_id: int
    channel: Channel
    purpose: Purpose
    to: str
    body: str
    caregiver_id: str
    shift_id: str | None
    at: datetime
    from_number: str | None = None


class TransientSendError(Exception):
    """The provider did not take the message; retrying is safe.

    `retry_after` is the provider's own minimum delay in seconds (from `Retry-After`), if any.
    """

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentSendError(Exception):
    """The provider refused the message for good; it is recorded as failed."""


class SendOutcomeUnknown(Exception):
    """The request reached the provider but no answer came back (read timeout, connection
    dropped): the message may have been taken. It is recorded as failed, never retried."""


class Notifier(Protocol):
    """Sends one message at a time to a provider (several may be in flight at once)."""

    async def send(self, message: Outgoing) -> str | None:
        """Deliver `message`; return the provider's id for it, if it has one.

        Raises TransientSendError, PermanentSendError or SendOutcomeUnknown as above. On
        cancellation the message may or may not have been taken: the sender shields a send
        it has begun, and only the stop's deadline cuts it (recorded "may have been sent").
        """
        ...

    async def aclose(self) -> None:
        """Release what the notifier holds (files, connections); called once, after the
        last send. Raises nothing a caller can act on; cancelled, it may not finish
        closing (the process is ending then)."""
        ...


@runtime_checkable
class Throttled(Protocol):
    """A notifier with a rate limit; the sender calls these around `send`."""

    async def acquire(self, message: Outgoing) -> str | None:
        """Wait for the turn to send `message`; return the from-number to send it from.

        Waits as long as the rate limit requires (on Trio's clock); raises nothing of its
        own. Cancellation while waiting takes nothing. Every successful `acquire` is
        followed either by `send` of the message (with `from_number` set to the result) or
        by `release`.
        """
        ...

    def release(self, message: Outgoing) -> None:
        """Hand back the turn `acquire` gave for `message`, which will not be sent after all.
        Never blocks."""
        ...


class OneChannel(ABC):
    """A notifier that sends the rows of its own `channel` and hands every other row, with
    its rate limit, to the notifier it wraps. Subclasses implement `_send_own`."""

    channel: Channel

    def __init__(self, inner: Notifier) -> None:
        self._inner = inner

    async def send(self, message: Outgoing) -> str | None:
        """Send `message` through `_send_own` if it is on this channel, else through `inner`."""
        if message.channel is not self.channel:
            return await self._inner.send(message)
        return await self._send_own(message)

    @abstractmethod
    async def _send_own(self, message: Outgoing) -> str | None:
        """Send a row of this channel; raises as `Notifier.send` does."""

    async def acquire(self, message: Outgoing) -> str | None:
        """The wrapped notifier's turn for its rows; this channel's own rows wait for none."""
        if message.channel is not self.channel and isinstance(self._inner, Throttled):
            return await self._inner.acquire(message)
        return None

    def release(self, message: Outgoing) -> None:
        """Hand a turn back to the wrapped notifier (its rows only)."""
        if message.channel is not self.channel and isinstance(self._inner, Throttled):
            self._inner.release(message)

    async def aclose(self) -> None:
        await self._inner.aclose()
