"""A scripted stand-in for the daemon behind shiftctl: a stdlib AF_UNIX server in a
background thread that answers each command from a script and records what it received."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

IO_TIMEOUT = 5.0  # bound on every socket operation, both sides
SILENT_POLL = 0.05  # how often a connection held without an answer checks for `stop`

CLOSE = object()  # scripted answer: close the connection without answering
SILENT = object()  # scripted answer: never answer this request

Script = dict[str, Any]  # cmd -> result dict | {"error": {...}} | CLOSE | SILENT | callable


def shiftctl_command() -> list[str]:
    """The installed `shiftctl` command (the console script beside this Python), else the
    module it runs; for running shiftctl as a coordinator does, in a process of its own."""
    script = Path(sys.executable).with_name("shiftctl")
    return [str(script)] if script.exists() else [sys.executable, "-m", "shiftd.shiftctl.cli"]


class FakeDaemon:
    """Answers newline-delimited JSON requests from a script; records what it received."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.script: Script = {}
        self.requests: list[dict[str, Any]] = []
        self.line_sizes: list[int] = []
        self.errors: list[Exception] = []
        self._stop = threading.Event()
        self._srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._srv.bind(path)
        self._srv.listen(8)
        self._srv.settimeout(0.05)
        self._thread = threading.Thread(target=self._serve, name="fake-shiftd", daemon=True)
        self._thread.start()

    def calls(self, cmd: str) -> list[dict[str, Any]]:
        return [r["args"] for r in self.requests if r.get("cmd") == cmd]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(IO_TIMEOUT)
        self._srv.close()
        assert not self._thread.is_alive(), "fake daemon thread did not stop"
        assert not self.errors, f"fake daemon failed: {self.errors!r}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(IO_TIMEOUT)
                try:
                    self._handle(conn)
                except OSError:
                    continue  # the client went away: that's its business
                except Exception as exc:  # reported by stop(), so a test cannot miss it
                    self.errors.append(exc)

    def _handle(self, conn: socket.socket) -> None:
        buf = b""
        while not self._stop.is_set():
            while b"\n" not in buf:
                try:
                    chunk = conn.recv(65536)
                except TimeoutError:
                    if conn.gettimeout() == SILENT_POLL and not self._stop.is_set():
                        continue  # holding a request it never answers, as long as the client
                    raise
                if not chunk:
                    return
                buf += chunk
                assert len(buf) < 1024 * 1024, "request line far too long"
            line, buf = buf.split(b"\n", 1)
            self.line_sizes.append(len(line) + 1)
            request = json.loads(line)
            self.requests.append(request)
            answer = self.script.get(request["cmd"], {"error": {"code": "unknown_command"}})
            if callable(answer):
                answer = answer(request["args"])
            if answer is CLOSE:
                return
            if answer is SILENT:
                # A daemon busy with the request: the line stays open, however long the
                # client waits (its own timeout, or its user's Ctrl-C, ends it).
                conn.settimeout(SILENT_POLL)
                continue
            if "error" in answer:
                response = {"id": request["id"], "ok": False, "error": answer["error"]}
            else:
                response = {"id": request["id"], "ok": True, "result": answer}
            conn.sendall(json.dumps(response).encode() + b"\n")


def import_counter(args: dict[str, Any]) -> dict[str, Any]:
    """roster.import answer: every caregiver/shift in the request counts as created."""
    cg, sh = args.get("caregivers") or [], args.get("shifts") or []
    return {
        "caregivers": {"created": len(cg), "updated": 0, "unchanged": 0},
        "shifts": {
            "created": len(sh),
            "updated": 0,
            "unchanged": 0,
            "skipped": [{"id": s["id"], "reason": "in the past"} for s in sh if s.get("past")],
        },
    }


@contextmanager
def fake_daemon() -> Iterator[FakeDaemon]:
    """A `FakeDaemon` on a socket in a fresh directory of its own under /tmp (a short path:
    AF_UNIX paths are limited); stopped, and its directory removed, on the way out."""
    directory = tempfile.mkdtemp(prefix="shx-", dir="/tmp")
    daemon = FakeDaemon(os.path.join(directory, "ctl.sock"))
    try:
        yield daemon
    finally:
        daemon.stop()
        shutil.rmtree(directory, ignore_errors=True)
