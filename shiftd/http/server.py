"""The HTTP listener: hypercorn's trio worker serving the app inside the daemon's `trio.run`.

The listening socket is either handed over by systemd (socket activation: `LISTEN_PID`,
`LISTEN_FDS`, `LISTEN_FDNAMES`, descriptors from 3; the one named `http`, else all of them)
or bound to `http.listen`. Start with `await nursery.start(server.run)`: it reports started
once the socket accepts connections. `shutdown()` begins a graceful drain: `/ready` answers
503 at once, no new connections are accepted, requests in flight are finished by the
deadline it is given (the daemon's one stop deadline; else the grace period), then
cancelled, and `run()` returns.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path

import trio
from fastapi import FastAPI
from hypercorn.config import Config as HypercornConfig
from hypercorn.config import Sockets

# `hypercorn.trio.serve` binds its own sockets; `worker_serve` (what it calls) also takes
# sockets already bound, which systemd's hand-over and port 0 in tests need.
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app
from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import HTTP_BACKLOG, HttpConfig, parse_listen
from ..engine import Engine
from ..logs import get_logger
from .app import create_app
from .settings import HttpSettings

log = get_logger(__name__)

SD_LISTEN_FDS_START = 3


class HttpStartError(Exception):
    """The HTTP listener cannot start (the address cannot be bound, a handed-over socket is
    unusable); the message says which and why."""


def systemd_sockets(
    environ: Mapping[str, str] | None = None,
    *,
    name: str = "http",
    start_fd: int = SD_LISTEN_FDS_START,
) -> list[socket.socket]:
    """The listening stream sockets systemd handed to this process, as `sd_listen_fds(3)`
    describes: `LISTEN_PID` must be our pid, `LISTEN_FDS` counts descriptors from `start_fd`,
    `LISTEN_FDNAMES` names them. Those named `name` are taken; if none has that name, all
    are. Empty when nothing was handed over.

    Raises HttpStartError if a handed-over descriptor is not a listening stream socket.
    """
    env = os.environ if environ is None else environ
    pid, count = env.get("LISTEN_PID", ""), env.get("LISTEN_FDS", "")
    if not count.isdigit() or int(count) == 0:
        return []
    if not pid.isdigit() or int(pid) != os.getpid():
        return []  # meant for another process (our parent, say), as sd_listen_fds(3) does
    fds = list(range(start_fd, start_fd + int(count)))
    names = env.get("LISTEN_FDNAMES", "").split(":") if env.get("LISTEN_FDNAMES") else []
    chosen = [fd for fd, fd_name in zip(fds, names, strict=False) if fd_name == name] or fds
    sockets = []
    for fd in chosen:
        try:
            sock = socket.socket(fileno=fd)
        except OSError as exc:
            raise HttpStartError(f"systemd socket fd {fd}: {exc.strerror}") from exc
        kind = sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)
        listening = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
        if kind != socket.SOCK_STREAM or not listening:
            sock.detach()  # not ours to close
            raise HttpStartError(f"systemd socket fd {fd} is not a listening stream socket")
        sockets.append(sock)
    return sockets


SOMAXCONN_PATH = Path("/proc/sys/net/core/somaxconn")


def somaxconn(path: Path = SOMAXCONN_PATH) -> int | None:
    """The kernel's cap on any listen backlog (`net.core.somaxconn`); None where it cannot be
    read (not Linux, no /proc)."""
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def effective_backlog(requested: int, cap: int | None) -> int:
    """The backlog the kernel grants for `requested` under `cap` (`somaxconn()`)."""
    return requested if cap is None else min(requested, cap)


def bind(listen: str, backlog: int = HTTP_BACKLOG) -> socket.socket:
    """A listening TCP socket on `listen` (`host:port`; port 0 picks a free one).

    Raises HttpStartError if it cannot be bound (address in use, no such host…).
    """
    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host, port), family=family, backlog=backlog)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise HttpStartError(f"http.listen {listen}: cannot bind: {reason}") from exc
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


class HttpServer:
    """The REST API and webhooks on one or more listening sockets, for one engine.

    Construct after the engine has started: reading the token files happens here and raises
    CredentialError (naming the file) if one cannot be read.
    """

    def __init__(
        self,
        engine: Engine,
        config: HttpConfig,
        *,
        settings: HttpSettings | None = None,
        grace: float = 10.0,
        sockets: Sequence[socket.socket] | None = None,
    ) -> None:
        self.config = config
        self.settings = settings or HttpSettings.from_config(engine.config)
        self.app: FastAPI = create_app(engine, self.settings)
        self._grace = grace
        self._sockets = list(sockets) if sockets is not None else None
        self._shutdown = trio.Event()
        self._deadline = math.inf
        self.stopped = trio.Event()
        """Set when `run()` has returned (drained, or failed to start)."""
        self.addresses: list[str] = []
        """`http://host:port` for each listening socket, once started."""

    @property
    def ready(self) -> bool:
        return bool(self.app.state.shiftd.ready)

    def set_ready(self, ready: bool = True) -> None:
        """What `/ready` reports (the daemon says ready once everything is up)."""
        self.app.state.shiftd.ready = ready

    def shutdown(self, deadline: float | None = None) -> None:
        """Begin the graceful drain (see the module docstring); requests still in flight at
        `deadline` (`trio.current_time()`; default: the grace period from now) are cut off
        and `run()` returns. Never blocks."""
        ctx = self.app.state.shiftd
        ctx.ready, ctx.stopping = False, True
        self.app.state.board.feed.close()  # live pages' streams end; requests drain
        self._deadline = deadline if deadline is not None else trio.current_time() + self._grace
        self._shutdown.set()

    async def run(
        self, *, task_status: trio.TaskStatus[HttpServer] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen, report started, serve until `shutdown()` (or cancellation), then drain.

        Raises HttpStartError if no socket can be had.
        """
        backlog = self.config.backlog
        sockets = self._sockets
        if sockets is None:
            sockets = systemd_sockets() or [bind(self.config.listen, backlog)]
        for sock in sockets:
            # Again on sockets handed over (systemd's, or a caller's): `http.backlog` is the
            # one setting, whatever the socket was created with.
            sock.listen(backlog)
            sock.setblocking(False)
        self.settings.log_warnings()
        _log_backlog(backlog)
        hc = _hypercorn_config(self.settings, self._grace)
        serve = partial(
            worker_serve,
            # Starlette types ASGI messages as MutableMapping, hypercorn as TypedDicts: the
            # same dicts, but the two signatures do not meet.
            wrap_app(_without_lifespan(self.app), hc.wsgi_max_body_size, "asgi"),  # type: ignore[arg-type]
            hc,
            sockets=Sockets(secure_sockets=[], insecure_sockets=list(sockets), quic_sockets=[]),
            shutdown_trigger=self._shutdown.wait,
        )
        try:
            async with trio.open_nursery() as outer:
                async with trio.open_nursery() as nursery:
                    self.addresses = await nursery.start(serve)
                    log.info("http.listening", addresses=self.addresses)
                    task_status.started(self)
                    outer.start_soon(self._cut_off_at_deadline, nursery.cancel_scope)
                outer.cancel_scope.cancel()
        finally:
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.close()
            self.stopped.set()
            log.info("http.stopped")

    async def _cut_off_at_deadline(self, serving: trio.CancelScope) -> None:
        # Hypercorn's own drain counts `graceful_timeout` from when it notices the trigger;
        # the deadline is the caller's, whatever that lag.
        await self._shutdown.wait()
        await trio.sleep_until(self._deadline)
        serving.cancel()


