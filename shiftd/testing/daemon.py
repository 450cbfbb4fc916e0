"""The real daemon as a subprocess (`shiftd run`), for synchronous tests that crash it, stop
it, fill its disk or read its logs. Real time: every wait is bounded."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from shiftd.control.client import ConnectError, ControlClient, RemoteError
from shiftd.testing.waiting import wait_for


class Daemon:
    """`shiftd run --config workdir/shiftd.yaml` with its state in `state_dir` (default
    `workdir/state`), the `record` notifier writing `workdir/messages.jsonl` and its stderr
    appended to `workdir/daemon.log`. `start()` returns once it answers `ping`."""

    def __init__(
        self,
        workdir: Path,
        state_dir: Path | None = None,
        *,
        escalation_delay: str = "4s",
        grace: str = "5s",
    ) -> None:
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
        )
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def command(self) -> list[str]:
        """The command line that runs this daemon."""
        return [sys.executable, "-m", "shiftd.cli", "run", "--config", str(self.config)]

    def start(self, timeout: float = 30) -> None:
        """Spawn it and wait until it answers `ping`; AssertionError (with its log) if it
        exits first or does not answer within `timeout` seconds."""
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command, cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=log
            )
        wait_for(self._answers, timeout, "the daemon to answer ping")

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
        script = Path(sys.executable).with_name("shiftctl")
        command = [str(script)] if script.exists() else [sys.executable, "-m", "shiftd.ctl"]
        return subprocess.run(
            [*command, *args],
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
