"""`shiftd run`: the engine behind the control socket (and HTTP), under systemd's eye.

Start-up: take the state directory's lock, open the store and recover actors, start the
HTTP listener when `http` is configured (bound to `http.listen` or to the socket systemd
handed over), bind the control socket, then tell systemd READY=1. SIGTERM/SIGINT:
STOPPING=1, and one deadline, `shutdown.grace` from the signal, for the whole stop: HTTP
drains first (`/ready` turns 503, no new connections, requests in flight finish); then the
control socket stops accepting (requests in hand are answered), actors stop between
messages, sends in flight finish, the store is flushed, exit 0. Whatever is still in hand
at the deadline is cut off (a provider that has not answered is recorded as "may have been
sent", within `shutdown.RECORDING` after), so systemd's `TimeoutStopSec` only needs to
exceed `grace` by a few seconds. SIGHUP re-reads the
configuration: the log level applies at once; other changes are reported as needing a
restart (they shape state the engine holds).
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path

import trio

from . import gcpolicy, systemd
from .config import Config, ConfigError, load_config
from .control.server import serve_control
from .engine import Engine
from .logs import configure_logging, get_logger

log = get_logger(__name__)


class StateDirBusy(Exception):
    """Another shiftd holds the state directory."""


@contextmanager
def state_lock(state_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on `state_dir` for as long as the daemon runs.

    Raises StateDirBusy if another process holds it. The lock dies with the process, so a
    `kill -9` never leaves it behind.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(state_dir / "shiftd.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise StateDirBusy(
                f"{state_dir}: another shiftd is using this state directory"
            ) from exc
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)


async def run_daemon(
    config: Config,
    config_path: Path | None = None,
    *,
    http_sockets: Sequence[socket.socket] | None = None,
    task_status: trio.TaskStatus[Engine] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until SIGTERM/SIGINT (or cancellation), then stop in order.

    `http_sockets`: listening sockets to serve HTTP on instead of systemd's or
    `http.listen` (for embedding and tests; they are closed when HTTP stops).

    Raises StateDirBusy, StoreError, ControlSocketError, CredentialError (an unreadable
    token file) or HttpStartError (the HTTP address cannot be bound) when start-up is
    impossible.
    """
    if config.http is not None:
        # FastAPI, pydantic's schemas and hypercorn are about half of the daemon's start-up:
        # imported only when `http` is configured, and before the engine starts, so that the
        # import never stalls running actors.
        import_module(".http.server", __package__)
    with (
        state_lock(Path(config.state_dir)),
        trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals,
    ):
        engine = Engine(config)
        async with trio.open_nursery() as nursery:
            with gcpolicy.applied() as recovered:
                await nursery.start(engine.run)
                recovered()
                await _serve(config, config_path, engine, signals, http_sockets, task_status)
            engine.stop()
    log.info("daemon.stopped")


async def _serve(
    config: Config,
    config_path: Path | None,
    engine: Engine,
    signals: AsyncIterator[int],
    http_sockets: Sequence[socket.socket] | None,
    task_status: trio.TaskStatus[Engine],
) -> None:
    """HTTP, the control socket and the watchdog in front of the started engine, until
    SIGTERM/SIGINT: then HTTP drains and the front stops, by the stop's deadline."""
    grace = config.shutdown.grace.total_seconds()
    http = None
    if config.http is not None:
        from .http.server import HttpServer

        http = HttpServer(engine, config.http, grace=grace, sockets=http_sockets)
    async with trio.open_nursery() as front:
        if http is not None:
            await front.start(http.run)
        await front.start(
            lambda task_status: serve_control(
                config.socket_path,
                engine,
                max_connections=config.control.max_connections,
                idle_timeout=config.control.idle_timeout.total_seconds(),
                request_timeout=config.control.request_timeout.total_seconds(),
                task_status=task_status,
            )
        )
        await front.start(systemd.run_watchdog)
        actors = engine.supervisor.actors
        if http is not None:
            http.set_ready()
        systemd.ready(f"serving; {actors} shifts in progress")
        log.info(
            "daemon.ready",
            socket=str(config.socket_path),
            http=http.addresses if http is not None else None,
            actors=actors,
            pid=os.getpid(),
        )
        task_status.started(engine)
        async for signum in signals:
            if signum == signal.SIGHUP:
                _reload(config, config_path)
                continue
            # The one deadline of the whole stop, taken here: HTTP's drain, the
            # control requests in hand and the engine's layers all end by it.
            engine.shutdown.begin(grace)
            log.info("daemon.stopping", signal=signal.Signals(signum).name, grace=grace)
            systemd.stopping()
            break
        if http is not None:
            # Drain: requests in flight still reach the engine, until the deadline.
            http.shutdown(engine.shutdown.deadline)
            with trio.move_on_at(engine.shutdown.deadline):
                await http.stopped.wait()
        front.cancel_scope.cancel()


def _reload(current: Config, path: Path | None) -> None:
    if path is None:
        log.warning("config.reload_skipped", reason="no configuration file")
        return
    try:
        new = load_config(path)
    except ConfigError as exc:
        log.error("config.reload_failed", problems=exc.problems)
        return
    configure_logging(new.log.level, new.log.format)
    changed = sorted(
        key
        for key in type(new).model_fields
        if key != "log" and getattr(new, key) != getattr(current, key)
    )
    log.info("config.reloaded", log_level=new.log.level, needs_restart=changed or None)
