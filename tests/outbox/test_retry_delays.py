"""The sender's retry delays: exponential, jittered, capped, never before `Retry-After`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from shiftd.outbox.sender import Sender


def test_retry_delays_are_jittered_exponential_and_never_before_retry_after() -> None:
    sender = Sender(
        None,  # type: ignore[arg-type]  # only the backoff arithmetic is used
        harness_free_notifier(),
        None,  # type: ignore[arg-type]
        backoff_initial=timedelta(seconds=1),
        backoff_max=timedelta(minutes=5),
    )
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0)):
        delays = [sender._backoff(attempt, None) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)  # exponential, equal jitter
        assert len(set(delays)) > 100  # jittered, not one fixed delay
    assert sender._backoff(20, None) <= 300  # capped at backoff_max
    assert sender._backoff(1, 30.0) == 30.0  # Retry-After wins over a shorter backoff


def harness_free_notifier() -> Any:
    class Plain:
        async def send(self, message: object) -> str | None:
            return None

        async def aclose(self) -> None:
            return None

    return Plain()
