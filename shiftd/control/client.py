"""A small synchronous client for the shiftd control socket.

The protocol is newline-delimited JSON over a Unix stream socket::

    -> {"id": 1, "cmd": "ping", "args": {}}
    <- {"id": 1, "ok": true, "result": {"pong": true, "version": "0.1.0"}}
    <- {"id": 1, "ok": false, "error": {"code": "not_found", "message": "..."}}

This is CLI code, so it uses a blocking stdlib socket. Every wait is bounded: ``timeout``
covers connecting and each whole call (send plus the complete response), and a response line
may be at most ``max_response_bytes`` long.

Streaming commands (``watch``) answer once, then send one line per event until either side
closes::

    -> {"id": 1, "cmd": "watch", "args": {}}
    <- {"id": 1, "ok": true, "result": {"watching": true, "shift_id": null}}
    <- {"id": 1, "ok": true, "event": {"ts": "...", "kind": "fanout_started", ...}}

:meth:`ControlClient.stream` yields those events; the wait for the next one is not bounded
(a quiet daemon is not a broken one), the acknowledgement is.

Errors:

* :class:`ConnectError` — nothing answers at the path (missing file, connection refused,
  permission denied, not a socket, timed out); ``reason`` says which.
* :class:`RemoteError` — the daemon answered ``ok: false``; carries ``code`` and ``message``.
* :class:`RequestTooLarge` — the request would not fit in one line the daemon accepts; it is
  never sent.
* :class:`ProtocolError` — the connection broke or the daemon answered something that is not
  a response to this request (closed early, timed out, invalid JSON, wrong id, oversized).

All derive from :class:`ControlError`.
"""

from __future__ import annotations

import errno
import json
import socket
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Any

__all__ = [
    "MAX_REQUEST_BYTES",
    "MAX_RESPONSE_BYTES",
    "ConnectError",
    "ControlClient",
    "ControlError",
    "ProtocolError",
    "RemoteError",
    "RequestTooLarge",
    "encode_request",
]

#: The daemon refuses a request line of this many bytes or more (newline included).
MAX_REQUEST_BYTES = 64 * 1024
#: The client refuses a response line longer than this (``shift.list`` can be large).
MAX_RESPONSE_BYTES = 16 * 1024 * 1024

_RECV_CHUNK = 64 * 1024
# The longest one blocking receive lasts: Python runs a signal's handler (Ctrl-C's
# KeyboardInterrupt) only between system calls, and a signal that lands just before `recv`
# blocks would otherwise wait for the answer or the whole timeout.
_SIGNAL_CHECK = 0.2


class ControlError(Exception):
    """Base class for everything :class:`ControlClient` raises."""


class ConnectError(ControlError):
    """No daemon answers at ``path``.

    ``reason`` is a short human phrase ("no such file", "connection refused",
    "permission denied", "not a socket", "timed out", or the OS message); ``errno`` is the
    OS error number when there is one.
    """

    def __init__(self, path: str, reason: str, errno_: int | None = None) -> None:
        super().__init__(f"cannot connect to {path} ({reason})")
        self.path = path
        self.reason = reason
        self.errno = errno_


class RemoteError(ControlError):
    """The daemon answered the request with ``ok: false``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.offset = 0
        """Entries of the list sent before this request's first (a chunked roster import
        sets it): an `index` in the message counts from there."""


class RequestTooLarge(ControlError):
    """The encoded request line is too long for the daemon; nothing was sent."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"request is {size} bytes; the control socket accepts lines under {limit} bytes"
        )
        self.size = size
        self.limit = limit


class ProtocolError(ControlError):
    """The connection failed mid-call, or the answer is not a valid response."""


def encode_request(request_id: int | str, cmd: str, args: dict[str, Any] | None = None) -> bytes:
    """Return the exact request line (newline included) the client sends for this call."""
    payload = {"id": request_id, "cmd": cmd, "args": {} if args is None else args}
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.encode("utf-8") + b"\n"


_CONNECT_REASONS = {
    errno.ENOENT: "no such file",
    errno.ECONNREFUSED: "connection refused",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOTSOCK: "not a socket",
    errno.ENOTDIR: "no such file",
    errno.EPROTOTYPE: "not a stream socket",
}


