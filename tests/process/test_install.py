"""Installing shiftd as a service: `make install` into a staging root (DESTDIR), the unit it
installs, its reload command, and how exposed `systemd-analyze security` finds it.

The staged install runs the real Makefile target with `PIP_FLAGS=--no-index --no-deps` (no
network): the venv gets shiftd's own wheel, and a `.pth` file lends it this checkout's
dependencies so the installed `shiftd` can run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.process, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "/opt/shiftd"
UNIT = "etc/systemd/system/shiftd.service"
LIMIT = 120.0


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    root = tmp_path_factory.mktemp("destdir")
    done = subprocess.run(
        [
            *("make", "--no-print-directory", "install", f"DESTDIR={root}", f"PREFIX={PREFIX}"),
            *("PIP_FLAGS=--no-index --no-deps", f"PY={sys.executable}"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=LIMIT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return root


def _unit(root: Path) -> str:
    return (root / UNIT).read_text()


def test_install_stages_the_venv_config_state_directory_and_unit(staged: Path) -> None:
    venv = staged / PREFIX.lstrip("/")
    assert (venv / "bin" / "shiftd").exists() and (venv / "bin" / "shiftctl").exists()
    assert os.readlink(staged / "usr/local/bin/shiftctl") == f"{PREFIX}/bin/shiftctl"
    assert (staged / "var/lib/shiftd").stat().st_mode & 0o777 == 0o750
    config = (staged / "etc/shiftd/shiftd.yaml").read_text()
    assert "\nstate_dir: /var/lib/shiftd\n" in config
    assert "\ncontrol_socket: /run/shiftd/control.sock\n" in config
    assert f"ExecStart={PREFIX}/bin/shiftd run --config /etc/shiftd/shiftd.yaml" in _unit(staged)


def test_the_installed_shiftd_runs_and_accepts_the_installed_config(staged: Path) -> None:
    venv = staged / PREFIX.lstrip("/")
    site = next((venv / "lib").glob("python3*/site-packages"))
    (site / "checkout-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    done = subprocess.run(
        [str(venv / "bin" / "shiftd"), "check-config", str(staged / "etc/shiftd/shiftd.yaml")],
        capture_output=True,
        text=True,
        timeout=LIMIT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok" in done.stdout


def test_a_second_install_keeps_an_edited_config(staged: Path) -> None:
    config = staged / "etc/shiftd/shiftd.yaml"
    config.write_text(config.read_text() + "# edited by the operator\n")
    done = subprocess.run(  # the files part of `make install`: the venv is upgraded alike
        ["make", "--no-print-directory", "install-files", f"DESTDIR={staged}", f"PREFIX={PREFIX}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=LIMIT,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert config.read_text().endswith("# edited by the operator\n")


def test_exec_reload_makes_the_daemon_reread_its_config(tmp_path: Path) -> None:
    reload = re.search(r"^ExecReload=(.+)$", (ROOT / "systemd/shiftd.service").read_text(), re.M)
    assert reload is not None, "the unit has no ExecReload"
    config = tmp_path / "shiftd.yaml"
    config.write_text("state_dir: ./state\nlog:\n  level: info\n  format: json\n")
    log_path = tmp_path / "daemon.log"
    with open(log_path, "wb") as log:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "shiftd.cli", "run", "--config", str(config)],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait(lambda: (tmp_path / "state" / "control.sock").exists(), "the daemon to start")
        config.write_text("state_dir: ./state\nlog:\n  level: debug\n  format: json\n")
        command = reload.group(1).replace("$MAINPID", str(daemon.pid))
        subprocess.run(command.split(), check=True, timeout=LIMIT)
        _wait(lambda: '"config.reloaded"' in log_path.read_text(), "config.reloaded")
        assert '"log_level": "debug"' in log_path.read_text()
        assert daemon.poll() is None  # reloaded, still running
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=LIMIT) == 0


def test_systemd_analyze_finds_the_installed_unit_exposed_at_most_2(staged: Path) -> None:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    done = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", "--no-pager", str(staged / UNIT)],
        capture_output=True,
        text=True,
        timeout=LIMIT,
    )
    found = re.search(r"Overall exposure level for shiftd\.service: ([0-9.]+)", done.stdout)
    assert found is not None, done.stdout + done.stderr
    assert float(found.group(1)) <= 2.0


def _wait(condition: object, what: str) -> None:
    deadline = time.monotonic() + LIMIT
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
