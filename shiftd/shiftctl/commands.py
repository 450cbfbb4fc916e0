"""``shiftctl``: drive a running shiftd over its control socket.

Exit codes: 0 success; 1 the daemon answered with an error (or the conversation broke off
mid-call); 2 usage error, unreadable input file, or no daemon answering at the socket.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import getpass
import json
import math
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import tzinfo
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from .. import __version__
from ..clock import relocal
from ..control.client import (
    ConnectError,
    ControlClient,
    ProtocolError,
    RemoteError,
    RequestTooLarge,
    encode_request,
)
from ..errors import exit_status
from ..web.passwords import MIN_LENGTH, PasswordError, hash_password
from . import rosterfiles as rostercsv

DEFAULT_SOCKET = "./state/control.sock"
DEFAULT_TIMEOUT = 30.0
#: Every ``roster.import`` request line stays strictly under this many bytes.
ROSTER_CHUNK_BYTES = 60 * 1024
START_HINT = "Start one with: shiftd run --config config/shiftd.yaml"
SHIFT_STATES = ("open", "offering", "escalated", "filled", "cancelled", "unfilled")

_PROG = "shiftctl"


class UsageError(Exception):
    """A problem with what the user gave us (bad file, oversized item): exit 2."""


# --------------------------------------------------------------------------------------
# argument parsing


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description="Control a running shiftd over its Unix control socket.",
        epilog=(
            "exit codes: 0 success; 1 the daemon answered with an error; "
            "2 usage error, bad input file, or no daemon answering."
        ),
    )
    parser.add_argument(
        "--socket",
        metavar="PATH",
        default=None,
        help=f"control socket (default: $SHIFTD_SOCKET, else {DEFAULT_SOCKET})",
    )
    parser.add_argument("--json", action="store_true", help="print the raw result as JSON")
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_positive_float,
        default=DEFAULT_TIMEOUT,
        help=f"give up on a call after this long (default: {DEFAULT_TIMEOUT:g})",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("ping", help="check that shiftd answers")
    p.set_defaults(handler=_cmd_ping)

    p = sub.add_parser("status", help="daemon status: shift and outbox counts")
    p.set_defaults(handler=_cmd_status)

    roster = sub.add_parser("roster", help="roster operations")
    roster_sub = roster.add_subparsers(dest="roster_command", metavar="ACTION", required=True)
    p = roster_sub.add_parser(
        "import",
        help="import caregivers (CSV, JSON, YAML) and shifts (JSON, YAML)",
        description=(
            "FILE is an agency's CSV export of caregivers (a header row, then one caregiver "
            'a row; .csv or --format csv), or {"caregivers": [...], "shifts": [...]} as '
            "JSON or YAML (chosen by extension, else by content); '-' reads standard input. "
            "Caregivers are upserted by id; an `active` column (yes/no) deactivates or "
            "reactivates them. Every problem is listed with its line and column, and a CSV "
            "with any problem changes nothing."
        ),
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--format", choices=("csv", "json", "yaml"), help="default: by extension")
    p.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="FIELD=COLUMN",
        help=f"read FIELD from the CSV column COLUMN ({', '.join(rostercsv.FIELDS)}); repeatable",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="show what would change and every problem; change nothing",
    )
    p.set_defaults(handler=_cmd_roster_import)

    caregiver = sub.add_parser("caregiver", help="caregiver operations")
    cg_sub = caregiver.add_subparsers(dest="caregiver_command", metavar="ACTION", required=True)
    p = cg_sub.add_parser("list", help="list caregivers")
    p.add_argument("--role", metavar="ROLE", help="only caregivers with this role")
    p.set_defaults(handler=_cmd_caregiver_list)
    for action, text in (
        ("deactivate", "never offer this caregiver a shift again (history stays)"),
        ("activate", "offer shifts to a deactivated caregiver again"),
    ):
        p = cg_sub.add_parser(action, help=text, description=text[0].upper() + text[1:] + ".")
        p.add_argument("caregiver_id", metavar="CAREGIVER_ID")
        p.set_defaults(handler=_cmd_caregiver_active, active=action == "activate")

    shift = sub.add_parser("shift", help="shift operations")
    shift_sub = shift.add_subparsers(dest="shift_command", metavar="ACTION", required=True)
    p = shift_sub.add_parser(
        "add",
        help="create a shift",
        description=(
            "Times without a UTC offset are local times in the organization's zone "
            '(e.g. --start "2027-01-05 07:00" --end "2027-01-05 15:00"); --in and --for '
            "give the start from now and the length (e.g. --in 2h --for 8h)."
        ),
    )
    p.add_argument("--role", required=True, metavar="ROLE", help="role required, e.g. RN")
    start = p.add_mutually_exclusive_group(required=True)
    start.add_argument("--start", metavar="TIME", help='start, e.g. "2027-01-05 07:00"')
    start.add_argument("--in", dest="start_in", metavar="DURATION", help="start from now, e.g. 2h")
    end = p.add_mutually_exclusive_group(required=True)
    end.add_argument("--end", metavar="TIME", help='end, e.g. "2027-01-05 15:00"')
    end.add_argument("--for", dest="length", metavar="DURATION", help="length, e.g. 8h")
    p.add_argument("--org", metavar="ORG", help="organization id")
    p.add_argument("--id", dest="shift_id", metavar="ID", help="shift id (default: generated)")
    p.set_defaults(handler=_cmd_shift_add)
    p = shift_sub.add_parser("list", help="list shifts")
    p.add_argument("--state", choices=SHIFT_STATES, help="only shifts in this state")
    p.set_defaults(handler=_cmd_shift_list)
    p = shift_sub.add_parser("show", help="show one shift with contacts and timeline")
    p.add_argument("shift_id", metavar="SHIFT_ID")
    p.set_defaults(handler=_cmd_shift_show)

    p = sub.add_parser("fanout", help="start offering a shift to qualified caregivers")
    p.add_argument("shift_id", metavar="SHIFT_ID")
    p.set_defaults(handler=_cmd_fanout)

    p = sub.add_parser("inbound", help="inject an inbound message as if from the provider")
    p.add_argument("--from", dest="from_", required=True, metavar="PHONE")
    p.add_argument("--body", required=True, metavar="TEXT")
    p.add_argument("--channel", choices=("sms", "voice"), default="sms")
    p.add_argument("--provider-id", metavar="ID", help="provider message id (for dedup)")
    p.add_argument("--shift", dest="shift_id", metavar="SHIFT_ID", help="target shift")
    p.set_defaults(handler=_cmd_inbound)

    p = sub.add_parser(
        "cancel",
        help="cancel a shift (whoever holds it is told)",
        description="Cancel a shift: nothing more is sent for it, and whoever held it is told.",
    )
    p.add_argument("shift_id", metavar="SHIFT_ID")
    p.set_defaults(handler=_cmd_cancel)

    p = sub.add_parser(
        "unassign",
        help="take a filled shift off its holder and offer it again",
        description=(
            "Take a filled shift off the caregiver who holds it: they are told, and offers "
            "restart from the policy without them, or, when it is too late to offer it "
            "again, the shift ends unfilled and the coordinator is told."
        ),
    )
    p.add_argument("shift_id", metavar="SHIFT_ID")
    p.set_defaults(handler=_cmd_unassign)

    p = sub.add_parser(
        "watch",
        help="stream events live (fanouts, texts, replies, escalations, claims)",
        description=(
            "Print each event as it happens until interrupted (Ctrl-C) or shiftd stops. "
            "A watcher that cannot keep up loses events and is told how many."
        ),
    )
    p.add_argument("--shift", dest="shift_id", metavar="SHIFT_ID", help="only this shift")
    _json_flag(p, "one JSON object per line")
    p.set_defaults(handler=_cmd_watch)

    p = sub.add_parser(
        "stats",
        help="fills, time-to-fill, fill rate and messages over a recent window",
        description=(
            "Figures for the shifts whose fanout started within the window: how many were "
            "filled, median and p90 time from fanout to claim, the fill rate (filled / fanned "
            "out), and the messages queued in the window by channel and state."
        ),
    )
    p.add_argument(
        "--since",
        default="24h",
        metavar="DURATION",
        help="window length, e.g. 24h, 90m, 7d (default: 24h)",
    )
    _json_flag(p, "print the raw result as JSON")
    p.set_defaults(handler=_cmd_stats)

    user = sub.add_parser("user", help="coordinator accounts for the web page")
    user_sub = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    p = user_sub.add_parser(
        "add",
        help="create a coordinator account, or set its password",
        description=(
            "Create the account NAME for the coordinator's page, or set a new password for "
            "it (which signs its open sessions out). The password is asked twice on a "
            "terminal, or read as one line from standard input with --password-stdin; it is "
            f"hashed here (scrypt) and only the hash reaches shiftd. At least {MIN_LENGTH} "
            "characters."
        ),
    )
    p.add_argument("name", metavar="NAME")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    p.set_defaults(handler=_cmd_user_add)
    p = user_sub.add_parser("remove", help="delete a coordinator account (signs it out)")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(handler=_cmd_user_remove)
    p = user_sub.add_parser("list", help="list coordinator accounts")
    p.set_defaults(handler=_cmd_user_list)

    p = sub.add_parser(
        "export",
        help="the audit record from the store: every message, or every shift event",
        description=(
            "Write every message (texts, calls and webhooks sent, with their state; texts "
            "received, with their outcome) or every shift event (the timeline) in a window, "
            "oldest first, as CSV or JSON lines. Times without an offset are local."
        ),
    )
    p.add_argument("kind", choices=("messages", "timeline"))
    p.add_argument(
        "--since", default="24h", metavar="WHEN", help="a span back (7d) or a time (default 24h)"
    )
    p.add_argument("--until", metavar="WHEN", help='a time, e.g. "2027-01-05 00:00" (default: now)')
    p.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    p.set_defaults(handler=_cmd_export)

    p = sub.add_parser("metrics", help="print the daemon's metrics (Prometheus text format)")
    p.set_defaults(handler=_cmd_metrics)
    for leaf in _leaf_parsers(parser):
        if "--json" not in leaf._option_string_actions:
            _json_flag(leaf, "print the raw result as JSON")
    return parser


def _leaf_parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """Every parser that runs a command, so each takes `--json` after its name too."""
    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        yield parser
    for action in subs:
        for child in dict.fromkeys(action.choices.values()):
            yield from _leaf_parsers(child)


def _json_flag(parser: argparse.ArgumentParser, help_text: str) -> None:
    # SUPPRESS: absent here, the top-level `shiftctl --json CMD` still counts.
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=help_text)


# --------------------------------------------------------------------------------------
# output helpers

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _clean(value: Any) -> str:
    """Render a value for a terminal: ``-`` for null, control characters escaped.

    Names and message bodies come from rosters and caregivers' texts; they must not be
    able to move the cursor or recolour the coordinator's terminal.
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return _render_detail(value)
    text = json.dumps(value, ensure_ascii=False) if isinstance(value, list) else str(value)
    if text.isprintable():
        return text
    return "".join(
        ch
        if ch.isprintable() or ch == " "
        else _ESCAPES.get(ch, f"\\x{ord(ch):02x}")
        if ord(ch) < 0x100
        else f"\\u{ord(ch):04x}"
        for ch in text
    )


