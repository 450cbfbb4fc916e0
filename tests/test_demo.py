"""`shiftd demo`: the real engine plays a morning on a virtual clock (run_demo calls trio.run
itself, so these are plain synchronous tests)."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import structlog

from shiftd.demo import ROSTER, run_demo

RNS = [c.name for c in ROSTER if c.role == "RN"]
OTHERS = [c.name for c in ROSTER if c.role != "RN"]
DECLINER = "Bea Lindqvist"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The command configures logging for the process (onto a stream that capture closes)."""
    yield
    structlog.reset_defaults()


@pytest.fixture(scope="module")
def transcript() -> str:
    """One play of the demo (a fraction of a second: ten virtual minutes pass in a blink)."""
    out = io.StringIO()
    assert run_demo(out=out) == 0
    return out.getvalue()


def _lines(text: str, *parts: str) -> list[str]:
    return [line for line in text.splitlines() if all(p in line for p in parts)]


def test_the_demo_exits_0() -> None:
    assert run_demo(out=io.StringIO()) == 0


def test_every_rn_is_texted_the_offer_once_and_nobody_else_is(transcript: str) -> None:
    for name in RNS:
        assert len(_lines(transcript, "SMS ", name, "[offer]")) == 1, name
    for name in OTHERS:
        assert not _lines(transcript, name), name


def test_a_decline_and_an_unclear_reply_are_told_apart(transcript: str) -> None:
    assert len(_lines(transcript, "'no thanks'", "⇒ declined")) == 1
    assert len(_lines(transcript, "'maybe?'", "⇒ unknown_intent")) == 1


def test_escalation_calls_every_rn_who_did_not_decline(transcript: str) -> None:
    called = {name for name in RNS if _lines(transcript, "CALL", name, "[offer]")}
    assert called == set(RNS) - {DECLINER}


def test_exactly_one_accept_claims_the_shift_and_the_late_are_told_it_is_filled(
    transcript: str,
) -> None:
    assert transcript.count("⇒ claimed") == 1
    assert len(_lines(transcript, "⇒ already_filled")) == 2  # the same-instant loser, Carlos
    assert len(_lines(transcript, "[confirm]")) == 1


def test_the_summary_reports_the_fill_and_its_time(transcript: str) -> None:
    summary = transcript.split("\nSummary\n", 1)[1]
    assert "shift shift-rn-0702: filled by " in summary
    assert "time to fill: 13m 00s" in summary
