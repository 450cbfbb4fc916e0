"""The README's five-minute tour, run as written against a real daemon from a clean checkout.

The configuration and every `$ command` are read from README.md itself, so the README and
this test cannot drift apart. Each command runs through bash from the repository root, and
its output must be what the README shows, with three things a reader's run cannot share
(`_normalise`): the instants and dates, the uptime, and the state directory (a temporary
one here, `/tmp/shiftd-tour` in the README).

Two deliberate changes, both asserted to apply: the escalation delay is 5 s instead of a
minute, and `sleep 60` becomes "wait until the escalation's call is out" (bounded).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from shiftd.control.client import ConnectError, ControlClient

pytestmark = [pytest.mark.process, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
README_DIR = "/tmp/shiftd-tour"
DELAY = 'delay: "1m"'
FAST_DELAY = 'delay: "5s"'
LIMIT = 60.0  # seconds; a generous bound on any one wait


def tour_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## A five-minute tour")
    return text[start : text.index("\n## ", start + 1)]


def tour_config() -> str:
    match = re.search(r"cat > /tmp/shiftd\.yaml <<'YAML'\n(.*?)\nYAML\n", tour_section(), re.S)
    assert match, "the tour's configuration heredoc is missing from the README"
    return match.group(1) + "\n"


def tour_transcript() -> list[tuple[str, list[str]]]:
    """[(command, the output lines the README shows for it)] from the ```console block."""
    match = re.search(r"```console\n(.*?)```", tour_section(), re.S)
    assert match, "the tour's console transcript is missing from the README"
    steps: list[tuple[str, list[str]]] = []
    for line in match.group(1).splitlines():
        if line.startswith("$ "):
            steps.append((line[2:], []))
        else:
            assert steps, f"output before the first command: {line!r}"
            steps[-1][1].append(line)
    return steps


_INSTANT = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?(\.\d+)?(Z|[+-]\d\d:\d\d)?")
_WINDOW = re.compile(r"\b[A-Z][a-z]{2} [A-Z][a-z]{2} \d{1,2}, \d\d:\d\d-\d\d:\d\d")
_UPTIME = re.compile(r"^(uptime:\s+).*$", re.M)


def _normalise(text: str, state_dir: str) -> list[str]:
    text = text.replace(state_dir, README_DIR)
    text = _WINDOW.sub("<window>", _INSTANT.sub("<instant>", text))
    return _UPTIME.sub(r"\1<uptime>", text).splitlines()


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Short, so the control socket's path stays far below the 108-byte limit.
    path = Path(tempfile.mkdtemp(prefix="tour-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _answers(sock: Path) -> bool:
    try:
        with ControlClient(str(sock), timeout=5) as client:
            client.call("ping")
    except (ConnectError, OSError):
        return False
    return True


def _called(sock: Path, shift_id: str) -> bool:
    with ControlClient(str(sock), timeout=5) as client:
        contacts = client.call("shift.show", {"shift_id": shift_id})["shift"]["contacts"]
    return any(c["channel"] == "voice" and c["state"] == "sent" for c in contacts)


def _wait(condition: object, what: str) -> None:
    deadline = time.monotonic() + LIMIT
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_the_readme_tour_prints_what_the_readme_shows(workdir: Path) -> None:
    state_dir = str(workdir / "tour")
    config = tour_config()
    assert DELAY in config and README_DIR in config
    (workdir / "shiftd.yaml").write_text(
        config.replace(DELAY, FAST_DELAY).replace(README_DIR, state_dir)
    )
    steps = tour_transcript()
    assert [c for c, _ in steps].count("sleep 60") == 1
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    log = open(workdir / "daemon.log", "wb")  # noqa: SIM115
    daemon = subprocess.Popen(
        [sys.executable, "-m", "shiftd.cli", "run", "--config", str(workdir / "shiftd.yaml")],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        sock = Path(state_dir) / "control.sock"
        _wait(lambda: daemon.poll() is not None or _answers(sock), "the daemon to answer")
        assert daemon.poll() is None, (workdir / "daemon.log").read_text()
        exports: list[str] = []
        shown, printed = [], []
        for command, expected in steps:
            if command == "sleep 60":
                _wait(lambda: _called(sock, "lpn-1"), "the escalation's call")
                continue
            script = "\n".join([*exports, command.replace(README_DIR, state_dir)])
            done = subprocess.run(
                ["bash", "-c", script],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,  # interleaved, as on a terminal
                text=True,
                timeout=LIMIT,
            )
            assert done.returncode == 0, f"$ {command}\n{done.stdout}"
            if command.startswith("export "):
                exports.append(command.replace(README_DIR, state_dir))
            shown += [f"$ {command}", *_normalise("\n".join(expected), state_dir)]
            printed += [f"$ {command}", *_normalise(done.stdout, state_dir)]
        assert printed == shown
    finally:
        daemon.terminate()
        assert daemon.wait(timeout=LIMIT) == 0
        log.close()