def _log_backlog(requested: int) -> None:
    cap = somaxconn()
    effective = effective_backlog(requested, cap)
    if effective < requested:
        log.warning(
            "http.backlog_capped",
            backlog=requested,
            effective=effective,
            reason="net.core.somaxconn caps the listen backlog: raise it with sysctl",
        )
    else:
        log.info("http.backlog", backlog=requested, effective=effective, somaxconn=cap)


def _without_lifespan(app: ASGIApp) -> ASGIApp:
    """`app`, answering ASGI lifespan events itself. The engine's life is the daemon's
    business, so the app has nothing to start or stop; and Starlette reports a cancelled
    lifespan as a failure, which would turn a plain cancellation into an error."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await app(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    return asgi


def _hypercorn_config(settings: HttpSettings, grace: float) -> HypercornConfig:
    hc = HypercornConfig()
    hc.graceful_timeout = grace
    hc.accesslog = None  # the app logs what matters, without phone numbers
    hc.errorlog = logging.getLogger("hypercorn.error")  # a Logger: hypercorn adds no handler
    hc.include_server_header = False
    # Hypercorn's keep-alive timer runs from the moment a connection opens until its first
    # request (and between requests): connections opened ahead of a burst must outlive the
    # wait for their turn. Every read is bounded too, never below the keep-alive, or an idle
    # read would end the connection first.
    hc.keep_alive_timeout = settings.keep_alive_timeout
    hc.read_timeout = math.ceil(max(1.0, settings.request_timeout, settings.keep_alive_timeout))
    hc.h11_max_incomplete_size = 16 * 1024  # request line + headers
    hc.h2_max_header_list_size = 16 * 1024
    return hc
