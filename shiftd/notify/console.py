"""`console`: one readable line per message on standard output, for people trying shiftd."""

from __future__ import annotations

import sys
from typing import TextIO

from ..logs import mask_phone
from .base import Outgoing


class ConsoleNotifier:
    """Prints `HH:MM:SS  SMS   → …01  offer  <body>`. Phones are masked; it may be read by many."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stdout

    async def send(self, message: Outgoing) -> str | None:
        channel = message.channel.value.upper()
        self._stream.write(
            f"{message.at:%H:%M:%S}  {channel:<5} → {mask_phone(message.to):<6} "
            f"{message.purpose.value:<14} {message.body}\n"
        )
        self._stream.flush()
        return None

    async def aclose(self) -> None:
        return None
