"""Ceilings: what this machine does with no shiftd in the way, measured in the same run.

- a bare Trio NDJSON echo server over a Unix socket (parse the line, answer it), driven by the
  same load generator as shiftd's control socket;
- raw SQLite inserts with the store's pragmas (WAL, synchronous=NORMAL): one row per commit,
  as many rows per commit as the store benchmark has writers, and 512;
- 100,000 bare actors: a task with its own cancel scope (with a far deadline, like a sleeping
  shift) waiting on its own memory channel; and timers firing among them under echo load.
"""

from __future__ import annotations

import gc
import json
import math
import random
import socket as stdsocket
import sqlite3
import time
from pathlib import Path
from typing import Any

import trio
import trio.testing

from .common import Size, create_schema, run_loadgen, workdir
from .stats import latency_ms, percentile, raise_fd_limit, rss_bytes

# The same request the inbound scenarios send, so parsing costs the same.
_INBOUND = {"kind": "inbound", "body": "NO", "first": 0, "count": 1000}


# ---- the bare echo server ------------------------------------------------------------------


async def _echo_connection(stream: trio.SocketStream) -> None:
    async with stream:
        buffer = bytearray()
        while True:
            newline = buffer.find(b"\n")
            if newline < 0:
                chunk = await stream.receive_some(65536)
                if not chunk:
                    return
                buffer += chunk
                continue
            line = bytes(buffer[:newline])
            del buffer[: newline + 1]
            request = json.loads(line)
            answer = {"id": request.get("id"), "ok": True, "result": {"echo": request["cmd"]}}
            await stream.send_all(json.dumps(answer, separators=(",", ":")).encode() + b"\n")


