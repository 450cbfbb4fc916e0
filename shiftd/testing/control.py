"""A control-socket client on the Trio loop, for in-process tests: raw bytes or requests,
one response line at a time, over a real Unix socket."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import trio

IO_LIMIT = 30  # virtual seconds; nothing here should need more than an instant


class Conn:
    """One client connection: send raw bytes or requests, read response lines."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self._buf = bytearray()
        self._next_id = 1

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def read(self) -> dict[str, Any] | None:
        """The next response line, or None at end of stream."""
        while b"\n" not in self._buf:
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                assert not self._buf, f"partial line before EOF: {bytes(self._buf)!r}"
                return None
            self._buf += chunk
        line, _, rest = bytes(self._buf).partition(b"\n")
        self._buf[:] = rest
        response = json.loads(line)
        assert isinstance(response, dict), f"a response is an object: {response!r}"
        return response

    async def request(self, cmd: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        request_id = self._next_id
        self._next_id += 1
        await self.send(line({"id": request_id, "cmd": cmd, "args": args or {}}))
        response = await self.read()
        assert response is not None, f"connection closed instead of answering {cmd}"
        assert response["id"] == request_id
        return response

    async def call(self, cmd: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """`request` that must succeed; returns the result."""
        response = await self.request(cmd, args)
        assert response["ok"], response
        result = response["result"]
        assert isinstance(result, dict), response
        return result

    async def error(self, cmd: str, args: dict[str, Any] | None = None) -> str:
        """`request` that must fail; returns the error code."""
        response = await self.request(cmd, args)
        assert response["ok"] is False, response
        code = response["error"]["code"]
        assert isinstance(code, str), response
        return code


def line(payload: Any) -> bytes:
    """One request line: `payload` as JSON, newline-terminated."""
    return json.dumps(payload).encode() + b"\n"


async def connect(path: Path) -> Conn:
    """A connection to the control socket at `path`."""
    return Conn(await trio.open_unix_socket(str(path)))
