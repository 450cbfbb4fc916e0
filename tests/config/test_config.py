"""Configuration: the example loads, defaults hold, and every error names FILE:LINE: key.path."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from shiftd.config import (
    Config,
    ConfigError,
    ConsoleNotifierConfig,
    EscalationConfig,
    RecordNotifierConfig,
    load_config,
    parse_config,
    parse_duration,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "shiftd.yaml"


def write(tmp_path: Path, text: str) -> Path:
    """Write ``text`` (dedented) to a config file and return its path."""
    path = tmp_path / "shiftd.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    """The problems ``load_config`` reports for ``path`` (it must fail)."""
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def test_example_file_loads() -> None:
    config = load_config(EXAMPLE)
    assert config.notifier == RecordNotifierConfig(kind="record", path=Path("state/messages.jsonl"))
    assert config.socket_path == Path("state/control.sock")


def test_example_file_documents_the_defaults() -> None:
    example, defaults = load_config(EXAMPLE), Config()
    for section in ("escalation", "sender", "store", "control", "actor", "shutdown", "log"):
        assert getattr(example, section) == getattr(defaults, section), section
    for key in ("state_dir", "timezone", "agency_name", "classifier"):
        assert getattr(example, key) == getattr(defaults, key), key


def test_minimal_shape_with_unquoted_delay_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        state_dir: ./state
        control_socket: ./state/control.sock
        escalation:
          delay: 10m
        notifier:
          kind: record            # console | record
          path: ./state/messages.jsonl
        """,
    )
    config = load_config(path)
    assert config.state_dir == Path("state")
    assert config.control_socket == Path("state/control.sock")
    assert config.escalation.delay == timedelta(minutes=10)
    assert config.notifier == RecordNotifierConfig(kind="record", path=Path("state/messages.jsonl"))


def test_defaults() -> None:
    config = Config()
    assert config.state_dir == Path("state")
    assert config.control_socket is None
    assert config.socket_path == Path("state/control.sock")
    assert config.tz == ZoneInfo("UTC")
    assert config.agency_name == "shiftd"
    assert config.classifier == "shiftd.inbound.intent:DefaultClassifier"
    assert config.escalation == EscalationConfig(delay=timedelta(minutes=10), jitter=timedelta(0))
    assert config.notifier == ConsoleNotifierConfig(kind="console")
    assert config.sender.concurrency == 16
    assert config.sender.max_attempts == 5
    assert config.sender.backoff_initial == timedelta(seconds=1)
    assert config.sender.backoff_max == timedelta(minutes=5)
    assert config.sender.timeout == timedelta(seconds=10)
    assert (config.store.synchronous, config.store.batch_max) == ("normal", 512)
    assert config.control.max_connections == 1024
    assert config.actor.inbox_size == 64
    assert config.actor.max_restarts == 5
    assert config.actor.restart_window == timedelta(seconds=60)
    assert config.shutdown.grace == timedelta(seconds=10)
    assert (config.log.level, config.log.format) == ("info", "auto")


def test_config_is_frozen() -> None:
    with pytest.raises(ValueError, match="frozen"):
        Config().agency_name = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10m", timedelta(minutes=10)),
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("500ms", timedelta(milliseconds=500)),
        ("2h", timedelta(hours=2)),
        ("1d", timedelta(days=1)),
        ("0s", timedelta(0)),
        (" 1h 30m 5s ", timedelta(hours=1, minutes=30, seconds=5)),
    ],
)
def test_parse_duration_accepts_units_largest_first(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "10", "m", "1s1m", "1m1m", "-1s", "1.5s", "10M", "10 min"])
def test_parse_duration_rejects_other_text(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_durations_load_from_yaml(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        escalation:
          delay: "1h30m"
          jitter: "90s"
        sender:
          backoff_initial: "500ms"
        shutdown:
          grace: 10m
        """,
    )
    config = load_config(path)
    assert config.escalation.delay == timedelta(hours=1, minutes=30)
    assert config.escalation.jitter == timedelta(seconds=90)
    assert config.sender.backoff_initial == timedelta(milliseconds=500)
    assert config.shutdown.grace == timedelta(minutes=10)


def test_unquoted_sexagesimal_duration_is_an_error_that_explains_quoting(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        state_dir: ./state
        escalation:
          delay: 10:30
        """,
    )
    assert problems_of(path) == [
        f'{path}:3: escalation.delay: durations are strings such as "10m" or "90s"'
        " (got 630; YAML reads an unquoted 10:30 as the number 630)"
    ]


def test_bare_number_duration_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "shutdown:\n  grace: 5\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:2: shutdown.grace: durations are strings")
    assert '"5s"' in problem


