"""The HTTP load generator: a separate Trio process posting Twilio-signed SMS webhooks over
keep-alive HTTP/1.1 connections on 127.0.0.1, to shiftd or to a ceiling server alike.

`python -m bench.httpgen SPEC` prints one JSON object with what it measured. SPEC:

- `host`: where to connect (loopback only); each run says its `port`;
- `request`: `{"path": "/webhooks/twilio/sms", "public_url": "https://…", "token": "…",
  "body": "NO", "to": "+1555…"}`: request i of a run is a form POST to `path` from phone
  `first + i` with MessageSid `SM<tag><i>` (unique in the whole run), signed as Twilio signs
  it (`X-Twilio-Signature` over `public_url` + `path` + the sorted parameters);
- `warm_path`: a GET every connection makes once before the clock starts (default
  `/health`);
- `server_pid`: the server's process (a run may name its own), whose CPU time (from
  `/proc/<pid>/stat`) over each run's measured window is reported
  (`server_cpu_us_per_request`, and `server_cpu_share`: near 1, the server, which has one
  thread, was the bottleneck);
- `runs`: `[{"port": 8080, "connections": 8, "seconds": 5.0, "first": 0, "count": 20000,
  "tag": "a"}, …]`, one after the other (other keys are passed through to the result).
  Each run opens its connections and warms them up, then for `seconds` every connection
  sends its next request when the previous one is answered (closed loop, one request in
  flight per connection, not pipelined). A run also ends when its `count` requests are used
  up (`exhausted`: the figures are then valid, only shorter).
  A run with `"mode": "storm"` instead opens its `connections` all at once, waits until
  every attempt has settled (`connect_seconds` at most) and `hold_seconds` have passed,
  then sends one request on each at the same instant, and counts the transport errors
  (refused, reset, closed unanswered) and the kernel's listen-queue overflows meanwhile.

Requests are built and signed before the clock starts, so the client spends its time on the
wire. Latency is from sending a request (or, when the server closed the connection after
its previous answer, from reconnecting) to reading the whole answer. Hypercorn closes a
keep-alive connection after 1,000 requests (`Connection: close`); the client reconnects, as
a real client would, and counts the reconnections. `client_cpu_share` is the CPU this
process used over the run's wall time: near 1, the client was the bottleneck.
"""

from __future__ import annotations

import errno
import json
import os
import sys
import time
from collections import Counter
from typing import Any
from urllib.parse import urlencode

import trio
import trio.testing

from shiftd.http.signature import compute_signature

from .stats import latency_ms, phone_of, raise_fd_limit


