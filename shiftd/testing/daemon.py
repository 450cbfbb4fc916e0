"""The real daemon as a subprocess (`shiftd run`), for synchronous tests that crash it, stop
it, fill its disk, read its logs or attack it from outside (its control socket, and HTTP on
a loopback port handed over the way systemd's socket activation does). Real time: every
wait is bounded."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from ..control.client import ConnectError, ControlClient, RemoteError
from .shiftctl import shiftctl_command
from .waiting import wait_for

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


class Daemon:
    """`shiftd run --config workdir/shiftd.yaml` with its state in `state_dir` (default
    `workdir/state`), the `record` notifier writing `workdir/messages.jsonl` and its stderr
    appended to `workdir/daemon.log`. `start()` returns once it answers `ping`. With
    `http=True` it also serves HTTP on a loopback port (`url`), behind the bearer token
    `TOKEN`, handed over as systemd would, and `start()` waits for `/ready` too."""

    def __init__(
        self,
        workdir: Path,
        state_dir: Path | None = None,
        *,
        escalation_delay: str = "4s",
        grace: str = "5s",
        http: bool = False,
        log_level: str | None = None,
        extra_config: str = "",
    ) -> None:
        """`extra_config`: YAML appended to its configuration (top-level sections)."""
        self.workdir = workdir
        self.state_dir = state_dir or workdir / "state"
        self.socket = self.state_dir / "control.sock"
        self.db = self.state_dir / "shiftd.sqlite3"
        self.record = workdir / "messages.jsonl"
        self.log = workdir / "daemon.log"
        self.config = workdir / "shiftd.yaml"
        self.config.write_text(
            f"state_dir: {self.state_dir}\n"
            f"escalation:\n  delay: {escalation_delay}\n"
            f"notifier:\n  kind: record\n  path: {self.record}\n"
            f"shutdown:\n  grace: {grace}\n"
            + (f"log:\n  level: {log_level}\n" if log_level else "")
            + extra_config
        )
        self.http = http
        self.url = ""
        if http:
            (workdir / "api-token").write_text(TOKEN + "\n")
            with self.config.open("a") as config:
                config.write(
                    f'http:\n  listen: "127.0.0.1:0"\n  token_file: {workdir / "api-token"}\n'
                )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        """The command line that runs this daemon."""
        return [sys.executable, "-m", "shiftd.cli", "run", "--config", str(self.config)]

    def start(self, timeout: float = 30) -> Daemon:
        """Spawn it and wait until it answers `ping` (and, with HTTP, `/ready`); return it.
        AssertionError (with its log) if it exits first or is not ready within `timeout`."""
        if not self.http:
            with self.log.open("ab") as log:
                self.proc = subprocess.Popen(
                    self.command, cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=log
                )
            wait_for(self._answers, timeout, "the daemon to answer ping")
            return self
        listener = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        fd = listener.fileno()
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", _EXEC_AS_SYSTEMD_WOULD, str(fd), str(self.config)],
                cwd=self.workdir,
                pass_fds=(fd,),
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        listener.close()
        # One client for the whole wait: `httpx.get` makes a client, and its TLS context,
        # each time (about 0.1 s of CPU, taken from the daemon being waited for).
        with httpx.Client(timeout=2) as client:
            wait_for(
                lambda: self._answers() and _ready(client, self.url),
                timeout,
                "the daemon to be ready",
            )
        return self

    def alive(self) -> bool:
        """Whether it still runs."""
        return self.proc is not None and self.proc.poll() is None

    def ping(self) -> bool:
        """Whether it answers `ping` on its control socket."""
        try:
            return bool(self.call("ping").get("pong"))
        except (ConnectError, OSError):
            return False

    def log_text(self) -> str:
        """What it has written to stderr so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def remove(self) -> None:
        """Delete its working directory (kept if KEEP is set in the environment)."""
        if os.environ.get("KEEP") is None:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def run_to_exit(self) -> subprocess.CompletedProcess[str]:
        """Start it expecting it to refuse: its exit code and stderr."""
        return subprocess.run(
            self.command, cwd=self.workdir, capture_output=True, text=True, timeout=60
        )

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"daemon exited {self.proc.returncode}:\n{self.log.read_text()}")
        try:
            self.call("ping")
        except (ConnectError, OSError):
            return False
        return True

    def call(self, cmd: str, **args: Any) -> dict[str, Any]:
        """One control command; its result, or RemoteError for an error answer."""
        with ControlClient(str(self.socket), timeout=15) as client:
            return client.call(cmd, args)

    def call_when_available(self, cmd: str, **args: Any) -> dict[str, Any]:
        """`call`, asked again (the same request) while the daemon answers `unavailable`, as
        it does while a shift's owner changes hands in a cluster; AssertionError after 60 s."""

        def answered() -> dict[str, Any] | None:
            try:
                return self.call(cmd, **args)
            except RemoteError as error:
                if error.code != "unavailable":
                    raise
                return None

        answer = wait_for(answered, 60, f"{cmd} to be answered")
        assert answer is not None  # wait_for returns only a truthy answer
        return answer

    def refused(self, cmd: str, **args: Any) -> RemoteError:
        """The error answer to a command that must be refused (AssertionError if it is not)."""
        try:
            self.call(cmd, **args)
        except RemoteError as refusal:
            return refusal
        raise AssertionError(f"{cmd} was not refused")

    def kill9(self) -> None:
        """SIGKILL, and wait for it to be gone."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self, how: signal.Signals = signal.SIGTERM, timeout: float = 30) -> int:
        """Send `how` (SIGTERM by default) and return its exit status."""
        assert self.proc is not None
        self.proc.send_signal(how)
        return self.proc.wait(timeout=timeout)

    def ensure_gone(self) -> None:
        """Kill it if it still runs (a test's cleanup)."""
        if self.proc is not None and self.proc.poll() is None:
            self.kill9()

    def shiftctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The installed `shiftctl` command, as a coordinator runs it (SHIFTD_SOCKET set)."""
        return subprocess.run(
            [*shiftctl_command(), *args],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "SHIFTD_SOCKET": str(self.socket)},
        )

    def messages(self) -> list[dict[str, Any]]:
        """What the `record` notifier wrote, in order."""
        if not self.record.exists():
            return []
        return [json.loads(line) for line in self.record.read_text().splitlines()]


def _ready(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(url + "/ready").status_code == 200
    except httpx.TransportError:
        return False
