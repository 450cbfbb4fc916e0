"""The reply-loop guard: a cap on automatic answers that change nothing.

Some of what shiftd sends is an automatic answer to a text that changed nothing: "please reply
YES 12 or NO 12", "you have no open shift offers", "which one?", the HELP text, "this shift
was already filled". Pointed at another automaton (an auto-responder, a carrier's "this
number does not accept texts" bounce, a misconfigured forwarding service), such answers
can ping-pong for ever. The guard allows at most `max_per_hour` of them per caregiver (each
roster phone is one caregiver) in any sliding hour; past that shiftd stays silent and logs
`reply.silenced`. `max_per_hour=0` means never answer automatically.

Answers that accompany a state change (a claim's confirmation, a first decline's
acknowledgement, the first STOP's or START's confirmation, a release) never ask the guard:
they are bounded by the state changes themselves.

Only answers that are *allowed* are counted, so a phone that keeps writing gets its answers
back as soon as its oldest one leaves the window.

The guard is in memory: a restart resets every count (at worst a burst of up to
`max_per_hour` answers more after a restart). Memory is bounded: each caregiver keeps at
most `max_per_hour` timestamps, and at most `max_keys` caregivers are tracked — when that
is exceeded, expired entries are dropped first, then the least recently answered
caregivers are forgotten (their counts reset, as after a restart).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from datetime import datetime, timedelta

from ..logs import get_logger, mask_phone

log = get_logger(__name__)

WINDOW = timedelta(hours=1)
DEFAULT_MAX_PER_HOUR = 5
DEFAULT_MAX_KEYS = 100_000


class ReplyGuard:
    """Per-caregiver sliding-window limit on automatic no-change answers. Not thread-safe
    (it lives on the Trio thread); `allow` never blocks, never yields and never raises."""

    def __init__(
        self, max_per_hour: int = DEFAULT_MAX_PER_HOUR, *, max_keys: int = DEFAULT_MAX_KEYS
    ):
        if max_per_hour < 0:
            raise ValueError("max_per_hour must be >= 0")
        if max_keys < 1:
            raise ValueError("max_keys must be >= 1")
        self.max_per_hour = max_per_hour
        self.max_keys = max_keys
        self.silenced = 0  # total answers withheld since start (for tests and metrics)
        # caregiver id → times of the answers allowed within the window, oldest first;
        # ordered least recently answered first (for eviction).
        self._answers: OrderedDict[str, deque[datetime]] = OrderedDict()

    def allow(
        self,
        caregiver_id: str,
        now: datetime,
        *,
        phone: str | None = None,
        reason: str | None = None,
    ) -> bool:
        """Whether an automatic answer to `caregiver_id` may go out now; if so it is counted.

        When it may not, logs `reply.silenced` (with the caregiver id, the masked `phone` if
        given, and `reason`, e.g. the purpose of the withheld answer) and returns False.
        """
        if self.max_per_hour == 0:
            self._silence(caregiver_id, phone, reason, 0)
            return False
        times = self._answers.get(caregiver_id)
        if times is not None:
            _expire(times, now)
            if len(times) >= self.max_per_hour:
                self._silence(caregiver_id, phone, reason, len(times))
                return False
            self._answers.move_to_end(caregiver_id)
            times.append(now)
        else:
            times = self._answers[caregiver_id] = deque([now], maxlen=self.max_per_hour)
            if len(self._answers) > self.max_keys:
                self._prune(now)
        return True

    def answered(self, caregiver_id: str, now: datetime) -> int:
        """How many answers `caregiver_id` was allowed in the hour before `now`."""
        times = self._answers.get(caregiver_id)
        if times is None:
            return 0
        return sum(1 for t in times if now - t < WINDOW)

    def __len__(self) -> int:
        """How many caregivers are tracked now."""
        return len(self._answers)

    def _silence(
        self, caregiver_id: str, phone: str | None, reason: str | None, answered: int
    ) -> None:
        self.silenced += 1
        detail: dict[str, object] = {}
        if phone is not None:
            # Not under "phone": the log processor would mask the masked form again.
            detail["phone_tail"] = mask_phone(phone)
        if reason is not None:
            detail["reason"] = reason
        log.info(
            "reply.silenced",
            caregiver_id=caregiver_id,
            answered_last_hour=answered,
            max_per_hour=self.max_per_hour,
            **detail,
        )

    def _prune(self, now: datetime) -> None:
        """Drop caregivers with no answer in the window; then, if still over the bound, the
        least recently answered ones."""
        for key in [k for k, times in self._answers.items() if not _expire(times, now)]:
            del self._answers[key]
        while len(self._answers) > self.max_keys:
            self._answers.popitem(last=False)


def _expire(times: deque[datetime], now: datetime) -> int:
    """Drop the answers that left the window; returns how many are left."""
    while times and now - times[0] >= WINDOW:
        times.popleft()
    return len(times)
