"""`record`: appends one JSON object per message to a file: the audit trail and test oracle."""

from __future__ import annotations

import json
from pathlib import Path

from ..clock import iso
from .base import Outgoing


class RecordNotifier:
    """Each line: `ts`, `channel`, `to`, `caregiver_id`, `shift_id`, `purpose`, `body`, `outbox_id`.

    The file is opened once for appending; each line is written and flushed in one call, so a
    crash leaves whole lines only (a local append takes microseconds, so it runs inline).
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file = path.open("a", encoding="utf-8")

    async def send(self, message: Outgoing) -> str | None:
        line = {
            "ts": iso(message.at),
            "channel": message.channel.value,
            "to": message.to,
            "caregiver_id": message.caregiver_id,
            "shift_id": message.shift_id,
            "purpose": message.purpose.value,
            "body": message.body,
            "outbox_id": message.outbox_id,
        }
        self._file.write(json.dumps(line, ensure_ascii=False) + "\n")
        self._file.flush()
        return f"rec-{message.outbox_id}"

    async def aclose(self) -> None:
        self._file.close()
