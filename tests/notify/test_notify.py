"""The built-in notifiers: `record` (the audit trail and test oracle) and `console`."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import trio
import trio.testing

from shiftd.models import Channel, Purpose
from shiftd.notify import ConsoleNotifier, RecordNotifier
from shiftd.notify.base import Outgoing
from shiftd.testing.engine import EPOCH


def outgoing(n: int = 1, **changes: object) -> Outgoing:
    fields: dict[str, object] = {
        "outbox_id": n,
        "channel": Channel.SMS,
        "purpose": Purpose.OFFER,
        "to": "+15550001",
        "body": f"RN shift tomorrow 08:00. Reply YES {n} to take it.",
        "caregiver_id": "cg-1",
        "shift_id": "shift-1",
        "at": EPOCH + timedelta(seconds=n),
    }
    fields.update(changes)
    return Outgoing(**fields)  # type: ignore[arg-type]


async def test_record_writes_one_json_object_per_line_with_every_field(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "records" / "sent.jsonl"
    notifier = RecordNotifier(path)
    first = await notifier.send(outgoing(1))
    await notifier.send(outgoing(2, channel=Channel.VOICE, shift_id=None, body="Café ☎"))
    await notifier.aclose()

    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == [
        {
            "ts": "2025-07-01T14:00:01.000000Z",
            "channel": "sms",
            "to": "+15550001",
            "caregiver_id": "cg-1",
            "shift_id": "shift-1",
            "purpose": "offer",
            "body": "RN shift tomorrow 08:00. Reply YES 1 to take it.",
            "outbox_id": 1,
        },
        {
            "ts": "2025-07-01T14:00:02.000000Z",
            "channel": "voice",
            "to": "+15550001",
            "caregiver_id": "cg-1",
            "shift_id": None,
            "purpose": "offer",
            "body": "Café ☎",
            "outbox_id": 2,
        },
    ]
    assert first == "rec-1"


async def test_record_appends_to_an_existing_file(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    path = tmp_path / "sent.jsonl"
    for n in (1, 2):  # a restart reopens the audit trail; it must not truncate it
        notifier = RecordNotifier(path)
        await notifier.send(outgoing(n))
        await notifier.aclose()
    assert [json.loads(line)["outbox_id"] for line in path.read_text().splitlines()] == [1, 2]


async def test_console_prints_one_readable_line_with_the_phone_masked(
    autojump_clock: trio.testing.MockClock,
) -> None:
    stream = io.StringIO()
    notifier = ConsoleNotifier(stream)
    assert await notifier.send(outgoing(1)) is None

    output = stream.getvalue()
    assert output.count("\n") == 1
    assert "+15550001" not in output
    assert "5550001" not in output
    assert output.startswith("14:00:01  SMS   → …01")
    assert "offer" in output
    assert output.rstrip("\n").endswith("Reply YES 1 to take it.")
