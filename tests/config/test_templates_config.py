"""Templates in the configuration: errors name FILE:LINE: key.path; `check-config` warns
(and still exits 0) when a text needs more than one SMS segment."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from shiftd import cli
from shiftd.config import ConfigError, key_line, load_config

TOO_LONG = "{agency}: " + "x" * 166  # 172 characters for "Acme"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "shiftd.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    return info.value.problems


def test_an_unknown_field_is_an_error_at_its_template_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        organizations:
          acme:
            templates:
              offer_sms: "Hi {patient}"
        """,
    )

    (problem,) = problems_of(path)

    assert problem.startswith(f"{path}:4: organizations.acme.templates.offer_sms: ")
    assert "unknown field 'patient'" in problem


def test_an_unknown_template_name_is_an_error_at_its_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        organizations:
          default:
            templates:
              confirm: "{agency}: yours"
              ofer_sms: "{agency}"
        """,
    )

    (problem,) = problems_of(path)

    assert problem.startswith(f"{path}:5: organizations.default.templates.ofer_sms: ")
    assert "did you mean 'offer_sms'" in problem


def test_every_bad_template_is_reported_on_its_own_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        organizations:
          acme:
            templates:
              confirm: "{code}"
              filled: "{role"
        """,
    )

    problems = problems_of(path)

    assert [p.split(": ")[0:2] for p in problems] == [
        [f"{path}:4", "organizations.acme.templates.confirm"],
        [f"{path}:5", "organizations.acme.templates.filled"],
    ]


def test_good_templates_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        organizations:
          acme:
            templates:
              offer_sms: "{agency}: {role} {window} {place}. YES {code} / NO {code}"
        """,
    )

    config = load_config(path)

    assert set(config.organizations["acme"].templates) == {"offer_sms"}


def test_key_line_finds_the_deepest_key_present(tmp_path: Path) -> None:
    path = write(tmp_path, "agency_name: Acme\norganizations:\n  acme:\n    name: Acme\n")

    assert key_line(path, ("organizations", "acme", "name")) == 4
    assert key_line(path, ("organizations", "acme", "templates", "x")) == 3
    assert key_line(tmp_path / "missing.yaml", ("agency_name",)) == 1


# --------------------------------------------------------------------------- check-config


def test_check_config_warns_about_a_template_too_long_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        f"""\
        agency_name: Acme
        organizations:
          acme:
            templates:
              confirm: "{{agency}}: the shift {{window}} is yours."
              offer_sms: "{TOO_LONG}"
        """,
    )

    assert cli.main(["check-config", str(path)]) == 0

    out, err = capsys.readouterr()
    assert err.splitlines() == [
        f"{path}:6: organizations.acme.templates.offer_sms: warning: renders to 172 "
        "characters: 2 GSM-7 segments (one holds 160); sent cut to 137 characters (its end "
        "is lost)"
    ]
    assert f"{path}: ok" in out
    assert "1 warning)" in out


def test_check_config_is_silent_about_a_template_that_fits(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        """\
        organizations:
          acme:
            templates:
              offer_sms: "{agency}: {role} shift {window}. Reply YES {code} or NO {code}."
        """,
    )

    assert cli.main(["check-config", str(path)]) == 0

    out, err = capsys.readouterr()
    assert err == ""
    assert "warning" not in out


def test_check_config_blames_the_agency_name_when_built_in_texts_get_too_long(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, 'timezone: "UTC"\nagency_name: "Soins à domicile Côte-Nord"\n')

    assert cli.main(["check-config", str(path)]) == 0

    err = capsys.readouterr().err
    assert f"{path}:2: agency_name: warning: built-in en offer_sms text renders to " in err
    assert f"{path}:2: agency_name: warning: built-in es offer_sms text renders to " in err
    assert "sent with the agency name shortened to 'Soins à dom...'" in err


def test_check_config_blames_an_inherited_template_with_the_organizations_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fits_for_acme = "{agency}: the {role} shift {window} is yours. " + "x" * 70
    path = write(
        tmp_path,
        f"""\
        agency_name: Acme
        organizations:
          default:
            templates:
              confirm: "{fits_for_acme}"
          big:
            name: "Springfield Regional Home Health Care Co"
        """,
    )

    assert cli.main(["check-config", str(path)]) == 0

    (warning,) = [w for w in capsys.readouterr().err.splitlines() if "templates.confirm" in w]
    assert warning.startswith(
        f"{path}:5: organizations.default.templates.confirm: warning: "
        "with organization big's name, renders to "
    )


def test_check_config_warns_about_a_help_text_too_long(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        tmp_path,
        f"""\
        organizations:
          acme:
            help_text: "{"Call us. " * 20}"
        """,
    )

    assert cli.main(["check-config", str(path)]) == 0

    err = capsys.readouterr().err
    assert err.startswith(f"{path}:3: organizations.acme.help_text: warning: is 180 characters:")
