"""Roster files in JSON or YAML: read them, check their shape, cut them into request lines."""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from ..control.client import encode_request
from .usage import UsageError

#: Every ``roster.import`` request line stays strictly under this many bytes.
ROSTER_CHUNK_BYTES = 60 * 1024


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
    text = read_text(path)

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


def merge_counts(total: dict[str, Any], part: Any) -> None:
    if not isinstance(part, dict):
        return
    for k, v in part.items():
        if isinstance(v, int) and not isinstance(v, bool):
            total[k] = total.get(k, 0) + v
        elif isinstance(v, list):
            total.setdefault(k, []).extend(v)
        else:
            total[k] = v


def read_text(path: str) -> str:
    """The text of the file at `path` ('-': standard input), UTF-8 with or without a BOM;
    raises UsageError, saying why, when it cannot be read or is not UTF-8."""
    name = "<stdin>" if path == "-" else path
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror or exc}") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
