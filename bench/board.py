"""The coordinator's page (`shiftd.web`): how fast its pages answer with `board_shifts`
fanouts in progress, and whether `board_pages` open live pages slow the engine.

- `pages`: the real Engine and HttpServer over a database seeded with `board_shifts` shifts
  in state `offering` (10 offers each, their texts sent, the calls an hour away); a separate
  process signs in and loads the board (every one of those shifts on it), one shift's story
  and the 30-day stats `board_requests` times each over one keep-alive connection, while
  an event every 20 ms keeps the board from being served from its shared rendering.
- `throughput`: declines ("NO") over the control socket, closed loop on 20 connections
  (as `inbound`), first with no page open, then with `board_pages` live pages (server-sent
  event streams, held by a separate process) watching every change — each decline is three
  or four events for the pages. Durable declines/s in both runs, and their ratio.

The load generators run in their own processes, so the server's figures are not charged for
their work; on a 2-core machine they compete with it for the second core.
"""

from __future__ import annotations

import time
from typing import Any

import trio
import trio.testing

from shiftd.http.server import HttpServer
from shiftd.web.passwords import hash_password

from .common import InstantProvider, Size, bench_config, run_loadgen, running_engine, workdir
from .scenarios import TimedStore
from .seed import seed
from .stats import raise_fd_limit
from .web import _listener

NAME, PASSWORD = "bench", "bench password 1234"
_CONNECTIONS = 20


async def board(size: Size) -> dict[str, Any]:
    raise_fd_limit()
    n = size.board_shifts
    per_run = size.board_messages
    with workdir("board") as d:
        (d / "state").mkdir()
        config = bench_config(d / "state", http={"listen": "127.0.0.1:0"})
        db = d / "state" / "shiftd.sqlite3"
        seeded = await seed(db, shifts=n, offers_per_shift=10, stride=10)
        assert seeded.caregivers >= 2 * per_run, "not enough caregivers with one open offer"
        provider = InstantProvider()
        store = TimedStore(db)
        async with running_engine(config, provider, store=store, socket=True) as (engine, path):
            assert config.http is not None
            await engine.put_coordinator(NAME, hash_password(PASSWORD, n=2**12))
            sock = _listener()
            server = HttpServer(engine, config.http, sockets=[sock])
            feed = server.app.state.board.feed
            base = f"http://127.0.0.1:{sock.getsockname()[1]}"
            who = {"base": base, "name": NAME, "password": PASSWORD}
            async with trio.open_nursery() as front:
                await front.start(server.run)
                server.set_ready()
                await trio.testing.wait_all_tasks_blocked()

                # A change every 20 ms: each board load is rendered afresh (between changes,
                # boards at the same point of the feed share one rendering).
                async def tick(task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
                    task_status.started()
                    while True:
                        engine.events.publish("created", shift_id="bench-no-such-shift")
                        await trio.sleep(0.02)

                async with trio.open_nursery() as ticking:
                    await ticking.start(tick)
                    pages = await run_loadgen(
                        {
                            **who,
                            "mode": "pages",
                            "repeat": size.board_requests,
                            "paths": ["/board", "/board/shifts/sh-0000001", "/board/stats"],
                        },
                        module="bench.boardgen",
                    )
                    ticking.cancel_scope.cancel()

                async def declines(first: int) -> dict[str, Any]:
                    return await run_loadgen(
                        {
                            "socket": str(path),
                            "mode": "closed",
                            "connections": _CONNECTIONS,
                            "total": per_run,
                            "requests": {
                                "kind": "inbound",
                                "body": "NO",
                                "first": first,
                                "count": per_run,
                            },
                        }
                    )

                alone = await declines(0)
                watched: dict[str, Any] = {}
                held: dict[str, Any] = {}

                async def hold_pages() -> None:
                    spec = {
                        **who,
                        "mode": "streams",
                        "streams": size.board_pages,
                        "seconds": size.board_hold_s,
                        "stop_file": str(d / "stop"),
                        "after": feed.seq,
                    }
                    held.update(await run_loadgen(spec, module="bench.boardgen"))

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(hold_pages)
                    started = time.perf_counter()
                    while feed.streams < size.board_pages:
                        if time.perf_counter() - started > size.board_hold_s / 2:
                            raise RuntimeError(f"only {feed.streams} live pages connected")
                        await trio.sleep(0.05)
                    open_streams = feed.streams
                    watched.update(await declines(per_run))
                    await trio.sleep(1)  # the last changes reach the pages
                    (d / "stop").touch()
                    await trio.sleep(1)  # the last changes reach the pages
                    (d / "stop").touch()
                server.shutdown()
        return {
            "shifts_in_progress": n,
            "pages": pages,
            "declines_no_page": alone,
            "declines_with_pages": watched,
            "live_pages": {**held, "open_during_run": open_streams},
            "ratio_with_pages": (
                round(watched["per_s"] / alone["per_s"], 3)
                if alone.get("per_s") and watched.get("per_s")
                else None
            ),
        }
