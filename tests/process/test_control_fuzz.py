"""No control line stops the daemon: hypothesis feeds a running daemon random lines — raw
bytes, JSON nested thousands deep, numbers of thousands of digits, wrong types everywhere,
and every command with random arguments (hostile dates and durations among them) — and
after each batch the daemon still answers `ping` on a fresh connection.

`SHIFTD_FUZZ=long` (`make fuzz`) sends at least 100,000 lines and prints the count.
"""

from __future__ import annotations

import json
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shiftd.commands import COMMANDS, STREAMS
from shiftd.testing.daemon import Daemon, sample_roster

pytestmark = pytest.mark.process

LONG = os.environ.get("SHIFTD_FUZZ") == "long"
EXAMPLES = 2000 if LONG else 60
LONG_LINES = int(os.environ.get("SHIFTD_FUZZ_LINES", "100000"))
SENT = {"lines": 0, "batches": 0}

NAMES = sorted({*COMMANDS, *STREAMS})
FIELDS = sorted(
    {name for c in (*COMMANDS.values(), *STREAMS.values()) for name in c.args.model_fields}
    | {"from", "caregivers", "shifts"}
)
HOSTILE = [
    "9999-12-31T23:59:59-10:00",
    "0001-01-01T00:00:00+14:00",
    "2025-07-04T08:00:00Z",
    "2025-07-04 08:00",
    "99999999d",
    "1h30m",
    "shift-1",
    "cg-1",
    "+15550300001",
    "yes",
    "\ud800",
    "",
    "x" * 200,
]

texts = st.text(max_size=30)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | texts
    | st.sampled_from(HOSTILE)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(texts, inner, max_size=4),
    max_leaves=15,
)
shift_like = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["shift-1", "shift-9"]) | texts,
        "role_required": st.sampled_from(["RN", "LPN", ""]) | texts,
        "start_time": st.sampled_from(HOSTILE) | texts,
        "end_time": st.sampled_from(HOSTILE) | texts,
    }
)
arguments = st.dictionaries(
    st.sampled_from(FIELDS) | texts,
    json_values | st.lists(shift_like, max_size=3),
    max_size=5,
)


TIMES = st.sampled_from(HOSTILE[:4]) | st.datetimes().map(lambda d: d.isoformat()) | texts
DURATIONS = (
    st.sampled_from(["99999999d", "3661d", "0s", "1h30m", "-1s", "P1D"])
    | st.integers(0, 10**12).map(lambda n: f"{n}d")
    | json_values
)


def _value_for(field: str) -> st.SearchStrategy[Any]:
    """Values aimed at a field: times for times, durations for durations, else anything."""
    if field.endswith("_time"):
        return TIMES | json_values
    if field in ("since", "start_in", "length"):
        return DURATIONS
    if field in ("caregivers", "shifts"):
        return st.lists(shift_like, max_size=3) | json_values
    return json_values


@st.composite
def own_arguments(draw: st.DrawFn, name: str) -> dict[str, Any]:
    """Arguments with the command's own field names (so its handler runs), random values."""
    command = COMMANDS.get(name) or STREAMS[name]
    fields = sorted(command.args.model_fields) + (["from"] if name == "inbound" else [])
    if not fields:
        return {}
    chosen = draw(st.lists(st.sampled_from(fields), unique=True, max_size=len(fields)))
    return {field: draw(_value_for(field)) for field in chosen}


def _dump(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode("utf-8", "surrogatepass")


@st.composite
def lines(draw: st.DrawFn) -> bytes:
    kind = draw(st.integers(0, 9))
    if kind == 0:  # raw bytes
        return draw(st.binary(max_size=200)).replace(b"\n", b" ")
    if kind == 1:  # nested deep, as arrays or objects
        depth = draw(st.integers(100, 30_000))
        if draw(st.booleans()):
            return b"[" * depth + b"]" * depth
        return b'{"a":' * depth + b"1" + b"}" * depth
    if kind == 2:  # a number of thousands of digits, where an id or an argument goes
        digits = b"9" * draw(st.integers(20, 6000))
        where = draw(
            st.sampled_from([b'{"id":%s,"cmd":"ping"}', b'{"cmd":"stats","args":{"since":%s}}'])
        )
        return where % digits
    if kind == 3:  # any JSON value as the whole request
        return _dump(draw(json_values))
    name = draw(st.sampled_from(NAMES))
    args = draw(arguments) if kind == 5 else draw(own_arguments(name))
    request: dict[str, Any] = {"cmd": name, "args": args}
    if draw(st.booleans()):
        request["id"] = draw(json_values)
    if kind == 4:  # wrong types where the envelope wants a string, a dict
        request[draw(st.sampled_from(["cmd", "args"]))] = draw(json_values)
    return _dump(request)


def _live_daemon() -> Daemon:
    workdir = Path(tempfile.mkdtemp(prefix="shlive-", dir="/tmp"))  # short: socket paths
    return Daemon(workdir, http=True, grace="3s", log_level="warning").start()


@pytest.fixture(scope="module")
def live() -> Iterator[Daemon]:
    daemon = _live_daemon()
    daemon.call("roster.import", **sample_roster())
    try:
        yield daemon
    finally:
        code = daemon.stop()
        if LONG:
            print(
                f"\ncontrol fuzz: {SENT['lines']} lines in {SENT['batches']} batches;"
                f" daemon exit {code}"
            )
        daemon.remove()


def _exchange(path: str, batch: list[bytes]) -> None:
    """Send `batch` and a last ping; read until its answer, the server closing, or 10 s."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        try:
            if any(b"watch" in line for line in batch):
                # A watch turns the connection into an event stream: the last ping would
                # never be answered on it. Send, then hang up (a watcher going away).
                sock.sendall(b"\n".join(batch) + b"\n")
                return
            sock.sendall(b"\n".join(batch) + b'\n{"id":"last","cmd":"ping"}\n')
            received = b""
            while b'"id":"last"' not in received:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                received += chunk
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            return  # closed on us (line too long), or a watch stream that never ends


def test_no_control_line_stops_the_daemon(live: Daemon) -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=not LONG,
        database=None,
    )
    @given(batch=st.lists(lines(), min_size=1, max_size=30))
    def one_batch(batch: list[bytes]) -> None:
        SENT["lines"] += len(batch)
        SENT["batches"] += 1
        _exchange(str(live.socket), batch)

        assert live.alive(), live.log_text()
        assert live.ping(), live.log_text()

    one_batch()
    while LONG and SENT["lines"] < LONG_LINES:
        one_batch()
        print(f"control fuzz: {SENT['lines']} lines so far", flush=True)
