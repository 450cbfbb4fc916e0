"""``shiftctl``: drive a running shiftd over its control socket (the command line, the call).

Exit statuses: one per family of outcomes (`shiftd.errors.Exit`): an error the daemon answers
exits with its code's status in the error table, a local failure with its own (no daemon at
the socket, a conversation broken off); `shiftctl --help` lists them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterator

from .. import __version__
from ..control.client import (
    ConnectError,
    ControlClient,
    ProtocolError,
    RemoteError,
    RequestTooLarge,
)
from ..errors import EXIT_MEANINGS, Exit, exit_status
from ..models import Channel, ShiftState
from ..web.passwords import MIN_LENGTH
from . import rosterfiles as rostercsv
from .accounts import cmd_user_add, cmd_user_list, cmd_user_remove
from .commands import (
    cmd_cancel,
    cmd_caregiver_active,
    cmd_caregiver_list,
    cmd_fanout,
    cmd_inbound,
    cmd_metrics,
    cmd_ping,
    cmd_shift_add,
    cmd_shift_list,
    cmd_shift_show,
    cmd_stats,
    cmd_status,
    cmd_unassign,
    cmd_watch,
)
from .export import cmd_export
from .rosterimport import cmd_roster_import
from .usage import PROG, UsageError

DEFAULT_SOCKET = "./state/control.sock"
DEFAULT_TIMEOUT = 30.0
START_HINT = "Start one with: shiftd run --config config/shiftd.yaml"
SHIFT_STATES = tuple(s.value for s in ShiftState)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text!r}")
    return value


def _exit_statuses() -> str:
    """The exit statuses as `--help` lists them, one a line."""
    lines = [f"  {status.value:>3}  {meaning}" for status, meaning in EXIT_MEANINGS.items()]
    return "exit statuses:\n" + "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Control a running shiftd over its Unix control socket.",
        epilog=_exit_statuses(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    p.set_defaults(handler=cmd_ping)

    p = sub.add_parser("status", help="daemon status: shift and outbox counts")
    p.set_defaults(handler=cmd_status)

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
    p.set_defaults(handler=cmd_roster_import)

    caregiver = sub.add_parser("caregiver", help="caregiver operations")
    cg_sub = caregiver.add_subparsers(dest="caregiver_command", metavar="ACTION", required=True)
    p = cg_sub.add_parser("list", help="list caregivers")
    p.add_argument("--role", metavar="ROLE", help="only caregivers with this role")
    p.set_defaults(handler=cmd_caregiver_list)
    for action, text in (
        ("deactivate", "never offer this caregiver a shift again (history stays)"),
        ("activate", "offer shifts to a deactivated caregiver again"),
    ):
        p = cg_sub.add_parser(action, help=text, description=text[0].upper() + text[1:] + ".")
        p.add_argument("caregiver_id", metavar="CAREGIVER_ID")
        p.set_defaults(handler=cmd_caregiver_active, active=action == "activate")

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
    p.set_defaults(handler=cmd_shift_add)
    p = shift_sub.add_parser("list", help="list shifts")
    p.add_argument("--state", choices=SHIFT_STATES, help="only shifts in this state")
    p.set_defaults(handler=cmd_shift_list)
    p = shift_sub.add_parser("show", help="show one shift with contacts and timeline")
    p.add_argument("shift_id", metavar="SHIFT_ID")
    p.set_defaults(handler=cmd_shift_show)

    p = sub.add_parser("fanout", help="start offering a shift to qualified caregivers")
    p.add_argument("shift_id", metavar="SHIFT_ID")
    _request_id_option(p)
    p.set_defaults(handler=cmd_fanout)

    p = sub.add_parser("inbound", help="inject an inbound message as if from the provider")
    p.add_argument("--from", dest="from_", required=True, metavar="PHONE")
    p.add_argument("--body", required=True, metavar="TEXT")
    p.add_argument("--channel", choices=(Channel.SMS, Channel.VOICE), default=Channel.SMS)
    p.add_argument("--provider-id", metavar="ID", help="provider message id (for dedup)")
    p.add_argument("--shift", dest="shift_id", metavar="SHIFT_ID", help="target shift")
    p.set_defaults(handler=cmd_inbound)

    p = sub.add_parser(
        "cancel",
        help="cancel a shift (whoever holds it is told)",
        description="Cancel a shift: nothing more is sent for it, and whoever held it is told.",
    )
    p.add_argument("shift_id", metavar="SHIFT_ID")
    _request_id_option(p)
    p.set_defaults(handler=cmd_cancel)

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
    _request_id_option(p)
    p.set_defaults(handler=cmd_unassign)

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
    p.set_defaults(handler=cmd_watch)

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
    p.set_defaults(handler=cmd_stats)

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
    p.set_defaults(handler=cmd_user_add)
    p = user_sub.add_parser("remove", help="delete a coordinator account (signs it out)")
    p.add_argument("name", metavar="NAME")
    p.set_defaults(handler=cmd_user_remove)
    p = user_sub.add_parser("list", help="list coordinator accounts")
    p.set_defaults(handler=cmd_user_list)

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
    p.set_defaults(handler=cmd_export)

    p = sub.add_parser("metrics", help="print the daemon's metrics (Prometheus text format)")
    p.set_defaults(handler=cmd_metrics)
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


def _request_id_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--request-id",
        metavar="KEY",
        help="a key of your choosing, given again when you retry (after exit status 75):"
        " in a cluster, a retry with the key is answered with the first outcome, not applied"
        " twice",
    )


def _json_flag(parser: argparse.ArgumentParser, help_text: str) -> None:
    # SUPPRESS: absent here, the top-level `shiftctl --json CMD` still counts.
    parser.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=help_text)


def _connect_message(exc: ConnectError) -> str:
    if exc.reason == "permission denied":
        return (
            f"{PROG}: cannot use the shiftd socket at {exc.path} (permission denied). "
            "Run shiftctl as a user allowed to access it (check the socket's group and mode)."
        )
    return f"{PROG}: no shiftd is answering at {exc.path} ({exc.reason}). {START_HINT}"


def main(argv: list[str] | None = None) -> int:
    """Run shiftctl; return the process exit status (see `shiftd.errors.Exit`)."""
    parser = build_parser()
    try:
        ns = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help/--version (0) or a usage error (2)
        if isinstance(exc.code, int):
            return exc.code
        return Exit.OK if exc.code is None else Exit.USAGE
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
        print(f"{PROG}: {exc}", file=sys.stderr)
        return Exit.USAGE
    except ConnectError as exc:
        print(_connect_message(exc), file=sys.stderr)
        return Exit.NOPERM if exc.reason == "permission denied" else Exit.UNAVAILABLE
    except RequestTooLarge as exc:
        print(f"{PROG}: {exc}; nothing was sent", file=sys.stderr)
        return Exit.USAGE
    except RemoteError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return exit_status(exc.code)
    except ProtocolError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return Exit.PROTOCOL
    except BrokenPipeError:
        # Output piped into something that stopped reading (e.g. `| head`).
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return Exit.FAILURE
    except KeyboardInterrupt:
        return Exit.INTERRUPTED
    finally:
        client.close()
    return Exit.OK


if __name__ == "__main__":
    sys.exit(main())
