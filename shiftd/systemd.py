"""systemd service notifications (``sd_notify``) without libsystemd.

shiftd runs as ``Type=notify``: it tells systemd when it is ready (after recovery, once the
control socket accepts connections), what it is doing (``STATUS=``), when it is stopping, and
proves it is alive with watchdog pings. Each message is one datagram of ``KEY=value`` lines
sent to the ``AF_UNIX`` socket named by ``$NOTIFY_SOCKET``.

Outside systemd (``$NOTIFY_SOCKET`` unset: tests, a terminal, ``shiftd demo``) every function
here does nothing and says so by its return value; none of them ever raises because a
notification could not be delivered. A notification that fails is logged as a warning, once
per process, so a broken socket does not flood the journal every watchdog period.

Usage in the daemon::

    async with trio.open_nursery() as nursery:
        await nursery.start(systemd.run_watchdog)
        ...  # recover, bind the control socket
        systemd.ready("serving 12 shifts")
        ...
        systemd.stopping()
"""

from __future__ import annotations

import os
import socket

import trio

from .logs import get_logger

__all__ = [
    "notify",
    "ready",
    "run_watchdog",
    "status",
    "stopping",
    "watchdog_interval",
]

log = get_logger(__name__)

_warned = False


def _socket_address(value: str) -> str | bytes | None:
    """Translate ``$NOTIFY_SOCKET`` into a ``sendto`` address, or None if unsupported."""
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        # Linux abstract namespace: a leading NUL byte instead of "@", no trailing NUL.
        return b"\0" + value[1:].encode()
    # "vsock:..." (systemd >= 254, for VMs) and relative paths are not supported.
    return None


def _warn_once(event: str, **kw: object) -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning(event, **kw)


def notify(*states: str) -> bool:
    """Send *states* (``"READY=1"``, ``"STATUS=…"``, …) to systemd in one datagram.

    Returns True when the datagram was handed to ``$NOTIFY_SOCKET``. Returns False and sends
    nothing when ``$NOTIFY_SOCKET`` is unset or empty (not running under a ``Type=notify``
    unit) or when no *states* are given.

    On error (unsupported address, socket missing, permission denied, receiver queue full)
    returns False and logs ``systemd.notify_failed`` as a warning the first time in this
    process; never raises. Each state must be a single line; this is not checked here
    (:func:`status` takes care of it for free text).

    The socket is a plain synchronous ``AF_UNIX``/``SOCK_DGRAM`` socket, called directly from
    async code: a datagram to a local socket completes at once, without a context switch to
    the receiver. It is also set non-blocking, so if systemd ever stopped draining its queue
    the send fails (and is reported) instead of stalling the Trio loop. No checkpoint, so
    nothing to cancel.
    """
    value = os.environ.get("NOTIFY_SOCKET", "")
    if not value or not states:
        return False
    address = _socket_address(value)
    if address is None:
        _warn_once("systemd.notify_failed", socket=value, error="unsupported NOTIFY_SOCKET")
        return False
    payload = "\n".join(states).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.setblocking(False)
            sock.sendto(payload, address)
    except OSError as exc:
        _warn_once("systemd.notify_failed", socket=value, error=repr(exc))
        return False
    return True


def status(text: str) -> bool:
    """Set the one-line status shown by ``systemctl status shiftd`` (``STATUS=``).

    Newlines in *text* become spaces (the protocol is one ``KEY=value`` per line). Returns
    what :func:`notify` returns; never raises.
    """
    return notify("STATUS=" + _one_line(text))


def ready(status: str) -> bool:
    """Tell systemd that start-up is complete (``READY=1``), with a status line.

    Call it once the daemon can do its job: recovery done and the control socket listening.
    Until then ``systemctl start`` waits (and units ordered after shiftd wait). Returns what
    :func:`notify` returns; never raises.
    """
    return notify("READY=1", "STATUS=" + _one_line(status))


def stopping() -> bool:
    """Tell systemd that a graceful stop has begun (``STOPPING=1``).

    Call it as soon as shutdown starts, so ``systemctl status`` shows "deactivating" while the
    daemon drains. Returns what :func:`notify` returns; never raises.
    """
    return notify("STOPPING=1", "STATUS=stopping")


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings, or None when systemd expects none.

    systemd sets ``WATCHDOG_USEC`` (the unit's ``WatchdogSec=``) and optionally
    ``WATCHDOG_PID``; the variables are for this process only if ``WATCHDOG_PID`` is unset or
    equals ``os.getpid()`` (a child that inherited them must not ping). The interval is half
    the period, as ``sd_watchdog_enabled(3)`` recommends. Returns None, never raises, when a
    variable is missing, not a positive integer, or meant for another process.
    """
    pid = os.environ.get("WATCHDOG_PID")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    usec = os.environ.get("WATCHDOG_USEC")
    if not usec:
        return None
    try:
        period = int(usec)
    except ValueError:
        return None
    if period <= 0:
        return None
    return period / 2 / 1_000_000


async def run_watchdog(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Ping the systemd watchdog (``WATCHDOG=1``) every :func:`watchdog_interval` seconds.

    Use as ``await nursery.start(run_watchdog)``. When a watchdog is configured it reports
    started, sends a first ping at once, then one per interval, forever. When none is
    configured it reports started and returns at once, so the caller's code is the same in
    both cases.

    The pings come from the Trio loop itself, so they prove the loop is running and not
    blocked (a stalled loop misses them and systemd restarts the service after
    ``WatchdogSec``); they do not prove that any particular actor makes progress.

    A failed ping is reported by :func:`notify` (warning, once) and the loop goes on.
    On cancellation it just stops: nothing is sent and nothing needs cleaning up.
    """
    interval = watchdog_interval()
    task_status.started()
    if interval is None:
        return
    while True:
        notify("WATCHDOG=1")
        await trio.sleep(interval)


def _one_line(text: str) -> str:
    return " ".join(str(text).splitlines())
