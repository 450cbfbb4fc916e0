"""Prometheus metrics: every family present with the right figures after a fanout and a claim,
one registry per engine, control requests counted by command and outcome.

The harness roster: RN cg-1..cg-5, LPN cg-6..cg-7, one open RN shift `shift-1`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import prometheus_client
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from shiftd.clock import Clock
from shiftd.control.server import handle_line
from shiftd.engine import Engine
from shiftd.events import EventBus
from shiftd.metrics import MeteredNotifier, Metrics
from shiftd.models import Channel, OutboxState, Purpose, SendResult
from shiftd.notify.base import Outgoing, PermanentSendError
from shiftd.store.base import OutboxRow
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

MINUTE = 60.0


class Scrape:
    """A parsed exposition: `value(name, **labels)` of one sample."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples = [s for f in self.families.values() for s in f.samples]

    def value(self, name: str, **labels: str) -> float:
        found = [s.value for s in self.samples if s.name == name and s.labels == labels]
        assert len(found) == 1, f"{name}{labels}: {len(found)} samples"
        return found[0]

    def total(self, name: str, **labels: str) -> float:
        """Sum over every sample of `name` whose labels include `labels`."""
        return sum(
            s.value
            for s in self.samples
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
        )


async def scrape(h: Harness) -> Scrape:
    body, content_type = await h.engine.metrics.exposition()
    assert content_type.startswith("text/plain; version=0.0.4")
    return Scrape(body.decode())


async def fanout_and_claim(h: Harness, after: float = 5 * MINUTE) -> None:
    await h.engine.fanout("shift-1")
    await h.settle()
    await trio.sleep(after)
    result = await h.engine.inbound(phone(2), "YES")
    assert result.outcome.value == "claimed"
    await h.settle()


# ---- the families ------------------------------------------------------------------------


