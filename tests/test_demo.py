"""`shiftd demo`: the real engine plays a morning on a virtual clock (run_demo calls trio.run
itself, so these are plain synchronous tests)."""

from __future__ import annotations

import io
import re
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
def whole() -> str:
    """One play of the demo (a fraction of a second: hours of virtual time pass in a blink)."""
    out = io.StringIO()
    assert run_demo(out=out) == 0
    return out.getvalue()


@pytest.fixture(scope="module")
def transcript(whole: str) -> str:
    """The first scenario: the RN shift under the default policy."""
    return whole.split("second scenario", 1)[0]


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
    assert len(_lines(transcript, "'Sí, pero llego tarde'", "⇒ unknown_intent")) == 1


def test_each_reply_is_printed_before_what_it_causes(whole: str) -> None:
    lines = whole.splitlines()
    for effect, reply in [
        ("[declined]", "'no thanks'"),
        ("[help]", "'Sí, pero llego tarde'"),
        ("[confirm] Sunrise Care: confirmed! The RN", "⇒ claimed"),
        ("[released]", "'cancel'"),
    ]:
        caused = next(i for i, line in enumerate(lines) if effect in line)
        said = next(i for i, line in enumerate(lines) if reply in line)
        assert said < caused, (reply, effect)


def test_the_spanish_speaking_caregiver_reads_and_hears_spanish(transcript: str) -> None:
    [offer] = _lines(transcript, "SMS ", "Carlos Ruiz", "[offer]")
    [call] = _lines(transcript, "CALL", "Carlos Ruiz", "[offer]")
    [asked_back] = _lines(transcript, "Carlos Ruiz", "[help]")
    assert "Responda SI 1 para tomarlo" in offer
    assert "Hola, le llama Sunrise Care" in call
    assert "responda SI 1" in asked_back


def test_escalation_calls_every_rn_who_did_not_decline(transcript: str) -> None:
    called = {name for name in RNS if _lines(transcript, "CALL", name, "[offer]")}
    assert called == set(RNS) - {DECLINER}


def test_exactly_one_accept_claims_the_shift_and_the_late_are_told_it_is_filled(
    transcript: str,
) -> None:
    assert transcript.count("⇒ claimed") == 1
    assert len(_lines(transcript, "⇒ already_filled")) == 2  # the same-instant loser, Carlos
    assert len(_lines(transcript, "[confirm]")) == 1


def test_the_summary_reports_the_fill_and_its_time(whole: str) -> None:
    summary = whole.split("\nSummary\n", 1)[1]
    assert "shift shift-rn-0702: filled by " in summary
    assert "time to fill: 13m 00s" in summary


# ---- the second scenario: waves, a release by text, a refill ----------------------------


def _second(whole: str) -> str:
    return whole.split("second scenario", 1)[1].split("\nSummary\n", 1)[0]


def test_the_lpn_shift_goes_to_the_preferred_first_and_to_the_others_five_minutes_later(
    whole: str,
) -> None:
    second = _second(whole)
    first_wave = {line.split()[3] for line in _lines(second, "09:00:00", "[offer]")}
    later_wave = {line.split()[3] for line in _lines(second, "09:45:00", "[offer]")}
    assert first_wave == {"Wei", "Barry"}
    assert later_wave == {"Farah", "Gus"}


def test_cancel_from_the_holder_releases_the_shift_and_it_is_offered_again_without_them(
    whole: str,
) -> None:
    second = _second(whole)
    assert len(_lines(second, "'cancel'", "⇒ released")) == 1
    assert len(_lines(second, "Barry Kozumikov", "[released]")) == 1
    assert len(_lines(second, "Barry Kozumikov", "[offer]")) == 1  # never offered it again
    assert len(_lines(second, "09:40:00", "Wei Yan", "[offer]")) == 1  # the first wave again


def test_the_released_shift_is_refilled_and_the_summary_shows_its_timeline(
    whole: str,
) -> None:
    summary = whole.split("\nSummary\n", 1)[1]
    assert "shift shift-lpn-0702: filled by Gus Almeida after a release" in summary
    assert "its timeline: fanout_started, wave, claimed, released, wave, wave, claimed" in summary


def test_the_demo_ends_with_a_summary_counting_messages_by_channel() -> None:
    out = io.StringIO()
    try:
        assert run_demo(out=out) == 0
    finally:
        structlog.reset_defaults()
    transcript = out.getvalue()
    timeline, summary = transcript.split("\nSummary\n", 1)
    texts = len(re.findall(r"  →  SMS  ", timeline))
    calls = len(re.findall(r"  →  CALL ", timeline))

    assert texts > 0 and calls > 0
    assert f"  messages: {texts} SMS, {calls} calls (" in summary
    assert re.search(r"  time to fill: \d+m \d\ds\n", summary)
    assert transcript.rstrip().splitlines()[-1].startswith("  every message went out")