def _render_detail(detail: dict[str, Any] | None) -> str:
    if not detail:
        return "-"
    parts = []
    for key, value in detail.items():
        if isinstance(value, str) and value and not any(c.isspace() or c in '"=' for c in value):
            shown = value
        else:
            shown = json.dumps(value, ensure_ascii=False)
        parts.append(f"{key}={shown}")
    return _clean(" ".join(parts))


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], out: TextIO) -> None:
    cells = [[_clean(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))
    for row in [list(headers), *cells]:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])] + [row[-1]]
        print("  ".join(padded).rstrip(), file=out)


def _kv(pairs: Sequence[tuple[str, Any]], out: TextIO) -> None:
    width = max((len(k) for k, _ in pairs), default=0) + 1
    for key, value in pairs:
        print(f"{key + ':':<{width}} {_clean(value)}", file=out)


def _counts(counts: Any) -> str:
    if not isinstance(counts, dict):
        return _clean(counts)
    return ", ".join(f"{k} {_clean(v)}" for k, v in counts.items()) or "-"


def _duration(seconds: Any) -> str:
    if not isinstance(seconds, int | float) or not math.isfinite(seconds):
        return _clean(seconds)
    total = int(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h {minutes:02d}m {secs:02d}s"
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{seconds:.1f}s"


_SUMMARY_KEYS = (
    "id",
    "state",
    "role_required",
    "start_time",
    "end_time",
    "organization_id",
    "claimed_by",
)


def _shift_summary(shift: dict[str, Any], out: TextIO, extra: Sequence[str] = ()) -> None:
    keys = [*_SUMMARY_KEYS, *extra]
    _kv([(k, _short_ts(v) if k in _TIME_KEYS else v) for k in keys for v in [shift.get(k)]], out)


_TIME_KEYS = frozenset({"start_time", "end_time", "claimed_at", "fanout_started_at", "escalate_at"})


# --------------------------------------------------------------------------------------
# roster files


class _RosterLoader(yaml.SafeLoader):
    """SafeLoader that keeps ids, phones, names and times as the strings they were written as.

    Plain YAML 1.1 reads ``phone: +15550001`` as the integer 15550001, ``id: 01234`` as 668
    and ``start_time: 2025-07-02T08:00:00Z`` as a datetime; for these fields that is never
    what a roster means.
    """

    STRING_FIELDS = frozenset(
        {
            "id",
            "name",
            "role",
            "phone",
            "organization_id",
            "role_required",
            "start_time",
            "end_time",
        }
    )
    # Null stays null: ``phone: ~`` means "no phone", not the string "~".
    _RETAG = frozenset("tag:yaml.org,2002:" + t for t in ("int", "float", "bool", "timestamp"))

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        for key_node, value_node in node.value:
            if (
                isinstance(key_node, yaml.ScalarNode)
                and (key_node.value in self.STRING_FIELDS or key_node.value.endswith("_id"))
                and isinstance(value_node, yaml.ScalarNode)
                and value_node.tag in self._RETAG
            ):
                value_node.tag = "tag:yaml.org,2002:str"
        return super().construct_mapping(node, deep=deep)


def _jsonable(value: Any, where: str) -> Any:
    """Make YAML-loaded data JSON-safe (dates as ISO strings); reject NaN/inf."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{where}: {value} is not a valid JSON number")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise UsageError(f"{where}: unsupported value of type {type(value).__name__}")


def load_roster(path: str) -> dict[str, list[dict[str, Any]]]:
    """Read a roster file (JSON or YAML) and check its shape; raise UsageError if unusable."""
    name = "<stdin>" if path == "-" else path
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None

    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        use_json = True
    elif suffix in (".yaml", ".yml"):
        use_json = False
    else:
        use_json = text.lstrip().startswith(("{", "["))

    if use_json:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UsageError(f"{name}:{exc.lineno}: {exc.msg} (column {exc.colno})") from None
    else:
        try:
            data = yaml.load(text, Loader=_RosterLoader)  # a SafeLoader subclass
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = f":{mark.line + 1}" if mark is not None else ""
            problem = exc.problem or exc.context or "invalid YAML"
            raise UsageError(f"{name}{line}: {problem}") from None
        except yaml.YAMLError as exc:
            raise UsageError(f"{name}: invalid YAML ({exc})") from None
        data = _jsonable(data, name)

    if not isinstance(data, dict):
        raise UsageError(
            f'{name}: expected a mapping with "caregivers" and/or "shifts", got {_kind(data)}'
        )
    unknown = sorted(str(k) for k in data if k not in ("caregivers", "shifts"))
    if unknown:
        raise UsageError(
            f"{name}: unknown key(s) {', '.join(map(repr, unknown))} "
            '(expected "caregivers" and/or "shifts")'
        )
    if "caregivers" not in data and "shifts" not in data:
        raise UsageError(f'{name}: no "caregivers" or "shifts" in the file')
    roster: dict[str, list[dict[str, Any]]] = {}
    for key in ("caregivers", "shifts"):
        items = data.get(key)
        if items is None:
            items = []
        if not isinstance(items, list):
            raise UsageError(f"{name}: {key}: expected a list, got {_kind(items)}")
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise UsageError(f"{name}: {key}[{i}]: expected a mapping, got {_kind(item)}")
        roster[key] = items
    return roster


def _kind(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        int: "a number",
        float: "a number",
        bool: "a boolean",
        type(None): "nothing",
    }.get(type(value), type(value).__name__)


def _json_size(value: Any) -> int:
    # Must encode exactly as shiftd.control.client.encode_request does.
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def chunk_items(
    key: str, items: list[dict[str, Any]], limit: int = ROSTER_CHUNK_BYTES
) -> Iterator[list[dict[str, Any]]]:
    """Split ``items`` so each ``roster.import {key: chunk}`` request line is under ``limit``.

    Greedy, order-preserving. Raises UsageError for a single item too large to send alone.
    """
    # Size of the request line with an empty list, with room for a long request id.
    base = len(encode_request(10**15, "roster.import", {key: []}))
    chunk: list[dict[str, Any]] = []
    size = base
    for i, item in enumerate(items):
        item_size = _json_size(item)
        if base + item_size >= limit:
            ident = item.get("id")
            label = f"{key}[{i}]" + (f" (id {ident!r})" if ident is not None else "")
            raise UsageError(f"{label} is {item_size} bytes, too large to send")
        added = item_size + (1 if chunk else 0)
        if chunk and size + added >= limit:
            yield chunk
            chunk, size, added = [], base, item_size
        chunk.append(item)
        size += added
    if chunk:
        yield chunk


def _merge_counts(total: dict[str, Any], part: Any) -> None:
    if not isinstance(part, dict):
        return
    for k, v in part.items():
        if isinstance(v, int) and not isinstance(v, bool):
            total[k] = total.get(k, 0) + v
        elif isinstance(v, list):
            total.setdefault(k, []).extend(v)
        else:
            total[k] = v


# --------------------------------------------------------------------------------------
# commands: each takes (client, ns) and returns (result, renderer)

Renderer = Callable[[dict[str, Any], TextIO], None]


def _cmd_ping(client: ControlClient, ns: argparse.Namespace) -> tuple[dict[str, Any], Renderer]:
    def render(result: dict[str, Any], out: TextIO) -> None:
        print(f"pong from shiftd {_clean(result.get('version'))} at {_clean(ns.socket)}", file=out)

    return client.call("ping"), render


def _cmd_status(client: ControlClient, ns: argparse.Namespace) -> tuple[dict[str, Any], Renderer]:
    def render(r: dict[str, Any], out: TextIO) -> None:
        _kv(
            [
                ("version", r.get("version")),
                ("uptime", _duration(r.get("uptime_s"))),
                ("state_dir", r.get("state_dir")),
                ("actors", r.get("actors")),
                ("shifts", _counts(r.get("shifts"))),
                ("outbox", _counts(r.get("outbox"))),
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
        f"cluster:   {_clean(cluster.get('partitions'))} partitions,"
        f" {_clean(cluster.get('unowned'))} unowned, lease ttl {_clean(cluster.get('ttl_s'))}s",
        file=out,
    )
    rows = [
        (
            f"{_clean(i.get('id'))}{' *' if i.get('id') == me else ''}",
            i.get("host"),
            i.get("pid"),
            len(i.get("partitions") or ()),
            _ranges(i.get("partitions") or ()),
            f"{_clean(i.get('heartbeat_age_s'))}s",
            f"{_clean(i.get('oldest_renewal_s'))}s",
        )
        for i in cluster.get("instances") or ()
        if isinstance(i, dict)
    ]
    headers = ("INSTANCE", "HOST", "PID", "HELD", "PARTITIONS", "HEARTBEAT", "LEASE AGE")
    _table(headers, rows, out)


def _ranges(numbers: Sequence[Any]) -> str:
    """1,2,3,5 as "1-3,5"."""
    spans: list[list[int]] = []
    for n in sorted(n for n in numbers if isinstance(n, int)):
        if spans and n == spans[-1][1] + 1:
            spans[-1][1] = n
        else:
            spans.append([n, n])
    return ",".join(f"{a}-{b}" if a != b else f"{a}" for a, b in spans) or "-"


def _cmd_roster_import(
    client: ControlClient, ns: argparse.Namespace
) -> tuple[dict[str, Any], Renderer]:
    if ns.map and _roster_format(ns) != "csv":
        raise UsageError("--map applies to CSV files only")
    if _roster_format(ns) == "csv":
        return _import_csv(client, ns)
    roster = load_roster(ns.file)
    plan = [
        (key, chunk) for key in ("caregivers", "shifts") for chunk in chunk_items(key, roster[key])
    ]
    totals = _send_roster(client, plan, ns.dry_run, roster)

    def render(r: dict[str, Any], out: TextIO) -> None:
        for w in r["warnings"]:
            print(
                f"warning: {_clean(w.get('kind'))}[{_clean(w.get('index'))}]: "
                f"{_clean(w.get('field'))!r}: {_clean(w.get('message'))}",
                file=sys.stderr,
            )
        _render_import(r, ("caregivers", "shifts"), out)

    return totals, render


def _roster_format(ns: argparse.Namespace) -> str:
    if ns.format:
        return str(ns.format)
    suffix = Path(ns.file).suffix.lower()
    return {".csv": "csv", ".json": "json", ".yaml": "yaml", ".yml": "yaml"}.get(suffix, "auto")


def _send_roster(
    client: ControlClient,
    plan: list[tuple[str, list[dict[str, Any]]]],
    dry_run: bool,
    roster: dict[str, list[dict[str, Any]]],
) -> dict[str, Any]:
    """Send `plan`'s chunks in order; the merged answer (warnings' indexes file-wide)."""
    if not plan:  # an empty roster: still let the daemon see (and validate) it
        plan = [("caregivers", [])]
    totals: dict[str, Any] = {
        "caregivers": {"created": 0, "updated": 0, "unchanged": 0, "deactivated": 0},
        "shifts": {"created": 0, "updated": 0, "unchanged": 0, "skipped": []},
        "warnings": [],
        "dry_run": dry_run,
    }
    progress = _Progress(len(plan) > 1 and _isatty(sys.stderr))
    sent = {"caregivers": 0, "shifts": 0}
    try:
        for n, (key, chunk) in enumerate(plan, 1):
            args: dict[str, Any] = {key: chunk, **({"dry_run": True} if dry_run else {})}
            try:
                result = client.call("roster.import", args)
            except RemoteError as exc:
                if n > 1 and not dry_run:
                    exc.message += (
                        f" (request {n}/{len(plan)}; the {n - 1} before it were imported)"
                    )
                exc.offset = sent[key]
                raise
            for w in result.get("warnings") or []:
                if isinstance(w, dict) and isinstance(w.get("index"), int):
                    totals["warnings"].append({**w, "index": w["index"] + sent[w.get("kind", key)]})
            sent[key] += len(chunk)
            for part in ("caregivers", "shifts"):
                _merge_counts(totals[part], result.get(part))
            progress.show(
                f"roster import: request {n}/{len(plan)} done ({100 * n // len(plan)}%): "
                f"caregivers {sent['caregivers']}/{len(roster['caregivers'])}, "
                f"shifts {sent['shifts']}/{len(roster['shifts'])}"
            )
    finally:
        progress.done()
    return totals


_WOULD = {"created": "create", "updated": "update", "deactivated": "deactivate"}


def _render_import(r: dict[str, Any], parts: Sequence[str], out: TextIO) -> None:
    if r.get("dry_run"):
        print("dry run: nothing was changed", file=out)
    for part in parts:
        counts = dict(r[part])
        skipped = counts.pop("skipped", None)
        changes = counts.pop("changes", None)
        line = _counts(counts)
        if skipped is not None:
            line += f", skipped {len(skipped)}"
        print(f"{part}: {line}", file=out)
        for change in changes or []:
            fields = change.get("fields")
            what = f" ({', '.join(_clean(f) for f in fields)})" if fields else ""
            verb = _WOULD.get(change.get("change"), _clean(change.get("change")))
            print(f"  would {verb} {_clean(change.get('id'))}{what}", file=out)
        for item in skipped or []:
            if isinstance(item, dict):
                print(
                    f"  skipped {_clean(item.get('id'))}: {_clean(item.get('reason'))}",
                    file=out,
                )
            else:
                print(f"  skipped {_clean(item)}", file=out)


def _import_csv(client: ControlClient, ns: argparse.Namespace) -> tuple[dict[str, Any], Renderer]:
    """A CSV export: every problem (the file's, then the daemon's, such as unknown roles)
    is listed with its line and column before anything changes; any problem: nothing does."""
    try:
        mapping = rostercsv.parse_map(ns.map)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    parsed = rostercsv.read_csv(_read_text(ns.file), mapping)
    name = "<stdin>" if ns.file == "-" else ns.file
    for warning in parsed.warnings:
        print(f"{_PROG}: warning: {name}: {warning}", file=sys.stderr)
    problems = list(parsed.errors)
    plan = [("caregivers", chunk) for chunk in chunk_items("caregivers", parsed.caregivers)]
    roster = {"caregivers": parsed.caregivers, "shifts": []}
    totals: dict[str, Any] | None = None
    if parsed.caregivers or not problems:
        try:
            totals = _send_roster(client, plan, True, roster)
        except RemoteError as exc:
            if exc.code != "bad_args":
                raise
            problems += rostercsv.locate(exc.message, parsed, exc.offset)
    problems += rostercsv.unknown_fields(parsed, (totals or {}).get("warnings", []))
    if problems:
        problems.sort(key=lambda p: p.line)
        shown = "\n".join(f"  {name}: {_clean(str(p))}" for p in problems)
        raise UsageError(f"{len(problems)} problem(s); nothing was imported:\n{shown}")
    if not ns.dry_run:
        totals = _send_roster(client, plan, False, roster)
    assert totals is not None

    def render(r: dict[str, Any], out: TextIO) -> None:
        _render_import(r, ("caregivers",), out)

    return totals, render


def _read_text(path: str) -> str:
    name = "<stdin>" if path == "-" else path
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


class _Progress:
    """One status line on a terminal's stderr, rewritten in place; nothing when disabled."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._shown = False

    def show(self, text: str) -> None:
        if self.enabled:
            # \r back to the line start, \x1b[K erase what a longer previous line left.
            print(f"\r{text}\x1b[K", end="", file=sys.stderr, flush=True)
            self._shown = True

    def done(self) -> None:
        if self._shown:
            print(file=sys.stderr, flush=True)
            self._shown = False


