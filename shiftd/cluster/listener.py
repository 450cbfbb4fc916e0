"""PostgreSQL notifications, bridged into Trio.

psycopg's async API is asyncio-only, so a dedicated sync connection LISTENs on a worker
thread (`Connection.notifies` with a short timeout, so a stop is noticed promptly) and
hands each notification to a callback on Trio's thread (`trio.from_thread.run_sync`).
A lost connection is reopened after a pause; notifications sent meanwhile are lost, which
the callers' periodic sweeps cover.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import psycopg
import trio
from psycopg import sql

from ..logs import get_logger
from ..store.url import redacted

log = get_logger(__name__)


class Listener:
    """LISTENs on `channels` of the database at `url`; `on_notify(channel, payload)` runs
    on Trio's thread for each notification, in the order they arrive (it must not block).
    Start with `await nursery.start(listener.run)`."""

    def __init__(
        self,
        url: str,
        channels: Sequence[str],
        on_notify: Callable[[str, str], None],
        *,
        poll: timedelta = timedelta(milliseconds=200),
        reconnect_pause: timedelta = timedelta(seconds=1),
        connect_timeout: timedelta = timedelta(seconds=10),
    ) -> None:
        self._url = url
        self._channels = tuple(channels)
        self._on_notify = on_notify
        self._poll = poll.total_seconds()
        self._pause = reconnect_pause.total_seconds()
        self._connect_timeout = max(1, int(connect_timeout.total_seconds()))

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect and LISTEN, report started (from then on every notification is
        delivered), then deliver until cancelled.

        Raises psycopg.Error if the first connection fails. Cancellation stops the thread
        (within the poll interval) and closes the connection before returning."""
        conn = await trio.to_thread.run_sync(self._connect)
        stop = threading.Event()
        token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:

            async def listen() -> None:
                # Not abandoned on cancellation: the thread owns the connection until
                # it sees `stop`, then closes it.
                await trio.to_thread.run_sync(self._listen, conn, stop, token)

            nursery.start_soon(listen)
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                stop.set()

    def _connect(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(
            self._url,
            autocommit=True,
            connect_timeout=self._connect_timeout,
            application_name="shiftd-listen",
        )
        for channel in self._channels:
            conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        return conn

    def _listen(
        self, conn: psycopg.Connection[Any], stop: threading.Event, token: trio.lowlevel.TrioToken
    ) -> None:
        current: psycopg.Connection[Any] | None = conn
        try:
            while not stop.is_set():
                if current is None:
                    if stop.wait(self._pause):
                        break
                    try:
                        current = self._connect()
                    except psycopg.Error:
                        continue
                    log.info("cluster.listen_restored", url=redacted(self._url))
                try:
                    for notify in current.notifies(timeout=self._poll):
                        trio.from_thread.run_sync(
                            self._on_notify, notify.channel, notify.payload, trio_token=token
                        )
                        if stop.is_set():
                            break
                except psycopg.Error as exc:
                    log.warning("cluster.listen_lost", url=redacted(self._url), error=str(exc))
                    current.close()
                    current = None
        finally:
            if current is not None:
                current.close()
