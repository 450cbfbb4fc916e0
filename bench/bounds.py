"""What bounds a missed target: the scenario's measured window run again under cProfile
(CPU time), its time summed by layer.

`python -m bench` (a full run of every scenario) does this for each scenario below whose
target it missed, and prints and records the result beside the figures; `python -m bench
--only inbound --bounds` asks for it with `--only`. The scenario runs once more in a fresh
process with a profiler that records only inside its `measured()` windows (the same
windows its CPU figures are taken over), so seeding, start-up and the ceilings are left
out. Each function's own time goes to the layer its file belongs to; time spent in C (a
SQLite statement, a socket call) goes to SQLite when it is SQLite's, and time in C or in
Python's own library (`json`, `contextlib`, `enum`…) goes to the layers of its callers, in
proportion to what each spent there. cProfile slows call-heavy code more than the rest, so
shares are what to read, not seconds.
"""

from __future__ import annotations

import pstats
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

#: The scenarios a target is reported for, by the name their figures carry.
PROFILED = {
    "fanout": "fanout",
    "fanout rate": "fanout_rate",
    "claim storm": "claim_storm",
    "inbound": "inbound",
    "http inbound": "http_inbound",
    "http claim storm": "http_storm",
    "recovery": "recovery",
}

SQLITE = "SQLite (C)"
OTHER = "other"

#: A layer and the path fragments of its files, first match wins.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("HTTP server (hypercorn, h11)", ("/hypercorn/", "/h11/", "/h2/", "/wsproto/")),
    ("web framework (FastAPI, Starlette)", ("/fastapi/", "/starlette/", "/multipart/")),
    ("validation (pydantic)", ("/pydantic/", "/pydantic_core/")),
    ("shiftd: HTTP app", ("shiftd/http/",)),
    ("shiftd: control socket", ("shiftd/control/", "shiftd/commands.py")),
    ("shiftd: router and classifier", ("shiftd/inbound/",)),
    ("shiftd: actor, machine, supervisor", ("shiftd/shifts/",)),
    ("shiftd: store", ("shiftd/store/",)),
    ("shiftd: outbox, sender, texts", ("shiftd/outbox/", "shiftd/notify/", "shiftd/messages/")),
    ("shiftd: logs", ("shiftd/logs.py", "/structlog/")),
    (
        "shiftd: events and metrics",
        ("shiftd/events.py", "shiftd/metrics.py", "/prometheus_client/"),
    ),
    ("shiftd: the rest", ("shiftd/",)),
    (
        "Trio (scheduling, channels, sockets)",
        ("/trio/", "/outcome/", "/sniffio/", "methods trio.", "methods outcome."),
    ),
    ("the benchmark's own (provider, store timing)", ("/bench/",)),
)

_Func = tuple[str, int, str]


def _layer_of_file(filename: str) -> str | None:
    for name, fragments in LAYERS:
        if any(fragment in filename for fragment in fragments):
            return name
    return None


def layers(stats: pstats.Stats) -> dict[str, float]:
    """Each layer's share of the profiled CPU time (summing to 1), largest first; empty if
    nothing was recorded."""
    table: Mapping[_Func, Any] = stats.stats  # type: ignore[attr-defined]
    owners: dict[_Func, dict[str, float]] = {}

    def owner(func: _Func, depth: int = 0) -> dict[str, float]:
        """The layers `func`'s own time belongs to, as weights summing to 1."""
        if func in owners:
            return owners[func]
        found = _layer_of_file(func[0]) if func[0] != "~" else None
        if func[0] == "~" and "sqlite3" in func[2]:
            found = SQLITE
        callers = table[func][4] if func in table else {}
        if found is not None or not callers or depth > 8:
            weights = {found or OTHER: 1.0}
        else:
            weights = defaultdict(float)
            spent = sum(edge[2] for edge in callers.values()) or 1.0
            for caller, edge in callers.items():
                if caller == func:
                    continue
                for layer, weight in owner(caller, depth + 1).items():
                    weights[layer] += weight * edge[2] / spent
            weights = dict(weights) or {OTHER: 1.0}
        owners[func] = weights
        return weights

    seconds: dict[str, float] = defaultdict(float)
    for func, (_cc, _nc, own, _cum, _callers) in table.items():
        for layer, weight in owner(func).items():
            seconds[layer] += own * weight
    total = sum(seconds.values())
    if total <= 0:
        return {}
    return dict(sorted(((k, v / total) for k, v in seconds.items()), key=lambda kv: -kv[1]))


def missed(figures: list[dict[str, Any]]) -> list[str]:
    """The scenarios (by key, in order) with a target missed among `figures`."""
    out: list[str] = []
    for figure in figures:
        name = PROFILED.get(figure["scenario"])
        if figure.get("met") is False and name is not None and name not in out:
            out.append(name)
    return out


def describe(name: str, shares: Mapping[str, float], *, top: int = 8) -> str:
    """One scenario's layers as printed lines; the smallest folded into one."""
    shown = list(shares.items())[:top]
    rest = sum(share for _, share in list(shares.items())[top:])
    lines = [f"  {name}: CPU by layer (cProfile, measured window)"]
    lines += [f"    {share:6.1%}  {layer}" for layer, share in shown]
    if rest:
        lines.append(f"    {rest:6.1%}  everything else")
    return "\n".join(lines)


def markdown(bounds: Mapping[str, Mapping[str, float]]) -> str:
    """The table of `results.md`: a row per layer, a column per profiled scenario."""
    if not bounds:
        return ""
    names = list(bounds)
    order: dict[str, float] = defaultdict(float)
    for shares in bounds.values():
        for layer, share in shares.items():
            order[layer] += share
    lines = [
        "",
        "What bounds each missed target: the scenario's measured window run again under"
        " cProfile, its CPU time by layer (`bench/bounds.py`).",
        "",
        "| layer | " + " | ".join(names) + " |",
        "| --- |" + " ---: |" * len(names),
    ]
    for layer in sorted(order, key=lambda k: -order[k]):
        cells = [f"{bounds[n][layer]:.1%}" if layer in bounds[n] else "—" for n in names]
        lines.append(f"| {layer} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