def _cmd_caregiver_list(
    client: ControlClient, ns: argparse.Namespace
) -> tuple[dict[str, Any], Renderer]:
    args = {"role": ns.role} if ns.role is not None else {}

    def render(r: dict[str, Any], out: TextIO) -> None:
        rows = r.get("caregivers") or []
        if not rows:
            print("no caregivers", file=out)
            return
        inactive = any(c.get("active") is False for c in rows)
        _table(
            ("ID", "NAME", "ROLE", "PHONE", *(["ACTIVE"] if inactive else [])),
            [
                (c.get("id"), c.get("name"), c.get("role"), c.get("phone"))
                + ((c.get("active"),) if inactive else ())
                for c in rows
            ],
            out,
        )

    return client.call("caregiver.list", args), render


def _cmd_caregiver_active(
    client: ControlClient, ns: argparse.Namespace
) -> tuple[dict[str, Any], Renderer]:
    cmd = "caregiver.activate" if ns.active else "caregiver.deactivate"

    def render(r: dict[str, Any], out: TextIO) -> None:
        state = (
            "active: offered shifts again"
            if r.get("active")
            else "deactivated: never offered a shift"
        )
        print(f"caregiver {_clean(r.get('caregiver_id'))} {state}", file=out)

    return client.call(cmd, {"caregiver_id": ns.caregiver_id}), render


