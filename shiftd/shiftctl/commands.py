"""shiftctl's commands: each takes (client, ns) and returns (result, renderer)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from ..control.client import ControlClient
from ..models import CancelStatus, FanoutStatus, ReleaseStatus
from .render import (
    Renderer,
    clean,
    duration,
    is_terminal,
    print_pairs,
    print_table,
    render_counts,
    render_stats,
    shift_summary,
    short_ts,
    zone_named,
)
from .timeline import render_event, timeline_detail
from .usage import PROG


def cmd_ping(client: ControlClient, ns: argparse.Namespace) -> tuple[dict[str, Any], Renderer]:
    def render(result: dict[str, Any], out: TextIO) -> None:
        print(f"pong from shiftd {clean(result.get('version'))} at {clean(ns.socket)}", file=out)

    return client.call("ping"), render


def cmd_status(client: ControlClient, ns: argparse.Namespace) -> tuple[dict[str, Any], Renderer]:
    def render(r: dict[str, Any], out: TextIO) -> None:
        print_pairs(
            [
                ("version", r.get("version")),
                ("uptime", duration(r.get("uptime_s"))),
                ("state_dir", r.get("state_dir")),
                ("actors", r.get("actors")),
                ("shifts", render_counts(r.get("shifts"))),
                ("outbox", render_counts(r.get("outbox"))),
            ],
            out,
        )
        cluster = r.get("cluster")
        if isinstance(cluster, dict):
            _cluster(cluster, out)

    return client.call("status"), render


def _cluster(cluster: dict[str, Any], out: TextIO) -> None:
    """The instances of a cluster, the partitions each holds and how fresh its leases are
    (`*`: the instance that answered)."""
    me = cluster.get("instance")
    print(
        f"cluster:   {clean(cluster.get('partitions'))} partitions,"
        f" {clean(cluster.get('unowned'))} unowned, lease ttl {clean(cluster.get('ttl_s'))}s",
        file=out,
    )
    rows = [
        (
            f"{clean(i.get('id'))}{' *' if i.get('id') == me else ''}",
            i.get("host"),
            i.get("pid"),
            len(i.get("partitions") or ()),
            _ranges(i.get("partitions") or ()),
            f"{clean(i.get('heartbeat_age_s'))}s",
            f"{clean(i.get('oldest_renewal_s'))}s",
        )
        for i in cluster.get("instances") or ()
        if isinstance(i, dict)
    ]
    headers = ("INSTANCE", "HOST", "PID", "HELD", "PARTITIONS", "HEARTBEAT", "LEASE AGE")
    print_table(headers, rows, out)


def _ranges(numbers: Sequence[Any]) -> str:
    """1,2,3,5 as "1-3,5"."""
    spans: list[list[int]] = []
    for n in sorted(n for n in numbers if isinstance(n, int)):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ",".join(f"{a}-{b}" if a != b else f"{a}" for a, b in spans) or "-"


def cmd_caregiver_list(
    client: ControlClient, ns: argparse.Namespace
) -> tuple[dict[str, Any], Renderer]:
    args = {"role": ns.role} if ns.role is not None else {}

    def render(r: dict[str, Any], out: TextIO) -> None:
        rows = r.get("caregivers") or []
        if not rows:
            print("no caregivers", file=out)
            return
        inactive = any(c.get("active") is False for c in rows)
        print_table(
            ("ID", "NAME", "ROLE", "PHONE", *(["ACTIVE"] if inactive else [])),
            [
                (c.get("id"), c.get("name"), c.get("role"), c.get("phone"))
                + ((c.get("active"),) if inactive else ())
                for c in rows
            ],
            out,
        )

    return client.call("caregiver.list", args), render


def cmd_caregiver_active(
    client: ControlClient, ns: argparse.Namespace
) -> tuple[dict[str, Any], Renderer]:
    cmd = "caregiver.activate" if ns.active else "caregiver.deactivate"

    def render(r: dict[str, Any], out: TextIO) -> None:
        state = (
            "active: offered shifts again"
            if r.get("active")
            else "deactivated: never offered a shift"
        )
        print(f"caregiver {clean(r.get('caregiver_id'))} {state}", file=out)

    return client.call(cmd, {"caregiver_id": ns.caregiver_id}), render


def cmd_shift_add(client: ControlClient, ns: argparse.Namespace) -> tuple[dict[str, Any], Renderer]:
    args: dict[str, Any] = {"role_required": ns.role}
    for key, value in (
        ("start_time", ns.start),
        ("start_in", ns.start_in),
        ("end_time", ns.end),
        ("length", ns.length),
    ):
        if value is not None:
            args[key] = value
    if ns.org is not None:
        args["organization_id"] = ns.org
    if ns.shift_id is not None:
        args["id"] = ns.shift_id

    def render(r: dict[str, Any], out: TextIO) -> None:
        shift_summary(r.get("shift") or {}, out)

    return client.call("shift.add", args), render


def cmd_shift_list(
    client: ControlClient, ns: argparse.Namespace
) -> tuple[dict[str, Any], Renderer]:
    args = {"state": ns.state} if ns.state is not None else {}

    def render(r: dict[str, Any], out: TextIO) -> None:
        rows = r.get("shifts") or []
        if not rows:
            print("no shifts", file=out)
            return
        print_table(
            ("ID", "STATE", "ROLE", "START", "END", "ORG", "CLAIMED_BY"),
            [
                (
                    s.get("id"),
                    s.get("state"),
                    s.get("role_required"),
                    short_ts(s.get("start_time"), minutes=True),
                    short_ts(s.get("end_time"), minutes=True),
                    s.get("organization_id"),
                    s.get("claimed_by"),
                )
                for s in rows
            ],
            out,
        )

    return client.call("shift.list", args), render


def cmd_shift_show(
    client: ControlClient, ns: argparse.Namespace
) -> tuple[dict[str, Any], Renderer]:
    def render(r: dict[str, Any], out: TextIO) -> None:
        shift = r.get("shift") or {}
        shift_summary(shift, out, extra=("claimed_at", "fanout_started_at", "escalate_at"))
        contacts = shift.get("contacts") or []
        print("\nContacts", file=out)
        if contacts:
            print_table(
                ("CAREGIVER", "NAME", "CHANNEL", "PURPOSE", "STATE", "DELIVERY", "AT"),
                [
                    (
                        c.get("caregiver_id"),
                        c.get("name"),
                        c.get("channel"),
                        c.get("purpose"),
                        c.get("state"),
                        c.get("provider_status"),  # the provider's report: delivered, failed…
                        short_ts(c.get("at")),
                    )
                    for c in contacts
                ],
                out,
            )
        else:
            print("  (none)", file=out)
        lost = shift.get("lost_notices") or []
        if lost:  # a holder who may not know: said before anything else
            print("\nLOST NOTICES (followed up: see README, A lost notice)", file=out)
            print_table(
                ("CAREGIVER", "NOTICE", "CHANNEL", "ERROR", "AT"),
                [
                    (
                        n.get("caregiver_id"),
                        n.get("purpose"),
                        n.get("channel"),
                        n.get("error"),
                        short_ts(n.get("at")),
                    )
                    for n in lost
                ],
                out,
            )
        declines = shift.get("declines") or []
        print("\nDeclines", file=out)
        if declines:
            print_table(
                ("CAREGIVER", "NAME", "AT"),
                [(d.get("caregiver_id"), d.get("name"), short_ts(d.get("at"))) for d in declines],
                out,
            )
        else:
            print("  (none)", file=out)
        timeline = shift.get("timeline") or []
        print("\nTimeline", file=out)
        if timeline:
            print_table(
                ("TS", "KIND", "CAREGIVER", "DETAIL"),
                [
                    (
                        short_ts(e.get("ts")),
                        e.get("kind"),
                        e.get("caregiver_id"),
                        timeline_detail(e.get("kind"), e.get("detail")),
                    )
                    for e in timeline
                ],
                out,
            )
        else:
            print("  (none)", file=out)

    return client.call("shift.show", {"shift_id": ns.shift_id}), render


def cmd_fanout(client: ControlClient, ns: argparse.Namespace) -> tuple[dict[str, Any], Renderer]:
    def render(r: dict[str, Any], out: TextIO) -> None:
        status = r.get("status")
        shift_id = clean(r.get("shift_id", ns.shift_id))
        escalate_at = r.get("escalate_at")
        when = f"escalates at {short_ts(escalate_at)}" if escalate_at else "no escalation scheduled"
        if status == FanoutStatus.STARTED:
            print(f"fanout started: {clean(r.get('offered'))} offered, {when}", file=out)
        elif status == FanoutStatus.ALREADY_RUNNING:
            print(f"fanout already running for shift {shift_id}: {when}", file=out)
        elif status == FanoutStatus.ALREADY_FILLED:
            print(f"shift {shift_id} is already filled; nothing to do", file=out)
        elif status == FanoutStatus.CANCELLED:
            print(f"shift {shift_id} is cancelled; no fanout", file=out)
        elif status == FanoutStatus.NO_CANDIDATES:
            print(f"nobody can be offered shift {shift_id}; it stays open", file=out)
        elif status == FanoutStatus.TOO_LATE:
            print(
                f"offers for shift {shift_id} have closed: it starts within the lead time "
                "or has started",
                file=out,
            )
        elif status == FanoutStatus.UNFILLED:
            print(f"shift {shift_id} went unfilled (offers closed); no fanout", file=out)
        else:
            print(f"fanout {clean(status)}: {clean(r.get('offered'))} offered, {when}", file=out)

    return client.call("fanout", _shift_request(ns)), render


def cmd_inbound(client: ControlClient, ns: argparse.Namespace) -> tuple[dict[str, Any], Renderer]:
    args: dict[str, Any] = {"from": ns.from_, "body": ns.body, "channel": ns.channel}
    if ns.provider_id is not None:
        args["provider_message_id"] = ns.provider_id
    if ns.shift_id is not None:
        args["shift_id"] = ns.shift_id

    def render(r: dict[str, Any], out: TextIO) -> None:
        print_pairs(
            [
                ("outcome", r.get("outcome")),
                ("shift", r.get("shift_id")),
                ("caregiver", r.get("caregiver_id")),
                ("reply", _reply_line(r)),
            ],
            out,
        )

    return client.call("inbound", args), render


def _reply_line(r: dict[str, Any]) -> str | None:
    """The text sent in answer (None, printed "-", when nothing was), marked "(sent before)"
    on a replay."""
    if r.get("reply") is None:
        return None
    if r.get("replayed"):
        return f"(sent before) {r['reply']}"
    return str(r["reply"])


_CANCEL_SAYS: dict[str, str] = {
    CancelStatus.CANCELLED: "shift {id} cancelled",
    CancelStatus.ALREADY_CANCELLED: "shift {id} was already cancelled",
    CancelStatus.UNFILLED: "shift {id} already went unfilled (offers closed); nothing to cancel",
}
_UNASSIGN_SAYS: dict[str, str] = {
    ReleaseStatus.RELEASED: "shift {id} unassigned; offering it again",
    ReleaseStatus.RELEASED_UNFILLED: "shift {id} unassigned; too late to offer it again, so it"
    " is unfilled (the coordinator is told)",
    ReleaseStatus.NOT_CLAIMED: "shift {id} is not filled; nobody to unassign",
}


def _say_status(says: dict[str, str], r: dict[str, Any], shift_id: str, out: TextIO) -> None:
    """One line for an answer's status, from `says` (a status not listed is shown as is)."""
    status, shift = r.get("status"), clean(r.get("shift_id", shift_id))
    line = says.get(str(status))
    print(line.format(id=shift) if line else f"shift {shift}: {clean(status)}", file=out)


