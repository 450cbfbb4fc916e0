"""`shiftd simulate --jobs N`: how many processes replay runs at once."""

from __future__ import annotations

import pytest
from roles_month import EXAMPLES

from shiftd.cli import build_parser, main
from shiftd.simulate.pool import available_cpus

INPUTS = [
    "simulate",
    "--policy",
    str(EXAMPLES / "policy-text-everyone.yaml"),
    "--shifts",
    str(EXAMPLES / "simulate-shifts.csv"),
    "--roster",
    str(EXAMPLES / "simulate-roster.json"),
]


def test_jobs_defaults_to_the_cpus_available_and_takes_a_number() -> None:
    parser = build_parser()
    assert parser.parse_args(INPUTS).jobs == available_cpus()
    assert parser.parse_args([*INPUTS, "--jobs", "3"]).jobs == 3
    assert parser.parse_args([*INPUTS, "-j", "1"]).jobs == 1


@pytest.mark.parametrize("value", ["0", "-2", "two"])
def test_a_jobs_value_that_is_not_a_positive_number_is_a_usage_error(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        main([*INPUTS, f"--jobs={value}"])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert "argument --jobs/-j" in err and value in err