def _cmd_shift_add(
    client: ControlClient, ns: argparse.Namespace
) -> tuple[dict[str, Any], Renderer]:
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
        _shift_summary(r.get("shift") or {}, out)

    return client.call("shift.add", args), render


def _cmd_shift_list(
    client: ControlClient, ns: argparse.Namespace
) -> tuple[dict[str, Any], Renderer]:
    args = {"state": ns.state} if ns.state is not None else {}

    def render(r: dict[str, Any], out: TextIO) -> None:
        rows = r.get("shifts") or []
        if not rows:
            print("no shifts", file=out)
            return
        _table(
            ("ID", "STATE", "ROLE", "START", "END", "ORG", "CLAIMED_BY"),
            [
                (
                    s.get("id"),
                    s.get("state"),
                    s.get("role_required"),
                    _short_ts(s.get("start_time"), minutes=True),
                    _short_ts(s.get("end_time"), minutes=True),
                    s.get("organization_id"),
                    s.get("claimed_by"),
                )
                for s in rows
            ],
            out,
        )

    return client.call("shift.list", args), render


def _cmd_shift_show(
    client: ControlClient, ns: argparse.Namespace
) -> tuple[dict[str, Any], Renderer]:
    def render(r: dict[str, Any], out: TextIO) -> None:
        shift = r.get("shift") or {}
        _shift_summary(shift, out, extra=("claimed_at", "fanout_started_at", "escalate_at"))
        contacts = shift.get("contacts") or []
        print("\nContacts", file=out)
        if contacts:
            _table(
                ("CAREGIVER", "NAME", "CHANNEL", "PURPOSE", "STATE", "DELIVERY", "AT"),
                [
                    (
                        c.get("caregiver_id"),
                        c.get("name"),
                        c.get("channel"),
                        c.get("purpose"),
                        c.get("state"),
                        c.get("provider_status"),  # the provider's report: delivered, failed…
                        _short_ts(c.get("at")),
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
            _table(
                ("CAREGIVER", "NOTICE", "CHANNEL", "ERROR", "AT"),
                [
                    (
                        n.get("caregiver_id"),
                        n.get("purpose"),
                        n.get("channel"),
                        n.get("error"),
                        _short_ts(n.get("at")),
                    )
                    for n in lost
                ],
                out,
            )
        declines = shift.get("declines") or []
        print("\nDeclines", file=out)
        if declines:
            _table(
                ("CAREGIVER", "NAME", "AT"),
                [(d.get("caregiver_id"), d.get("name"), _short_ts(d.get("at"))) for d in declines],
                out,
            )
        else:
            print("  (none)", file=out)
        timeline = shift.get("timeline") or []
        print("\nTimeline", file=out)
        if timeline:
            _table(
                ("TS", "KIND", "CAREGIVER", "DETAIL"),
                [
                    (
                        _short_ts(e.get("ts")),
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


def _cmd_fanout(client: ControlClient, ns: argparse.Namespace) -> tuple[dict[str, Any], Renderer]:
    def render(r: dict[str, Any], out: TextIO) -> None:
        status = r.get("status")
        shift_id = _clean(r.get("shift_id", ns.shift_id))
        escalate_at = r.get("escalate_at")
        when = (
            f"escalates at {_short_ts(escalate_at)}" if escalate_at else "no escalation scheduled"
        )
        if status == "started":
            print(f"fanout started: {_clean(r.get('offered'))} offered, {when}", file=out)
        elif status == "already_running":
            print(f"fanout already running for shift {shift_id}: {when}", file=out)
        elif status == "already_filled":
            print(f"shift {shift_id} is already filled; nothing to do", file=out)
        elif status == "cancelled":
            print(f"shift {shift_id} is cancelled; no fanout", file=out)
        elif status == "no_candidates":
            print(f"nobody can be offered shift {shift_id}; it stays open", file=out)
        elif status == "too_late":
            print(
                f"offers for shift {shift_id} have closed: it starts within the lead time "
                "or has started",
                file=out,
            )
        elif status == "unfilled":
            print(f"shift {shift_id} went unfilled (offers closed); no fanout", file=out)
        else:
            print(f"fanout {_clean(status)}: {_clean(r.get('offered'))} offered, {when}", file=out)

    return client.call("fanout", {"shift_id": ns.shift_id}), render


def _cmd_inbound(client: ControlClient, ns: argparse.Namespace) -> tuple[dict[str, Any], Renderer]:
    args: dict[str, Any] = {"from": ns.from_, "body": ns.body, "channel": ns.channel}
    if ns.provider_id is not None:
        args["provider_message_id"] = ns.provider_id
    if ns.shift_id is not None:
        args["shift_id"] = ns.shift_id

    def render(r: dict[str, Any], out: TextIO) -> None:
        _kv(
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


_CANCEL_SAYS = {
    "cancelled": "shift {id} cancelled",
    "already_cancelled": "shift {id} was already cancelled",
    "unfilled": "shift {id} already went unfilled (offers closed); nothing to cancel",
}
_UNASSIGN_SAYS = {
    "released": "shift {id} unassigned; offering it again",
    "released_unfilled": "shift {id} unassigned; too late to offer it again, so it is unfilled"
    " (the coordinator is told)",
    "not_claimed": "shift {id} is not filled; nobody to unassign",
}


def _say_status(says: dict[str, str], r: dict[str, Any], shift_id: str, out: TextIO) -> None:
    """One line for an answer's status, from `says` (a status not listed is shown as is)."""
    status, shift = r.get("status"), _clean(r.get("shift_id", shift_id))
    line = says.get(str(status))
    print(line.format(id=shift) if line else f"shift {shift}: {_clean(status)}", file=out)


def _cmd_cancel(client: ControlClient, ns: argparse.Namespace) -> tuple[dict[str, Any], Renderer]:
    def render(r: dict[str, Any], out: TextIO) -> None:
        _say_status(_CANCEL_SAYS, r, ns.shift_id, out)

    return client.call("cancel", {"shift_id": ns.shift_id}), render


def _cmd_unassign(client: ControlClient, ns: argparse.Namespace) -> tuple[dict[str, Any], Renderer]:
    def render(r: dict[str, Any], out: TextIO) -> None:
        _say_status(_UNASSIGN_SAYS, r, ns.shift_id, out)
        if r.get("reply"):
            print(f"holder told: {_clean(r.get('reply'))}", file=out)

    return client.call("unassign", {"shift_id": ns.shift_id}), render


def _read_password(from_stdin: bool) -> str:
    """The new password: one line of standard input, or typed twice at a terminal.

    Raises UsageError when it cannot be read, the two differ, or it is too short."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        if not _isatty(sys.stdin):
            raise UsageError("no terminal to ask the password on: use --password-stdin")
        password = getpass.getpass("New password: ")
        if getpass.getpass("Again: ") != password:
            raise UsageError("the two passwords differ; nothing was changed")
    try:
        return hash_password(password)
    except PasswordError as exc:
        raise UsageError(f"{exc}; nothing was changed") from None


def _cmd_user_add(client: ControlClient, ns: argparse.Namespace) -> tuple[dict[str, Any], Renderer]:
    password_hash = _read_password(ns.password_stdin)

    def render(r: dict[str, Any], out: TextIO) -> None:
        if r.get("result") == "created":
            print(f"coordinator {_clean(r.get('name'))} created", file=out)
        else:
            print(f"coordinator {_clean(r.get('name'))}: password changed", file=out)

    return client.call("user.add", {"name": ns.name, "password_hash": password_hash}), render


def _cmd_user_remove(
    client: ControlClient, ns: argparse.Namespace
) -> tuple[dict[str, Any], Renderer]:
    def render(r: dict[str, Any], out: TextIO) -> None:
        print(f"coordinator {_clean(r.get('name'))} removed", file=out)

    return client.call("user.remove", {"name": ns.name}), render


def _cmd_user_list(
    client: ControlClient, ns: argparse.Namespace
) -> tuple[dict[str, Any], Renderer]:
    def render(r: dict[str, Any], out: TextIO) -> None:
        users = r.get("users") or []
        if not users:
            print("no coordinator accounts (add one: shiftctl user add NAME)", file=out)
            return
        _table(
            ("NAME", "CREATED", "PASSWORD SET"),
            [
                (u.get("name"), _short_ts(u.get("created_at")), _short_ts(u.get("updated_at")))
                for u in users
            ],
            out,
        )

    return client.call("user.list"), render


EXPORT_COLUMNS = {
    "messages": (
        "ts",
        "direction",
        "id",
        "shift_id",
        "caregiver_id",
        "channel",
        "purpose",
        "phone",
        "body",
        "state",
        "outcome",
        "sent_at",
        "provider_id",
        "provider_status",
        "error",
    ),
    "timeline": ("ts", "id", "shift_id", "kind", "caregiver_id", "detail"),
}


def _cmd_export(client: ControlClient, ns: argparse.Namespace) -> None:
    """Page through `export` and write each row as it comes: memory stays flat."""
    args: dict[str, Any] = {"kind": ns.kind, "since": ns.since, "limit": 1000}
    if ns.until is not None:
        args["until"] = ns.until
    columns = EXPORT_COLUMNS[ns.kind]
    out = sys.stdout
    writer = csv.DictWriter(out, columns, extrasaction="ignore", lineterminator="\n")
    if ns.format == "csv":
        writer.writeheader()
    while True:
        page = client.call("export", args)
        for row in page.get("rows") or []:
            if ns.format == "jsonl":
                print(json.dumps(row, ensure_ascii=False), file=out)
            else:
                writer.writerow(
                    {k: json.dumps(v) if isinstance(v, dict) else v for k, v in row.items()}
                )
        if not page.get("next"):
            break
        args["after"] = page["next"]
    out.flush()


def _cmd_metrics(client: ControlClient, ns: argparse.Namespace) -> tuple[dict[str, Any], Renderer]:
    def render(r: dict[str, Any], out: TextIO) -> None:
        text = r.get("text")
        print(text if isinstance(text, str) else "", end="", file=out)

    return client.call("metrics"), render


def _percent(value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return _clean(value)
    return f"{100 * value:.1f}%"


MESSAGE_STATES = ("sent", "failed", "pending", "sending", "cancelled")


def render_stats(r: dict[str, Any], out: TextIO, window: str | None = None) -> None:
    """`shiftctl stats` as a person reads it."""
    shown_window = window or _duration(r.get("window_s"))
    ttf = r.get("time_to_fill_s") if isinstance(r.get("time_to_fill_s"), dict) else {}
    if ttf and ttf.get("median") is not None:
        fill_time = (
            f"median {_duration(ttf.get('median'))}, p90 {_duration(ttf.get('p90'))}, "
            f"max {_duration(ttf.get('max'))}"
        )
    else:
        fill_time = "-"
    _kv(
        [
            ("window", f"last {shown_window} (since {_clean(r.get('since'))})"),
            ("fanned out", r.get("fanned_out")),
            ("filled", r.get("filled")),
            ("fill rate", _percent(r.get("fill_rate"))),
            ("cancelled", r.get("cancelled")),
            *([("unfilled", r.get("unfilled"))] if "unfilled" in r else []),
            ("in progress", r.get("in_progress")),
            ("time to fill", fill_time),
        ],
        out,
    )
    messages = r.get("messages") if isinstance(r.get("messages"), dict) else {}
    print("\nMessages", file=out)
    if not messages:
        print("  (none)", file=out)
        return
    states = [*MESSAGE_STATES]
    for by_state in messages.values():
        if isinstance(by_state, dict):
            states += [s for s in by_state if s not in states]
    rows = []
    for channel, by_state in sorted(messages.items()):
        counts = by_state if isinstance(by_state, dict) else {}
        rows.append([channel, *(counts.get(s, 0) for s in states), sum(counts.values())])
    _table(("CHANNEL", *(s.upper() for s in states), "TOTAL"), rows, out)


def _cmd_stats(client: ControlClient, ns: argparse.Namespace) -> tuple[dict[str, Any], Renderer]:
    def render(r: dict[str, Any], out: TextIO) -> None:
        render_stats(r, out, ns.since)

    return client.call("stats", {"since": ns.since}), render


def _short_ts(ts: Any, minutes: bool = False) -> str:
    """`2025-07-01T14:00:05-04:00` → `2025-07-01 14:00:05` (`… 14:00` with `minutes`): the
    local time the daemon sent, without offset or fractions; anything else as is."""
    if isinstance(ts, str) and len(ts) >= 19 and ts[10] == "T":
        return f"{ts[:10]} {ts[11:16] if minutes else ts[11:19]}"
    return _clean(ts)


_AUDIENCE = {"all": "everyone with the role", "offered": "those offered already"}


def _wave_text(d: dict[str, Any]) -> str:
    """A policy wave: `step 1: voice to those offered already, 4 contacted`."""
    text = f"step {_clean(d.get('step'))}"
    if d.get("round"):
        text += f" round {_clean(d.get('round'))}"
    if d.get("channel") is not None:
        audience = d.get("audience")
        shown = _AUDIENCE.get(audience, _clean(audience)) if isinstance(audience, str) else "-"
        text += f": {_clean(d.get('channel'))} to {shown}"
    tags = d.get("tags")
    if isinstance(tags, list) and tags:
        text += f" tagged {', '.join(_clean(t) for t in tags)}"
    if "contacted" in d:
        text += f", {_clean(d.get('contacted'))} contacted"
    if "newly_offered" in d:
        text += f" ({_clean(d.get('newly_offered'))} newly offered)"
    return text


def _held_text(d: dict[str, Any]) -> str:
    return f"step {_clean(d.get('step'))} held for quiet hours until {_short_ts(d.get('until'))}"


def _released_text(d: dict[str, Any], holder: str) -> str:
    by = d.get("by")
    if by == "coordinator":
        text = f"{holder} unassigned by the coordinator"
    elif by == "caregiver":
        text = f"{holder} released it"
    else:
        text = f"{holder} released (by {_clean(by)})"
    if d.get("reopened") is True:
        return text + "; offering it again"
    if d.get("reopened") is False:
        return text + "; too late to offer it again"
    return text


def _plural(n: Any, word: str) -> str:
    return f"{_clean(n)} {word}{'' if n == 1 else 's'}"


def timeline_detail(kind: Any, detail: Any) -> str:
    """The DETAIL cell of `shift show`'s timeline: a sentence for the kinds that have one,
    `key=value` pairs for the rest."""
    d: dict[str, Any] = detail if isinstance(detail, dict) else {}
    if not d:
        return "-"
    if kind == "wave" or (kind == "escalated" and "channel" in d):
        return _clean(_wave_text(d))
    if kind == "wave_held":
        return _clean(_held_text(d))
    if kind == "unfilled" and "contacted" in d:
        text = f"offers closed: {_plural(d.get('contacted'), 'caregiver')} contacted"
        if d.get("withdrawn"):
            text += f", {_plural(d.get('withdrawn'), 'pending offer')} withdrawn"
        told = d.get("coordinator_told")
        if told is not None:
            text += ", coordinator told" if told else ", no coordinator to tell"
        return _clean(text)
    if kind == "released" and "by" in d:
        text = f"by the {_clean(d.get('by'))}"
        if d.get("reopened") is True:
            text += "; offered again"
        elif d.get("reopened") is False:
            text += "; too late to offer again"
        return _clean(text)
    if kind == "cancelled" and "withdrawn" in d:
        text = f"{_plural(d.get('withdrawn'), 'pending message')} withdrawn"
        if "holder_told" in d:
            text += "; holder told" if d.get("holder_told") else "; nobody held it"
        return _clean(text)
    if kind == "notice_lost" and "purpose" in d:
        return _clean(f"{d.get('purpose')} by {d.get('channel')} failed: {d.get('error')}")
    if kind == "fanout_started" and "candidates" in d:
        text = f"{_plural(d.get('candidates'), 'candidate')}"
        if d.get("expires_at"):
            text += f", offers close at {_short_ts(d.get('expires_at'))}"
        return _clean(text)
    return _render_detail(d)


def render_event(event: dict[str, Any], tz: tzinfo | None = None) -> str:
    """One event as one readable line: time (local to `tz` when given), kind, then what
    happened."""
    kind = event.get("kind")
    shift = _clean(event.get("shift_id"))
    who = _clean(event.get("caregiver_id"))
    raw = event.get("detail")
    d: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if kind == "fanout_started":
        text = f"shift {shift}: {_clean(d.get('offered'))} offered, escalates at "
        text += _short_ts(_local(d.get("escalate_at"), tz))
    elif kind == "escalated":
        calls = d.get("calls")
        text = f"shift {shift}: {_clean(calls)} call{'' if calls == 1 else 's'}"
    elif kind == "claimed":
        text = f"shift {shift} by {who} ({_clean(d.get('channel'))})"
        if isinstance(d.get("time_to_fill_s"), int | float):
            text += f" after {_duration(d['time_to_fill_s'])}"
    elif kind == "declined":
        text = f"shift {shift} by {who}"
    elif kind == "cancelled":
        text = f"shift {shift}"
    elif kind == "wave":
        text = f"shift {shift}: {_wave_text(d)}"
    elif kind == "wave_held":
        text = f"shift {shift}: {_held_text(d)}"
    elif kind == "unfilled":
        text = f"shift {shift}: offers closed with nobody claiming it"
    elif kind == "released":
        text = f"shift {shift}: {_released_text(d, who)}"
    elif kind == "reply":
        sender = who if event.get("caregiver_id") else f"unknown {_clean(d.get('from'))}"
        text = f"{_clean(d.get('channel'))} from {sender}: {_clean(d.get('outcome'))}"
        if d.get("replayed"):
            text += " (replayed)"
        if event.get("shift_id"):
            text += f" (shift {shift})"
    elif kind in ("sent", "send_retry", "send_failed", "send_suppressed"):
        text = f"{_clean(d.get('channel'))} {_clean(d.get('purpose'))} to {who}"
        if event.get("shift_id"):
            text += f" (shift {shift})"
    elif kind == "overflow":
        text = f"{_clean(d.get('dropped'))} events lost: this watch fell behind"
    else:
        parts = [f"shift {shift}"] if event.get("shift_id") else []
        if event.get("caregiver_id"):
            parts.append(f"caregiver {who}")
        if d:
            parts.append(_render_detail(d))
        text = " ".join(parts) or "-"
    return f"{_short_ts(_local(event.get('ts'), tz))}  {_clean(kind):<14}  {text}"


def _local(ts: Any, tz: tzinfo | None) -> Any:
    return relocal(ts, tz) if tz is not None and isinstance(ts, str) else ts


def _zone(name: Any) -> tzinfo | None:
    """The daemon's zone (the watch acknowledgement's `timezone`), None if it sent none."""
    try:
        return ZoneInfo(name) if isinstance(name, str) else None
    except (ValueError, ZoneInfoNotFoundError):
        return None


def _cmd_watch(client: ControlClient, ns: argparse.Namespace) -> None:
    args = {"shift_id": ns.shift_id} if ns.shift_id is not None else {}
    out = sys.stdout
    events = client.stream("watch", args)
    tz = _zone(client.ack.get("timezone") if isinstance(client.ack, dict) else None)
    if _isatty(sys.stderr):
        print(f"watching shiftd at {_clean(ns.socket)} (Ctrl-C to stop)", file=sys.stderr)
    for event in events:
        if ns.json:
            print(json.dumps(event, ensure_ascii=False), file=out, flush=True)
        else:
            print(render_event(event, tz), file=out, flush=True)
    print(f"{_PROG}: shiftd closed the event stream", file=sys.stderr)


# --------------------------------------------------------------------------------------
# entry point


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _connect_message(exc: ConnectError) -> str:
    if exc.reason == "permission denied":
        return (
            f"{_PROG}: cannot use the shiftd socket at {exc.path} (permission denied). "
            "Run shiftctl as a user allowed to access it (check the socket's group and mode)."
        )
    return f"{_PROG}: no shiftd is answering at {exc.path} ({exc.reason}). {START_HINT}"


def main(argv: list[str] | None = None) -> int:
    """Run shiftctl; return the process exit code."""
    parser = build_parser()
    try:
        ns = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if ns.socket is None:
        ns.socket = os.environ.get("SHIFTD_SOCKET") or DEFAULT_SOCKET

    client = ControlClient(ns.socket, timeout=ns.timeout)
    try:
        answered = ns.handler(client, ns)  # None: the command printed as it went (watch)
        if answered is not None:
            result, render = answered
            if ns.json:
                print(json.dumps(result, indent=2, ensure_ascii=False))
            else:
                render(result, sys.stdout)
        sys.stdout.flush()
    except UsageError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return 2
    except ConnectError as exc:
        print(_connect_message(exc), file=sys.stderr)
        return 2
    except RequestTooLarge as exc:
        print(f"{_PROG}: {exc}; nothing was sent", file=sys.stderr)
        return 2
    except RemoteError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return exit_status(exc.code)
    except ProtocolError as exc:
        print(f"{_PROG}: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # Output piped into something that stopped reading (e.g. `| head`).
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
