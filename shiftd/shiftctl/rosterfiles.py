"""Caregivers from an agency's CSV export (HHAeXchange, AxisCare, WellSky…).

The first row names the columns. A column is a roster field when its name is the field's
(ignoring case, spaces, `-` and `_`) or when `--map field=Column` says so. Every problem is
reported with its line and column, all at once: errors (the row cannot be imported) and
warnings (a column no field takes, ignored). Roles are checked by the daemon against its
configured list; `line_of` turns its `caregivers[N]` back into the file's line.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ..models import Caregiver

FIELDS = ("id", "name", "role", "phone", "tags", "active", "language")
"""Every caregiver field a CSV column may fill."""
REQUIRED = ("id", "name", "role", "phone")
MAX_ROWS = 100_000

_TRUE = frozenset({"1", "true", "yes", "y", "active", "a"})
_FALSE = frozenset({"0", "false", "no", "n", "inactive", "i"})
_TAG_SPLIT = re.compile(r"[;,|]")


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    column: str | None
    message: str

    def __str__(self) -> str:
        where = [f"line {self.line}"] if self.line else []
        where += [f"column {self.column!r}"] if self.column else []
        return f"{', '.join(where)}: {self.message}" if where else self.message


@dataclass(slots=True)
class CsvRoster:
    """What a CSV file holds: caregivers ready to send (with the line each came from)."""

    caregivers: list[dict[str, Any]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    columns: dict[str, str] = field(default_factory=dict)
    """field → the column it is read from."""

    def line_of(self, index: int) -> int:
        return self.lines[index] if 0 <= index < len(self.lines) else 0


def parse_map(pairs: Iterable[str]) -> dict[str, str]:
    """`["phone=Mobile Phone", …]` → `{"phone": "Mobile Phone"}`; ValueError if malformed or
    naming no roster field."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        name, sep, column = pair.partition("=")
        name, column = name.strip().lower(), column.strip()
        if not sep or not column:
            raise ValueError(f"--map {pair!r}: expected field=Column")
        if name not in FIELDS:
            raise ValueError(
                f"--map {pair!r}: {name!r} is not a roster field ({', '.join(FIELDS)})"
            )
        if name in mapping:
            raise ValueError(f"--map: {name!r} is mapped twice")
        mapping[name] = column
    return mapping


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "", name).casefold()


def read_csv(text: str, mapping: dict[str, str] | None = None) -> CsvRoster:
    """Parse a CSV export (header row first). Never raises for bad content: problems are
    collected in the result."""
    out = CsvRoster()
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        out.errors.append(Problem(1, None, f"not CSV: {exc}"))
        return out
    if not header or not any(h.strip() for h in header):
        out.errors.append(Problem(1, None, "no header row naming the columns"))
        return out
    names = [h.strip() for h in header]
    by_key: dict[str, int] = {}
    for i, name in enumerate(names):
        if _key(name) in by_key:
            out.errors.append(Problem(1, name, "column named twice"))
        by_key.setdefault(_key(name), i)
    columns: dict[str, int] = {}
    for name in FIELDS:
        wanted = (mapping or {}).get(name)
        if wanted is not None:
            if _key(wanted) not in by_key:
                out.errors.append(Problem(1, wanted, f"no such column (--map {name}={wanted})"))
                continue
            columns[name] = by_key[_key(wanted)]
        elif _key(name) in by_key:
            columns[name] = by_key[_key(name)]
    for name in REQUIRED:
        if name not in columns and name not in (mapping or {}):
            out.errors.append(
                Problem(1, None, f"no {name!r} column (name one with --map {name}=Column)")
            )
    used = set(columns.values())
    for i, name in enumerate(names):
        if i not in used and name:
            out.warnings.append(
                Problem(1, name, "not a roster field: ignored (use --map FIELD=Column to read it)")
            )
    out.columns = {f: names[i] for f, i in columns.items()}
    if out.errors:
        return out
    try:
        for row in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(out.caregivers) + len(out.errors) >= MAX_ROWS:
                out.errors.append(Problem(line, None, f"more than {MAX_ROWS} rows"))
                break
            _row(out, row, line, names, columns)
    except csv.Error as exc:
        out.errors.append(Problem(reader.line_num, None, f"not CSV: {exc}"))
    _duplicates(out)
    return out


def _row(
    out: CsvRoster, row: Sequence[str], line: int, names: list[str], columns: dict[str, int]
) -> None:
    if len(row) != len(names):
        out.errors.append(Problem(line, None, f"{len(row)} cells, the header has {len(names)}"))
        return
    item: dict[str, Any] = {}
    bad = False
    for name, i in columns.items():
        cell = row[i].strip()
        if name == "tags":
            item["tags"] = [t.strip() for t in _TAG_SPLIT.split(cell) if t.strip()]
        elif name == "active":
            if not cell:
                continue
            if cell.casefold() not in _TRUE | _FALSE:
                out.errors.append(Problem(line, names[i], f"{cell!r} is not yes or no"))
                bad = True
            item["active"] = cell.casefold() in _TRUE
        elif cell or name in REQUIRED:
            item[name] = cell
    try:
        Caregiver.model_validate(item)
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            name = str(error["loc"][0]) if error["loc"] else ""
            column = names[columns[name]] if name in columns else name or None
            message = error["msg"].removeprefix("Value error, ")
            out.errors.append(Problem(line, column, message))
        return
    if not bad:
        out.caregivers.append(item)
        out.lines.append(line)


def _duplicates(out: CsvRoster) -> None:
    for name in ("id", "phone"):
        seen: dict[str, int] = {}
        for item, line in zip(out.caregivers, out.lines, strict=True):
            value = item[name] if name == "id" else Caregiver.model_validate(item).phone
            if value in seen:
                out.errors.append(
                    Problem(line, out.columns.get(name), f"same {name} as line {seen[value]}")
                )
            seen.setdefault(value, line)


_WHERE = re.compile(r"caregivers\[(\d+)\]\.(\w+): ")


def locate(message: str, roster: CsvRoster, offset: int = 0) -> list[Problem]:
    """The daemon's `caregivers[N].field: problem; …` (N counted from `offset` in the file's
    caregivers) as problems with the file's lines and columns."""
    problems = []
    for part in message.split("; "):
        match = _WHERE.match(part)
        if match is None:
            problems.append(Problem(0, None, part))
            continue
        line = roster.line_of(offset + int(match.group(1)))
        column = roster.columns.get(match.group(2), match.group(2))
        problems.append(Problem(line, column, part[match.end() :]))
    return problems


def unknown_fields(roster: CsvRoster, warnings: Iterable[dict[str, Any]]) -> list[Problem]:
    """The daemon's unknown-field warnings (`{"index", "field"}`) for a mapped column (a
    field this daemon does not know yet) as problems at their lines."""
    return [
        Problem(
            roster.line_of(w["index"]),
            roster.columns.get(w["field"], w["field"]),
            "not a field this shiftd knows",
        )
        for w in warnings
    ]
