"""`rate_per_second` and `burst` from the configuration reach the Twilio notifier's rate pool."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from shiftd.notify import make_notifier
from shiftd.notify.twilio import TwilioNotifier
from shiftd.testing.engine import make_config

NUMBERS = ["+15550100001", "+15550100002"]


async def test_rate_per_second_and_burst_from_the_config_reach_the_rate_pool(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    (tmp_path / "token").write_text("t0ken")
    config = make_config(
        tmp_path,
        notifier={
            "kind": "twilio",
            "account_sid": "AC" + "0" * 32,
            "auth_token_file": str(tmp_path / "token"),
            "from_numbers": NUMBERS,
            "rate_per_second": 3,
            "burst": 2,
        },
    )
    notifier = make_notifier(config)
    assert isinstance(notifier, TwilioNotifier)
    assert notifier.texts.keys == NUMBERS  # one bucket per from-number
    assert (notifier.texts.rate, notifier.texts.burst) == (3, 2)
    await notifier.aclose()
