"""shiftctl's exit status, one per family of outcomes (`shiftd.errors.Exit`), shown through
the installed command in a process of its own against a scripted daemon on a real socket;
and the same table in `shiftctl --help` and the README."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from shiftd.errors import CODES, EXIT_MEANINGS, Exit
from shiftd.testing.shiftctl import CLOSE, SILENT, FakeDaemon, fake_daemon, shiftctl_command
from shiftd.testing.waiting import wait_for

README = Path(__file__).parents[2] / "README.md"
RUN_LIMIT = 30  # seconds a shiftctl process may take before the test gives up on it


@pytest.fixture
def fake() -> Iterator[FakeDaemon]:
    with fake_daemon() as daemon:
        yield daemon


def shiftctl(socket: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*shiftctl_command(), "--socket", socket, *args],
        capture_output=True,
        text=True,
        timeout=RUN_LIMIT,
        env={k: v for k, v in os.environ.items() if k != "SHIFTD_SOCKET"},
    )


def answering(fake: FakeDaemon, code: str) -> subprocess.CompletedProcess[str]:
    """shiftctl's `ping` when the daemon answers it with the error `code`."""
    fake.script["ping"] = {"error": {"code": code, "message": "said so"}}
    return shiftctl(fake.path, "ping")


def codes_exiting(status: Exit) -> list[str]:
    return sorted(code for code, row in CODES.items() if row.exit_status == status)


def test_success_exits_0(fake: FakeDaemon) -> None:
    fake.script["ping"] = {"pong": True}
    assert shiftctl(fake.path, "ping").returncode == Exit.OK == 0


USAGE = [
    *(pytest.param(("ping",), code, id=code) for code in codes_exiting(Exit.USAGE)),
    pytest.param(("no-such-command",), None, id="argparse"),
    pytest.param(("roster", "import", "/nonexistent.json"), None, id="unreadable file"),
]


@pytest.mark.parametrize(("args", "code"), USAGE)
def test_a_wrong_command_line_file_or_request_exits_2(
    fake: FakeDaemon, args: tuple[str, ...], code: str | None
) -> None:
    if code is not None:
        fake.script["ping"] = {"error": {"code": code, "message": "said so"}}
    assert shiftctl(fake.path, *args).returncode == Exit.USAGE == 2


def test_not_found_exits_3(fake: FakeDaemon) -> None:
    done = answering(fake, "not_found")
    assert done.returncode == Exit.NOT_FOUND == 3
    assert done.stderr.strip() == "error: not_found: said so"


def test_conflict_exits_4(fake: FakeDaemon) -> None:
    assert answering(fake, "conflict").returncode == Exit.CONFLICT == 4


def test_no_daemon_at_the_socket_exits_69(tmp_path: Path) -> None:
    done = shiftctl(str(tmp_path / "control.sock"), "ping")
    assert done.returncode == Exit.UNAVAILABLE == 69
    assert "no shiftd is answering" in done.stderr


def test_a_failure_of_shiftds_own_code_exits_70(fake: FakeDaemon) -> None:
    assert answering(fake, "internal").returncode == Exit.INTERNAL == 70


@pytest.mark.parametrize("code", codes_exiting(Exit.TEMPFAIL))
def test_a_daemon_that_cannot_serve_now_exits_75(fake: FakeDaemon, code: str) -> None:
    assert answering(fake, code).returncode == Exit.TEMPFAIL == 75


@pytest.mark.parametrize("answer", [CLOSE, SILENT], ids=["closed", "no answer in time"])
def test_a_conversation_broken_off_exits_76(fake: FakeDaemon, answer: object) -> None:
    fake.script["ping"] = answer
    assert shiftctl(fake.path, "--timeout", "0.5", "ping").returncode == Exit.PROTOCOL == 76


@pytest.mark.parametrize("code", codes_exiting(Exit.NOPERM))
def test_not_allowed_exits_77(fake: FakeDaemon, code: str) -> None:
    assert answering(fake, code).returncode == Exit.NOPERM == 77


def test_output_closed_early_exits_1(fake: FakeDaemon) -> None:
    fake.script["ping"] = {"pong": True}
    proc = subprocess.Popen(
        [*shiftctl_command(), "--socket", fake.path, "--json", "ping"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    proc.stdout.close()  # the reader went away before shiftctl printed (`| head -0`)
    assert proc.wait(RUN_LIMIT) == Exit.FAILURE == 1


def _as_a_terminal_starts_it() -> None:
    """In the child before exec: SIGINT delivered and not ignored, whatever the test's own
    process inherited or was left with (both pass to a child across exec)."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _signal_state(pid: int) -> str:
    status = Path(f"/proc/{pid}/status")
    lines = status.read_text().splitlines() if status.exists() else []
    return " ".join(line for line in lines if line.startswith(("State", "Sig", "ShdPnd")))


def test_ctrl_c_exits_130(fake: FakeDaemon) -> None:
    fake.script["ping"] = SILENT
    proc = subprocess.Popen(
        [*shiftctl_command(), "--socket", fake.path, "ping"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_as_a_terminal_starts_it,
    )
    try:
        wait_for(lambda: fake.calls("ping"), RUN_LIMIT, "shiftctl's ping")
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(RUN_LIMIT)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"no exit after SIGINT: {_signal_state(proc.pid)}") from None
        assert code == Exit.INTERRUPTED == 130
    finally:
        proc.kill()
        proc.wait()


def test_every_code_of_the_error_table_exits_with_a_status_help_explains() -> None:
    assert {row.exit_status for row in CODES.values()} <= set(EXIT_MEANINGS)


def test_help_lists_every_exit_status(tmp_path: Path) -> None:
    done = shiftctl(str(tmp_path / "control.sock"), "--help")
    assert done.returncode == 0
    for status, meaning in EXIT_MEANINGS.items():
        assert re.search(rf"^\s*{status.value}\s+{re.escape(meaning)}$", done.stdout, re.M)


def test_the_readme_lists_every_exit_status() -> None:
    section = README.read_text().split("## shiftctl and the control protocol", 1)[1]
    listed = dict(re.findall(r"^\| `(\d+)` \| (.+?) \|$", section, re.M))
    assert {int(status) for status in listed} == {int(status) for status in EXIT_MEANINGS}
