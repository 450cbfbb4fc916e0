"""Retention: the texts caregivers sent are blanked once they are older than configured.

What a reply *did* (its outcome, shift, caregiver, time) stays for the audit; only its free
text, which may hold anything a person chose to write, goes after `retention.reply_text`.
"""

from __future__ import annotations

from datetime import timedelta

import trio

from .clock import Clock, iso
from .logs import get_logger
from .store.base import Store, StoreError

log = get_logger("shiftd.retention")

SWEEP_EVERY = timedelta(hours=1)


class Retention:
    def __init__(
        self, store: Store, clock: Clock, keep: timedelta, every: timedelta = SWEEP_EVERY
    ) -> None:
        self._store, self._clock, self._keep, self._every = store, clock, keep, every

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Sweep at once, then every `every`, until cancelled. A failed sweep is logged and
        tried again at the next one; cancellation stops it between sweeps or mid-write (the
        write then still commits or not as a whole)."""
        task_status.started()
        while True:
            before = self._clock.now() - self._keep
            try:
                blanked = await self._store.blank_reply_texts(before)
            except StoreError as exc:
                log.error("retention.failed", error=str(exc))
            else:
                if blanked:
                    log.info("retention.reply_text_blanked", count=blanked, before=iso(before))
            await trio.sleep(self._every.total_seconds())