class _Conn:
    """One HTTP/1.1 connection: send a request, read one answer (Content-Length bodies)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.stream: trio.SocketStream | None = None
        self.buffer = bytearray()
        self.reconnects = 0

    async def connect(self) -> None:
        self.stream = await trio.open_tcp_stream(self.host, self.port)
        self.buffer.clear()

    async def close(self) -> None:
        if self.stream is not None:
            await self.stream.aclose()
            self.stream = None

    async def call(self, request: bytes) -> int:
        """Send `request`, read its answer; the status code. Reconnects first if the server
        closed the connection after the previous answer."""
        if self.stream is None:
            await self.connect()
            self.reconnects += 1
        assert self.stream is not None
        await self.stream.send_all(request)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            await self._more()
        head = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
        status = int(head[0].split(" ", 2)[1])
        length, close = 0, False
        for line in head[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
            elif name == "transfer-encoding":
                raise ConnectionError("chunked answers are not supported here")
        total = end + 4 + length
        while len(self.buffer) < total:
            await self._more()
        del self.buffer[:total]
        if close:
            await self.close()
        return status

    async def _more(self) -> None:
        assert self.stream is not None
        chunk = await self.stream.receive_some(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-answer")
        self.buffer += chunk


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process `pid` has used, from /proc (10 ms resolution)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _request(host: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def build_requests(spec: dict[str, Any], run: dict[str, Any]) -> list[bytes]:
    req = spec["request"]
    host = f"{spec['host']}:{run['port']}"
    url = req["public_url"].rstrip("/") + req["path"]
    out = []
    for i in range(run["count"]):
        form = {
            "MessageSid": f"SM{run['tag']}{i:010d}",
            "From": phone_of(run["first"] + i),
            "To": req["to"],
            "Body": req["body"],
        }
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": compute_signature(req["token"], url, form),
        }
        out.append(_request(host, req["path"], urlencode(form).encode(), headers))
    return out


async def one_run(spec: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    requests = build_requests(spec, run)
    n_conn = run["connections"]
    conns = [_Conn(spec["host"], run["port"]) for _ in range(n_conn)]
    warm = (
        f"GET {spec.get('warm_path', '/health')} HTTP/1.1\r\n"
        f"Host: {spec['host']}:{run['port']}\r\n\r\n"
    ).encode()
    warm_status: Counter[int] = Counter()

    async def warm_up(conn: _Conn) -> None:
        await conn.connect()
        warm_status[await conn.call(warm)] += 1

    async with trio.open_nursery() as nursery:
        for conn in conns:
            nursery.start_soon(warm_up, conn)
    for conn in conns:
        conn.reconnects = 0
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    next_index = iter(range(len(requests)))
    exhausted = False

    async def closed_loop(conn: _Conn) -> None:
        nonlocal last_answer, exhausted
        while time.perf_counter() < deadline:
            i = next(next_index, None)
            if i is None:
                exhausted = True
                return
            sent = time.perf_counter()
            statuses[await conn.call(requests[i])] += 1
            last_answer = time.perf_counter()
            latencies.append(last_answer - sent)

    server = run.get("server_pid", spec.get("server_pid"))
    server_cpu = cpu_seconds(server) if server else 0.0
    cpu = time.process_time()
    first_send = last_answer = time.perf_counter()
    deadline = first_send + run["seconds"]
    async with trio.open_nursery() as nursery:
        for conn in conns:
            nursery.start_soon(closed_loop, conn)
    cpu = time.process_time() - cpu
    server_cpu = cpu_seconds(server) - server_cpu if server else None
    reconnects = sum(conn.reconnects for conn in conns)
    for conn in conns:
        await conn.close()
    elapsed = last_answer - first_send
    n = len(latencies)
    return {
        **{k: v for k, v in run.items() if k not in ("count", "seconds")},
        "requests": len(latencies),
        "seconds": round(elapsed, 4),
        "per_s": round(len(latencies) / elapsed, 1) if elapsed > 0 else None,
        "latency": latency_ms(latencies),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "warm_up_statuses": {str(k): v for k, v in sorted(warm_status.items())},
        "reconnects": reconnects,
        "exhausted": exhausted,
        # Near 1: the client, not the server, was the bottleneck.
        "client_cpu_share": round(cpu / elapsed, 3) if elapsed > 0 else None,
        "server_cpu_us_per_request": (
            round(server_cpu / n * 1e6, 1) if server_cpu is not None and n else None
        ),
        "server_cpu_share": (
            round(server_cpu / elapsed, 3) if server_cpu is not None and elapsed > 0 else None
        ),
    }


async def storm_run(spec: dict[str, Any], run: dict[str, Any]) -> dict[str, Any]:
    """`connections` clients connect all at once and, once every connection attempt has
    settled (connected, or failed within `connect_seconds`) and `hold_seconds` have passed
    since the first, each sends its one request at the same instant: connections opened
    ahead of a storm of replies.
    Every connection that gets no HTTP answer is a transport error, counted by kind."""
    requests = build_requests(spec, run)
    n_conn = run["connections"]
    conns = [_Conn(spec["host"], run["port"]) for _ in range(n_conn)]
    errors: Counter[str] = Counter()
    connected: list[tuple[int, _Conn]] = []
    latencies: list[float] = []
    statuses: Counter[int] = Counter()

    async def open_one(index: int, conn: _Conn) -> None:
        try:
            with trio.fail_after(run["connect_seconds"]):
                await conn.connect()
        except trio.TooSlowError:
            errors["connect_timeout"] += 1
        except OSError as exc:
            errors[f"connect_{_error_name(exc)}"] += 1
        else:
            connected.append((index, conn))

    async def ask(index: int, conn: _Conn) -> None:
        await go.wait()
        sent = time.perf_counter()
        try:
            statuses[await conn.call(requests[index])] += 1
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            errors["reset"] += 1
        except ConnectionError:
            errors["closed_before_answer"] += 1
        else:
            latencies.append(time.perf_counter() - sent)
        finally:
            await conn.close()

    overflows = listen_overflows()
    opening = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for index, conn in enumerate(conns):
            nursery.start_soon(open_one, index, conn)
    connect_s = time.perf_counter() - opening
    overflows = listen_overflows() - overflows
    await trio.sleep_until(trio.current_time() + max(0.0, run["hold_seconds"] - connect_s))
    go = trio.Event()
    async with trio.open_nursery() as nursery:
        for index, conn in connected:
            nursery.start_soon(ask, index, conn)
        await trio.testing.wait_all_tasks_blocked()
        first_send = time.perf_counter()
        go.set()
    elapsed = time.perf_counter() - first_send
    return {
        **{k: v for k, v in run.items() if k not in ("count", "seconds")},
        "connect_all_s": round(connect_s, 3),
        "listen_overflows": overflows,
        "answered": len(latencies),
        "transport_errors": sum(errors.values()),
        "errors": dict(sorted(errors.items())),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "seconds": round(elapsed, 4),
        "latency": latency_ms(latencies),
    }


def listen_overflows() -> int:
    """The kernel's count of connections dropped because a listen queue was full
    (`TcpExt: ListenOverflows`, the whole machine's), 0 where it cannot be read."""
    try:
        with open("/proc/net/netstat") as f:
            lines = f.read().splitlines()
    except OSError:
        return 0
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            table = dict(zip(names.split()[1:], values.split()[1:], strict=False))
            return int(table.get("ListenOverflows", 0))
    return 0


def _error_name(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno, "error").lower() if exc.errno else "error"


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    raise_fd_limit()
    runs = []
    for run in spec["runs"]:
        measure = storm_run if run.get("mode") == "storm" else one_run
        runs.append(await measure(spec, run))
    return {"runs": runs}


if __name__ == "__main__":
    print(json.dumps(trio.run(main, json.loads(sys.argv[1]))))
