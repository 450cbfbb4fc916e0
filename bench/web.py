"""HTTP: shiftd's inbound SMS webhook over keep-alive connections, and the ceiling of the
server library it runs on, measured in the same run with the same client (`bench.httpgen`).

- `http_ceiling` (a ceiling): hypercorn's trio worker, configured as shiftd configures it
  (`shiftd.http.server`), on 127.0.0.1, serving the very same signed form POSTs to
  1. a bare ASGI app that reads the body and answers a constant TwiML document;
  2. a minimal FastAPI app with one route doing the same;
  3. shiftd's own app (`create_app`: its middleware, error handlers, signature check, form
     parsing, the webhook's log line and metrics) over an engine whose `inbound` answers at
     once: what shiftd's HTTP layer costs without the engine.
- `http_storm` (shiftd): a claim storm over HTTP: `claim_caregivers` connections opened at
  once, then a signed YES on each `storm_hold_seconds` later, with the listener shiftd had
  before (backlog 128, keep-alive 5 s) and with today's defaults; transport errors, listen
  queue overflows, winners, latency.
- `http_inbound` (shiftd): the real `Engine` and `HttpServer` (the daemon's path: settings
  read from the configuration, signatures checked with a test auth token), caregivers each
  holding one open offer (bulk-seeded), each message a signed decline ("NO") with a unique
  MessageSid: the actor records the decline and queues a reply, the inbound message is
  logged, all committed before the webhook answers; the sender then sends the replies.
  In the same run, the comparator: the same requests to `bench.inmemory` (FastAPI on
  uvicorn, one dict lookup per webhook, nothing durable: the shape of the in-memory
  solutions), in a process of its own on 127.0.0.1, while shiftd's engine idles.

Every figure is for `http_seconds` of closed-loop load (one request in flight per
connection) on each of `http_connections` connections.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import trio
import trio.testing
from fastapi import FastAPI, Request, Response
from hypercorn.config import Sockets
from hypercorn.trio.run import worker_serve
from hypercorn.utils import wrap_app

from shiftd.config import HttpConfig
from shiftd.http.server import (
    HttpServer,
    _hypercorn_config,
    _without_lifespan,
    bind,
    somaxconn,
)
from shiftd.http.settings import HttpSettings
from shiftd.inbound.router import InboundResult
from shiftd.metrics import Metrics
from shiftd.models import Outcome
from shiftd.paths import TWILIO_SMS

from .common import (
    InstantProvider,
    Size,
    bench_config,
    measured,
    run_loadgen,
    running_engine,
    workdir,
)
from .scenarios import TimedStore, _caregivers, _shift
from .seed import seed_database
from .stats import GcWatch, raise_fd_limit

TWILIO_TOKEN = "bench-twilio-auth-token"
PUBLIC_URL = "https://shifts.example.org"
OUR_NUMBER = "+15550100001"
TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
#: Requests signed in advance for each run: `http_seconds` at this rate. A run that uses them
#: all ends early and says so (`exhausted`).
MAX_RATE = 5_000
_GUARD = 600.0


# ---- the load generator ----------------------------------------------------------------------


def _spec(targets: dict[str, int], size: Size) -> dict[str, Any]:
    """`size.http_seconds` of load on each target (name → port) on each of
    `size.http_connection_counts` connections in turn. Each run on a target has caregivers
    of its own (pools from 0 on) and MessageSids of its own (tagged `<name><connections>x`)."""
    pool = int(size.http_seconds * MAX_RATE)
    runs = []
    for name, port in targets.items():
        for k, n in enumerate(size.http_connection_counts):
            runs.append(
                {"target": name, "port": port, "connections": n, "seconds": size.http_seconds}
                | {"first": k * pool, "count": pool, "tag": f"{name}{n}x"}
            )
    return {
        "host": "127.0.0.1",
        "server_pid": os.getpid(),
        "request": {
            "path": TWILIO_SMS,
            "public_url": PUBLIC_URL,
            "token": TWILIO_TOKEN,
            "body": "NO",
            "to": OUR_NUMBER,
        },
        "warm_path": "/health",
        "runs": runs,
    }


async def _drive(targets: dict[str, int], size: Size) -> dict[str, dict[str, Any]]:
    """Every run of `_spec` from one load generator process; results by target, then by
    `c<connections>`."""
    result = await run_loadgen(_spec(targets, size), module="bench.httpgen")
    out: dict[str, dict[str, Any]] = {name: {} for name in targets}
    for run in result["runs"]:
        out[run.pop("target")][f"c{run['connections']}"] = run
    return out


# ---- the ceiling ------------------------------------------------------------------------------


async def _bare_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the request's body, answer the constant empty TwiML document."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/xml; charset=utf-8"),
                (b"content-length", str(len(TWIML)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": TWIML})


def _minimal_fastapi() -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post(TWILIO_SMS)
    async def sms(request: Request) -> Response:
        await request.body()
        return Response(TWIML, media_type="text/xml")

    return app


class _InstantEngine:
    """What shiftd's app needs of an engine, answering every inbound message at once."""

    def __init__(self) -> None:
        self.metrics = Metrics(process=False)

    async def inbound(self, *args: Any, **kwargs: Any) -> InboundResult:
        return InboundResult(Outcome.DECLINED, "sh-0000001", "cg-0000001")


