"""The coordinator's page, signed in: the board by state in local time with names, a shift's
story, actions through the engine's own commands (with a confirmation for the destructive
ones), stats as SVG charts, and hostile replies shown as text under a strict CSP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from datetime import UTC, datetime

import pytest
import trio
import trio.lowlevel
import trio.testing

from shiftd.models import ShiftState
from shiftd.testing.board import Page, add_coordinator, open_page
from shiftd.testing.engine import EPOCH, Harness, shift
from shiftd.web.live import LiveFeed

SCRIPT_REPLY = "<script>alert('x')</script> yes?"
IMG_REPLY = '"><img src=x onerror=alert(1)>'


@pytest.fixture
async def page(harness: Harness) -> AsyncIterator[Page]:
    await add_coordinator(harness)
    async with open_page(harness) as page:
        await page.sign_in()
        yield page


async def fan_out(page: Page) -> None:
    assert (await page.post("/board/shifts/shift-1/fanout")).status_code == 303
    await page.harness.settle()


async def test_the_board_lists_shifts_by_state_in_local_time(
    page: Page, autojump_clock: object
) -> None:
    board = await page.get("/board")
    assert board.status_code == 200
    html = board.text
    for state in ("open", "offering", "escalated", "filled", "unfilled", "cancelled"):
        assert f'id="state-{state}"' in html
    # shift-1 starts 2025-07-02 08:00 UTC: 04:00 in New York (EDT).
    assert "Wed 2 Jul 04:00-12:00 EDT" in html
    open_section = html.split('id="state-open"')[1].split("</section>")[0]
    assert 'data-shift="shift-1"' in open_section


async def test_the_board_names_the_holder_and_counts_down_to_the_calls(
    page: Page, autojump_clock: object
) -> None:
    await fan_out(page)
    offering = (await page.get("/board")).text.split('id="state-offering"')[1]
    assert 'data-shift="shift-1"' in offering.split("</section>")[0]
    calls_at = (await page.harness.engine.shift("shift-1")).escalate_at
    assert calls_at is not None
    assert f'class="countdown" datetime="{calls_at.isoformat()}"' in offering
    assert "calls to those offered already" in offering
    await page.harness.engine.inbound("+15550000003", "yes")
    filled = (await page.get("/board")).text.split('id="state-filled"')[1].split("</section>")[0]
    assert "Carer 3" in filled and "cg-3" not in filled


async def test_the_board_filters_by_organization_and_role(
    page: Page, autojump_clock: object
) -> None:
    assert 'data-shift="shift-1"' in (await page.get("/board?org=org-1&role=RN")).text
    assert 'data-shift="shift-1"' not in (await page.get("/board?role=LPN")).text
    assert 'data-shift="shift-1"' not in (await page.get("/board?org=other")).text


async def test_a_shifts_story_tells_contacts_replies_declines_and_the_claim(
    page: Page, autojump_clock: object
) -> None:
    await fan_out(page)
    engine = page.harness.engine
    await engine.inbound("+15550000002", "no thanks, I'm away")
    await engine.inbound("+15550000004", "YES")
    await page.harness.settle()
    html = (await page.get("/board/shifts/shift-1")).text
    assert 'id="shift-state">filled' in html
    assert "Carer 4" in html and "cg-4" not in html.split('id="h-story"')[1]
    assert "no thanks, I&#39;m away" in html  # the reply as written, escaped
    declines = html.split('id="h-declines"')[1]
    assert "Carer 2" in declines
    contacts = html.split('id="h-contacts"')[1].split("</section>")[0]
    assert contacts.count("<tr>") == 1 + 5 + 1 + 4  # header, offers, confirm, "filled" notes
    assert "sms" in contacts and "offer" in contacts


async def test_a_shifts_story_lists_the_plans_next_steps(
    page: Page, autojump_clock: object
) -> None:
    await fan_out(page)
    html = (await page.get("/board/shifts/shift-1")).text
    steps = html.split('id="h-next"')[1].split("</section>")[0]
    assert "calls to those offered already at Tue 1 Jul 10:1" in steps  # 10 min (jittered)


async def test_hostile_replies_render_as_text(page: Page, autojump_clock: object) -> None:
    await fan_out(page)
    await page.harness.engine.inbound("+15550000001", SCRIPT_REPLY, shift_id="shift-1")
    await page.harness.engine.inbound("+15550000002", IMG_REPLY, shift_id="shift-1")
    answer = await page.get("/board/shifts/shift-1")
    html = answer.text
    assert "<script>alert" not in html and "<img src=x" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; yes?" in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert "<script>" not in html.replace(
        '<script src="/board/static/board.js" defer></script>', ""
    )


async def test_creating_a_shift_takes_the_organizations_local_time(
    page: Page, autojump_clock: object
) -> None:
    form = {
        "organization_id": "default",
        "role": "LPN",
        "day": "2025-07-03",
        "start": "22:00",
        "end": "06:00",
    }
    created = await page.post("/board/shifts", form)
    assert created.status_code == 303
    shift_id = created.headers["location"].split("/")[3].split("?")[0]
    row = await page.harness.engine.shift(shift_id)
    # 22:00 in New York (EDT, UTC-4) is 02:00 UTC the next day; the end is the next morning.
    assert row.start_time == datetime(2025, 7, 4, 2, 0, tzinfo=UTC)
    assert row.end_time == datetime(2025, 7, 4, 10, 0, tzinfo=UTC)
    assert row.state is ShiftState.OPEN and row.role_required == "LPN"


async def test_a_bad_new_shift_is_answered_with_the_form_and_a_reason(
    page: Page, autojump_clock: object
) -> None:
    bad = await page.post(
        "/board/shifts", {"role": "", "day": "tomorrow", "start": "x", "end": "y"}
    )
    assert bad.status_code == 422 and 'role="alert"' in bad.text
    assert await page.harness.engine.shifts() == [await page.harness.engine.shift("shift-1")]


async def test_starting_the_fanout_texts_everyone_and_says_so(
    page: Page, autojump_clock: object
) -> None:
    started = await page.post("/board/shifts/shift-1/fanout")
    assert started.headers["location"] == "/board/shifts/shift-1?said=fanout%3Astarted%3A5"
    await page.harness.settle()
    assert len(page.harness.provider.sent) == 5
    story = await page.get(started.headers["location"])
    assert "Fanout started: 5 offered." in story.text


async def test_cancelling_asks_first_and_only_cancels_when_confirmed(
    page: Page, autojump_clock: object
) -> None:
    asked = await page.post("/board/shifts/shift-1/cancel")
    assert asked.status_code == 200 and "Are you sure?" in asked.text
    assert (await page.harness.engine.shift("shift-1")).state is ShiftState.OPEN
    done = await page.post("/board/shifts/shift-1/cancel", {"confirm": "yes"})
    assert done.status_code == 303
    assert (await page.harness.engine.shift("shift-1")).state is ShiftState.CANCELLED


async def test_unassigning_asks_first_then_tells_the_holder(
    page: Page, autojump_clock: object
) -> None:
    await fan_out(page)
    await page.harness.engine.inbound("+15550000001", "yes")
    asked = await page.post("/board/shifts/shift-1/unassign")
    assert "Are you sure?" in asked.text
    assert (await page.harness.engine.shift("shift-1")).state is ShiftState.FILLED
    done = await page.post("/board/shifts/shift-1/unassign", {"confirm": "yes"})
    assert "unassign%3Areleased" in done.headers["location"]
    assert (await page.harness.engine.shift("shift-1")).claimed_by is None


async def test_an_unknown_shift_is_a_404_page(page: Page, autojump_clock: object) -> None:
    assert (await page.get("/board/shifts/nope")).status_code == 404
    assert (await page.post("/board/shifts/nope/fanout")).status_code == 404


async def test_stats_draw_fill_rate_time_to_fill_messages_and_declines_as_svg(
    page: Page, autojump_clock: object
) -> None:
    await fan_out(page)
    await page.harness.engine.inbound("+15550000002", "no")
    await trio.sleep(120)
    await page.harness.engine.inbound("+15550000001", "yes")
    html = (await page.get("/board/stats")).text
    assert html.count("<svg") == 4
    for title in ("Fill rate by day", "Median time to fill", "Messages by channel", "Declines"):
        assert title in html
    assert "<dt>Fill rate</dt><dd>100%</dd>" in html
    assert "<dt>Median time to fill</dt><dd>2.0 min</dd>" in html


async def test_a_fragment_request_answers_only_the_main_region(
    page: Page, autojump_clock: object
) -> None:
    fragment = await page.get("/board", headers={"X-Board-Fragment": "1"})
    assert "<html" not in fragment.text and 'id="state-open"' in fragment.text
    page.client.cookies.clear()
    assert (await page.client.get("/board", headers={"X-Board-Fragment": "1"})).status_code == 401


async def test_the_live_feed_notes_changed_shifts_after_a_number(autojump_clock: object) -> None:
    feed = LiveFeed(size=3)
    from shiftd.events import Event

    for n, kind in enumerate(("claimed", "sent", "send_retry", "declined")):
        feed.on_event(Event(EPOCH, kind, f"s{n}"))
    assert feed.seq == 3  # send_retry changes nothing on a page
    assert feed.since(1, None) == (["s3", "s1"], False)
    assert feed.since(1, "s1") == (["s1"], False)
    for n in range(3):
        feed.on_event(Event(EPOCH, "wave", f"w{n}"))
    assert feed.since(1, None)[1] is True  # notices 2 and 3 have left the ring


async def test_a_burst_of_notices_on_a_few_shifts_loses_none_of_them(
    autojump_clock: object,
) -> None:
    from shiftd.events import Event

    feed = LiveFeed(size=3)
    for n in range(10_000):  # a storm of declines on two shifts: thousands of notices
        feed.on_event(Event(EPOCH, "declined", f"s{n % 2}"))
    assert feed.since(0, None) == (["s1", "s0"], False)  # nothing lost: no page reloads


class CountingPayload:
    """A board's payload that reads (a checkpoint) and counts how often it is made;
    `fail_first` makes its first call raise."""

    def __init__(self, fail_first: bool = False) -> None:
        self.calls = 0
        self.fail_first = fail_first

    async def __call__(self, shift_ids: list[str]) -> str:
        self.calls += 1
        call = self.calls
        await trio.lowlevel.checkpoint()
        if self.fail_first and call == 1:
            raise RuntimeError("the store failed")
        return json.dumps({"rows": shift_ids})


async def first_change(feed: LiveFeed, payload: CountingPayload) -> bytes:
    """The first frame after the opening one a board's stream sends."""
    frames = feed.stream(0, None, lifetime=60, payload=payload)
    async with aclosing(frames):
        async for frame in frames:
            if frame.startswith(b"id:"):
                return frame
    raise AssertionError("the stream ended without a change")


