"""One deadline for the whole stop: taken once (at the signal, or by `engine.stop()`), and
every layer that stops — the control requests in hand, the engine's layers, a send the
sender shields — ends by it, whatever is still in hand."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.lowlevel
import trio.testing

from shiftd.clock import Clock
from shiftd.commands import COMMANDS, Command, NoArgs
from shiftd.control.server import serve_control
from shiftd.engine import Engine
from shiftd.shutdown import Shutdown
from shiftd.store.sqlite import SqliteStore
from shiftd.testing.control import connect, line
from shiftd.testing.engine import EPOCH, FakeProvider, caregiver, make_config, shift

GRACE = 5.0


def _engine(tmp_path: Path, provider: FakeProvider) -> Engine:
    # The sender would wait a minute for a provider; the stop grants five seconds.
    config = make_config(tmp_path, shutdown={"grace": f"{GRACE:g}s"}, sender={"timeout": "60s"})
    return Engine(config, clock=Clock(EPOCH), notifier=provider)


@asynccontextmanager
async def _texts_in_flight(tmp_path: Path) -> AsyncIterator[Engine]:
    """A running engine with three offers handed to a provider that does not answer; the
    block ends once the engine has stopped (the test stops it)."""
    provider = FakeProvider(latency=3600)
    engine = _engine(tmp_path, provider)
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        await engine.import_roster([caregiver(n) for n in range(1, 4)], [shift()])
        await engine.fanout("shift-1")
        await trio.testing.wait_all_tasks_blocked()
        assert not provider.sent  # handed over, and the provider does not answer
        yield engine


async def test_a_stop_with_a_provider_that_hangs_ends_within_grace(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with _texts_in_flight(tmp_path) as engine:
        stopped_at = trio.current_time()
        engine.stop()
    assert trio.current_time() - stopped_at <= GRACE


async def test_a_send_cut_off_by_the_stop_is_recorded_as_may_have_been_sent(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with _texts_in_flight(tmp_path) as engine:
        engine.stop()
    with contextlib.closing(sqlite3.connect(tmp_path / "state" / "shiftd.sqlite3")) as db:
        offers = db.execute("SELECT state, error FROM outbox WHERE purpose = 'offer'").fetchall()
    assert len(offers) == 3
    assert all(state == "failed" and "may have been sent" in error for state, error in offers)


async def test_the_engine_stops_by_a_deadline_taken_before_its_stop_began(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    async with _texts_in_flight(tmp_path) as engine:
        signalled_at = trio.current_time()
        engine.shutdown.begin(GRACE)  # the daemon, at SIGTERM
        await trio.sleep(3)  # HTTP draining, the control socket answering what it holds
        engine.stop()
    assert trio.current_time() - signalled_at <= GRACE


class _StoreThatNeverCommitsATransition(SqliteStore):
    """Once `hang` is set, a shift's transition waits for its commit forever."""

    hang = False

    async def persist(self, *args: Any, **kwargs: Any) -> Any:
        if self.hang:
            await trio.sleep_forever()
        return await super().persist(*args, **kwargs)


async def _ask_ignoring_the_answer(ask: Callable[[str], Awaitable[object]], shift_id: str) -> None:
    with contextlib.suppress(Exception):
        await ask(shift_id)


async def test_a_stop_with_an_actor_in_the_middle_of_a_transition_ends_within_grace(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    config = make_config(tmp_path, shutdown={"grace": f"{GRACE:g}s"})
    (tmp_path / "state").mkdir()
    store = _StoreThatNeverCommitsATransition(tmp_path / "state" / "shiftd.sqlite3")
    engine = Engine(config, clock=Clock(EPOCH), notifier=FakeProvider(), store=store)
    async with trio.open_nursery() as requests:
        async with trio.open_nursery() as nursery:
            await nursery.start(engine.run)
            await engine.import_roster([caregiver(1)], [shift()])
            store.hang = True
            requests.start_soon(_ask_ignoring_the_answer, engine.fanout, "shift-1")
            await trio.testing.wait_all_tasks_blocked()
            stopped_at = trio.current_time()
            engine.stop()
        stopped_after = trio.current_time() - stopped_at
        requests.cancel_scope.cancel()
    assert stopped_after <= GRACE


@pytest.fixture
def sock_path() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="shd-", dir="/tmp"))  # short: sun_path
    yield directory / "control.sock"
    shutil.rmtree(directory, ignore_errors=True)


async def test_a_control_request_in_hand_ends_by_the_stop_deadline_not_a_grace_of_its_own(
    tmp_path: Path,
    sock_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    autojump_clock: trio.testing.MockClock,
) -> None:
    handling = trio.Event()

    async def hang(engine: Any, args: NoArgs) -> dict[str, Any]:
        handling.set()
        await trio.sleep_forever()
        raise AssertionError("unreachable")

    monkeypatch.setitem(COMMANDS, "test.hang", Command(NoArgs, hang))
    engine = _engine(tmp_path, FakeProvider())
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        async with trio.open_nursery() as front:
            await front.start(serve_control, sock_path, engine)  # its own grace: 10 s
            client = await connect(sock_path)
            await client.send(line({"id": 1, "cmd": "test.hang"}))
            await handling.wait()
            signalled_at = trio.current_time()
            engine.shutdown.begin(1.0)
            front.cancel_scope.cancel()
        engine.stop()
    assert trio.current_time() - signalled_at <= 1.0
    assert await client.read() is None  # cut off unanswered: the connection closes


async def test_the_deadline_is_taken_once(autojump_clock: trio.testing.MockClock) -> None:
    shutdown = Shutdown()
    first = shutdown.begin(5)
    await trio.lowlevel.checkpoint()
    assert shutdown.begin(30) == first


async def test_a_bounded_scope_ends_by_a_deadline_taken_while_it_runs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    shutdown = Shutdown()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_begin_later, shutdown)
        started = trio.current_time()
        with trio.CancelScope(shield=True), shutdown.bounded() as bounded:
            await trio.sleep(3600)
    assert bounded.cancelled_caught
    assert trio.current_time() - started == pytest.approx(2 + 5)


async def _begin_later(shutdown: Shutdown) -> None:
    await trio.sleep(2)
    shutdown.begin(5)
