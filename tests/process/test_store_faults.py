"""The real daemon when its disk fails it: full while running (it refuses new work with a
clear error, keeps running, loses nothing committed and carries on when space returns), and
a damaged, truncated or emptied database at start (a clear error, exit 1, the file left as
it was).

The full disk is a small tmpfs mounted over the state directory (so only root can run that
test; it skips otherwise): writes fail with ENOSPC exactly as on a full partition, and
deleting a filler file gives the space back. A file system turned read-only while running
cannot be made this way (Linux refuses to remount read-only while SQLite holds the database
open for writing), so that case is not exercised here.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shiftd.testing.daemon import Daemon
from shiftd.testing.waiting import wait_for

pytestmark = pytest.mark.process

START = datetime.now(UTC) + timedelta(days=2)
CAREGIVERS = [
    {"id": f"rn-{n}", "name": f"Nurse {n}", "role": "RN", "phone": f"+155502100{n:02d}"}
    for n in range(1, 4)
]


def shift(shift_id: str, hours: int = 0) -> dict[str, Any]:
    start = START + timedelta(hours=hours)
    return {
        "id": shift_id,
        "role_required": "RN",
        "start_time": start.isoformat(),
        "end_time": (start + timedelta(hours=8)).isoformat(),
    }


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="shiftd-faults-", dir="/tmp"))  # short: socket paths
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def small_disk(workdir: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (root only; skips elsewhere)."""
    mount = workdir / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small file system needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk: Path) -> Path:
    """Write a file until the disk is full; the file (delete it to give the space back)."""
    filler = disk / "filler"
    chunk = b"\0" * 65536
    with filler.open("wb") as out:
        try:
            while True:
                out.write(chunk)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


@pytest.mark.slow
def test_a_full_disk_refuses_new_work_clearly_and_recovers_when_space_returns(
    workdir: Path, small_disk: Path
) -> None:
    daemon = Daemon(workdir, small_disk / "state", escalation_delay="3s")
    daemon.start()
    daemon.call("roster.import", caregivers=CAREGIVERS, shifts=[shift("a"), shift("c", 24)])
    assert daemon.call("fanout", shift_id="a")["status"] == "started"
    wait_for(lambda: len(daemon.messages()) == 3, 10, "three offer texts")

    filler = fill(small_disk)
    added = daemon.refused("shift.add", **shift("b", 48))
    fanout = daemon.refused("fanout", shift_id="c")
    accept = daemon.refused("inbound", **{"from": "+15550210001", "body": "YES"})
    for refusal in (added, fanout, accept):
        assert refusal.code == "unavailable"
        assert "the disk is full" in refusal.message and "nothing was changed" in refusal.message
    assert daemon.call("ping")["pong"] is True
    time.sleep(3.5)  # shift a's calls fall due while nothing can be written
    assert not [m for m in daemon.messages() if m["channel"] == "voice"]

    filler.unlink()
    calls = wait_for(
        lambda: [m for m in daemon.messages() if m["channel"] == "voice"], 15, "a's calls"
    )
    assert {m["caregiver_id"] for m in calls} <= {"rn-1", "rn-2", "rn-3"}
    assert daemon.call("inbound", **{"from": "+15550210001", "body": "YES"})["outcome"] == "claimed"
    assert daemon.call("fanout", shift_id="c")["status"] == "started"
    daemon.call("shift.add", **shift("b", 48))
    assert daemon.stop() == 0

    once = Counter(
        (m["shift_id"], m["caregiver_id"], m["channel"], m["purpose"]) for m in daemon.messages()
    )
    assert max(once.values()) == 1, once
    assert sum(1 for (s, _, ch, p) in once if (s, ch, p) == ("a", "sms", "offer")) == 3
    daemon.start()  # what was committed before and after the fault is all there
    shown = daemon.call("shift.show", shift_id="a")["shift"]
    assert (shown["state"], shown["claimed_by"]) == ("filled", "rn-1")
    assert daemon.call("shift.show", shift_id="b")["shift"]["state"] == "open"
    assert daemon.stop() == 0


@pytest.fixture
def real_database(workdir: Path) -> Daemon:
    """A daemon that has run: a roster, a shift in its fanout; stopped."""
    daemon = Daemon(workdir, escalation_delay="3s")
    daemon.start()
    daemon.call("roster.import", caregivers=CAREGIVERS, shifts=[shift("a")])
    daemon.call("fanout", shift_id="a")
    assert daemon.stop() == 0
    return daemon


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_file_that_is_not_a_database_is_refused_and_left_as_it_is(real_database: Daemon) -> None:
    real_database.db.write_bytes(os.urandom(200_000))
    before = digest(real_database.db)

    refused = real_database.run_to_exit()

    assert refused.returncode == 1
    assert "file is not a database" in refused.stderr and "damaged" in refused.stderr
    assert digest(real_database.db) == before


def test_a_truncated_database_is_refused_and_left_as_it_is(real_database: Daemon) -> None:
    whole = real_database.db.read_bytes()
    real_database.db.write_bytes(whole[: len(whole) // 2])
    before = digest(real_database.db)

    refused = real_database.run_to_exit()

    assert refused.returncode == 1
    assert "malformed" in refused.stderr and "damaged" in refused.stderr
    assert digest(real_database.db) == before


def test_an_emptied_database_file_is_refused_not_taken_for_a_new_one(
    real_database: Daemon,
) -> None:
    real_database.db.write_bytes(b"")

    refused = real_database.run_to_exit()

    assert refused.returncode == 1
    assert "the file is empty (0 bytes)" in refused.stderr
    assert real_database.db.stat().st_size == 0