async def test_streams_woken_by_the_same_change_share_one_frame_made_once(
    autojump_clock: object,
) -> None:
    from shiftd.events import Event

    feed, payload = LiveFeed(), CountingPayload()
    frames: list[bytes] = []

    async def watch() -> None:
        frames.append(await first_change(feed, payload))

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(watch)
        await trio.testing.wait_all_tasks_blocked()
        feed.on_event(Event(EPOCH, "claimed", "s1"))

    assert payload.calls == 1
    assert frames == [b'id: 1\nevent: change\ndata: {"rows": ["s1"]}\n\n'] * 10


async def test_a_frame_whose_making_failed_is_made_by_a_stream_that_waited_for_it(
    autojump_clock: object,
) -> None:
    from shiftd.events import Event

    feed, payload = LiveFeed(), CountingPayload(fail_first=True)
    frames: list[bytes] = []
    failed: list[BaseException] = []

    async def watch() -> None:
        try:
            frames.append(await first_change(feed, payload))
        except RuntimeError as exc:
            failed.append(exc)

    async with trio.open_nursery() as nursery:
        for _ in range(2):
            nursery.start_soon(watch)
        await trio.testing.wait_all_tasks_blocked()
        feed.on_event(Event(EPOCH, "claimed", "s1"))

    assert len(failed) == 1 and len(frames) == 1 and payload.calls == 2