class ControlClient:
    """One connection to a shiftd control socket.

    Use as a context manager, or call :meth:`close` yourself. The connection is opened on
    ``__enter__`` or on the first :meth:`call`, and reused for later calls.

    ``timeout`` (seconds) bounds connecting and each call as a whole. After a
    :class:`ProtocolError` the connection is closed; the next call reconnects.
    """

    def __init__(
        self,
        path: str,
        timeout: float = 30.0,
        *,
        max_request_bytes: int = MAX_REQUEST_BYTES,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.path = str(path)
        self.timeout = float(timeout)
        self.max_request_bytes = max_request_bytes
        self.max_response_bytes = max_response_bytes
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._next_id = 1
        #: The acknowledgement of the last :meth:`stream` command.
        self.ack: dict[str, Any] | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def __enter__(self) -> ControlClient:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> None:
        """Open the connection unless open; raise :class:`ConnectError` if no one answers."""
        if self._sock is not None:
            return
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self.path)
        except TimeoutError:
            sock.close()
            raise ConnectError(self.path, "timed out") from None
        except OSError as exc:
            sock.close()
            reason = _CONNECT_REASONS.get(exc.errno or -1) or (exc.strerror or str(exc))
            raise ConnectError(self.path, reason, exc.errno) from None
        self._sock = sock
        self._buf.clear()

    def close(self) -> None:
        """Close the connection (idempotent)."""
        sock, self._sock = self._sock, None
        self._buf.clear()
        if sock is not None:
            sock.close()

    # -- calls -------------------------------------------------------------------------

    def call(self, cmd: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send one command and return its ``result``.

        Raises :class:`RemoteError` when the daemon answers with an error, and the other
        :class:`ControlError` subclasses as described in the module docstring.
        """
        request_id = self._next_id
        self._next_id += 1
        line = encode_request(request_id, cmd, args)
        if len(line) >= self.max_request_bytes:
            raise RequestTooLarge(len(line), self.max_request_bytes)
        self.connect()
        deadline = time.monotonic() + self.timeout
        try:
            response = self._send(line, deadline) or self._read_response(deadline)
        except ProtocolError:
            self.close()
            raise
        return self._unwrap(response, request_id)

    def stream(self, cmd: str, args: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Send a streaming command and return an iterator over its events, which ends when
        shiftd closes the stream.

        Sends the request and waits (within ``timeout``) for the acknowledgement at once,
        raising as :meth:`call` does if it is refused; ``ack`` then holds it. Waiting for
        each event is unbounded. An error line mid-stream raises :class:`RemoteError`. The
        connection is closed when the iterator ends or is closed; it carries nothing else.
        """
        self.ack = self.call(cmd, args)
        return self._events(self._next_id - 1)

    def _events(self, request_id: int) -> Iterator[dict[str, Any]]:
        try:
            while True:
                raw = self._readline(None, eof_ok=True)
                if raw is None:
                    return
                try:
                    response = json.loads(raw)
                except (UnicodeDecodeError, ValueError) as exc:
                    raise ProtocolError(f"the daemon sent invalid JSON ({exc})") from None
                if not isinstance(response, dict) or not isinstance(response.get("ok"), bool):
                    raise ProtocolError("the daemon sent something that is not a response object")
                if response["ok"] and response.get("id") == request_id:
                    event = response.get("event")
                    if not isinstance(event, dict):
                        raise ProtocolError("a stream line without an event object")
                    yield event
                else:
                    self._unwrap(response, request_id)  # raises RemoteError for an error line
                    raise ProtocolError("a stream line that is not an event")
        finally:
            self.close()

    def _send(self, line: bytes, deadline: float) -> dict[str, Any] | None:
        """Send ``line``; return an answer the daemon sent before closing on us, if any."""
        assert self._sock is not None
        self._sock.settimeout(max(deadline - time.monotonic(), 0.001))
        try:
            self._sock.sendall(line)
        except TimeoutError:
            raise ProtocolError(f"timed out after {self.timeout:g}s sending the request") from None
        except OSError as exc:
            # The daemon may have answered (e.g. too_many_connections) before closing.
            try:
                response = self._read_response(deadline)
            except ProtocolError:
                raise ProtocolError(
                    f"connection lost while sending the request ({exc.strerror or exc})"
                ) from None
            return response
        return None

    def _read_response(self, deadline: float) -> dict[str, Any]:
        raw = self._readline(deadline)
        if raw is None:  # not with eof_ok=False; for the type checker
            raise ProtocolError("shiftd closed the connection without answering")
        try:
            response = json.loads(raw)
        except (UnicodeDecodeError, ValueError) as exc:
            raise ProtocolError(f"the daemon sent invalid JSON ({exc})") from None
        if not isinstance(response, dict) or not isinstance(response.get("ok"), bool):
            raise ProtocolError("the daemon sent something that is not a response object")
        return response

    def _readline(self, deadline: float | None, *, eof_ok: bool = False) -> bytes | None:
        """The next line. ``deadline`` None waits for ever; with ``eof_ok`` a clean end of
        stream between lines returns None, else it is a ProtocolError."""
        assert self._sock is not None
        start = 0
        while True:
            idx = self._buf.find(b"\n", start)
            if idx >= 0:
                line = bytes(self._buf[:idx])
                del self._buf[: idx + 1]
                return line
            if len(self._buf) > self.max_response_bytes:
                raise ProtocolError(
                    f"response line exceeds {self.max_response_bytes} bytes; giving up"
                )
            start = len(self._buf)
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise ProtocolError(f"no answer from shiftd within {self.timeout:g}s")
            self._sock.settimeout(
                _SIGNAL_CHECK if remaining is None else min(remaining, _SIGNAL_CHECK)
            )
            try:
                chunk = self._sock.recv(_RECV_CHUNK)
            except TimeoutError:
                continue  # the deadline, if any, is checked at the top
            except OSError as exc:
                raise ProtocolError(
                    f"connection lost while waiting for the answer ({exc.strerror or exc})"
                ) from None
            if not chunk:
                if eof_ok and not self._buf:
                    return None
                raise ProtocolError("shiftd closed the connection without answering")
            self._buf += chunk

    def _unwrap(self, response: dict[str, Any], request_id: int) -> dict[str, Any]:
        rid = response.get("id")
        # Connection-level errors (bad_json, line_too_long, too_many_connections, ...) may
        # carry a null id; anything else must answer this request.
        if rid is not None and rid != request_id:
            self.close()
            raise ProtocolError(f"answer for request {rid!r} while waiting for {request_id!r}")
        if response["ok"]:
            if rid is None:
                self.close()
                raise ProtocolError("successful answer without a request id")
            result = response.get("result", {})
            if not isinstance(result, dict):
                self.close()
                raise ProtocolError("the daemon's result is not an object")
            return result
        error = response.get("error")
        if not isinstance(error, dict):
            error = {}
        code = error.get("code")
        message = error.get("message")
        raise RemoteError(
            code if isinstance(code, str) and code else "internal",
            message if isinstance(message, str) else "(no message)",
        )
