"""The daemon the crash run kills or pauses: a real shiftd subprocess, its config, its
control socket; one of a cluster's instances when its config names a shared database."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

import trio

from ..control.client import encode_request
from .fakeprovider import FakeTwilio
from .ports import reserve_port

ACCOUNT_SID = "AC" + "c" * 32
FROM_NUMBERS = ("+15550100001", "+15550100002")


class DaemonDied(Exception):
    """The daemon exited on its own (not killed by the harness)."""


class RemoteError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class Daemon:
    """`shiftd run` as a child process, with its state in `workdir`."""

    def __init__(self, workdir: Path, python: str, name: str = "") -> None:
        self.name = name
        self.workdir = workdir
        self.python = python
        self.config = workdir / "shiftd.yaml"
        self.socket = workdir / "state" / "control.sock"
        self.db = workdir / "state" / "shiftd.sqlite3"
        self.log = workdir / "daemon.log"
        self.proc: trio.Process | None = None
        self.paused = False
        self.answering = False
        """It answered `ping` since it was last started."""
        self.webhook_base = ""
        self._http_port: socket.socket | None = None

    def write_config(self, *, api_base: str, delay: int, extra: str = "") -> None:
        """Its configuration: the fake Twilio at `api_base`, HTTP on a loopback port reserved
        for it until `release_port` (so every restart finds it free), the default policy's
        escalation `delay` (seconds); `extra` YAML sections appended (a cluster's `store` and
        `cluster`)."""
        if self._http_port is None:
            self._http_port = reserve_port()
        http_port = self._http_port.getsockname()[1]
        self.webhook_base = f"http://127.0.0.1:{http_port}"
        (self.workdir / "twilio-token").write_text(FakeTwilio().auth_token + "\n")
        numbers = ", ".join(f'"{n}"' for n in FROM_NUMBERS)
        self.config.write_text(
            f"""\
state_dir: ./state
agency_name: "Crash Care"
escalation:
  delay: "{delay}s"
notifier:
  kind: twilio
  account_sid: "{ACCOUNT_SID}"
  auth_token_file: ./twilio-token
  from_numbers: [{numbers}]
  api_base: "{api_base}"
  rate_per_second: 500
  burst: 100
  calls_per_second: 500
  connect_timeout: "1s"
  request_timeout: "1s"
sender:
  max_attempts: 4
  backoff_initial: "100ms"
  backoff_max: "1s"
  timeout: "2s"
shutdown:
  grace: "3s"
http:
  listen: "127.0.0.1:{http_port}"
  public_url: "http://127.0.0.1:{http_port}"
log:
  format: json
"""
            + extra
        )

    async def spawn(self) -> None:
        self.answering = False
        with self.log.open("ab") as log:
            self.proc = await trio.lowlevel.open_process(
                [self.python, "-m", "shiftd.cli", "run", "--config", str(self.config)],
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    async def wait_answering(self, bound: float) -> float:
        """Seconds until `ping` answers. Raises DaemonDied if it exits, TooSlowError past
        `bound`."""
        assert self.proc is not None
        started = trio.current_time()
        with trio.fail_after(bound):
            while True:
                if self.proc.poll() is not None:
                    raise DaemonDied(f"exit {self.proc.returncode}: {self.tail()}")
                try:
                    await self.call("ping", bound=2)
                    self.answering = True
                    return trio.current_time() - started
                except (OSError, RemoteError, trio.TooSlowError, ValueError):
                    await trio.sleep(0.02)

    async def kill9(self) -> None:
        assert self.proc is not None
        self.answering = False
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        with trio.fail_after(10):
            await self.proc.wait()

    def pause(self) -> None:
        """SIGSTOP: it keeps its sockets and leases but runs nothing until `resume`."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False

    @property
    def up(self) -> bool:
        """Running, answering since its start, and not paused."""
        return self.alive and self.answering and not self.paused

    async def terminate(self, bound: float = 20) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        with trio.fail_after(bound):
            return await self.proc.wait()

    def release_port(self) -> None:
        """Give its HTTP port back (once it no longer runs)."""
        if self._http_port is not None:
            self._http_port.close()
            self._http_port = None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def call(self, cmd: str, *, bound: float = 10, **args: Any) -> dict[str, Any]:
        """One control command; its result. Raises RemoteError for an `ok: false` answer,
        OSError/trio errors when the daemon is not there, TooSlowError past `bound`."""
        with trio.fail_after(bound):
            stream = await trio.open_unix_socket(str(self.socket))
            async with stream:
                await stream.send_all(encode_request(1, cmd, args))
                data = b""
                while b"\n" not in data:
                    chunk = await stream.receive_some(1 << 16)
                    if not chunk:
                        raise ConnectionResetError("the daemon closed the connection")
                    data += chunk
        answer = json.loads(data.split(b"\n", 1)[0])
        if not answer.get("ok"):
            error = answer.get("error") or {}
            raise RemoteError(str(error.get("code")), str(error.get("message")))
        return dict(answer["result"])

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
