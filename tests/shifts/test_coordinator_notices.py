"""Coordinators told what needs them: nobody accepted in time, offers about to close, a
holder who dropped the shift, and the shift gone unfilled; each notice once, with the
shift's id, role, local start and a link to its page."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path
from typing import Any

import pytest
import trio

from shiftd.config import ConfigError, SmtpConfig, load_config
from shiftd.models import Channel, Purpose
from shiftd.notify.base import Outgoing, TransientSendError
from shiftd.notify.email import EmailNotifier
from shiftd.testing.engine import (
    EPOCH,
    FakeProvider,
    Harness,
    StartEngine,
    caregiver,
    make_config,
    phone,
    shift,
)
from shiftd.testing.ports import reserved_port

COORDINATOR = "+15550100999"
HOOK = "https://ops.example.org/hooks/shiftd"
LINK = "https://shifts.example.org/board/shifts/shift-1"


def _config(tmp_path: Path, **coordinator: Any) -> Any:
    return make_config(
        tmp_path,
        http={"public_url": "https://shifts.example.org"},
        organizations={
            "default": {
                "offer_lead_time": "1h",
                "coordinator": {"phone": COORDINATOR, "webhook": HOOK, **coordinator},
            }
        },
    )


@pytest.fixture
async def told(start_engine: StartEngine, tmp_path: Path) -> Harness:
    h: Harness = await start_engine(
        _config(tmp_path, no_accept_after="30m", warn_before_close="2h")
    )
    roster = [caregiver(n) for n in range(1, 4)]
    await h.engine.import_roster(roster, [shift(start_in_h=18)])  # offers close at 17h
    return h


def _texts(h: Harness, purpose: Purpose) -> list[str]:
    return [m.body for m in h.provider.of(purpose, Channel.SMS)]


async def test_nobody_accepting_in_time_is_told_once_with_id_role_start_and_link(
    told: Harness, autojump_clock: object
) -> None:
    await told.engine.fanout("shift-1")
    await trio.sleep(29 * 60)
    await told.settle()
    assert _texts(told, Purpose.NO_ACCEPT) == []
    await trio.sleep(2 * 60)
    await told.settle()
    assert _texts(told, Purpose.NO_ACCEPT) == [
        "Sunrise Care: nobody has taken the RN shift Wed Jul 2, 04:00-12:00 yet; "
        f"3 caregivers contacted. Shift shift-1: {LINK}"
    ]
    await trio.sleep(3 * 3600)
    await told.settle()
    assert len(_texts(told, Purpose.NO_ACCEPT)) == 1


async def test_a_claim_in_time_means_no_notice(told: Harness, autojump_clock: object) -> None:
    await told.engine.fanout("shift-1")
    await trio.sleep(60)
    await told.engine.inbound(phone(2), "YES")
    await trio.sleep(20 * 3600)
    await told.settle()
    notices = [m for m in told.provider.sent if m.caregiver_id.startswith("coordinator:")]
    assert notices == []


async def test_offers_about_to_close_then_closed_are_each_told(
    told: Harness, autojump_clock: object
) -> None:
    await told.engine.fanout("shift-1")
    await trio.sleep((15 * 60 - 1) * 60)  # 14:59 after the fanout at 10:00 local
    await told.settle()
    assert _texts(told, Purpose.CLOSING) == []
    await trio.sleep(2 * 60)
    await told.settle()
    assert _texts(told, Purpose.CLOSING) == [
        "Sunrise Care: the RN shift Wed Jul 2, 04:00-12:00 is still open and offers close at "
        f"03:00; 3 caregivers contacted. Shift shift-1: {LINK}"
    ]
    await trio.sleep(3 * 3600)
    await told.settle()
    assert len(_texts(told, Purpose.CLOSING)) == 1
    assert _texts(told, Purpose.UNFILLED) == [
        "Sunrise Care: the RN shift Wed Jul 2, 04:00-12:00 went unfilled; "
        f"3 caregivers contacted. Shift shift-1: {LINK}"
    ]


async def test_a_holder_dropping_the_shift_is_told_by_text_and_signed_webhook(
    told: Harness, autojump_clock: object
) -> None:
    await told.engine.fanout("shift-1")
    await told.engine.inbound(phone(2), "YES")
    await trio.sleep(60)
    await told.engine.inbound(phone(2), "CANCEL")
    await told.settle()
    assert _texts(told, Purpose.HOLDER_DROPPED) == [
        "Sunrise Care: the caregiver holding the RN shift Wed Jul 2, 04:00-12:00 dropped it; "
        f"offering it again. Shift shift-1: {LINK}"
    ]
    (hook,) = told.provider.of(Purpose.HOLDER_DROPPED, Channel.WEBHOOK)
    payload = json.loads(hook.body)
    assert payload["event"] == "shift.released" and payload["shift_id"] == "shift-1"
    assert (payload["role"], payload["start_local"], payload["link"]) == (
        "RN",
        "2025-07-02T04:00:00-04:00",
        LINK,
    )
    timeline = (await told.engine.store.shift_detail("shift-1"))["timeline"]
    assert {"notice": "released"} in [e["detail"] for e in timeline]


async def test_a_coordinator_unassigning_is_not_told_of_it(
    told: Harness, autojump_clock: object
) -> None:
    await told.engine.fanout("shift-1")
    await told.engine.inbound(phone(2), "YES")
    await told.engine.unassign("shift-1")
    await told.settle()
    assert _texts(told, Purpose.HOLDER_DROPPED) == []


async def test_without_the_settings_only_the_unfilled_notice_goes(
    start_engine: StartEngine, tmp_path: Path, autojump_clock: object
) -> None:
    h = await start_engine(_config(tmp_path))
    await h.engine.import_roster([caregiver(1)], [shift(start_in_h=18)])
    await h.engine.fanout("shift-1")
    await trio.sleep(18 * 3600)
    await h.settle()
    purposes = {m.purpose for m in h.provider.sent if m.caregiver_id.startswith("coordinator:")}
    assert purposes == {Purpose.UNFILLED}
    assert EPOCH.hour == 14  # the times above: a fanout at 10:00 New York time


# ---- email ----------------------------------------------------------------------------------


async def test_a_coordinator_with_an_email_address_is_mailed_too(
    start_engine: StartEngine, tmp_path: Path, autojump_clock: object
) -> None:
    config = _config(tmp_path, email="ops@example.org", no_accept_after="30m")
    h = await start_engine(
        config.model_copy(
            update={"smtp": SmtpConfig(host="127.0.0.1", sender="shiftd@example.org")}
        )
    )
    await h.engine.import_roster([caregiver(1)], [shift(start_in_h=18)])
    await h.engine.fanout("shift-1")
    await trio.sleep(31 * 60)
    await h.settle()
    (mail,) = h.provider.of(Purpose.NO_ACCEPT, Channel.EMAIL)
    assert mail.to == "ops@example.org" and mail.body.endswith(f"Shift shift-1: {LINK}")


def test_email_without_an_smtp_server_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "shiftd.yaml"
    path.write_text("organizations:\n  default:\n    coordinator:\n      email: ops@example.org\n")
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert "coordinator.email: email needs an smtp section" in str(raised.value)


class _Inbox:
    """An aiosmtpd handler keeping what it is given."""

    def __init__(self) -> None:
        self.mails: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append((envelope.mail_from, envelope.rcpt_tos, envelope.content))
        return "250 OK"


def _outgoing(to: str = "ops@example.org") -> Outgoing:
    body = "Sunrise Care: nobody has taken the RN shift Wed Jul 2, 04:00-12:00 yet; 3 contacted."
    return Outgoing(
        7, Channel.EMAIL, Purpose.NO_ACCEPT, to, body, "coordinator:default", "s1", EPOCH
    )


def test_email_goes_over_smtp_to_a_local_server() -> None:
    aiosmtpd = pytest.importorskip("aiosmtpd.controller")
    inbox = _Inbox()
    # aiosmtpd's Controller cannot report a port 0 gave it: it is handed one held for it.
    with reserved_port() as port:
        server = aiosmtpd.Controller(inbox, hostname="127.0.0.1", port=port)
        server.start()
        try:
            smtp = SmtpConfig(host="127.0.0.1", port=port, sender="shiftd@example.org")
            inner = FakeProvider()

            async def main() -> None:
                notifier = EmailNotifier(inner, smtp)
                with trio.fail_after(30):
                    assert await notifier.send(_outgoing())
                await notifier.aclose()

            trio.run(main)
        finally:
            server.stop()
    ((sender, recipients, content),) = inbox.mails
    assert (sender, recipients) == ("shiftd@example.org", ["ops@example.org"])
    mail = email.message_from_bytes(content, policy=email.policy.default)
    assert mail["Subject"] == "Sunrise Care: nobody has taken the RN shift Wed Jul 2,..."
    assert "3 contacted." in mail.get_content()
    assert inner.sent == []  # email never reaches the SMS/voice provider


def test_no_smtp_server_listening_is_a_failure_the_sender_retries() -> None:
    with reserved_port() as port:  # held: nobody can listen on it
        smtp = SmtpConfig(host="127.0.0.1", port=port, sender="shiftd@example.org", timeout="5s")

        async def main() -> None:
            notifier = EmailNotifier(FakeProvider(), smtp)
            with trio.fail_after(30), pytest.raises(TransientSendError):
                await notifier.send(_outgoing())

        trio.run(main)
