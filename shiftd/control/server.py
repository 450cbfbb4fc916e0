"""The control socket server: newline-delimited JSON requests over a Unix stream socket.

`{"id":…,"cmd":…,"args":{…}}` → `{"id":…,"ok":true,"result":…}` or
`{"id":…,"ok":false,"error":{"code":…,"message":…}}`. Bad JSON, unknown commands and bad
arguments are answered and the connection stays usable; a line over 64 KiB is answered
with `line_too_long` and the connection closed, and so is a connection that completes no
request line within `control.idle_timeout` (`idle_timeout`). The socket is created with mode 0660; a
stale socket file is replaced, a live one (another shiftd answering) is never taken over.

Streaming (`watch`): the request is answered `{"id":…,"ok":true,"result":{"watching":true,…}}`
and from then on the connection carries one `{"id":…,"ok":true,"event":{…}}` line per event
until the client closes it (or shiftd stops); anything the client sends meanwhile is read and
ignored. Events are buffered per watcher in a bounded channel: a watcher that falls behind
loses events and is told how many by an `overflow` event; it never slows the daemon.

Every request is counted in the engine's metrics by command and outcome (`ok` or the error
code; `-` when the request named no known command).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import grp
import json
import math
import os
import pwd
import socket as stdsocket
import struct
from pathlib import Path
from typing import Any

import trio
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..commands import COMMANDS, STREAMS
from ..engine import Engine
from ..errors import code_of
from ..events import Subscription
from ..limits import RequestId
from ..logs import get_logger, new_ref

log = get_logger(__name__)

MAX_LINE = 64 * 1024
_MAX_UNIX_PATH = 107  # sun_path is 108 bytes with the terminating NUL


class ControlSocketError(Exception):
    """The control socket cannot be served at the configured path (and why)."""


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: RequestId | None = None
    cmd: str = Field(min_length=1, max_length=64)
    args: dict[str, Any] = {}


async def serve_control(
    path: Path,
    engine: Engine,
    *,
    max_connections: int = 1024,
    request_timeout: float = 30.0,
    idle_timeout: float = math.inf,
    task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Bind `path`, report started with it, serve until cancelled.

    A connection that sends no complete request line for `idle_timeout` seconds (since it
    connected or since its last answer: idle, or dribbling half a line) is told
    `idle_timeout` and closed, so idle clients cannot hold every slot (the daemon passes
    `control.idle_timeout`; no deadline by default). A `watch` stream is exempt once
    accepted.

    Raises ControlSocketError if the path is served by another live process, is not a
    socket, or cannot be bound. On cancellation it stops accepting; a request being handled
    is finished (by the stop's deadline) and answered; the socket file is removed. A request
    not answered within `request_timeout`, or by the stop's deadline while stopping, closes
    its connection unanswered.
    """
    sock, inode = _bind(path, backlog=max_connections)
    limiter = trio.CapacityLimiter(max_connections)

    async def handle(stream: trio.SocketStream) -> None:
        try:
            peer = _peer(stream)
        except OSError:  # gone before we looked
            return
        if not _allowed(peer, path):
            log.warning("control.refused", peer_uid=peer[1], peer_pid=peer[0])
            await _reject(stream, "forbidden", "not allowed to use this socket")
            return
        try:
            limiter.acquire_nowait()
        except trio.WouldBlock:
            await _reject(stream, "too_many_connections", "try again shortly")
            return
        try:
            await _connection(stream, engine, request_timeout, idle_timeout, peer)
        finally:
            limiter.release()

    try:
        # serve_listeners pauses accepting while descriptors or memory run out.
        listeners = [trio.SocketListener(sock)]
        async with trio.open_nursery() as connections:
            await connections.start(
                functools.partial(
                    trio.serve_listeners, handle, listeners, handler_nursery=connections
                )
            )
            log.info("control.listening", path=str(path))
            task_status.started(path)
    finally:
        _remove_if_ours(path, inode)


def _remove_if_ours(path: Path, inode: int) -> None:
    with contextlib.suppress(OSError):
        if path.stat().st_ino == inode:  # never remove a successor's socket
            path.unlink()


def _bind(path: Path, *, backlog: int = 128) -> tuple[trio.socket.SocketType, int]:
    """A listening socket at `path` and its inode. Runs once at start-up (blocking is fine)."""
    if len(os.fsencode(path)) > _MAX_UNIX_PATH:
        raise ControlSocketError(f"{path}: path too long for a Unix socket (max 107 bytes)")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() or path.is_symlink():
        if not path.is_socket():
            raise ControlSocketError(f"{path}: exists and is not a socket; not touching it")
        if _is_live(path):
            raise ControlSocketError(f"{path}: another shiftd is serving this socket")
        log.warning("control.stale_socket_replaced", path=str(path))
        path.unlink()
    sock = stdsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
    old_umask = os.umask(0o117)  # the file is born 0660: no window where others can connect
    try:
        sock.bind(str(path))
    except OSError as exc:
        sock.close()
        raise ControlSocketError(f"{path}: cannot bind: {exc.strerror}") from exc
    finally:
        os.umask(old_umask)
    sock.listen(backlog)  # a burst of clients (a claim storm) queues; the kernel caps it
    return trio.socket.from_stdlib_socket(sock), path.stat().st_ino


