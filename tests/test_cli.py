"""`shiftd run | check-config | demo` and the daemon's state-directory lock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from shiftd import __version__, cli
from shiftd.daemon import StateDirBusy, state_lock

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "shiftd.yaml"


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The command configures logging for the process (onto a stream that capture closes)."""
    yield
    structlog.reset_defaults()


@pytest.fixture
def no_daemon(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record (and refuse) any attempt to start the event loop."""
    started: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> None:
        started.append(args)
        raise AssertionError("the daemon must not start")

    monkeypatch.setattr(cli.trio, "run", refuse)
    return started


# --------------------------------------------------------------------------- check-config


def test_check_config_accepts_the_example_configuration(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["check-config", str(EXAMPLE)]) == 0
    out = capsys.readouterr().out
    assert f"{EXAMPLE}: ok" in out


def test_check_config_names_file_line_and_key_of_an_unquoted_duration(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = _write(tmp_path / "broken.yaml", "escalation:\n  delay: 10:30\n")

    assert cli.main(["check-config", str(broken)]) == 2

    err = capsys.readouterr().err
    assert err.startswith(f"{broken}:2: escalation.delay: ")
    assert "630" in err  # says what YAML made of 10:30


def test_check_config_names_the_line_of_an_unknown_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    typo = _write(tmp_path / "typo.yaml", 'escalation:\n  delay: "10m"\n  dealy: "5m"\n')

    assert cli.main(["check-config", str(typo)]) == 2

    err = capsys.readouterr().err
    assert err.startswith(f"{typo}:3: escalation.dealy: unknown key")


def test_check_config_of_a_missing_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.yaml"

    assert cli.main(["check-config", str(missing)]) == 2

    assert f"{missing}: cannot read" in capsys.readouterr().err


# --------------------------------------------------------------------------- run


def test_run_with_a_broken_config_exits_2_without_starting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_daemon: list[Any]
) -> None:
    state = tmp_path / "state"
    broken = _write(
        tmp_path / "broken.yaml", f'state_dir: "{state}"\nescalation:\n  delay: 10:30\n'
    )

    assert cli.main(["run", "--config", str(broken)]) == 2

    assert f"{broken}:3: escalation.delay: " in capsys.readouterr().err
    assert no_daemon == []
    assert not state.exists()


def test_run_exits_1_when_another_shiftd_holds_the_state_dir(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state"
    config = _write(
        tmp_path / "shiftd.yaml",
        f'state_dir: "{state}"\nnotifier:\n  kind: console\nlog:\n  level: error\n',
    )

    with state_lock(state):
        assert cli.main(["run", "--config", str(config)]) == 1

    assert "another shiftd is using this state directory" in capsys.readouterr().err
    assert not (state / "control.sock").exists()


def test_run_requires_a_config(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["run"])
    assert exited.value.code == 2
    assert "--config" in capsys.readouterr().err


# --------------------------------------------------------------------------- the command


def test_version_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"shiftd {__version__}"


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main([])
    assert exited.value.code == 2


# --------------------------------------------------------------------------- state_lock


def test_a_second_lock_on_the_same_state_dir_raises_state_dir_busy(tmp_path: Path) -> None:
    with (
        state_lock(tmp_path / "state"),
        pytest.raises(StateDirBusy),
        state_lock(tmp_path / "state"),
    ):
        pass


def test_the_state_dir_lock_is_released_on_exit(tmp_path: Path) -> None:
    with state_lock(tmp_path / "state"):
        pass
    with state_lock(tmp_path / "state"):
        pass


def test_a_failed_second_lock_does_not_release_the_first(tmp_path: Path) -> None:
    with state_lock(tmp_path / "state"):
        with pytest.raises(StateDirBusy), state_lock(tmp_path / "state"):
            pass
        with pytest.raises(StateDirBusy), state_lock(tmp_path / "state"):
            pass