def _listener() -> socket.socket:
    return bind("127.0.0.1:0", backlog=1024)


async def _serve_asgi(app: Any, sock: socket.socket, *, task_status: Any) -> None:
    """`app` on `sock` exactly as `HttpServer.run` serves shiftd's app."""
    sock.setblocking(False)
    hc = _hypercorn_config(HttpSettings(), 10.0)
    await worker_serve(
        wrap_app(_without_lifespan(app), hc.wsgi_max_body_size, "asgi"),
        hc,
        sockets=Sockets(secure_sockets=[], insecure_sockets=[sock], quic_sockets=[]),
        task_status=task_status,
    )


async def http_ceiling(size: Size) -> dict[str, Any]:
    """Hypercorn's trio worker on a trivial route, FastAPI on one, and shiftd's app over an
    engine that answers at once, each on its own port, measured one after the other (the
    others idle): the same signed POSTs from the same client as `http_inbound`."""
    raise_fd_limit()
    settings = HttpSettings(twilio_tokens=(TWILIO_TOKEN,), public_url=PUBLIC_URL)
    socks = {name: _listener() for name in ("bare_asgi", "fastapi", "webhook_stack")}
    stack = HttpServer(
        _InstantEngine(),  # type: ignore[arg-type]
        HttpConfig(),
        settings=settings,
        sockets=[socks["webhook_stack"]],
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(_serve_asgi, _bare_asgi, socks["bare_asgi"]))
        await nursery.start(partial(_serve_asgi, _minimal_fastapi(), socks["fastapi"]))
        await nursery.start(stack.run)
        stack.set_ready()
        result = await _drive({name: s.getsockname()[1] for name, s in socks.items()}, size)
        stack.shutdown()
        nursery.cancel_scope.cancel()
    for sock in socks.values():
        sock.close()
    return result


# ---- shiftd -----------------------------------------------------------------------------------