def _is_live(path: Path) -> bool:
    probe = stdsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
    probe.settimeout(1.0)  # a local connect answers at once; this only bounds a wedged peer
    try:
        probe.connect(str(path))
    except OSError as exc:
        return exc.errno not in (errno.ECONNREFUSED, errno.ENOENT)
    else:
        return True
    finally:
        probe.close()


def _peer(stream: trio.SocketStream) -> tuple[int, int, int]:
    """(pid, uid, gid) of the connecting process, from SO_PEERCRED."""
    raw = stream.socket.getsockopt(stdsocket.SOL_SOCKET, stdsocket.SO_PEERCRED, 12)
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid


def _allowed(peer: tuple[int, int, int], path: Path) -> bool:
    """Root, our own user, or a member of the socket's group (what mode 0660 intends)."""
    _, uid, gid = peer
    if uid in (0, os.getuid()):
        return True
    try:
        sock_gid = path.stat().st_gid
    except OSError:
        return False
    if gid == sock_gid:
        return True
    try:
        user = pwd.getpwuid(uid).pw_name
        return sock_gid in os.getgrouplist(user, gid) or user in grp.getgrgid(sock_gid).gr_mem
    except (KeyError, OSError):
        return False


async def _reject(stream: trio.SocketStream, code: str, message: str) -> None:
    with trio.move_on_after(1), contextlib.suppress(trio.BrokenResourceError):
        await stream.send_all(_error(None, code, message))
    await stream.aclose()


async def _connection(
    stream: trio.SocketStream,
    engine: Engine,
    request_timeout: float,
    idle_timeout: float,
    peer: tuple[int, int, int],
) -> None:
    async with stream:
        buffer = bytearray()
        # Bytes that complete no line do not move the deadline: half a line sent slowly is
        # as idle as nothing.
        deadline = trio.current_time() + idle_timeout
        try:
            while True:
                newline = buffer.find(b"\n", 0, MAX_LINE + 1)
                if newline < 0:
                    if len(buffer) > MAX_LINE:
                        await stream.send_all(
                            _error(
                                None,
                                "line_too_long",
                                f"request lines are limited to {MAX_LINE} bytes",
                            )
                        )
                        return
                    chunk = None
                    with trio.move_on_at(deadline):
                        chunk = await stream.receive_some(65536)
                    if chunk is None:
                        log.info("control.idle_closed", peer_pid=peer[0], partial=len(buffer))
                        message = f"no complete request within {idle_timeout:g}s"
                        with trio.move_on_after(1):
                            await stream.send_all(_error(None, "idle_timeout", message))
                        return
                    if not chunk:
                        return
                    buffer += chunk
                    continue
                line = bytes(buffer[:newline])
                del buffer[: newline + 1]
                if not line.strip():
                    continue
                watch: _Stream | None = None
                # A request in hand is answered even during shutdown; only waiting is cut.
                # It gets `request_timeout`, and never beyond the stop's deadline.
                in_hand = trio.CancelScope(
                    shield=True, deadline=trio.current_time() + request_timeout
                )
                with engine.shutdown.bounded(in_hand) as bounded:
                    answer = await _answer(engine, line, peer)
                    if isinstance(answer, _Stream):
                        watch, answer = answer, answer.ack
                    await stream.send_all(answer)
                if bounded.cancelled_caught:
                    # Unanswered or half-written: answering the next line would desync it.
                    log.warning("control.request_timed_out", request_timeout=request_timeout)
                    if watch is not None:
                        watch.subscription.close()
                    return
                if watch is not None:
                    await _stream_events(stream, watch)
                    return  # a watch connection carries nothing else
                deadline = trio.current_time() + idle_timeout
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return
        except Exception:  # a fault of ours in this connection ends it, never the server
            log.exception("control.connection_crashed", ref=new_ref(), peer_pid=peer[0])
            engine.metrics.observe_internal_error("control")


class _Stream:
    """A streaming command accepted: its acknowledgement line and its subscription."""

    __slots__ = ("ack", "request_id", "subscription")

    def __init__(self, request_id: int | str | None, ack: bytes, sub: Subscription) -> None:
        self.request_id = request_id
        self.ack = ack
        self.subscription = sub


_EVENT_BATCH = 256  # events written with one send when a watcher has fallen behind


async def _stream_events(stream: trio.SocketStream, watch: _Stream) -> None:
    """Write `watch`'s events to `stream` until the client closes it or we are cancelled."""

    async def until_closed(done: trio.CancelScope) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            while await stream.receive_some(65536):
                pass  # nothing is expected from a watcher; what comes is ignored
        done.cancel()

    with watch.subscription as subscription:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(until_closed, nursery.cancel_scope)
            try:
                async for event in subscription:
                    lines = [_event_line(watch.request_id, event.as_dict())]
                    while len(lines) < _EVENT_BATCH:
                        try:
                            lines.append(
                                _event_line(
                                    watch.request_id, subscription.receive_nowait().as_dict()
                                )
                            )
                        except (trio.WouldBlock, trio.EndOfChannel):
                            break
                    await stream.send_all(b"".join(lines))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the watcher went away
            nursery.cancel_scope.cancel()


