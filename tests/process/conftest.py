"""Fixtures for the tests that run the real daemon as a subprocess."""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_backends import create_database, drop_database, postgres_unreachable

from shiftd.testing.cluster import Cluster
from shiftd.testing.daemon import Daemon


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A short directory (socket paths are limited to 108 bytes); kept if KEEP is set."""
    path = Path(tempfile.mkdtemp(prefix="shiftd-", dir="/tmp"))
    yield path
    if os.environ.get("KEEP") is None:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def daemon(workdir: Path) -> Iterator[Daemon]:
    """The daemon in `workdir`, not yet started; killed at the end if it still runs."""
    d = Daemon(workdir)
    try:
        yield d
    finally:
        d.ensure_gone()


@pytest.fixture
def cluster_turn() -> Iterator[None]:
    """This test's turn to run several daemons on the PostgreSQL server: one such test at a
    time on the machine, whichever worker or run it belongs to (a lock file in the temporary
    directory). Each daemon holds about ten connections, and a few clusters at once would
    take all the server allows; their second-long leases would also be starved by another
    cluster's start-ups."""
    with (Path(tempfile.gettempdir()) / "shiftd-test-cluster.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


@pytest.fixture
def cluster(cluster_turn: None, workdir: Path) -> Iterator[Cluster]:
    """Daemons to start on one fresh PostgreSQL database (2 s leases); all killed at the
    end. Skipped where PostgreSQL does not answer."""
    reason = postgres_unreachable()
    if reason is not None:
        pytest.skip(reason)
    url = create_database()
    made = Cluster(url, workdir)
    try:
        yield made
    finally:
        made.stop()
        drop_database(url)
