"""`shiftctl roster import`: a roster file sent in chunks, and what changed."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ..control.client import ControlClient, RemoteError
from . import rosterfiles as rostercsv
from .render import Renderer, clean, is_terminal, render_counts
from .rosterload import chunk_items, load_roster, merge_counts, read_text
from .usage import PROG, UsageError


def cmd_roster_import(
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
                f"warning: {clean(w.get('kind'))}[{clean(w.get('index'))}]: "
                f"{clean(w.get('field'))!r}: {clean(w.get('message'))}",
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
    progress = _Progress(len(plan) > 1 and is_terminal(sys.stderr))
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
                merge_counts(totals[part], result.get(part))
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
        line = render_counts(counts)
        if skipped is not None:
            line += f", skipped {len(skipped)}"
        print(f"{part}: {line}", file=out)
        for change in changes or []:
            fields = change.get("fields")
            what = f" ({', '.join(clean(f) for f in fields)})" if fields else ""
            verb = _WOULD.get(change.get("change"), clean(change.get("change")))
            print(f"  would {verb} {clean(change.get('id'))}{what}", file=out)
        for item in skipped or []:
            if isinstance(item, dict):
                print(
                    f"  skipped {clean(item.get('id'))}: {clean(item.get('reason'))}",
                    file=out,
                )
            else:
                print(f"  skipped {clean(item)}", file=out)


def _import_csv(client: ControlClient, ns: argparse.Namespace) -> tuple[dict[str, Any], Renderer]:
    """A CSV export: every problem (the file's, then the daemon's, such as unknown roles)
    is listed with its line and column before anything changes; any problem: nothing does."""
    try:
        mapping = rostercsv.parse_map(ns.map)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    parsed = rostercsv.read_csv(read_text(ns.file), mapping)
    name = "<stdin>" if ns.file == "-" else ns.file
    for warning in parsed.warnings:
        print(f"{PROG}: warning: {name}: {warning}", file=sys.stderr)
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
        shown = "\n".join(f"  {name}: {clean(str(p))}" for p in problems)
        raise UsageError(f"{len(problems)} problem(s); nothing was imported:\n{shown}")
    if not ns.dry_run:
        totals = _send_roster(client, plan, False, roster)
    assert totals is not None

    def render(r: dict[str, Any], out: TextIO) -> None:
        _render_import(r, ("caregivers",), out)

    return totals, render


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