async def test_the_live_stream_sends_a_change_when_a_shift_is_claimed(
    page: Page, autojump_clock: object
) -> None:
    board = page.client._transport.app.state.board  # type: ignore[attr-defined]
    frames: list[bytes] = []

    async def listen() -> None:
        async for frame in board.feed.stream(board.feed.seq, "shift-1", lifetime=60):
            frames.append(frame)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(listen)
        await trio.sleep(1)
        await fan_out(page)
        await trio.sleep(61)
    changes = [f for f in frames if f.startswith(b"id: ")]
    assert changes and b'event: change\ndata: ["shift-1"]' in changes[0]


async def test_shifts_added_elsewhere_reach_the_open_boards(
    page: Page, autojump_clock: object
) -> None:
    board = page.client._transport.app.state.board  # type: ignore[attr-defined]
    before = board.feed.seq
    await page.harness.engine.add_shift(shift("shift-2"))
    await page.harness.engine.import_roster([], [shift("shift-3", start_in_h=30)])
    assert board.feed.since(before, None) == (["*", "shift-2"], False)
    html = (await page.get("/board", headers={"X-Board-Fragment": "1"})).text
    assert 'data-shift="shift-2"' in html and 'data-shift="shift-3"' in html


async def test_the_live_stream_wants_a_session(page: Page, autojump_clock: object) -> None:
    page.client.cookies.clear()
    assert (await page.client.get("/board/events")).status_code == 401


