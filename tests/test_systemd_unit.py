"""The systemd unit: `systemd-analyze verify` passes, and the unit is Type=notify with a
watchdog and a hardened sandbox."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "systemd" / "shiftd.service"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")
def test_systemd_analyze_verify_passes_when_execstart_is_an_existing_binary(
    tmp_path: Path,
) -> None:
    unit = tmp_path / "shiftd.service"
    text = UNIT.read_text()
    assert re.search(r"^ExecStart=/opt/shiftd/bin/shiftd run ", text, re.M)
    unit.write_text(re.sub(r"^ExecStart=\S+", "ExecStart=/bin/true", text, flags=re.M))

    checked = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )

    assert checked.returncode == 0, checked.stderr
    assert "shiftd.service" not in checked.stderr, checked.stderr


def test_the_unit_is_type_notify_with_a_watchdog_and_a_hardened_sandbox() -> None:
    settings = dict(
        line.split("=", 1)
        for line in UNIT.read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )

    assert settings["Type"] == "notify"
    assert settings["NotifyAccess"] == "main"
    assert settings["WatchdogSec"]
    assert settings["User"] == "shiftd"
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "CapabilityBoundingSet": "",
        "UMask": "0007",
        "SystemCallFilter": "@system-service",
    }.items():
        assert settings[key] == value, key
