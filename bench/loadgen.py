"""The load generator: a separate Trio process speaking newline-delimited JSON over a Unix
socket, to shiftd's control socket or to the bare echo server alike.

`python -m bench.loadgen SPEC` prints one JSON object with what it measured. SPEC:

- `socket`: the path, or `sockets`: several (connection i opens socket i mod n: the load spread
  over a cluster's instances); `connections`: how many (opened before the clock starts);
- `requests`: `{"kind": "inbound", "body": "NO", "first": 0, "count": 1000}` → request i is an
  `inbound` from phone `first + i % count`; `{"kind": "ping"}` → `ping`;
- `mode`:
  - `closed`: `total` requests, each connection sends its next request when the previous one
    is answered (not pipelined: one request in flight per connection);
  - `storm`: every connection sends one request at the same instant;
  - `paced`: `rate` requests/s for `duration` s, round-robin over the connections, each sent
    at its scheduled instant (or as soon as its connection is free); latency is counted from
    the scheduled instant, so a stall is not hidden (no coordinated omission).

Every connection is opened and answers one `ping` before the clock starts. Latency is from
sending a request to reading its whole answer line.
"""

from __future__ import annotations

import errno
import json
import sys
import time
from collections import Counter
from typing import Any

import trio
import trio.testing

from .stats import latency_ms, phone_of, raise_fd_limit


class _Conn:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def call(self, line: bytes) -> bytes:
        await self.stream.send_all(line)
        while True:
            newline = self.buffer.find(b"\n")
            if newline >= 0:
                answer = bytes(self.buffer[:newline])
                del self.buffer[: newline + 1]
                return answer
            chunk = await self.stream.receive_some(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            self.buffer += chunk


_RETRIES = [0]


async def _connect(path: str) -> _Conn:
    """Connect, retrying while the listen backlog is full (a non-blocking AF_UNIX connect
    then fails with EAGAIN, and the socket is left unconnected)."""
    for attempt in range(2000):
        try:
            stream = await trio.open_unix_socket(path)
            stream.socket.getpeername()  # raises if the connect did not really happen
            return _Conn(stream)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ENOTCONN, errno.ECONNREFUSED):
                raise
            _RETRIES[0] += 1
            await trio.sleep(0.001 * min(attempt + 1, 20))
    raise ConnectionError(f"cannot connect to {path}")


def _lines(spec: dict[str, Any], n: int) -> list[bytes]:
    req = spec["requests"]
    lines = []
    for i in range(n):
        if req["kind"] == "inbound":
            args = {"from": phone_of(req["first"] + i % req["count"]), "body": req["body"]}
            payload = {"id": i, "cmd": "inbound", "args": args}
        else:
            payload = {"id": i, "cmd": "ping", "args": {}}
        lines.append(json.dumps(payload, separators=(",", ":")).encode() + b"\n")
    return lines


def _outcome(answer: bytes) -> str:
    reply = json.loads(answer)
    if not reply.get("ok"):
        return "error:" + reply.get("error", {}).get("code", "?")
    result = reply.get("result", {})
    return str(result.get("outcome", "ok")) if isinstance(result, dict) else "ok"


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    raise_fd_limit()
    mode = spec["mode"]
    n_conn = spec["connections"]
    if mode == "closed":
        total = spec["total"]
    elif mode == "storm":
        total = n_conn
    else:
        total = int(spec["rate"] * spec["duration"])
    lines = _lines(spec, total)
    # Several sockets (the instances of a cluster): connection i goes to socket i mod n.
    sockets = spec.get("sockets") or [spec["socket"]]
    conns = [await _connect(sockets[i % len(sockets)]) for i in range(n_conn)]
    # Every connection answers once before the clock starts: the server has accepted them all
    # (connect() returns while a connection still waits in the listen backlog).
    ping = b'{"id":"warm-up","cmd":"ping","args":{}}\n'
    async with trio.open_nursery() as nursery:
        for conn in conns:
            nursery.start_soon(conn.call, ping)
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    answers: list[tuple[int, str]] = []
    first_send = last_answer = 0.0

    if mode == "closed":
        next_index = iter(range(total))

        async def closed(conn: _Conn) -> None:
            nonlocal last_answer
            for i in next_index:
                sent = time.perf_counter()
                answer = await conn.call(lines[i])
                last_answer = time.perf_counter()
                latencies.append(last_answer - sent)
                outcomes[_outcome(answer)] += 1

        first_send = time.perf_counter()
        async with trio.open_nursery() as nursery:
            for conn in conns:
                nursery.start_soon(closed, conn)

    elif mode == "storm":
        go = trio.Event()

        async def storm(index: int, conn: _Conn) -> None:
            nonlocal last_answer
            await go.wait()
            sent = time.perf_counter()
            answer = await conn.call(lines[index])
            last_answer = time.perf_counter()
            latencies.append(last_answer - sent)
            outcome = _outcome(answer)
            outcomes[outcome] += 1
            answers.append((index, outcome))

        async with trio.open_nursery() as nursery:
            for index, conn in enumerate(conns):
                nursery.start_soon(storm, index, conn)
            await trio.testing.wait_all_tasks_blocked()
            first_send = time.perf_counter()
            go.set()

    else:  # paced
        interval = 1.0 / spec["rate"]

        async def paced(offset: int, conn: _Conn, start: float) -> None:
            nonlocal last_answer
            for i in range(offset, total, n_conn):
                scheduled = start + i * interval
                await trio.sleep_until(scheduled)
                answer = await conn.call(lines[i])
                now = trio.current_time()
                last_answer = time.perf_counter()
                latencies.append(now - scheduled)
                outcomes[_outcome(answer)] += 1

        first_send = time.perf_counter()
        start = trio.current_time() + 0.01
        async with trio.open_nursery() as nursery:
            for offset, conn in enumerate(conns):
                nursery.start_soon(paced, offset, conn, start)

    for conn in conns:
        await conn.stream.aclose()
    elapsed = last_answer - first_send
    result: dict[str, Any] = {
        "mode": mode,
        "connections": n_conn,
        "requests": len(latencies),
        "seconds": round(elapsed, 4),
        "per_s": round(len(latencies) / elapsed, 1) if elapsed > 0 else None,
        "latency": latency_ms(latencies),
        "outcomes": dict(outcomes),
        "connect_retries": _RETRIES[0],
    }
    if mode == "storm":
        result["winners"] = [i for i, outcome in answers if outcome == "claimed"]
    return result


if __name__ == "__main__":
    print(json.dumps(trio.run(main, json.loads(sys.argv[1]))))