async def test_a_boards_live_stream_carries_the_changed_rows_rendered_and_escaped(
    page: Page, autojump_clock: object
) -> None:
    board = page.client._transport.app.state.board  # type: ignore[attr-defined]
    after = board.feed.seq
    await fan_out(page)
    await page.harness.engine.inbound("+15550000003", "yes")
    data = json.loads(await board.rows_payload(board.feed.since(after, None)[0]))
    (row,) = data["rows"]
    assert row["id"] == "shift-1" and row["state"] == "filled"
    assert 'data-shift="shift-1"' in row["html"] and "Carer 3" in row["html"]
    assert json.loads(await board.rows_payload(["gone"])) == {"rows": [{"id": "gone", "state": ""}]}


async def test_a_row_is_rendered_once_per_change_of_its_shift_however_many_boards_ask(
    page: Page, autojump_clock: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    board = page.client._transport.app.state.board  # type: ignore[attr-defined]
    await fan_out(page)
    rendered: list[str] = []
    render = board._row

    async def counting(shift_id: str) -> dict[str, str]:
        rendered.append(shift_id)
        return await render(shift_id)

    monkeypatch.setattr(board, "_row", counting)
    for _ in range(100):  # a hundred boards, each asking after the same change
        await board.rows_payload(["shift-1"])
    await page.harness.engine.add_shift(shift("shift-2"))  # another shift changes
    await board.rows_payload(["shift-1"])
    assert rendered == ["shift-1"]
    await page.harness.engine.inbound("+15550000003", "yes")  # shift-1 itself changes
    (row,) = json.loads(await board.rows_payload(["shift-1"]))["rows"]
    assert rendered == ["shift-1", "shift-1"] and row["state"] == "filled"
