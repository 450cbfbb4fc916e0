"""The real daemon serving HTTP on a socket handed over the way systemd's socket activation
does it (descriptor 3, `LISTEN_PID`/`LISTEN_FDS`/`LISTEN_FDNAMES`), and stopping cleanly.

Real time, real process; every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.process


# What systemd does between fork and exec: the socket at descriptor 3, LISTEN_PID set to the
# pid that will run the daemon (exec keeps it), then exec.
EXEC_AS_SYSTEMD_WOULD = """
import os, sys
fd, config = int(sys.argv[1]), sys.argv[2]
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1", LISTEN_FDNAMES="http")
os.execv(sys.executable, [sys.executable, "-m", "shiftd.cli", "run", "--config", config])
"""


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="shiftd-sa-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_daemon_serves_http_on_the_socket_systemd_hands_over(workdir: Path) -> None:
    (workdir / "api-token").write_text("process-token\n")
    config = workdir / "shiftd.yaml"
    config.write_text(
        "state_dir: ./state\n"
        "notifier:\n  kind: record\n  path: ./state/messages.jsonl\n"
        "shutdown:\n  grace: 3s\n"
        "http:\n"
        # TEST-NET-3: not an address of this machine. Binding it would fail, so answering at
        # all proves the handed-over socket is what is served.
        '  listen: "203.0.113.7:8080"\n'
        "  token_file: ./api-token\n"
    )
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    fd = listener.fileno()
    with (workdir / "daemon.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", EXEC_AS_SYSTEMD_WOULD, str(fd), str(config)],
            cwd=workdir,
            pass_fds=(fd,),
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    listener.close()  # the daemon holds its own copy now
    try:
        health = None
        deadline = time.monotonic() + 15
        # One client for the whole wait: `httpx.get` makes a client, and its TLS context,
        # each time (about 0.1 s of CPU, taken from the daemon being waited for).
        with httpx.Client(timeout=2) as client:
            while time.monotonic() < deadline and proc.poll() is None:
                try:
                    health = client.get(f"http://127.0.0.1:{port}/ready")
                    if health.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.05)
        assert health is not None and health.status_code == 200, (
            workdir / "daemon.log"
        ).read_text()
        assert health.json()["status"] == "ready"
        denied = httpx.post(f"http://127.0.0.1:{port}/shifts/x/fanout", timeout=5)
        assert denied.status_code == 401
        missing = httpx.post(
            f"http://127.0.0.1:{port}/shifts/x/fanout",
            headers={"Authorization": "Bearer process-token"},
            timeout=5,
        )
        assert missing.status_code == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
    assert code == 0, (workdir / "daemon.log").read_text()
    log_text = (workdir / "daemon.log").read_text()
    assert "http.listening" in log_text and f"127.0.0.1:{port}" in log_text