def _outcomes(db: Path, tag: str) -> dict[str, int]:
    """What the store durably logged for the run `tag` (its MessageSids), by outcome."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT outcome, count(*) FROM inbound WHERE provider_id LIKE ? GROUP BY outcome",
            (f"SM{tag}%",),
        ).fetchall()
    finally:
        conn.close()
    return {outcome: n for outcome, n in rows}


@contextmanager
def _inmemory_server() -> Iterator[tuple[int, int] | None]:
    """`bench.inmemory` (FastAPI on uvicorn) serving a listener of ours, as (port, pid);
    None where uvicorn is not installed (it is a `[dev]` dependency)."""
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        yield None
        return
    sock = _listener()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.inmemory", str(sock.fileno())],
        pass_fds=[sock.fileno()],
        stdout=subprocess.DEVNULL,
    )
    try:
        yield sock.getsockname()[1], proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        sock.close()


async def _drive_inmemory(size: Size) -> dict[str, Any] | None:
    """The same load as `http_inbound` on the comparator; its runs by `c<connections>`."""
    with _inmemory_server() as server:
        if server is None:
            return None
        port, pid = server
        spec = _spec({"inmemory": port}, size)
        for run in spec["runs"]:
            run["server_pid"] = pid  # its CPU, not ours
        result = await run_loadgen(spec, module="bench.httpgen")
    out = {f"c{run['connections']}": run for run in result["runs"]}
    for run in out.values():
        run.pop("target", None)
    return out


async def http_inbound(size: Size) -> dict[str, Any]:
    """Signed SMS declines to the real daemon's HTTP listener (see the module docstring):
    durable messages/s and latency on each of `http_connections` keep-alive connections."""
    raise_fd_limit()
    per_shift = 40
    pool = int(size.http_seconds * MAX_RATE)
    wanted = pool * len(size.http_connection_counts)
    shifts = (wanted + per_shift - 1) // per_shift
    with workdir("http") as d:
        (d / "state").mkdir()
        token = d / "twilio-token"
        token.write_text(TWILIO_TOKEN + "\n")
        config = bench_config(
            d / "state",
            http={
                "listen": "127.0.0.1:0",
                "public_url": PUBLIC_URL,
                "twilio_auth_token_file": token,
            },
        )
        db = d / "state" / "shiftd.sqlite3"
        # In a thread of this process, not a process of its own as `seed` does: no memory is
        # measured here, and the smoke test saves a Python start-up.
        seeded = await trio.to_thread.run_sync(
            partial(seed_database, db, shifts=shifts, offers_per_shift=per_shift, stride=per_shift)
        )
        provider = InstantProvider()
        store = TimedStore(db)
        async with running_engine(config, provider, store=store) as (engine, _):
            assert config.http is not None
            sock = _listener()
            server = HttpServer(engine, config.http, sockets=[sock])
            async with trio.open_nursery() as front:
                await front.start(server.run)
                server.set_ready()
                await trio.testing.wait_all_tasks_blocked()
                commits_before = len(store.batches)
                sent_before = provider.count
                cpu = time.process_time()
                with GcWatch() as gcw, measured():
                    runs = (await _drive({"c": sock.getsockname()[1]}, size))["c"]
                cpu = time.process_time() - cpu
                replies_during = provider.count - sent_before
                server.shutdown()
            batches = store.batches[commits_before:]
            requests = sum(run["requests"] for run in runs.values())
            provider.expect = sent_before + requests
            if provider.count >= provider.expect:
                provider.done.set()
            drain_started = time.perf_counter()
            with trio.move_on_after(_GUARD):
                await provider.done.wait()
            drained = time.perf_counter() - drain_started
            for run in runs.values():
                run["stored_outcomes"] = _outcomes(db, run["tag"])
            inmemory = await _drive_inmemory(size)  # once shiftd's replies are all out
            return {
                "seeded": {"shifts": seeded.shifts, "caregivers": seeded.caregivers},
                **runs,
                "server_cpu_us_per_message": round(cpu / requests * 1e6, 1) if requests else None,
                "replies_sent_during_run": replies_during,
                "replies_drained_after_s": round(drained, 3),
                "commits_during_run": len(batches),
                "mean_batch": round(sum(batches) / len(batches), 2) if batches else None,
                "gc_during_run": gcw.summary(),
                "inmemory_uvicorn": inmemory,
            }


# ---- a claim storm over HTTP ------------------------------------------------------------------

#: What `http.backlog` and `http.keep_alive_timeout` were before they were configuration.
FORMER_LISTENER = {"backlog": 128, "keep_alive_timeout": "5s"}


async def _storm(
    size: Size, listener: dict[str, Any], tag: str, *, profiled: bool = False
) -> dict[str, Any]:
    """One claim storm over HTTP on a fresh daemon whose `http` section adds `listener`."""
    n = size.claim_caregivers
    with workdir("storm") as d:
        (d / "state").mkdir()
        token = d / "twilio-token"
        token.write_text(TWILIO_TOKEN + "\n")
        config = bench_config(
            d / "state",
            http={
                "listen": "127.0.0.1:0",
                "public_url": PUBLIC_URL,
                "twilio_auth_token_file": token,
                **listener,
            },
        )
        provider = InstantProvider(expect=n)
        async with running_engine(config, provider) as (engine, _):
            assert config.http is not None
            await engine.import_roster(_caregivers(n), [_shift("sh-storm")])
            await engine.fanout("sh-storm")
            with trio.move_on_after(_GUARD):
                await provider.done.wait()  # every offer is out before anyone answers
            server = HttpServer(engine, config.http)
            async with trio.open_nursery() as front:
                await front.start(server.run)
                server.set_ready()
                port = int(server.addresses[0].rpartition(":")[2])
                spec = _storm_spec(size, port, tag)
                with measured(profiled):
                    [run] = (await run_loadgen(spec, module="bench.httpgen"))["runs"]
                server.shutdown()
            row = await engine.shift("sh-storm")
            outcomes = _outcomes(Path(config.state_dir) / "shiftd.sqlite3", tag)
            return {
                **run,
                "listener": listener or "defaults",
                "stored_outcomes": outcomes,
                "winners": outcomes.get(Outcome.CLAIMED.value, 0),
                "stored_winner": row.claimed_by,
            }


def _storm_spec(size: Size, port: int, tag: str) -> dict[str, Any]:
    """The load generator's spec for one storm: `claim_caregivers` signed YES, one per
    connection, to `port`."""
    n = size.claim_caregivers
    spec = _spec({"storm": port}, size)
    spec["request"] = spec["request"] | {"body": "YES"}
    spec["runs"] = [
        {"mode": "storm", "port": port, "connections": n, "connect_seconds": 60.0}
        | {"hold_seconds": size.storm_hold_seconds}
        | {"first": 0, "count": n, "tag": tag}
    ]
    return spec


async def _storm_ceiling(size: Size) -> dict[str, Any]:
    """The same storm on hypercorn's trio worker answering the trivial route, on a listener
    with shiftd's defaults (`http.backlog`, `http.keep_alive_timeout`)."""
    sock = bind("127.0.0.1:0", backlog=HttpConfig().backlog)
    async with trio.open_nursery() as nursery:
        await nursery.start(partial(_serve_asgi, _bare_asgi, sock))
        spec = _storm_spec(size, sock.getsockname()[1], "ceiling")
        [run] = (await run_loadgen(spec, module="bench.httpgen"))["runs"]
        nursery.cancel_scope.cancel()
    sock.close()
    return run


async def http_storm(size: Size) -> dict[str, Any]:
    """`claim_caregivers` caregivers, each on a connection of her own opened at the same
    instant as all the others, answer YES to the same shift `storm_hold_seconds` later:
    first with the listener shiftd had before (`FORMER_LISTENER`), then with the defaults;
    then the same storm on hypercorn's trivial route (the ceiling). Transport errors (a
    connection refused, reset or closed before its answer) for each, and the kernel's
    listen-queue overflows while the connections opened."""
    raise_fd_limit()
    return {
        "somaxconn": somaxconn(),
        "before": await _storm(size, FORMER_LISTENER, "before"),
        "after": await _storm(size, {}, "after", profiled=True),
        "hypercorn_trivial": await _storm_ceiling(size),
    }
