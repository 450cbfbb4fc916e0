"""shiftd.systemd: sd_notify datagrams and the watchdog, against a real AF_UNIX socket."""

from __future__ import annotations

import os
import socket
import sys
import uuid

import pytest
import trio
from structlog.testing import capture_logs

from shiftd import systemd


@pytest.fixture(autouse=True)
def _no_systemd_environment(monkeypatch):
    # The test run itself may be under systemd: start every test from a clean environment.
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(systemd, "_warned", False)


@pytest.fixture
def socket_path(tmp_path_factory) -> str:
    # A short directory: AF_UNIX paths are limited to 108 bytes.
    return str(tmp_path_factory.mktemp("sd") / "notify.sock")


@pytest.fixture
def notify_socket(socket_path, monkeypatch):
    """A bound datagram socket standing in for systemd's; NOTIFY_SOCKET points at it."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(socket_path)
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", socket_path)
    yield sock
    sock.close()


def received(sock: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


# --- notify -----------------------------------------------------------------------------


def test_notify_sends_the_states_as_one_datagram(notify_socket):
    assert systemd.notify("READY=1", "STATUS=serving") is True

    assert received(notify_socket) == ["READY=1\nSTATUS=serving"]


def test_notify_without_notify_socket_returns_false():
    assert systemd.notify("READY=1") is False


def test_notify_with_no_states_sends_nothing(notify_socket):
    assert systemd.notify() is False

    assert received(notify_socket) == []


@pytest.mark.skipif(sys.platform != "linux", reason="abstract sockets are Linux-only")
def test_notify_reaches_an_abstract_namespace_socket(monkeypatch):
    name = f"shiftd-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)

        assert systemd.notify("READY=1") is True

        assert received(sock) == ["READY=1"]


def test_notify_to_a_missing_socket_returns_false_and_warns_once(socket_path, monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", socket_path)  # nothing bound there

    with capture_logs() as logs:
        assert systemd.notify("WATCHDOG=1") is False
        assert systemd.notify("WATCHDOG=1") is False

    assert [entry["event"] for entry in logs] == ["systemd.notify_failed"]
    assert logs[0]["log_level"] == "warning"


def test_notify_to_an_unsupported_address_returns_false(monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")

    with capture_logs():
        assert systemd.notify("READY=1") is False


# --- convenience wrappers ---------------------------------------------------------------


def test_ready_sends_ready_with_a_status(notify_socket):
    assert systemd.ready("serving 3 shifts") is True

    assert received(notify_socket) == ["READY=1\nSTATUS=serving 3 shifts"]


def test_status_keeps_the_status_on_one_line(notify_socket):
    systemd.status("recovering\n12 shifts")

    assert received(notify_socket) == ["STATUS=recovering 12 shifts"]


def test_stopping_sends_stopping(notify_socket):
    systemd.stopping()

    assert received(notify_socket)[0].splitlines()[0] == "STOPPING=1"


# --- watchdog_interval ------------------------------------------------------------------


def test_watchdog_interval_is_half_of_watchdog_usec(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")

    assert systemd.watchdog_interval() == 15.0


def test_watchdog_interval_is_none_without_watchdog_usec():
    assert systemd.watchdog_interval() is None


def test_watchdog_interval_applies_when_watchdog_pid_is_this_process(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))

    assert systemd.watchdog_interval() == 15.0


def test_watchdog_interval_is_none_when_watchdog_pid_is_another_process(monkeypatch):
    monkeypatch.setenv("WATCHDOG_USEC", "30000000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))

    assert systemd.watchdog_interval() is None


@pytest.mark.parametrize("usec", ["0", "-5", "soon", ""])
def test_watchdog_interval_is_none_for_an_unusable_watchdog_usec(monkeypatch, usec):
    monkeypatch.setenv("WATCHDOG_USEC", usec)

    assert systemd.watchdog_interval() is None


# --- run_watchdog -----------------------------------------------------------------------


async def test_run_watchdog_pings_at_once_then_every_interval(
    socket_path, monkeypatch, autojump_clock
):
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")  # 2 s period -> a ping every 1 s
    monkeypatch.setenv("NOTIFY_SOCKET", socket_path)
    sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_DGRAM)
    await sock.bind(socket_path)
    pings: list[tuple[float, bytes]] = []

    with sock, trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            start = trio.current_time()
            await nursery.start(systemd.run_watchdog)
            for _ in range(4):
                data = await sock.recv(64)
                pings.append((trio.current_time() - start, data))
            nursery.cancel_scope.cancel()

    assert [at for at, _ in pings] == pytest.approx([0.0, 1.0, 2.0, 3.0])
    assert {data for _, data in pings} == {b"WATCHDOG=1"}


async def test_run_watchdog_returns_after_started_when_no_watchdog(notify_socket, autojump_clock):
    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            await nursery.start(systemd.run_watchdog)

    assert received(notify_socket) == []