async def test_every_family_is_exposed_with_sensible_values_after_a_fanout_and_claim(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout_and_claim(harness, after=5 * MINUTE)
    m = await scrape(harness)

    # shifts by state, from the store at scrape time
    assert m.value("shiftd_shifts", state="filled") == 1
    assert m.value("shiftd_shifts", state="open") == 0
    assert m.value("shiftd_outbox_messages", state="sent") == len(harness.provider.sent)
    # time to fill: one observation of exactly five (virtual) minutes
    assert m.value("shiftd_time_to_fill_seconds_count") == 1
    assert m.value("shiftd_time_to_fill_seconds_sum") == pytest.approx(5 * MINUTE)
    assert m.value("shiftd_time_to_fill_seconds_bucket", le="300.0") == 1
    assert m.value("shiftd_time_to_fill_seconds_bucket", le="120.0") == 0
    # messages by channel, purpose and status: 5 offers, 1 confirmation, 4 "filled"
    sent = {"channel": "sms", "status": "sent"}
    assert m.value("shiftd_messages_total", purpose="offer", **sent) == 5
    assert m.value("shiftd_messages_total", purpose="confirm", **sent) == 1
    assert m.value("shiftd_messages_total", purpose="filled", **sent) == 4
    assert m.total("shiftd_messages_total", status="failed") == 0
    # provider latency: one observation per provider call, no errors
    assert m.value("shiftd_provider_request_seconds_count", channel="sms") == 10
    assert "shiftd_provider_errors" in m.families
    assert m.total("shiftd_provider_errors_total") == 0
    # inbound by outcome
    assert m.value("shiftd_inbound_messages_total", channel="sms", outcome="claimed") == 1
    # live figures
    assert m.value("shiftd_inbox_depth") == 0
    assert m.value("shiftd_actors") == 1  # the only shift is filled: its actor lingers
    assert m.value("shiftd_actor_restarts_total") == 0
    assert m.value("shiftd_watchers") == 0
    # store commits: every write went through some commit of some batch size
    commits = m.value("shiftd_store_commit_seconds_count")
    assert commits > 0
    assert m.value("shiftd_store_commit_batch_size_count") == commits
    writes = m.value("shiftd_store_commit_batch_size_sum")
    assert writes >= commits
    stats = harness.engine.store.stats  # type: ignore[attr-defined]
    assert (commits, writes) == (stats.commits, stats.writes)
    # families that only count what comes later are declared all the same
    for family in ("shiftd_control_requests", "shiftd_http_requests"):
        assert family in m.families
    assert "process_resident_memory_bytes" in m.text


async def test_inbox_depth_and_actors_are_read_at_scrape_time(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.fanout("shift-1")
    await harness.settle()
    m = await scrape(harness)
    assert m.value("shiftd_actors") == 1
    assert m.value("shiftd_shifts", state="offering") == 1
    assert m.value("shiftd_outbox_messages", state="sent") == 5


async def test_a_transient_provider_failure_counts_as_retry_and_provider_error(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    harness.provider.fail_next = 1
    await harness.engine.fanout("shift-1")
    await harness.settle()
    await trio.sleep(MINUTE)  # past the retry backoff
    await harness.settle()
    m = await scrape(harness)

    assert m.value("shiftd_messages_total", channel="sms", purpose="offer", status="retry") == 1
    assert m.value("shiftd_messages_total", channel="sms", purpose="offer", status="sent") == 5
    assert m.value("shiftd_provider_errors_total", channel="sms", kind="transient") == 1
    assert m.value("shiftd_provider_request_seconds_count", channel="sms") == 6


async def test_escalation_calls_are_counted_on_the_voice_channel(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.fanout("shift-1")
    await harness.settle()
    await trio.sleep(11 * MINUTE)
    await harness.settle()
    m = await scrape(harness)
    assert m.value("shiftd_messages_total", channel="voice", purpose="offer", status="sent") == 5
    assert m.value("shiftd_shifts", state="escalated") == 1


async def test_metered_notifier_counts_refusals_and_timeouts_by_kind(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Refuses:
        async def send(self, message: Outgoing) -> str | None:
            raise PermanentSendError("invalid number")

        async def aclose(self) -> None:
            return None

    class Hangs(Refuses):
        async def send(self, message: Outgoing) -> str | None:
            await trio.sleep_forever()
            raise AssertionError("unreachable")

    metrics = Metrics(process=False)
    message = Outgoing(1, Channel.VOICE, Purpose.OFFER, "+15550001", "hi", "cg-1", None, None)  # type: ignore[arg-type]
    with pytest.raises(PermanentSendError):
        await MeteredNotifier(Refuses(), metrics).send(message)
    with trio.move_on_after(10):
        await MeteredNotifier(Hangs(), metrics).send(message)
    m = Scrape((await metrics.exposition())[0].decode())
    assert m.value("shiftd_provider_errors_total", channel="voice", kind="permanent") == 1
    assert m.value("shiftd_provider_errors_total", channel="voice", kind="timeout") == 1
    assert m.value("shiftd_provider_request_seconds_count", channel="voice") == 2
    assert m.value("shiftd_provider_request_seconds_sum", channel="voice") == pytest.approx(10)


# ---- one registry per engine ---------------------------------------------------------------


async def test_each_engine_has_its_own_registry_and_the_global_one_is_untouched(
    start_engine: StartEngine, tmp_path: Any, autojump_clock: trio.testing.MockClock
) -> None:
    first: Harness = await start_engine(make_config(tmp_path / "a"), FakeProvider())
    second: Harness = await start_engine(make_config(tmp_path / "b"), FakeProvider())
    await first.engine.import_roster([caregiver(n) for n in (1, 2)], [shift()])
    await second.engine.import_roster([caregiver(1)], [shift()])
    await first.engine.fanout("shift-1")
    await first.settle()

    assert first.engine.metrics.registry is not second.engine.metrics.registry
    one, two = await scrape(first), await scrape(second)
    assert one.value("shiftd_messages_total", channel="sms", purpose="offer", status="sent") == 2
    assert two.total("shiftd_messages_total") == 0
    assert two.value("shiftd_shifts", state="open") == 1
    global_names = {f.name for f in prometheus_client.REGISTRY.collect()}
    assert not any(name.startswith("shiftd_") for name in global_names)


async def test_an_unmeasured_engine_sends_as_usual_and_counts_nothing(
    tmp_path: Any, autojump_clock: trio.testing.MockClock
) -> None:
    provider = FakeProvider()
    engine = Engine(make_config(tmp_path), clock=Clock(EPOCH), notifier=provider, measured=False)
    async with trio.open_nursery() as nursery:
        await nursery.start(engine.run)
        await engine.import_roster([caregiver(n) for n in (1, 2)], [shift()])
        await engine.fanout("shift-1")
        await trio.testing.wait_all_tasks_blocked()
        m = Scrape((await engine.metrics.exposition())[0].decode())
        nursery.cancel_scope.cancel()

    assert len(provider.sent) == 2
    assert m.total("shiftd_messages_total") == 0
    assert m.total("shiftd_provider_request_seconds_count") == 0
    assert m.total("shiftd_store_commit_seconds_count") == 0
    assert m.value("shiftd_shifts", state="offering") == 1  # scrape-time figures still read


def test_a_metrics_object_needs_no_running_engine() -> None:
    metrics = Metrics(process=False)
    bus = EventBus()
    metrics.bind(events=bus)
    metrics.bind(events=bus)  # binding twice does not count twice
    bus.publish("unfilled", shift_id="s")
    text = trio.run(metrics.text)
    m = Scrape(text)
    assert m.value("shiftd_shifts_unfilled_total") == 1
    assert "shiftd_shifts" not in m.families  # no store bound: no counts, no error


# ---- control requests and the metrics command ------------------------------------------


async def request(h: Harness, cmd: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
    line = json.dumps({"id": 1, "cmd": cmd, "args": args or {}}).encode()
    return json.loads(await handle_line(h.engine, line))


async def test_control_requests_are_counted_by_command_and_outcome(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await request(harness, "ping")
    await request(harness, "ping")
    await request(harness, "fanout", {"shift_id": "nope"})
    await request(harness, "fanout", {"shift": "typo"})
    await request(harness, "no.such.command")
    await handle_line(harness.engine, b"{not json")
    m = await scrape(harness)

    assert m.value("shiftd_control_requests_total", command="ping", outcome="ok") == 2
    assert m.value("shiftd_control_requests_total", command="fanout", outcome="not_found") == 1
    assert m.value("shiftd_control_requests_total", command="fanout", outcome="bad_args") == 1
    # names the client chose never become label values
    assert m.value("shiftd_control_requests_total", command="-", outcome="unknown_command") == 1
    assert m.value("shiftd_control_requests_total", command="-", outcome="bad_json") == 1
    assert "no.such.command" not in m.text


async def test_the_metrics_command_returns_the_exposition_text(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout_and_claim(harness)
    response = await request(harness, "metrics")
    assert response["ok"] is True
    result = response["result"]
    assert result["content_type"].startswith("text/plain")
    m = Scrape(result["text"])
    assert m.value("shiftd_time_to_fill_seconds_count") == 1
    assert "+1555" not in result["text"]  # no phone number ever becomes a label


# ---- unfilled and released shifts ----------------------------------------------------------


async def test_a_shift_whose_offers_close_unclaimed_is_counted_unfilled(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await harness.engine.fanout("shift-1")
    await trio.sleep(19 * 3600)  # past the start (lead time 0): nobody claimed it
    m = await scrape(harness)
    assert m.value("shiftd_shifts", state="unfilled") == 1
    assert m.value("shiftd_shifts", state="offering") == 0
    assert m.value("shiftd_shifts_unfilled_total") == 1


async def test_the_unfilled_state_is_exposed_at_zero_before_any_shift_goes_unfilled(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    m = await scrape(harness)
    assert m.value("shiftd_shifts", state="unfilled") == 0
    assert m.value("shiftd_shifts_unfilled_total") == 0
    assert m.value("shiftd_outbox_messages", state="suppressed") == 0


async def test_an_unassigned_shift_is_counted_released_by_the_coordinator(
    harness: Harness, autojump_clock: trio.testing.MockClock
) -> None:
    await fanout_and_claim(harness)
    await harness.engine.unassign("shift-1")
    await harness.settle()
    m = await scrape(harness)
    assert m.value("shiftd_shifts_released_total", by="coordinator") == 1
    assert m.value("shiftd_shifts_released_total", by="caregiver") == 0
    assert m.value("shiftd_shifts_unfilled_total") == 0  # reopened, not unfilled
    sent = {"channel": "sms", "status": "sent"}
    assert m.value("shiftd_messages_total", purpose="released", **sent) == 1


def _bus_metrics() -> tuple[Metrics, EventBus]:
    metrics = Metrics(process=False)
    bus = EventBus()
    metrics.bind(events=bus)
    return metrics, bus


def outbox_row(channel: Channel, purpose: Purpose) -> OutboxRow:
    at = datetime(2026, 11, 2, tzinfo=UTC)
    return OutboxRow(1, "s", "c", channel, purpose, "+15550000001", "", OutboxState.SENDING, 1, at)


def test_suppressed_texts_and_coordinator_webhooks_are_counted_like_other_messages() -> None:
    metrics = Metrics(process=False)
    metrics.count_messages([outbox_row(Channel.SMS, Purpose.OFFER)], SendResult.SUPPRESSED)
    metrics.count_messages([outbox_row(Channel.WEBHOOK, Purpose.UNFILLED)], SendResult.SENT)
    m = Scrape(trio.run(metrics.text))
    assert (
        m.value("shiftd_messages_total", channel="sms", purpose="offer", status="suppressed") == 1
    )
    assert (
        m.value("shiftd_messages_total", channel="webhook", purpose="unfilled", status="sent") == 1
    )


def test_a_release_by_someone_unexpected_is_counted_under_unknown() -> None:
    metrics, bus = _bus_metrics()
    bus.publish("released", shift_id="s", caregiver_id="c", by="+15550000001", reopened=True)
    m = Scrape(trio.run(metrics.text))
    assert m.value("shiftd_shifts_released_total", by="unknown") == 1
    assert "+1555" not in m.text  # never a free-form label value
