"""Fixtures for the tests that run the real daemon as a subprocess."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

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
