"""Fixtures for the control socket's tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def sock_path() -> Iterator[Path]:
    """A socket path in a short directory (sun_path is limited to 108 bytes)."""
    directory = Path(tempfile.mkdtemp(prefix="shg-", dir="/tmp"))
    yield directory / "control.sock"
    shutil.rmtree(directory, ignore_errors=True)
