"""`shiftd demo`: a morning of shift filling, played by the real engine on a virtual clock.

Same actor, store, sender and outbox code as the daemon (SQLite in a temporary directory);
only the clock is Trio's MockClock, so ten minutes pass in a blink. Two scenarios: an RN
shift filled under the default policy (texts, then calls; one of the RNs reads Spanish),
and an LPN shift whose branch
offers it in waves, whose first taker drops out by texting CANCEL, and which is refilled.
The timeline is the same on every run but for one thing: which of the two simultaneous
accepts wins is up to Trio's scheduler (it deliberately varies the order of tasks that are
ready at once), as in life.
"""

from __future__ import annotations

import sys
import tempfile
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

import trio
import trio.testing

from .clock import Clock
from .config import Config
from .engine import Engine
from .logs import configure_logging
from .models import Caregiver, Channel, EventKind, Shift
from .notify.base import Outgoing

TZ = ZoneInfo("America/New_York")
START = datetime(2025, 7, 1, 6, 30, tzinfo=TZ)
ROSTER = [
    Caregiver(id="cg-alice", name="Alice Ongwele", role="RN", phone="+1 (555) 010-0001"),
    Caregiver(id="cg-bea", name="Bea Lindqvist", role="RN", phone="555.010.0002"),
    Caregiver(
        id="cg-carlos", name="Carlos Ruiz", role="RN", phone="555-010-0003", language="es-MX"
    ),
    Caregiver(id="cg-dana", name="Dana Whitfield", role="RN", phone="5550100004"),
    Caregiver(id="cg-evan", name="Evan Okafor", role="RN", phone="+15550100005"),
    Caregiver(id="cg-wei", name="Wei Yan", role="LPN", phone="+15550100006", tags=("preferred",)),
    Caregiver(
        id="cg-barry",
        name="Barry Kozumikov",
        role="LPN",
        phone="+15550100007",
        tags=("preferred",),
    ),
    Caregiver(id="cg-farah", name="Farah Haddad", role="LPN", phone="+15550100008"),
    Caregiver(id="cg-gus", name="Gus Almeida", role="LPN", phone="+15550100009"),
    Caregiver(id="cg-hana", name="Hana Sato", role="CNA", phone="+15550100010"),
    Caregiver(id="cg-ivan", name="Ivan Petrov", role="CNA", phone="+15550100011"),
    Caregiver(id="cg-jade", name="Jade Moreau", role="CNA", phone="+15550100012"),
]
SHIFT = Shift(
    id="shift-rn-0702",
    organization_id="sunrise-north",
    role_required="RN",
    start_time=datetime(2025, 7, 2, 8, 0, tzinfo=TZ),
    end_time=datetime(2025, 7, 2, 16, 0, tzinfo=TZ),
)
LPN_SHIFT = Shift(
    id="shift-lpn-0702",
    organization_id="sunrise-south",
    role_required="LPN",
    start_time=datetime(2025, 7, 2, 16, 0, tzinfo=TZ),
    end_time=datetime(2025, 7, 2, 23, 0, tzinfo=TZ),
    location="Riverside",
)
SOUTH_POLICY = [
    {"at": "0s", "channel": "sms", "tags": ["preferred"]},
    {"at": "5m", "channel": "sms"},
    {"at": "15m", "channel": "voice", "audience": "offered"},
]
SETTINGS = {
    "agency_name": "Sunrise Care",
    "timezone": "America/New_York",
    "escalation": {"delay": "10m"},
    "caregiver_tags": ["preferred"],
    "organizations": {"sunrise-south": {"policy": SOUTH_POLICY}},
}
"""The demo's configuration but for its state directory."""
NAMES = {c.id: c.name for c in ROSTER}
PHONES = {c.name.split()[0]: c.phone for c in ROSTER}


class _Timeline:
    """Prints the morning: outbound messages (as the provider would send them) and events.

    While replies are being handled (`hold`), what goes out is kept back and printed after
    them (`release`), so each reply reads before what it causes."""

    def __init__(self, clock: Clock, out: TextIO) -> None:
        self.clock = clock
        self.out = out
        self.sent: list[Outgoing] = []
        self._holding = 0
        self._held: list[str] = []

    def line(self, arrow: str, text: str) -> None:
        stamped = f"{self.clock.now().astimezone(TZ):%H:%M:%S}  {arrow} {text}\n"
        if self._holding and arrow == "→ ":
            self._held.append(stamped)
        else:
            self.out.write(stamped)

    def hold(self) -> None:
        self._holding += 1

    def release(self) -> None:
        self._holding -= 1
        if not self._holding:
            self.out.write("".join(self._held))
            self._held.clear()

    def note(self, text: str) -> None:
        self.line("··", text)

    async def send(self, message: Outgoing) -> str | None:
        self.sent.append(message)
        kind = "SMS " if message.channel is Channel.SMS else "CALL"
        who = NAMES.get(message.caregiver_id, message.caregiver_id)
        self.line("→ ", f"{kind} {who:<15} [{message.purpose.value}] {message.body}")
        return None

    async def aclose(self) -> None:
        return None