def _shift_request(ns: argparse.Namespace) -> dict[str, Any]:
    """A command to a shift's actor: its id, and the retry key if one was given."""
    args: dict[str, Any] = {"shift_id": ns.shift_id}
    if ns.request_id is not None:
        args["request_id"] = ns.request_id
    return args


def cmd_cancel(client: ControlClient, ns: argparse.Namespace) -> tuple[dict[str, Any], Renderer]:
    def render(r: dict[str, Any], out: TextIO) -> None:
        _say_status(_CANCEL_SAYS, r, ns.shift_id, out)

    return client.call("cancel", _shift_request(ns)), render


def cmd_unassign(client: ControlClient, ns: argparse.Namespace) -> tuple[dict[str, Any], Renderer]:
    def render(r: dict[str, Any], out: TextIO) -> None:
        _say_status(_UNASSIGN_SAYS, r, ns.shift_id, out)
        if r.get("reply"):
            print(f"holder told: {clean(r.get('reply'))}", file=out)

    return client.call("unassign", _shift_request(ns)), render


def cmd_metrics(client: ControlClient, ns: argparse.Namespace) -> tuple[dict[str, Any], Renderer]:
    def render(r: dict[str, Any], out: TextIO) -> None:
        text = r.get("text")
        print(text if isinstance(text, str) else "", end="", file=out)

    return client.call("metrics"), render


def cmd_stats(client: ControlClient, ns: argparse.Namespace) -> tuple[dict[str, Any], Renderer]:
    def render(r: dict[str, Any], out: TextIO) -> None:
        render_stats(r, out, ns.since)

    return client.call("stats", {"since": ns.since}), render


def cmd_watch(client: ControlClient, ns: argparse.Namespace) -> None:
    args = {"shift_id": ns.shift_id} if ns.shift_id is not None else {}
    out = sys.stdout
    events = client.stream("watch", args)
    tz = zone_named(client.ack.get("timezone") if isinstance(client.ack, dict) else None)
    if is_terminal(sys.stderr):
        print(f"watching shiftd at {clean(ns.socket)} (Ctrl-C to stop)", file=sys.stderr)
    for event in events:
        if ns.json:
            print(json.dumps(event, ensure_ascii=False), file=out, flush=True)
        else:
            print(render_event(event, tz), file=out, flush=True)
    print(f"{PROG}: shiftd closed the event stream", file=sys.stderr)