async def serve_echo(path: Path, *, task_status: trio.TaskStatus[Path]) -> None:
    sock = stdsocket.socket(stdsocket.AF_UNIX, stdsocket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(128)  # as the control socket does
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
    task_status.started(path)
    async with listener, trio.open_nursery() as nursery:
        while True:
            nursery.start_soon(_echo_connection, await listener.accept())


async def echo(size: Size) -> dict[str, Any]:
    """Echo throughput on 1 and 50 connections (closed loop), a 1,000-connection storm, and
    latency at a paced 1,000 requests/s."""
    raise_fd_limit()
    with workdir("echo") as d:
        async with trio.open_nursery() as nursery:
            path = await nursery.start(serve_echo, d / "echo.sock")
            base = {"socket": str(path), "requests": _INBOUND}
            one = await run_loadgen(
                {**base, "mode": "closed", "connections": 1, "total": size.echo_messages}
            )
            fifty = await run_loadgen(
                {**base, "mode": "closed", "connections": 50, "total": size.echo_messages}
            )
            storm = await run_loadgen(
                {**base, "mode": "storm", "connections": size.claim_caregivers}
            )
            nursery.cancel_scope.cancel()
    return {"closed_1": one, "closed_50": fifty, "storm": storm}


# ---- raw SQLite -----------------------------------------------------------------------------

_INSERT = (
    "INSERT INTO inbound (provider_id, ts, from_phone, caregiver_id, channel, body, shift_id,"
    " outcome, reply) VALUES (NULL, ?, ?, ?, 'sms', 'NO', ?, 'declined', NULL)"
)


def _raw_connection(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _raw_run(conn: sqlite3.Connection, per_commit: int, seconds: float) -> dict[str, Any]:
    row = ("2025-07-01T14:00:00.000000Z", "+15550000001", "cg-0000001", "sh-0000001")
    commits = rows = 0
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds
    while (now := time.perf_counter()) < deadline:
        conn.execute("BEGIN IMMEDIATE")
        for _ in range(per_commit):
            conn.execute(_INSERT, row)
        conn.execute("COMMIT")
        done = time.perf_counter()
        latencies.append(done - now)
        commits += 1
        rows += per_commit
    elapsed = time.perf_counter() - started
    return {
        "per_commit": per_commit,
        "commits_per_s": round(commits / elapsed, 1),
        "rows_per_s": round(rows / elapsed, 1),
        "commit": latency_ms(latencies),
    }


def _raw_fanout(conn: sqlite3.Connection, messages: int, in_flight: int) -> float:
    """The least durable work of a fanout: the outbox rows in one transaction, then each row
    marked `sending` and `sent`, `in_flight` rows per commit. Seconds."""
    stamp = "2025-07-01T14:00:00.000000Z"
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    first = conn.execute("SELECT coalesce(max(id), 0) + 1 FROM outbox").fetchone()[0]
    conn.executemany(
        "INSERT INTO outbox (key, shift_id, caregiver_id, channel, purpose, to_phone, body,"
        " created_at, updated_at) VALUES (?, 'sh-raw', ?, 'sms', 'offer', ?, 'text', ?, ?)",
        ((f"raw:{i}", f"cg-{i}", f"+1{i}", stamp, stamp) for i in range(messages)),
    )
    conn.execute("COMMIT")
    for chunk in range(first, first + messages, in_flight):
        ids = [(stamp, i) for i in range(chunk, min(chunk + in_flight, first + messages))]
        for sql in (
            "UPDATE outbox SET state = 'sending', attempts = attempts + 1, updated_at = ?"
            " WHERE id = ? AND state = 'pending'",
            "UPDATE outbox SET state = 'sent', sent_at = ?, updated_at = ? WHERE id = ?",
        ):
            conn.execute("BEGIN IMMEDIATE")
            for args in ids:
                conn.execute(sql, args if sql.count("?") == 2 else (stamp, *args))
            conn.execute("COMMIT")
    return time.perf_counter() - started


async def raw_sqlite(size: Size) -> dict[str, Any]:
    with workdir("raw") as d:
        path = d / "raw.sqlite3"
        await create_schema(path)
        conn = _raw_connection(path)
        try:
            single = _raw_run(conn, 1, size.raw_sqlite_seconds)
            # The batch the store's writers make (one write each in flight), and the largest.
            same = _raw_run(conn, size.store_writers, size.raw_sqlite_seconds)
            batched = _raw_run(conn, 512, size.raw_sqlite_seconds)
            fanout = _raw_fanout(conn, size.fanout_caregivers, 16)
        finally:
            conn.close()
    return {
        "per_row_commit": single,
        "batched_writers": same,
        "batched_512": batched,
        "fanout_seconds": fanout,
    }


# ---- bare actors ----------------------------------------------------------------------------


async def _bare_actor(
    receive: trio.MemoryReceiveChannel[object], deadline: float, woke: list[float] | None
) -> None:
    with trio.CancelScope(deadline=deadline):
        await receive.receive()
    if woke is not None:  # a timer that fired: how late
        woke.append(trio.current_time() - deadline)


async def _spawn_bare(nursery: trio.Nursery, n: int, far: float) -> dict[str, Any]:
    handles = {}
    gc.collect()
    before = rss_bytes()
    started = time.perf_counter()
    cpu = time.process_time()
    gc.disable()  # as shiftd.gcpolicy does while the engine recovers
    try:
        for i in range(n):
            send, receive = trio.open_memory_channel[object](64)
            handles[f"sh-{i:07d}"] = (send, receive)
            nursery.start_soon(_bare_actor, receive, far + random.uniform(0, 600), None)
        await trio.testing.wait_all_tasks_blocked()
    finally:
        gc.enable()
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu
    gc.freeze()
    after = rss_bytes()
    return {
        "n": n,
        "seconds": round(elapsed, 4),
        "cpu_s": round(cpu, 4),
        "us_per_actor": round(elapsed / n * 1e6, 2),
        "rss_bytes_per_actor": round((after - before) / n, 1),
        "handles": handles,
    }


async def bare_actors(size: Size) -> dict[str, Any]:
    """Spawn `size.bare_actors` bare actors and measure time and memory; then, with them all
    asleep, fire `open_escalating` timers spread over the window while the echo server takes
    `open_rate` requests/s, and measure how late the timers fire."""
    raise_fd_limit()
    far = trio.current_time() + 3600
    with workdir("bare") as d:
        async with trio.open_nursery() as nursery:
            spawn = await _spawn_bare(nursery, size.bare_actors, far)
            spawn.pop("handles")
            path = await nursery.start(serve_echo, d / "echo.sock")
            woke: list[float] = []
            async with trio.open_nursery() as timers:
                # Between 1/6 and 5/6 of the window, as the open-shifts escalations.
                start = trio.current_time()
                window = size.open_window
                for _ in range(size.open_escalating):
                    _, receive = trio.open_memory_channel[object](1)
                    deadline = start + random.uniform(window / 6, window * 5 / 6)
                    timers.start_soon(_bare_actor, receive, deadline, woke)
                load = await run_loadgen(
                    {
                        "socket": str(path),
                        "mode": "paced",
                        "connections": 20,
                        "rate": size.open_rate,
                        "duration": size.open_window,
                        "requests": _INBOUND,
                    }
                )
            stopping = time.perf_counter()
            nursery.cancel_scope.cancel()
        stopped = time.perf_counter() - stopping
    return {
        "spawn": spawn,
        "stop_s": round(stopped, 4),
        "lateness": latency_ms(woke),
        "lateness_p999_ms": round(percentile(woke, 99.9) * 1e3, 3) if woke else math.nan,
        "load": load,
    }


async def bare_spawn_gc_on(size: Size) -> dict[str, Any]:
    """The same spawn with the collector running, for the record."""
    n = size.bare_actors
    far = trio.current_time() + 3600
    async with trio.open_nursery() as nursery:
        started = time.perf_counter()
        keep = []
        for _ in range(n):
            send, receive = trio.open_memory_channel[object](64)
            keep.append(send)
            nursery.start_soon(_bare_actor, receive, far, None)
        await trio.testing.wait_all_tasks_blocked()
        elapsed = time.perf_counter() - started
        nursery.cancel_scope.cancel()
    return {"n": n, "seconds": round(elapsed, 4), "us_per_actor": round(elapsed / n * 1e6, 2)}
