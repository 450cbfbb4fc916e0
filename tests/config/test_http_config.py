"""The `http` configuration section and the secrets it names."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import structlog

from shiftd.config import Config, ConfigError, HttpConfig, parse_config, parse_listen
from shiftd.credentials import CredentialError
from shiftd.http.settings import HttpSettings

ISSUE_SHAPE = """\
http:
  listen: 127.0.0.1:8080
  public_url: https://shifts.example.org   # what the provider calls
  token_file: /etc/shiftd/api-token          # bearer token for REST writes
notifier:
  kind: twilio
  account_sid: AC00000000000000000000000000000000
  auth_token_file: /etc/shiftd/twilio-token
  from_numbers: ["+15550100001", "+15550100002"]
  api_base: https://api.twilio.com
  rate_per_second: 1
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "shiftd.yaml")
    return info.value.problems


def test_the_shape_from_the_issue_loads_with_defaults_for_the_rest() -> None:
    http = parse_config(ISSUE_SHAPE, "shiftd.yaml").http
    assert http == HttpConfig(
        listen="127.0.0.1:8080",
        public_url="https://shifts.example.org",
        token_file=Path("/etc/shiftd/api-token"),
    )
    assert http.max_body == 64 * 1024
    assert http.verify_signatures is True
    assert http.request_timeout == timedelta(seconds=30)


def test_without_an_http_section_there_is_no_http() -> None:
    assert Config().http is None
    assert parse_config("state_dir: ./s\n", "x.yaml").http is None


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("[::1]:8080", ("::1", 8080)),
        (":8080", ("0.0.0.0", 8080)),
        ("localhost:0", ("localhost", 0)),
    ],
)
def test_listen_is_host_and_port(listen: str, expected: tuple[str, int]) -> None:
    assert parse_listen(listen) == expected


@pytest.mark.parametrize("listen", ["8080", "127.0.0.1", "127.0.0.1:http", "::1:80", "h:70000"])
def test_a_listen_that_is_not_host_and_port_is_refused_with_its_line(listen: str) -> None:
    [problem] = problems(f'state_dir: x\nhttp:\n  listen: "{listen}"\n')
    assert problem.startswith("shiftd.yaml:3: http.listen: ")


def test_an_unquoted_port_number_is_refused() -> None:
    [problem] = problems("http:\n  listen: 8080\n")
    assert "http.listen" in problem


def test_verify_signatures_must_be_a_real_boolean() -> None:
    [problem] = problems('http:\n  verify_signatures: "no"\n')
    assert "http.verify_signatures" in problem


def test_public_url_must_be_an_http_url_without_query() -> None:
    assert "http(s) URL" in problems("http:\n  public_url: shifts.example.org\n")[0]
    assert "query" in problems("http:\n  public_url: https://x.org/?a=1\n")[0]
    http = parse_config("http:\n  public_url: https://x.org/base/\n", "x").http
    assert http is not None
    assert http.public_url == "https://x.org/base"


def test_max_body_and_request_timeout_are_bounded() -> None:
    assert "http.max_body" in problems("http:\n  max_body: 10\n")[0]
    assert "http.request_timeout" in problems('http:\n  request_timeout: "0s"\n')[0]


def test_backlog_and_keep_alive_default_to_holding_a_burst_of_a_thousand_connections() -> None:
    http = parse_config("http:\n  listen: 127.0.0.1:8080\n", "x.yaml").http
    assert http is not None
    assert http.backlog == 4096
    assert http.keep_alive_timeout == timedelta(seconds=60)
    assert HttpSettings.from_config(Config(http=http)).keep_alive_timeout == 60.0


def test_backlog_and_keep_alive_are_read_from_the_file() -> None:
    http = parse_config('http:\n  backlog: 8192\n  keep_alive_timeout: "2m"\n', "x.yaml").http
    assert http is not None
    assert (http.backlog, http.keep_alive_timeout) == (8192, timedelta(minutes=2))
    assert HttpSettings.from_config(Config(http=http)).keep_alive_timeout == 120.0


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("backlog: 15", "http.backlog: Input should be greater than or equal to 16"),
        ("backlog: 65536", "http.backlog: Input should be less than or equal to 65535"),
        ('backlog: "4096"', "http.backlog: "),
        ('keep_alive_timeout: "0s"', "http.keep_alive_timeout: must be between 1s and 1h"),
        ('keep_alive_timeout: "61m"', "http.keep_alive_timeout: must be between 1s and 1h"),
        ("keep_alive_timeout: 60", 'http.keep_alive_timeout: durations are strings such as "10m"'),
    ],
)
def test_backlog_and_keep_alive_are_bounded(line: str, problem: str) -> None:
    [found] = problems(f"http:\n  {line}\n")
    assert found.startswith("shiftd.yaml:2: ")
    assert problem in found


def test_settings_read_the_token_files(tmp_path: Path) -> None:
    (tmp_path / "api").write_text("api-secret\n")
    (tmp_path / "tw").write_text("  twilio-now\n")
    (tmp_path / "tw-old").write_text("twilio-before")
    config = Config.model_validate(
        {
            "http": {
                "token_file": tmp_path / "api",
                "twilio_auth_token_file": tmp_path / "tw",
                "twilio_auth_token_previous_file": tmp_path / "tw-old",
            }
        }
    )
    settings = HttpSettings.from_config(config)
    assert settings.api_token == "api-secret"
    assert settings.twilio_tokens == ("twilio-now", "twilio-before")
    assert "secret" not in repr(settings) and "twilio-now" not in repr(settings)


def test_settings_fall_back_to_the_twilio_notifiers_token(tmp_path: Path) -> None:
    (tmp_path / "tw").write_text("notifier-token")
    text = ISSUE_SHAPE.replace("/etc/shiftd/twilio-token", str(tmp_path / "tw")).replace(
        "  token_file: /etc/shiftd/api-token          # bearer token for REST writes\n", ""
    )
    settings = HttpSettings.from_config(parse_config(text, "x.yaml"))
    assert settings.twilio_tokens == ("notifier-token",)
    assert settings.api_token is None


def test_a_bare_name_is_read_from_the_credentials_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "shiftd-api-token").write_text("from-systemd")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    config = Config.model_validate({"http": {"token_file": "shiftd-api-token"}})
    assert HttpSettings.from_config(config).api_token == "from-systemd"


def test_a_missing_token_file_is_a_credential_error_naming_the_file(tmp_path: Path) -> None:
    config = Config.model_validate({"http": {"token_file": tmp_path / "nope"}})
    with pytest.raises(CredentialError, match="nope: cannot read secret"):
        HttpSettings.from_config(config)


def test_switching_signatures_off_is_warned_about_at_start() -> None:
    with structlog.testing.capture_logs() as logs:
        HttpSettings(api_token="t", verify_signatures=False).log_warnings()
    assert [e["event"] for e in logs] == ["http.signatures_unchecked"]
    assert logs[0]["log_level"] == "warning"


def test_no_auth_token_and_no_api_token_are_warned_about_at_start() -> None:
    with structlog.testing.capture_logs() as logs:
        HttpSettings().log_warnings()
    assert {e["event"] for e in logs} == {"http.rest_disabled", "http.webhooks_disabled"}