def _event_line(request_id: int | str | None, event: dict[str, Any]) -> bytes:
    return _encode({"id": request_id, "ok": True, "event": event})


async def handle_line(
    engine: Engine, line: bytes, peer: tuple[int, int, int] | None = None
) -> bytes:
    """One request line → one response line. Never raises for a bad request. A streaming
    command (`watch`) is refused here: it needs a connection of its own (`_connection`)."""
    answer = await _answer(engine, line, peer)
    if isinstance(answer, _Stream):
        answer.subscription.close()
        return _error(answer.request_id, "bad_request", "this transport cannot stream events")
    return answer


async def _answer(
    engine: Engine, line: bytes, peer: tuple[int, int, int] | None
) -> bytes | _Stream:
    """One request line → its answer (or an accepted stream), counted in the metrics.

    Never raises but for cancellation: whatever fails while handling the request (any
    exception class) is logged with a reference (`ref`) that the `internal` answer quotes,
    and counted."""
    try:
        command, outcome, answer = await _dispatch(engine, line, peer)
    except Exception:
        command, outcome = "-", "internal"
        answer = _internal(engine, None, "control.crashed")
    engine.metrics.observe_control(command, outcome)
    return answer


def _internal(engine: Engine, request_id: int | str | None, event: str, **context: Any) -> bytes:
    """Log the exception being handled under a fresh reference, count it, and make the
    `internal` answer that quotes the reference."""
    ref = new_ref()
    log.exception(event, ref=ref, request_id=request_id, **context)
    engine.metrics.observe_internal_error("control")
    return _error(request_id, "internal", f"internal error (ref {ref}); see the daemon's log")


async def _dispatch(
    engine: Engine, line: bytes, peer: tuple[int, int, int] | None
) -> tuple[str, str, bytes | _Stream]:
    """(command name for the metrics, outcome, answer). Never raises for a bad request."""
    try:
        raw = json.loads(line)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, a 5,000-digit number
        return "-", "bad_json", _error(None, "bad_json", f"not valid JSON: {exc}")
    except RecursionError:  # e.g. 60,000 "[": json.loads gives up on the nesting depth
        return "-", "bad_json", _error(None, "bad_json", "not valid JSON: nested too deeply")
    request_id = raw.get("id") if isinstance(raw, dict) else None
    try:
        request = _Request.model_validate(raw)
    except ValidationError as exc:
        return "-", "bad_request", _error(_safe_id(request_id), "bad_request", _describe(exc))
    name = request.cmd
    command = COMMANDS.get(name) or STREAMS.get(name)
    if command is None:
        names = ", ".join(sorted({*COMMANDS, *STREAMS}))
        message = f"unknown command {name!r} (known: {names})"
        return "-", "unknown_command", _error(request.id, "unknown_command", message)

    def fail(code: str, message: str) -> tuple[str, str, bytes]:
        return name, code, _error(request.id, code, message)

    try:
        args = command.args.model_validate(request.args)
    except ValidationError as exc:
        return fail("bad_args", _describe(exc))
    except Exception:  # a validator that raised something pydantic does not wrap
        return name, "internal", _internal(engine, request.id, "control.crashed", cmd=name)
    try:
        if name in STREAMS:
            ack, subscription = await STREAMS[name].open(engine, args)
            ok = _encode({"id": request.id, "ok": True, "result": ack})
            return name, "ok", _Stream(request.id, ok, subscription)
        result = await COMMANDS[name].run(engine, args)
    except ValidationError as exc:  # what the arguments mean, checked when it is known
        return fail("bad_args", _describe(exc))
    except Exception as exc:
        known = code_of(exc)  # the one error table, shared with HTTP and shiftctl
        if known is None:
            return name, "internal", _internal(engine, request.id, "control.crashed", cmd=name)
        return fail(known.code, str(exc))
    log.debug("control.handled", cmd=name, peer_pid=peer[0] if peer else None)
    return name, "ok", _encode({"id": request.id, "ok": True, "result": result})


def _safe_id(value: Any) -> int | str | None:
    return value if isinstance(value, int | str) and not isinstance(value, bool) else None


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:10]:
        where = ".".join(str(p) for p in error["loc"]) or "(request)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


def _error(request_id: int | str | None, code: str, message: str) -> bytes:
    return _encode({"id": request_id, "ok": False, "error": {"code": code, "message": message}})


def _encode(payload: dict[str, Any]) -> bytes:
    try:
        text = _COMPACT.encode(payload).encode()
    except UnicodeEncodeError:  # a lone surrogate (a \ud800 escape) has no UTF-8 form
        text = json.dumps(payload, separators=(",", ":")).encode()
    return text + b"\n"


_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)
"""Made once: `json.dumps` with arguments makes an encoder at every answer."""
