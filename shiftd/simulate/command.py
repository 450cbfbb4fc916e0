"""The `shiftd simulate` command line: inputs, a progress bar, the table and the page."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

import structlog

from ..config import ConfigError, parse_duration
from ..inbound.intent import load_classifier
from ..logs import configure_logging
from ..models import Caregiver
from ..shifts.roles import Roles
from . import compare
from .behaviour import Learned, Parameters, Responder
from .inputs import (
    InputError,
    Policy,
    SimShift,
    load_policy,
    load_roster_file,
    load_shifts_csv,
    read_history,
    roles_without_caregivers,
)
from .pool import available_cpus
from .report import page, table

_MIN_HISTORY = 50
"""Fewer offers on record than this, and the parameters decide how caregivers answer."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        "-p",
        type=Path,
        action="append",
        required=True,
        metavar="FILE",
        help="a policy file (shiftd configuration syntax); repeat to compare several",
    )
    parser.add_argument(
        "--store",
        type=Path,
        metavar="FILE",
        help="a shiftd store (shiftd.sqlite3): its roster, its shifts, and how caregivers"
        " answered (read-only)",
    )
    parser.add_argument(
        "--shifts",
        type=Path,
        metavar="CSV",
        help="shifts to replay: role,start,end[,organization,id,posted,location]",
    )
    parser.add_argument(
        "--roster",
        type=Path,
        metavar="FILE",
        help="caregivers (the shiftctl roster import format); default: the store's",
    )
    parser.add_argument(
        "--since",
        type=_duration,
        default=timedelta(days=30),
        metavar="DURATION",
        help="with --store and no --shifts: replay the shifts fanned out in this span"
        " before the store's last fanout (default 30d)",
    )
    parser.add_argument(
        "--notice",
        type=_duration,
        default=timedelta(hours=24),
        metavar="DURATION",
        help="CSV shifts without 'posted' are fanned out this long before they start (default 24h)",
    )
    parser.add_argument("--timezone", metavar="ZONE", help="for CSV times without an offset")
    parser.add_argument("--runs", type=int, default=20, help="runs per policy (default 20)")
    parser.add_argument("--seed", type=int, default=1, help="the same seed, the same report")
    parser.add_argument(
        "--jobs",
        "-j",
        type=_jobs,
        default=available_cpus(),
        metavar="N",
        help="processes replaying runs at once, each run split by role (default: the CPUs"
        " available, here %(default)s; 1: one run after another, in this process); the"
        " report is the same whatever it is",
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=Path("simulate-report.html"),
        metavar="FILE",
        help="where to write the HTML report (default simulate-report.html)",
    )
    given = parser.add_argument_group(
        "caregivers without history", "how caregivers answer when the store cannot tell"
    )
    default = Parameters()
    given.add_argument("--answer-sms", type=float, default=default.answer_sms, metavar="P")
    given.add_argument("--answer-voice", type=float, default=default.answer_voice, metavar="P")
    given.add_argument("--accept", type=float, default=default.accept, metavar="P")
    given.add_argument("--delay-sms", type=_duration, default=default.delay_sms, metavar="D")
    given.add_argument("--delay-voice", type=_duration, default=default.delay_voice, metavar="D")


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _duration(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the simulation the arguments describe; 0 on success, 2 for unusable input.

    The engine's own log lines below errors are silenced meanwhile (an unfilled shift is a
    warning in the daemon, a figure here); the logging configuration is restored after.
    """
    saved = structlog.get_config()
    configure_logging("error", "auto", stream=err or sys.stderr)
    try:
        return _simulate(args, out or sys.stdout, err or sys.stderr)
    finally:
        structlog.configure(**saved)


def _simulate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        policies, caregivers, shifts, responder, about = _inputs(args)
    except (ConfigError, InputError, ValueError) as exc:
        print(exc, file=err)
        return 2
    missing = roles_without_caregivers(shifts, caregivers, Roles(policies[0].config.roles))
    if missing:
        print(f"warning: nobody on the roster is {', '.join(missing)}", file=err)
    progress = _Progress(err, len(policies) * args.runs * len(shifts))
    started = time.perf_counter()
    summaries = compare(
        policies,
        caregivers,
        shifts,
        responder,
        runs=args.runs,
        seed=args.seed,
        on_fanout=progress.tick,
        jobs=args.jobs,
    )
    progress.done()
    out.write(table(summaries))
    html = page(summaries, about)
    try:
        args.report.write_text(html, encoding="utf-8")
    except OSError as exc:
        print(f"cannot write {args.report}: {exc.strerror or exc}", file=err)
        return 1
    elapsed = time.perf_counter() - started
    out.write(f"\nreport: {args.report} ({elapsed:.1f}s for {len(policies) * args.runs} runs)\n")
    return 0


def _inputs(
    args: argparse.Namespace,
) -> tuple[list[Policy], list[Caregiver], list[SimShift], Responder, list[tuple[str, str]]]:
    if args.runs < 1:
        raise InputError("--runs must be at least 1")
    policies = [load_policy(path) for path in args.policy]
    names = [p.name for p in policies]
    if len(set(names)) != len(names):
        raise InputError("policy files need distinct names (their file names without .yaml)")
    parameters = Parameters(
        answer_sms=args.answer_sms,
        answer_voice=args.answer_voice,
        accept=args.accept,
        delay_sms=args.delay_sms,
        delay_voice=args.delay_voice,
    )
    tz = ZoneInfo(args.timezone or policies[0].config.timezone)
    history = None
    if args.store is not None:
        classifier = load_classifier(policies[0].config.classifier)
        history = read_history(args.store, classifier=classifier)
    if args.shifts is not None:
        shifts = load_shifts_csv(args.shifts, tz, args.notice)
        source = f"{args.shifts} ({len(shifts)} shifts)"
    elif history is not None:
        if not history.shifts:
            raise InputError(f"{args.store}: no fanout on record; pass --shifts")
        last = max(s.posted for s in history.shifts)
        shifts = [s for s in history.shifts if s.posted >= last - args.since]
        source = (
            f"{args.store}: {len(shifts)} shifts fanned out in the {args.since} to {last:%Y-%m-%d}"
        )
    else:
        raise InputError("say which shifts to replay: --shifts CSV or --store FILE")
    if args.roster is not None:
        caregivers = load_roster_file(args.roster)
        roster = f"{args.roster} ({len(caregivers)} caregivers)"
    elif history is not None and history.caregivers:
        caregivers = history.caregivers
        roster = f"{args.store} ({len(caregivers)} caregivers)"
    else:
        raise InputError("say who the caregivers are: --roster FILE or --store FILE")
    responder: Responder = parameters
    behaviour = (
        f"given: answer {parameters.answer_sms:.0%} of texts and {parameters.answer_voice:.0%}"
        f" of calls, accept {parameters.accept:.0%}, median delay {parameters.delay_sms} (text),"
        f" {parameters.delay_voice} (call)"
    )
    if history is not None:
        learned = Learned(history.offers, tz, parameters)
        if learned.offers >= _MIN_HISTORY:
            responder = learned
            facts = ", ".join(f"{k} {v}" for k, v in learned.describe().items())
            behaviour = f"learned from {args.store}: {facts}"
        else:
            behaviour += f" (only {learned.offers} offers on record in {args.store})"
    about = [
        ("shifts", source),
        ("roster", roster),
        ("caregivers answer", behaviour),
        ("runs per policy", f"{args.runs} (seeds {args.seed}-{args.seed + args.runs - 1})"),
        ("policies", ", ".join(f"{p.name} ({p.path})" for p in policies)),
    ]
    return policies, caregivers, shifts, responder, about


class _Progress:
    """A one-line progress bar on a terminal, redrawn at most ten times a second; nothing
    when the stream is not a terminal."""

    def __init__(self, stream: TextIO, total: int) -> None:
        self.stream = stream
        self.total = max(1, total)
        self.done_count = 0
        self.live = stream.isatty()
        self.started = self.drawn = time.monotonic()

    def tick(self, policy: str, run: int) -> None:
        self.done_count += 1
        now = time.monotonic()
        if self.live and now - self.drawn >= 0.1:
            self.drawn = now
            share = self.done_count / self.total
            bar = "#" * int(share * 30)
            left = (now - self.started) / share * (1 - share) if share else 0
            self.stream.write(
                f"\r[{bar:<30}] {share:4.0%}  {policy} run {run + 1}  ~{left:.0f}s left "
            )
            self.stream.flush()

    def done(self) -> None:
        if self.live:
            self.stream.write("\r" + " " * 79 + "\r")
            self.stream.flush()
