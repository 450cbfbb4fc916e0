"""Real HTTP on 127.0.0.1: the daemon's HTTP service end to end (REST fanout → signed SMS
and voice webhooks → claim), sockets handed over by systemd, and the graceful drain.

Real sockets, so these run on `loopback_clock` (virtual time that only jumps once all I/O
has been idle for 50 ms) and bound every wait with `fail_after`.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from shiftd.clock import Clock
from shiftd.config import Config, HttpConfig
from shiftd.daemon import run_daemon
from shiftd.engine import Engine
from shiftd.http.server import (
    HttpServer,
    HttpStartError,
    bind,
    effective_backlog,
    somaxconn,
    systemd_sockets,
)
from shiftd.http.settings import HttpSettings
from shiftd.http.signature import compute_signature
from shiftd.testing.engine import EPOCH, FakeProvider, caregiver, make_config, shift

TOKEN = "real-http-api-token"
TWILIO_TOKEN = "real-http-twilio-token"
PUBLIC_URL = "https://shifts.example.org"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="shiftd-http-", dir="/tmp"))  # short: socket paths
    yield path
    shutil.rmtree(path, ignore_errors=True)


def daemon_config(workdir: Path) -> Config:
    (workdir / "api-token").write_text(TOKEN + "\n")
    (workdir / "twilio-token").write_text(TWILIO_TOKEN + "\n")
    return Config.model_validate(
        {
            "state_dir": workdir / "state",
            "agency_name": "Sunrise Care",
            "escalation": {"delay": "1m"},
            "notifier": {"kind": "record", "path": workdir / "messages.jsonl"},
            "shutdown": {"grace": "5s"},
            "http": {
                "listen": "127.0.0.1:0",
                "public_url": PUBLIC_URL,
                "token_file": workdir / "api-token",
                "twilio_auth_token_file": workdir / "twilio-token",
            },
        }
    )


def roster() -> dict[str, Any]:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    return {
        "caregivers": [
            {"id": f"rn-{n}", "name": f"Nurse {n}", "role": "RN", "phone": f"+1555030000{n}"}
            for n in range(1, 4)
        ],
        "shifts": [
            {
                "id": "day-rn",
                "role_required": "RN",
                "start_time": start.isoformat(),
                "end_time": (start + timedelta(hours=8)).isoformat(),
            }
        ],
    }


def signed(path: str, form: dict[str, str], token: str = TWILIO_TOKEN) -> dict[str, Any]:
    return {
        "data": form,
        "headers": {"X-Twilio-Signature": compute_signature(token, PUBLIC_URL + path, form)},
    }


def recorded(workdir: Path) -> list[dict[str, Any]]:
    path = workdir / "messages.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


async def wait_until(condition: Callable[[], Any], what: str) -> Any:
    with trio.fail_after(30):
        while not (value := condition()):  # noqa: ASYNC110  (polls a file the daemon appends to)
            await trio.sleep(0.05)
        return value
    raise AssertionError(what)  # pragma: no cover


async def start_daemon(nursery: trio.Nursery, config: Config) -> tuple[Engine, str]:
    sock = bind("127.0.0.1:0")
    port = sock.getsockname()[1]
    engine = await nursery.start(partial(run_daemon, config, None, http_sockets=[sock]))
    return engine, f"http://127.0.0.1:{port}"


def refuses_connections(base_url: str) -> bool:
    host, port = base_url.removeprefix("http://").split(":")
    with socket.socket() as probe:
        return probe.connect_ex((host, int(port))) == errno.ECONNREFUSED


# ---- the daemon, end to end ---------------------------------------------------------------------


async def test_fanout_over_rest_then_a_signed_sms_yes_claims_the_shift(
    workdir: Path, loopback_clock: trio.testing.MockClock
) -> None:
    config = daemon_config(workdir)
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            engine, base = await start_daemon(nursery, config)
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                assert (await client.get("/ready")).json()["status"] == "ready"
                assert (await client.post("/roster", json=roster())).status_code == 401
                imported = await client.post("/roster", json=roster(), headers=AUTH)
                assert imported.json()["shifts"]["created"] == 1
                fanout = await client.post("/shifts/day-rn/fanout", headers=AUTH)
                assert fanout.json()["offered"] == 3
                await wait_until(lambda: len(recorded(workdir)) == 3, "three offers recorded")

                form = {"From": "+15550300002", "Body": "yes", "MessageSid": "SM-real-1"}
                path = "/webhooks/twilio/sms"
                forged = await client.post(path, **signed(path, form, token="wrong"))
                assert forged.status_code == 403
                assert (await engine.shift("day-rn")).state == "offering"
                answer = await client.post(path, **signed(path, form))
                assert answer.status_code == 200
                assert answer.text.endswith("<Response/>")

                shown = (await client.get("/shifts/day-rn", headers=AUTH)).json()["shift"]
                assert (shown["state"], shown["claimed_by"]) == ("filled", "rn-2")
                lines = await wait_until(
                    lambda: r if len(r := recorded(workdir)) == 6 else None,
                    "confirmation and filled texts",
                )
                purposes = sorted((m["caregiver_id"], m["purpose"]) for m in lines[3:])
                assert purposes == [("rn-1", "filled"), ("rn-2", "confirm"), ("rn-3", "filled")]
            os.kill(os.getpid(), signal.SIGTERM)  # the daemon's receiver takes it: a clean stop
    assert refuses_connections(base)


async def test_the_voice_path_over_real_http_claims_with_digit_1(
    workdir: Path, loopback_clock: trio.testing.MockClock
) -> None:
    config = daemon_config(workdir)
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            engine, base = await start_daemon(nursery, config)
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                await client.post("/roster", json=roster(), headers=AUTH)
                await client.post("/shifts/day-rn/fanout", headers=AUTH)
                await trio.sleep(61)  # the escalation delay: calls go out
                calls = await wait_until(
                    lambda: [m for m in recorded(workdir) if m["channel"] == "voice"] or None,
                    "calls placed",
                )
                call = next(c for c in calls if c["caregiver_id"] == "rn-3")
                # The record notifier's id for the call is what a provider's CallSid would be.
                call_sid = f"rec-{call['outbox_id']}"
                assert await engine.store.outbox_by_provider_id(call_sid) is not None

                voice = "/webhooks/twilio/voice"
                script = await client.post(voice, **signed(voice, {"CallSid": call_sid}))
                assert script.status_code == 200
                assert f'action="{PUBLIC_URL}/webhooks/twilio/voice/gather"' in script.text
                assert "Press 1 to accept" in script.text

                gather = "/webhooks/twilio/voice/gather"
                pressed = await client.post(
                    gather, **signed(gather, {"CallSid": call_sid, "Digits": "1"})
                )
                assert "The shift is yours" in pressed.text
                shift_row = await engine.shift("day-rn")
                assert (shift_row.state, shift_row.claimed_by) == ("filled", "rn-3")
            nursery.cancel_scope.cancel()


# ---- sockets ------------------------------------------------------------------------------------


@pytest.fixture
async def engine(tmp_path: Path, loopback_clock: trio.testing.MockClock) -> AsyncIterator[Engine]:
    async with trio.open_nursery() as nursery:
        engine = Engine(make_config(tmp_path), clock=Clock(EPOCH), notifier=FakeProvider())
        await nursery.start(engine.run)
        await engine.import_roster([caregiver(1)], [shift()])
        yield engine
        nursery.cancel_scope.cancel()


def settings() -> HttpSettings:
    return HttpSettings(api_token=TOKEN, twilio_tokens=(TWILIO_TOKEN,), public_url=PUBLIC_URL)


def free_fds(count: int) -> int:
    """The first of `count` consecutive unused descriptor numbers (above the usual ones)."""
    start = 200
    while True:
        taken = False
        for fd in range(start, start + count):
            try:
                os.fstat(fd)
                taken = True
            except OSError:
                pass
        if not taken:
            return start
        start += count


async def test_http_serves_the_socket_systemd_named_http(
    engine: Engine, loopback_clock: trio.testing.MockClock
) -> None:
    first = free_fds(2)
    other, http = socket.socket(), bind("127.0.0.1:0")
    other.bind(("127.0.0.1", 0))
    other.listen()
    os.dup2(other.fileno(), first)
    os.dup2(http.fileno(), first + 1)
    port = http.getsockname()[1]
    other.close()
    http.close()
    environ = {
        "LISTEN_PID": str(os.getpid()),
        "LISTEN_FDS": "2",
        "LISTEN_FDNAMES": "metrics:http",
    }
    try:
        handed = systemd_sockets(environ, start_fd=first)
        assert [s.fileno() for s in handed] == [first + 1]
        server = HttpServer(engine, HttpConfig(), settings=settings(), sockets=handed)
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                await nursery.start(server.run)
                async with httpx.AsyncClient() as client:
                    response = await client.get(f"http://127.0.0.1:{port}/health")
                assert response.json()["status"] == "ok"
                server.shutdown()
    finally:
        os.close(first)


BURST = 300


async def open_connection(port: int, streams: list[trio.SocketStream]) -> None:
    streams.append(await trio.open_tcp_stream("127.0.0.1", port))


async def ask_health(stream: trio.SocketStream, answers: list[str]) -> None:
    """GET /health on `stream`; what came back: the status code, `closed` (the server had
    closed the connection) or `reset`."""
    request = b"GET /health HTTP/1.1\r\nHost: shiftd\r\nConnection: close\r\n\r\n"
    received = b""
    try:
        await stream.send_all(request)
        while chunk := await stream.receive_some(4096):
            received += chunk
    except trio.BrokenResourceError:
        answers.append("reset")
        return
    finally:
        await stream.aclose()
    answers.append(received.split(b" ", 2)[1].decode() if received else "closed")


async def test_a_burst_of_connections_opened_before_any_request_is_all_answered(
    engine: Engine, loopback_clock: trio.testing.MockClock
) -> None:
    """Clients that connect all at once and only then send their requests (a storm of
    replies) are each answered: the default listen backlog queues the whole burst, and the
    default keep-alive timeout closes none of them while it waits for its first request."""
    server = HttpServer(engine, HttpConfig(listen="127.0.0.1:0"), settings=settings())
    streams: list[trio.SocketStream] = []
    answers: list[str] = []
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            port = int(server.addresses[0].rpartition(":")[2])
            async with trio.open_nursery() as burst:
                for _ in range(BURST):
                    burst.start_soon(open_connection, port, streams)
            async with trio.open_nursery() as requests:
                for stream in streams:
                    requests.start_soon(ask_health, stream, answers)
            server.shutdown()
    assert answers == ["200"] * BURST


def test_the_effective_backlog_is_the_configured_one_capped_by_somaxconn(tmp_path: Path) -> None:
    (tmp_path / "somaxconn").write_text("128\n")
    assert somaxconn(tmp_path / "somaxconn") == 128
    assert somaxconn(tmp_path / "missing") is None
    assert effective_backlog(4096, 128) == 128
    assert effective_backlog(1024, 4096) == 1024
    assert effective_backlog(4096, None) == 4096


def test_systemd_sockets_ignores_descriptors_meant_for_another_process() -> None:
    environ = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1"}
    assert systemd_sockets(environ) == []
    assert systemd_sockets({}) == []


def test_systemd_sockets_refuses_a_descriptor_that_is_not_listening() -> None:
    with socket.socket() as unbound:
        environ = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "1"}
        with pytest.raises(HttpStartError, match="not a listening stream socket"):
            systemd_sockets(environ, start_fd=unbound.fileno())
        assert unbound.fileno() >= 0  # left open: not ours to close


def test_an_address_in_use_is_a_start_error_naming_it() -> None:
    with bind("127.0.0.1:0") as taken:
        port = taken.getsockname()[1]
        with pytest.raises(HttpStartError, match=f"127.0.0.1:{port}: cannot bind"):
            bind(f"127.0.0.1:{port}")


async def test_stopping_drains_requests_in_flight_and_refuses_new_ones(
    engine: Engine, loopback_clock: trio.testing.MockClock
) -> None:
    sock = bind("127.0.0.1:0")
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = HttpServer(engine, HttpConfig(), settings=settings(), sockets=[sock], grace=30)
    server.set_ready()
    entered = trio.Event()

    @server.app.get("/slow")
    async def slow() -> dict[str, str]:
        entered.set()
        await trio.sleep(5)
        return {"done": "yes"}

    answers: list[httpx.Response] = []

    async def slow_request(client: httpx.AsyncClient) -> None:
        answers.append(await client.get(f"{base}/slow", headers=AUTH))

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            await nursery.start(server.run)
            async with httpx.AsyncClient(timeout=20) as client, httpx.AsyncClient() as other:
                assert (await other.get(f"{base}/ready")).status_code == 200
                nursery.start_soon(slow_request, client)
                await entered.wait()
                server.shutdown()
                await trio.sleep(0.5)
                assert not server.stopped.is_set()  # still draining the slow request
                assert refuses_connections(base)
                await server.stopped.wait()
    assert [r.status_code for r in answers] == [200]
    assert answers[0].json() == {"done": "yes"}
