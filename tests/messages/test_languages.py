"""Caregivers read and hear shiftd in their language: the roster's `language` (BCP 47), else
the organization's; replies in English or Spanish are understood whatever the setting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import trio
from pydantic import ValidationError

from shiftd import cli
from shiftd.config import Config
from shiftd.models import Caregiver, Channel, Outcome, Purpose
from shiftd.testing.engine import Harness, StartEngine, caregiver, make_config, phone, shift


def spanish(n: int, language: str = "es-MX") -> Caregiver:
    return caregiver(n).model_copy(update={"language": language})


async def roster(h: Harness, *caregivers: Caregiver) -> None:
    await h.engine.import_roster(list(caregivers), [shift()])
    await h.engine.fanout("shift-1")
    await h.settle()


async def test_a_spanish_speaking_caregiver_is_offered_the_shift_in_spanish(
    start_engine: StartEngine, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine()

    await roster(h, caregiver(1), spanish(2))

    [english] = h.provider.to("cg-1", Purpose.OFFER)
    [offer] = h.provider.to("cg-2", Purpose.OFFER)
    assert "open RN shift" in english.body
    assert "turno de RN" in offer.body and "Responda SI" in offer.body


async def test_her_confirmation_and_the_others_filled_texts_are_each_in_their_language(
    start_engine: StartEngine, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine()
    await roster(h, caregiver(1), spanish(2), spanish(3, "es"))

    result = await h.engine.inbound(phone(2), "Sí, la tomo")
    await h.settle()

    assert result.outcome is Outcome.CLAIMED
    [confirm] = h.provider.to("cg-2", Purpose.CONFIRM)
    assert "confirmado" in confirm.body
    assert "ya se cubri" in h.provider.to("cg-3", Purpose.FILLED)[0].body
    assert "has been filled" in h.provider.to("cg-1", Purpose.FILLED)[0].body


@pytest.mark.parametrize(("who", "body"), [(1, "claro que sí"), (2, "yes I'll take it")])
async def test_replies_in_either_language_are_understood_whatever_her_setting(
    start_engine: StartEngine, autojump_clock: trio.testing.MockClock, who: int, body: str
) -> None:
    h: Harness = await start_engine()
    await roster(h, caregiver(1), spanish(2))

    result = await h.engine.inbound(phone(who), body)

    assert (result.outcome, result.caregiver_id) == (Outcome.CLAIMED, f"cg-{who}")


async def test_an_unclear_spanish_reply_is_asked_back_in_spanish(
    start_engine: StartEngine, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine()
    await roster(h, spanish(2))

    result = await h.engine.inbound(phone(2), "Sí pero llego tarde")

    assert result.outcome is Outcome.UNKNOWN_INTENT
    assert result.reply is not None and "responda SI" in result.reply


async def test_the_organizations_language_is_used_when_the_roster_sets_none(
    start_engine: StartEngine, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    config = make_config(tmp_path, organizations={"org-1": {"language": "es"}})
    h: Harness = await start_engine(config)

    await roster(h, caregiver(1), caregiver(2).model_copy(update={"language": "en-US"}))

    assert "turno de RN" in h.provider.to("cg-1", Purpose.OFFER)[0].body
    assert "open RN shift" in h.provider.to("cg-2", Purpose.OFFER)[0].body


async def test_a_language_shiftd_has_no_texts_in_falls_back_to_the_organizations(
    start_engine: StartEngine, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine()

    await roster(h, caregiver(1).model_copy(update={"language": "fr-CA"}))

    assert "open RN shift" in h.provider.to("cg-1", Purpose.OFFER)[0].body


async def test_an_organization_rewords_its_spanish_offer(
    start_engine: StartEngine, tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    reworded = "{agency}: turno {role} {window}. SI {code} o NO {code}."
    config = make_config(
        tmp_path,
        organizations={"org-1": {"templates_by_language": {"es": {"offer_sms": reworded}}}},
    )
    h: Harness = await start_engine(config)

    await roster(h, caregiver(1), spanish(2))

    assert h.provider.to("cg-2", Purpose.OFFER)[0].body.startswith("Sunrise Care: turno RN ")
    assert "open RN shift" in h.provider.to("cg-1", Purpose.OFFER)[0].body


def test_an_organization_language_without_built_in_texts_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"no built-in texts in 'fr' \(built in: en, es\)"):
        Config.model_validate(
            {"state_dir": tmp_path, "organizations": {"acme": {"language": "fr"}}}
        )


def test_a_roster_language_must_be_a_language_tag() -> None:
    with pytest.raises(ValidationError, match="language"):
        Caregiver(id="x", name="X", role="RN", phone="+15550001", language="Spanish!")


async def test_the_roster_keeps_a_caregivers_language_until_a_reimport_sets_another(
    start_engine: StartEngine, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine()
    await h.engine.import_roster([spanish(1)], [])

    kept = await h.engine.import_roster([caregiver(1)], [])  # no language: as stored
    changed = await h.engine.import_roster([spanish(1, "en")], [])

    assert (kept["caregivers"]["unchanged"], changed["caregivers"]["updated"]) == (1, 1)
    row = await h.engine.store.caregiver("cg-1")
    assert row is not None and row.language == "en"


def test_check_config_checks_the_spanish_templates_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "shiftd.yaml"
    path.write_text(
        "organizations:\n"
        "  acme:\n"
        "    templates_by_language:\n"
        "      es:\n"
        f'        confirm: "{{agency}}: confirmado {{window}} {"x" * 150}"\n'
    )

    assert cli.main(["check-config", str(path)]) == 0

    err = capsys.readouterr().err
    assert f"{path}:5: organizations.acme.templates_by_language.es.confirm: warning:" in err


async def test_the_first_offer_to_a_phone_says_how_to_stop_texts_and_later_ones_do_not(
    start_engine: StartEngine, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine()
    await roster(h, caregiver(1), spanish(2))
    await h.engine.add_shift(shift("shift-2", start_in_h=42))

    await h.engine.fanout("shift-2")
    await h.settle()

    first, second = h.provider.to("cg-1", Purpose.OFFER)
    assert first.body.endswith("Reply STOP to opt out.")
    assert "STOP" not in second.body
    assert h.provider.to("cg-2", Purpose.OFFER)[0].body.endswith("Responda STOP para salir.")


def _voice_rows(h: Harness) -> list[Any]:
    return h.provider.of(Purpose.OFFER, Channel.VOICE)


async def test_her_call_reads_the_offer_in_spanish(
    start_engine: StartEngine, autojump_clock: trio.testing.MockClock
) -> None:
    h: Harness = await start_engine()
    await roster(h, caregiver(1), spanish(2))

    await trio.sleep(11 * 60)
    await h.settle()

    calls = {m.caregiver_id: m.body for m in _voice_rows(h)}
    assert calls["cg-2"].startswith("Hola, le llama Sunrise Care.")
    assert calls["cg-1"].startswith("Hello, this is Sunrise Care.")
