"""shiftd.logs: JSON lines for journald, console on a terminal, no phones or secrets."""

from __future__ import annotations

import io
import json
import re

import pytest
import structlog

from shiftd.logs import configure_logging, get_logger, mask_phone, mask_secret

PHONE = "+15559876543"


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _clean_logging(monkeypatch):
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()
    structlog.reset_defaults()


@pytest.fixture
def out() -> io.StringIO:
    stream = io.StringIO()
    configure_logging("debug", "json", stream)
    return stream


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


# --- JSON output ------------------------------------------------------------------------


def test_json_line_has_event_level_and_ts(out):
    get_logger("shiftd.test").info("fanout.started", shift_id="s1", offered=3)

    [line] = lines(out)
    assert line["event"] == "fanout.started"
    assert line["level"] == "info"
    assert line["shift_id"] == "s1"
    assert line["offered"] == 3
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", line["ts"])


def test_json_line_names_the_logger(out):
    get_logger("shiftd.shifts.actor").info("actor.started")

    assert lines(out)[0]["logger"] == "shiftd.shifts.actor"


def test_events_below_the_level_are_dropped():
    stream = io.StringIO()
    configure_logging("warning", "json", stream)
    log = get_logger("shiftd.test")

    log.info("quiet")
    log.warning("loud")

    assert [line["event"] for line in lines(stream)] == ["loud"]


def test_contextvars_are_merged_into_each_line(out):
    structlog.contextvars.bind_contextvars(shift_id="s42")

    get_logger().info("offer.sent")

    assert lines(out)[0]["shift_id"] == "s42"


@pytest.mark.parametrize("key", ["phone", "to", "from_phone", "from"])
def test_phone_keys_are_masked_in_output(out, key):
    get_logger().info("sms.received", **{key: PHONE})

    assert PHONE not in out.getvalue()
    assert lines(out)[0][key] == "…43"


def test_a_list_of_phones_is_masked_element_by_element(out):
    get_logger().info("sms.sent", to=[PHONE, "+15550001"])

    assert lines(out)[0]["to"] == ["…43", "…01"]


@pytest.mark.parametrize("key", ["token", "auth_token", "password", "authorization"])
def test_secret_keys_are_masked_in_output(out, key):
    get_logger().info("provider.configured", **{key: "AC-super-secret-value"})

    assert "super-secret" not in out.getvalue()
    assert lines(out)[0][key] == "AC…"


def test_other_keys_are_left_alone(out):
    get_logger().info("shift.created", shift_id="+15559876543-not-a-phone-key")

    assert lines(out)[0]["shift_id"] == "+15559876543-not-a-phone-key"


def _fail_with_a_phone_in_a_local() -> None:
    caregiver_phone = PHONE  # noqa: F841 - the value a dict traceback with locals would show
    raise ValueError("provider rejected the message")


def test_exception_in_json_has_frames_but_no_local_values(out):
    try:
        _fail_with_a_phone_in_a_local()
    except ValueError:
        get_logger().exception("send.failed")

    assert PHONE not in out.getvalue()
    [line] = lines(out)
    assert line["level"] == "error"
    [exc] = line["exception"]
    assert exc["exc_type"] == "ValueError"
    assert exc["frames"][-1]["name"] == "_fail_with_a_phone_in_a_local"
    assert all("locals" not in frame for frame in exc["frames"])


# --- Console output ---------------------------------------------------------------------


def test_console_format_is_not_json_and_masks_phones():
    stream = io.StringIO()
    configure_logging("info", "console", stream)

    get_logger().info("sms.received", phone=PHONE)

    text = stream.getvalue()
    assert "sms.received" in text
    assert "phone=…43" in text
    assert PHONE not in text
    assert not text.startswith("{")


def test_exception_in_console_has_traceback_but_no_local_values():
    stream = io.StringIO()
    configure_logging("info", "console", stream)

    try:
        _fail_with_a_phone_in_a_local()
    except ValueError:
        get_logger().exception("send.failed")

    text = stream.getvalue()
    assert "Traceback" in text
    assert "ValueError: provider rejected the message" in text
    assert PHONE not in text


# --- Format selection and reconfiguration -----------------------------------------------


def test_auto_format_is_json_when_the_stream_is_not_a_terminal():
    stream = io.StringIO()
    configure_logging("info", "auto", stream)

    get_logger().info("daemon.started")

    assert lines(stream)[0]["event"] == "daemon.started"


def test_auto_format_is_console_on_a_terminal():
    stream = TtyStream()
    configure_logging("info", "auto", stream)

    get_logger().info("daemon.started")

    assert not stream.getvalue().startswith("{")


def test_auto_format_is_json_under_journald_even_on_a_terminal(monkeypatch):
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    stream = TtyStream()
    configure_logging("info", "auto", stream)

    get_logger().info("daemon.started")

    assert lines(stream)[0]["event"] == "daemon.started"


def test_configuring_again_applies_to_loggers_obtained_earlier():
    log = get_logger("shiftd.early")
    first, second = io.StringIO(), io.StringIO()

    configure_logging("info", "json", first)
    log.info("one")
    configure_logging("info", "json", second)
    log.info("two")

    assert [line["event"] for line in lines(first)] == ["one"]
    assert [line["event"] for line in lines(second)] == ["two"]


def test_structlog_configured_directly_applies_to_loggers_obtained_earlier():
    log = get_logger("shiftd.early")
    first, second = io.StringIO(), io.StringIO()
    configure_logging("info", "json", first)
    log.info("one")

    structlog.configure(logger_factory=structlog.WriteLoggerFactory(second))
    log.info("two")

    assert [line["event"] for line in lines(first)] == ["one"]
    assert json.loads(second.getvalue())["event"] == "two"


def test_captured_logs_include_a_logger_used_before_the_capture(out):
    log = get_logger("shiftd.early")
    log.info("before")

    with structlog.testing.capture_logs() as captured:
        log.info("during", shift_id="s1")
    log.info("after")

    assert [c["event"] for c in captured] == ["during"]
    assert [line["event"] for line in lines(out)] == ["before", "after"]


def test_unknown_level_is_refused():
    with pytest.raises(ValueError, match="log level"):
        configure_logging("verbose", "json", io.StringIO())


def test_unknown_format_is_refused():
    with pytest.raises(ValueError, match="log format"):
        configure_logging("info", "xml", io.StringIO())


# --- Masking helpers --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("+15550001", "…01"),
        ("+15559876543", "…43"),
        ("+1 (555) 987-6543", "…43"),
        ("12", "…"),
        ("", "-"),
        (None, "-"),
    ],
)
def test_mask_phone_shows_only_the_last_two_digits(phone, masked):
    assert mask_phone(phone) == masked


@pytest.mark.parametrize(
    ("secret", "masked"),
    [
        ("sk_live_abcdef123", "sk…"),
        ("short", "…"),
        ("", "-"),
        (None, "-"),
    ],
)
def test_mask_secret_shows_at_most_the_first_two_characters(secret, masked):
    assert mask_secret(secret) == masked
