"""The real daemon as a subprocess, serving its control socket and HTTP (on a loopback port
handed over the way systemd's socket activation does), for tests that attack it from
outside. Real time, every wait bounded."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from shiftd.control.client import ConnectError, ControlClient

TOKEN = "live-daemon-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

# The socket at descriptor 3 and LISTEN_* set, as systemd does between fork and exec.
_EXEC_AS_SYSTEMD_WOULD = """
import os, sys
fd, config = int(sys.argv[1]), sys.argv[2]
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1", LISTEN_FDNAMES="http")
os.execv(sys.executable, [sys.executable, "-m", "shiftd.cli", "run", "--config", config])
"""


def sample_roster(shifts: int = 3) -> dict[str, Any]:
    """A few RN caregivers and open shifts starting tomorrow."""
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    return {
        "caregivers": [
            {"id": f"cg-{n}", "name": f"Carer {n}", "role": "RN", "phone": f"+1555030000{n}"}
            for n in range(1, 4)
        ],
        "shifts": [
            {
                "id": f"shift-{n}",
                "role_required": "RN",
                "start_time": (start + timedelta(hours=n)).isoformat(),
                "end_time": (start + timedelta(hours=n + 8)).isoformat(),
            }
            for n in range(1, shifts + 1)
        ],
    }


class LiveDaemon:
    """`start()`, then `url`, `socket`; `alive()` says whether it still runs; `stop()`
    returns its exit status. Its log is `workdir / "daemon.log"`."""

    def __init__(self, extra_config: str = "") -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="shlive-", dir="/tmp"))
        self.socket = self.workdir / "state" / "control.sock"
        (self.workdir / "api-token").write_text(TOKEN + "\n")
        self.config = self.workdir / "shiftd.yaml"
        self.config.write_text(
            "state_dir: ./state\n"
            "control_socket: ./state/control.sock\n"
            "notifier:\n  kind: record\n  path: ./state/messages.jsonl\n"
            "shutdown:\n  grace: 3s\n"
            "log:\n  level: warning\n"
            "http:\n"
            '  listen: "127.0.0.1:0"\n'
            "  token_file: ./api-token\n" + extra_config
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = ""

    def start(self) -> LiveDaemon:
        listener = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        fd = listener.fileno()
        with (self.workdir / "daemon.log").open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _EXEC_AS_SYSTEMD_WOULD, str(fd), str(self.config)],
                cwd=self.workdir,
                pass_fds=(fd,),
                stdout=subprocess.DEVNULL,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        listener.close()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.ping() and self._ready():
                return self
            if not self.alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"the daemon did not start:\n{self.log()}")

    def _ready(self) -> bool:
        try:
            return httpx.get(self.url + "/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def ping(self) -> bool:
        """Whether the daemon answers `ping` on its control socket."""
        try:
            return bool(self.call("ping").get("pong"))
        except (ConnectError, OSError):
            return False

    def call(self, cmd: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        with ControlClient(str(self.socket), timeout=10) as client:
            return client.call(cmd, args or {})

    def log(self) -> str:
        path = self.workdir / "daemon.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> int | None:
        """SIGTERM, then the exit status (None if it had to be killed)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
                return None
        return self.proc.returncode

    def remove(self) -> None:
        if os.environ.get("KEEP") is None:
            shutil.rmtree(self.workdir, ignore_errors=True)
