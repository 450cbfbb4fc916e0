"""PostgreSQL for the benchmarks: a fresh database per run on the local server, and the
raw ceiling the PostgreSQL store's group commit is measured against.

The server is $SHIFTD_BENCH_POSTGRES (default postgresql://postgres@127.0.0.1:5432/postgres,
the machine's own, trust auth). Where it does not answer, the PostgreSQL figures are left
out with the reason.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .stats import latency_ms

ADMIN_URL = os.environ.get("SHIFTD_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


def unreachable() -> str | None:
    """Why PostgreSQL cannot be used (one line), or None if it answers."""
    try:
        import psycopg

        with psycopg.connect(ADMIN_URL, connect_timeout=3, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return None


@contextmanager
def database() -> Iterator[str]:
    """A fresh, empty database for one measurement; dropped afterwards. Yields its URL."""
    import psycopg

    name = f"shiftd_bench_{secrets.token_hex(6)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{ADMIN_URL.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_version() -> str | None:
    try:
        import psycopg

        with psycopg.connect(ADMIN_URL, connect_timeout=3, autocommit=True) as conn:
            row = conn.execute("SHOW server_version").fetchone()
    except Exception:
        return None
    return str(row[0]).split()[0] if row else None


def raw_inserts(url: str, per_commit: int, seconds: float) -> dict[str, Any]:
    """The ceiling: the store's INSERT into `inbound` (same row, same table and indexes),
    `per_commit` per transaction, from one psycopg connection with no shiftd around it —
    no savepoints, no thread hop, no Trio. Needs the shiftd schema in `url`."""
    import psycopg

    sql = (
        "INSERT INTO inbound (provider_id, ts, from_phone, caregiver_id, channel, body,"
        " shift_id, outcome, reply) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (provider_id) DO NOTHING"
    )
    row = (None, "2026-01-01T00:00:00.000000Z", "+15550000001", "cg-0000001", "sms", "NO")
    params = (*row, "sh-0000001", "declined", None)
    commits: list[float] = []
    rows = 0
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        stop_at = started + seconds
        while time.perf_counter() < stop_at:
            t = time.perf_counter()
            with conn.transaction():
                for _ in range(per_commit):
                    conn.execute(sql, params)
            commits.append(time.perf_counter() - t)
            rows += per_commit
        elapsed = time.perf_counter() - started
    return {
        "per_commit": per_commit,
        "rows_per_s": round(rows / elapsed, 1),
        "commits_per_s": round(len(commits) / elapsed, 1),
        "commit": latency_ms(commits),
    }


# ---- how to drive psycopg from Trio: the measurement behind the store's choice -------------


async def _wait_core(gen: Any, fileno: int) -> Any:
    """(a) Run one of psycopg's generator-based operations, waiting on its socket in Trio."""
    import trio
    from psycopg.waiting import Ready, Wait

    try:
        state = next(gen)
        while True:
            if state == Wait.R:
                await trio.lowlevel.wait_readable(fileno)
                state = gen.send(Ready.R)
            else:  # W or RW: libpq wants to send; the answer is awaited on the next R
                await trio.lowlevel.wait_writable(fileno)
                state = gen.send(Ready.W)
    except StopIteration as done:
        return done.value


async def drivers(size: Any) -> dict[str, Any]:
    """The two ways psycopg 3 can serve Trio, on the same queries: (a) psycopg's
    generator-based core (`Cursor._execute_gen`, a private API) driven by
    `trio.lowlevel.wait_readable/wait_writable` on the connection's socket; (b) the public
    sync API on worker threads (`trio.to_thread.run_sync` with a `CapacityLimiter`), as the
    store does. Measured: point reads one at a time; point reads from 8 tasks over 4
    connections; group-commit writes (256 per transaction, each in a savepoint)."""
    import psycopg
    import trio

    reason = unreachable()
    if reason is not None:
        return {"skipped": f"PostgreSQL is not answering: {reason}"}
    reads, batches, per = size.store_writers * 50, max(2, size.store_writers // 4), 256
    out: dict[str, Any] = {}
    with database() as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
            conn.execute("INSERT INTO t SELECT g, 'x' FROM generate_series(1, 1000) g")
            conn.execute("CREATE TABLE w (id bigserial PRIMARY KEY, v text)")
        point = "SELECT v FROM t WHERE id = %s"

        async def a_exec(conn: Any, sql: str, params: Any = None) -> Any:
            cur = conn.cursor()
            await _wait_core(cur._execute_gen(sql, params), conn.pgconn.socket)
            return cur

        def connect_a() -> Any:
            conn = psycopg.connect(url, autocommit=True)
            conn.pgconn.nonblocking = 1
            return conn

        def connect_b() -> Any:
            return psycopg.connect(url, autocommit=True)

        async def a_reads(conns: list[Any], tasks: int) -> float:
            free = list(conns)
            gate = trio.Semaphore(len(conns))

            async def reader() -> None:
                for i in range(reads // tasks):
                    async with gate:
                        conn = free.pop()
                        try:
                            (await a_exec(conn, point, (i % 1000 + 1,))).fetchone()
                        finally:
                            free.append(conn)

            return await _timed(reader, tasks)

        async def b_reads(conns: list[Any], tasks: int) -> float:
            free = list(conns)
            limiter = trio.CapacityLimiter(len(conns))

            def read(i: int) -> None:
                conn = free.pop()
                try:
                    conn.execute(point, (i % 1000 + 1,)).fetchone()
                finally:
                    free.append(conn)

            async def reader() -> None:
                for i in range(reads // tasks):
                    await trio.to_thread.run_sync(read, i, limiter=limiter)

            return await _timed(reader, tasks)

        async def _timed(reader: Any, tasks: int) -> float:
            started = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(tasks):
                    nursery.start_soon(reader)
            return reads / (time.perf_counter() - started)

        async def a_writes(conn: Any) -> float:
            started = time.perf_counter()
            for _ in range(batches):
                await a_exec(conn, "BEGIN")
                for _ in range(per):
                    await a_exec(conn, "SAVEPOINT w")
                    await a_exec(conn, "INSERT INTO w (v) VALUES (%s)", ("x",))
                    await a_exec(conn, "RELEASE w")
                await a_exec(conn, "COMMIT")
            return batches * per / (time.perf_counter() - started)

        async def b_writes(conn: Any) -> float:
            def batch() -> None:
                conn.execute("BEGIN")
                for _ in range(per):
                    conn.execute("SAVEPOINT w")
                    conn.execute("INSERT INTO w (v) VALUES (%s)", ("x",))
                    conn.execute("RELEASE w")
                conn.execute("COMMIT")

            started = time.perf_counter()
            for _ in range(batches):
                await trio.to_thread.run_sync(batch)
            return batches * per / (time.perf_counter() - started)

        for label, connect, read_fn, write_fn in (
            ("trio_socket_wait", connect_a, a_reads, a_writes),
            ("worker_thread", connect_b, b_reads, b_writes),
        ):
            conns = [connect() for _ in range(4)]
            try:
                out[label] = {
                    "reads_per_s_1_conn": round(await read_fn(conns[:1], 1), 1),
                    "reads_per_s_4_conns_8_tasks": round(await read_fn(conns, 8), 1),
                    "group_commit_writes_per_s": round(await write_fn(conns[0]), 1),
                }
            finally:
                for conn in conns:
                    conn.close()
    return out
