"""`shiftctl export`: the messages or the timeline of a period as CSV (or JSON lines), paged."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from ..control.client import ControlClient

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


def cmd_export(client: ControlClient, ns: argparse.Namespace) -> None:
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