def test_unknown_key_names_its_line_and_the_allowed_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        state_dir: ./state
        escalation:
          delay: "10m"
          dealy: "5m"
        """,
    )
    assert problems_of(path) == [
        f"{path}:4: escalation.dealy: unknown key (allowed: delay, jitter, call_gap)"
    ]


def test_bad_notifier_kind_points_at_kind(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        state_dir: ./state
        notifier:
          kind: sms
        """,
    )
    assert problems_of(path) == [
        f"{path}:3: notifier.kind: unknown kind 'sms'"
        " (expected one of: 'console', 'record', 'twilio')"
    ]


def test_record_notifier_without_path_points_at_notifier(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        state_dir: ./state

        notifier:
          kind: record
        """,
    )
    assert problems_of(path) == [f"{path}:3: notifier.path: missing required key"]


def test_notifier_without_kind_points_at_notifier(tmp_path: Path) -> None:
    path = write(tmp_path, "state_dir: ./state\nnotifier:\n  path: ./m.jsonl\n")
    assert problems_of(path) == [
        f"{path}:2: notifier.kind: missing required key (one of: console, record, twilio)"
    ]


def test_unknown_key_in_record_notifier_drops_the_union_tag(tmp_path: Path) -> None:
    path = write(tmp_path, "notifier:\n  kind: record\n  path: m.jsonl\n  colour: red\n")
    assert problems_of(path) == [f"{path}:4: notifier.colour: unknown key (allowed: kind, path)"]


def test_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        state_dir: ./state
        escalation:
          delay: "10m"
         jitter: "1s"
        """,
    )
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:4: (yaml): ")


def test_bad_timezone_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "state_dir: ./state\ntimezone: Mars/Olympus_Mons\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:2: timezone: unknown time zone 'Mars/Olympus_Mons'")


def test_known_timezone_is_available_as_tz(tmp_path: Path) -> None:
    path = write(tmp_path, 'timezone: "America/Chicago"\n')
    assert load_config(path).tz == ZoneInfo("America/Chicago")


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "")) == Config()


def test_comments_only_file_means_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "# nothing configured yet\n")) == Config()


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- state_dir\n- ./state\n")
    assert problems_of(path) == [f"{path}:1: (top level): expected a mapping of keys, got a list"]


def test_missing_file_cannot_be_read(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    assert problems_of(path) == [f"{path}: cannot read: No such file or directory"]


def test_error_str_joins_problems_with_newlines(tmp_path: Path) -> None:
    path = write(tmp_path, "log:\n  level: verbose\nstore:\n  batch_max: 0\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert len(info.value.problems) == 2
    assert str(info.value) == "\n".join(info.value.problems)
    assert info.value.problems[0].startswith(f"{path}:2: log.level: ")
    assert info.value.problems[1].startswith(f"{path}:4: store.batch_max: ")


def test_unquoted_boolean_is_not_a_string(tmp_path: Path) -> None:
    path = write(tmp_path, "agency_name: no\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:1: agency_name: expected a string, got the boolean false")


def test_quoted_integer_is_not_a_count(tmp_path: Path) -> None:
    path = write(tmp_path, "sender:\n  concurrency: '16'\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:2: sender.concurrency: Input should be a valid integer")


def test_duplicate_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "state_dir: a\nagency_name: x\nstate_dir: b\n")
    assert problems_of(path) == [f"{path}:3: state_dir: duplicate key (first at line 1)"]


def test_jitter_must_not_exceed_delay(tmp_path: Path) -> None:
    path = write(tmp_path, 'escalation:\n  delay: "1m"\n  jitter: "2m"\n')
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}:3: escalation.jitter: jitter")


def test_classifier_must_be_a_module_reference(tmp_path: Path) -> None:
    path = write(tmp_path, "classifier: DefaultClassifier\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f'{path}:1: classifier: must look like "package.module:Name"')


def test_parse_config_uses_the_given_filename() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config("log:\n  format: xml\n", "inline.yaml")
    (problem,) = info.value.problems
    assert problem.startswith("inline.yaml:2: log.format: ")