async def _play(state_dir: Path, out: TextIO) -> None:
    clock = Clock(START)
    timeline = _Timeline(clock, out)
    config = Config.model_validate({"state_dir": state_dir, **SETTINGS})
    engine = Engine(config, clock=clock, notifier=timeline)

    async def reply(first_name: str, body: str, channel: Channel = Channel.SMS) -> None:
        kind = "SMS " if channel is Channel.SMS else "KEYS"
        timeline.hold()
        try:
            result = await engine.inbound(PHONES[first_name], body, channel)
            await trio.testing.wait_all_tasks_blocked()  # let its answer go out
            outcome = result.outcome.value
            timeline.line("← ", f"{kind} {first_name:<15} {body!r:<12} ⇒ {outcome}")
        finally:
            timeline.release()

    async def wait_until(minutes: int) -> None:
        await trio.sleep_until(clock.deadline(START + timedelta(minutes=minutes)))
        await trio.testing.wait_all_tasks_blocked()

    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        await engine.import_roster(ROSTER, [SHIFT, LPN_SHIFT])
        roles = Counter(c.role for c in ROSTER)
        timeline.note(
            f"roster: {len(ROSTER)} caregivers ({', '.join(f'{n} {r}' for r, n in roles.items())})"
        )
        timeline.note(
            f"open shift: RN {engine.messages.window(await engine.shift(SHIFT.id))} "
            "(Sarah Kim called out); coordinator starts the fanout"
        )
        result = await engine.fanout(SHIFT.id)
        await trio.testing.wait_all_tasks_blocked()
        timeline.note(f"fanout {result.status.value}: {result.offered} RNs texted at once")
        again = await engine.fanout(SHIFT.id)
        timeline.note(f"coordinator clicks fanout again: {again.status.value}, nothing re-sent")

        await wait_until(2)
        await reply("Bea", "no thanks")
        await wait_until(4)
        timeline.note("Carlos reads Spanish (roster language es-MX): his texts are in Spanish")
        await reply("Carlos", "Sí, pero llego tarde")
        timeline.note("nobody has accepted; calls go out at 06:40 to those who did not decline")
        await wait_until(10)
        timeline.note("escalated: phoning every RN who has not declined")
        await wait_until(13)
        timeline.note("Dana presses 1 on her call and Evan texts YES in the same instant")
        async with trio.open_nursery() as both:
            both.start_soon(reply, "Dana", "1", Channel.VOICE)
            both.start_soon(reply, "Evan", "YES")
        await trio.testing.wait_all_tasks_blocked()
        await wait_until(15)
        await reply("Carlos", "sí, la tomo")
        filled = await engine.shift(SHIFT.id)

        await wait_until(150)
        timeline.out.write("\n")
        timeline.note(
            f"second scenario: LPN {engine.messages.window(LPN_SHIFT)} at Riverside;"
            " the south branch offers in waves (preferred first, all at +5m, calls at +15m)"
        )
        result = await engine.fanout(LPN_SHIFT.id)
        await trio.testing.wait_all_tasks_blocked()
        timeline.note(f"fanout {result.status.value}: the {result.offered} preferred LPNs texted")
        await wait_until(152)
        await reply("Barry", "yes")
        await wait_until(190)
        timeline.note("Barry's plans change: he texts CANCEL, which releases the shift he holds")
        await reply("Barry", "cancel")
        timeline.note("the shift reopens; the policy starts again without Barry")
        await wait_until(195)
        timeline.note("five minutes on: the second wave texts every other LPN")
        await wait_until(197)
        await reply("Gus", "yes")
        refilled = await engine.shift(LPN_SHIFT.id)
        detail = await engine.shift_detail(LPN_SHIFT.id)
        engine.stop()

    assert filled.claimed_at and filled.fanout_started_at and detail is not None
    by_channel = Counter(m.channel.value for m in timeline.sent)
    by_purpose = Counter(m.purpose.value for m in timeline.sent)
    fill_time = filled.claimed_at - filled.fanout_started_at
    minutes, seconds = divmod(int(fill_time.total_seconds()), 60)
    steps = [
        e["kind"]
        for e in detail["timeline"]
        if e["kind"] not in (EventKind.REPLY, EventKind.CREATED)
    ]
    out.write(
        "\nSummary\n"
        f"  shift {SHIFT.id}: {filled.state.value} by {NAMES.get(filled.claimed_by or '', '-')}\n"
        f"  time to fill: {minutes}m {seconds:02d}s\n"
        f"  shift {LPN_SHIFT.id}: {refilled.state.value} by "
        f"{NAMES.get(refilled.claimed_by or '', '-')} after a release\n"
        f"  its timeline: {', '.join(steps)}\n"
        f"  messages: {by_channel['sms']} SMS, {by_channel['voice']} calls "
        f"({', '.join(f'{n} {p}' for p, n in sorted(by_purpose.items()))})\n"
        "  every message went out exactly once; the store in a temporary directory says so too.\n"
    )


def run_demo(*, show_log: bool = False, out: TextIO | None = None) -> int:
    """Play the demo; returns the exit code (0)."""
    stream = out or sys.stdout
    configure_logging("info" if show_log else "warning", "console")
    stream.write(
        "shiftd demo: two shifts to fill, a virtual morning in America/New_York\n"
        "(times are the virtual clock; → is sent by shiftd, ← is a caregiver's reply)\n\n"
    )
    with tempfile.TemporaryDirectory(prefix="shiftd-demo-") as tmp:
        trio.run(_play, Path(tmp), stream, clock=trio.testing.MockClock(autojump_threshold=0))
    return 0
