"""Replies go through the classifier the configuration names."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from shiftd.inbound.intent import Classified, Intent
from shiftd.models import Channel, Outcome
from shiftd.testing.engine import Harness, caregiver, make_config, phone, shift


class OuiClassifier:
    """A classifier plugged in by configuration: French yes/no."""

    def classify(self, body: str, channel: Channel) -> Classified:
        word = body.strip().lower()
        if word == "oui":
            return Classified(Intent.ACCEPT)
        if word == "non":
            return Classified(Intent.DECLINE)
        return Classified(Intent.UNKNOWN)


async def test_replies_go_through_the_classifier_named_in_the_configuration(
    start_engine, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine(
        make_config(tmp_path, classifier="test_classifier_choice:OuiClassifier")
    )
    await h.engine.import_roster([caregiver(1), caregiver(2)], [shift()])
    await h.engine.fanout("shift-1")

    assert (await h.engine.inbound(phone(1), "yes")).outcome is Outcome.UNKNOWN_INTENT
    assert (await h.engine.inbound(phone(2), "oui")).outcome is Outcome.CLAIMED
