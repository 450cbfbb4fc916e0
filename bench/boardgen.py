"""The coordinator's page, from outside: a separate process (as a browser is) that signs in
and then either times page loads or holds live pages open.

`python -m bench.boardgen SPEC` prints one JSON object. SPEC: `base` (http://host:port),
`name`, `password`, and `mode`:

- `pages`: GET each of `paths` `repeat` times in turn over one keep-alive connection; the
  latency of each (request sent → whole page read), per path;
- `streams`: be `streams` open boards: each holds a live-update stream (`/board/events`,
  server-sent events carrying the changed rows) and, as the page's script does, fetches the
  board again on `reload`; until `stop_file` exists (at most `seconds`).
"""

from __future__ import annotations

import json
import re
import sys
import time
from typing import Any

import httpx
import trio

from .stats import latency_ms

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def _sign_in(client: httpx.Client, name: str, password: str) -> str:
    form = client.get("/board/login")
    token = _CSRF.search(form.text)
    assert token is not None, "no sign-in form"
    answer = client.post(
        "/board/login", data={"name": name, "password": password, "csrf": token[1]}
    )
    assert answer.status_code == 303, f"sign-in refused: {answer.status_code}"
    return str(client.cookies["shiftd_session"])


def _pages(spec: dict[str, Any]) -> dict[str, Any]:
    with httpx.Client(base_url=spec["base"], timeout=60) as client:
        _sign_in(client, spec["name"], spec["password"])
        timings: dict[str, list[float]] = {path: [] for path in spec["paths"]}
        sizes: dict[str, int] = {}
        for _ in range(spec["repeat"]):
            for path in spec["paths"]:
                started = time.perf_counter()
                answer = client.get(path)
                timings[path].append(time.perf_counter() - started)
                assert answer.status_code == 200, f"{path}: {answer.status_code}"
                sizes[path] = len(answer.content)
    return {path: {**latency_ms(t), "bytes": sizes[path]} for path, t in timings.items()}


async def _streams(spec: dict[str, Any]) -> dict[str, Any]:
    with httpx.Client(base_url=spec["base"], timeout=60) as client:
        cookie = _sign_in(client, spec["name"], spec["password"])
    host, port = spec["base"].removeprefix("http://").rsplit(":", 1)
    request = (
        f"GET /board/events?after={spec['after']} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Accept: text/event-stream\r\nCookie: shiftd_session={cookie}\r\n\r\n"
    ).encode()
    events = [0] * spec["streams"]
    reconnects = [0] * spec["streams"]
    refetches = [0] * spec["streams"]
    retries = [0] * spec["streams"]

    async def hold(i: int) -> None:
        changed = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(refetch, i, lambda: changed)
            while True:
                stream = await trio.open_tcp_stream(host, int(port))
                async with stream:
                    await stream.send_all(request)
                    while True:
                        chunk = await stream.receive_some(65536)
                        if not chunk:
                            break
                        events[i] += chunk.count(b"\nevent: ")
                        if b"\nevent: reload" in chunk:
                            changed.set()
                            changed = trio.Event()
                reconnects[i] += 1  # the server ends a stream before its idle limit

    async def refetch(i: int, changed: Any) -> None:
        """What the page's script does on `reload` (the rows it missed are gone from the
        feed, or a roster import): fetch the board's main region again. Changes come with
        their rows, which the script puts in place without asking."""
        headers = {"X-Board-Fragment": "1", "Cookie": f"shiftd_session={cookie}"}
        async with httpx.AsyncClient(base_url=spec["base"], timeout=60) as page:
            while True:
                await changed().wait()
                for attempt in range(3):  # as browsers do when a kept-alive connection closes
                    try:
                        answer = await page.get("/board", headers=headers)
                        break
                    except httpx.TransportError:
                        if attempt == 2:
                            raise
                        retries[i] += 1
                assert answer.status_code == 200, answer.status_code
                refetches[i] += 1

    stop = trio.Path(spec["stop_file"])
    with trio.move_on_after(spec["seconds"]):
        async with trio.open_nursery() as nursery:
            for i in range(spec["streams"]):
                nursery.start_soon(hold, i)
            # Another process's file: there is no event to wait on.
            while not await stop.exists():  # noqa: ASYNC110
                await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
    return {
        "streams": spec["streams"],
        "events_received": sum(events),
        "board_refetches": sum(refetches),
        "refetch_retries": sum(retries),
        "streams_that_got_events": sum(1 for n in events if n),
        "reconnects": sum(reconnects),
    }


def main(spec: dict[str, Any]) -> dict[str, Any]:
    if spec["mode"] == "pages":
        return _pages(spec)
    return trio.run(_streams, spec)


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1]))))
