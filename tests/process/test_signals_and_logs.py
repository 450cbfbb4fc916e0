"""The real daemon as a subprocess: SIGINT stops it with exit 0, it logs JSON lines or
readable console lines depending on stderr, and pings the systemd watchdog."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import time

import pytest

from shiftd.testing.daemon import Daemon


@pytest.mark.process
def test_sigint_stops_the_daemon_gracefully_with_exit_0(daemon: Daemon) -> None:
    daemon.start()
    assert daemon.proc is not None

    daemon.proc.send_signal(signal.SIGINT)

    assert daemon.proc.wait(timeout=15) == 0
    assert not daemon.socket.exists()
    log = (daemon.workdir / "daemon.log").read_text()
    assert '"signal": "SIGINT"' in log and "daemon.stopped" in log


@pytest.mark.process
def test_the_daemon_logs_json_lines_when_stderr_is_not_a_terminal(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    daemon.start()
    assert daemon.stop() == 0

    lines = (daemon.workdir / "daemon.log").read_text().splitlines()
    events = [json.loads(line)["event"] for line in lines if line.strip()]
    assert "daemon.ready" in events and events[-1] == "daemon.stopped"


@pytest.mark.process
def test_the_daemon_logs_readable_console_lines_on_a_terminal(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    master, terminal = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "shiftd.cli", "run", "--config", str(daemon.config)],
        cwd=daemon.workdir,
        stdout=subprocess.DEVNULL,
        stderr=terminal,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    os.close(terminal)
    output = b""
    try:
        deadline = time.monotonic() + 15
        while b"daemon.ready" not in output and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                output += os.read(master, 65536)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        with contextlib.suppress(OSError):  # EIO once the terminal's last writer is gone
            while select.select([master], [], [], 0.2)[0]:
                chunk = os.read(master, 65536)
                if not chunk:
                    break
                output += chunk
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)

    text = output.decode(errors="replace")
    assert "daemon.ready" in text and "daemon.stopped" in text
    assert not any(line.lstrip().startswith("{") for line in text.splitlines())


@pytest.mark.process
def test_the_daemon_pings_the_systemd_watchdog_when_watchdog_usec_is_set(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    notify_path = daemon.workdir / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(str(notify_path))
        notify.settimeout(15)
        monkeypatch.setenv("NOTIFY_SOCKET", str(notify_path))
        monkeypatch.setenv("WATCHDOG_USEC", "400000")  # a ping every 0.2 s
        monkeypatch.delenv("WATCHDOG_PID", raising=False)
        daemon.start()
        received: list[bytes] = []
        while sum(b"WATCHDOG=1" in d for d in received) < 3:
            received.append(notify.recv(4096))
        assert daemon.stop() == 0

    assert any(b"READY=1" in d for d in received)
