"""What the runs of each policy add up to: figures side by side, as a table and a page."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from ..charts import Point, Series, bar_chart, histogram, scatter
from ..models import ShiftState
from .runner import RunResult


@dataclass(frozen=True, slots=True)
class Summary:
    """One policy over all its runs. Rates and counts are means per run; time-to-fill
    percentiles pool every filled shift of every run."""

    name: str
    runs: int
    shifts: int
    """Per run."""
    fill_rate: float
    fill_rate_low: float
    fill_rate_high: float
    ttf_median_min: float | None
    ttf_p90_min: float | None
    before_calls: float
    """Share of the filled shifts filled before any call about them."""
    texts: float
    calls: float
    contacts_median: float
    contacts_p90: float
    contacts_max: float
    top_decile_share: float
    """Share of all offers that went to the most-contacted tenth of the caregivers reached."""
    ttf_minutes: tuple[float, ...]
    contacts: tuple[int, ...]
    """Offers per caregiver per run, pooled."""


def summarize(name: str, runs: Sequence[RunResult]) -> Summary:
    """Fold a policy's runs into one `Summary`. Raises ValueError for no runs."""
    if not runs:
        raise ValueError("no runs to summarize")
    rates: list[float] = []
    ttf: list[float] = []
    before = filled_total = 0
    texts = calls = 0
    contacts: list[int] = []
    shares = []
    for run in runs:
        filled = [s for s in run.shifts if s.state is ShiftState.FILLED]
        rates.append(len(filled) / len(run.shifts) if run.shifts else 0.0)
        filled_total += len(filled)
        before += sum(s.before_calls for s in filled)
        ttf.extend(s.time_to_fill.total_seconds() / 60 for s in filled if s.time_to_fill)
        texts += sum(s.texts for s in run.shifts)
        calls += sum(s.calls for s in run.shifts)
        counts = sorted(run.contacts.values(), reverse=True)
        contacts.extend(counts)
        if counts:
            top = counts[: max(1, len(counts) // 10)]
            shares.append(sum(top) / sum(counts))
    ttf.sort()
    contacts.sort()
    return Summary(
        name=name,
        runs=len(runs),
        shifts=len(runs[0].shifts),
        fill_rate=statistics.fmean(rates),
        fill_rate_low=min(rates),
        fill_rate_high=max(rates),
        ttf_median_min=percentile(ttf, 0.5),
        ttf_p90_min=percentile(ttf, 0.9),
        before_calls=before / filled_total if filled_total else 0.0,
        texts=texts / len(runs),
        calls=calls / len(runs),
        contacts_median=percentile(contacts, 0.5) or 0.0,
        contacts_p90=percentile(contacts, 0.9) or 0.0,
        contacts_max=float(contacts[-1]) if contacts else 0.0,
        top_decile_share=statistics.fmean(shares) if shares else 0.0,
        ttf_minutes=tuple(ttf),
        contacts=tuple(contacts),
    )


def percentile(ordered: Sequence[float], q: float) -> float | None:
    """Linear interpolation between closest ranks (as SQL's percentile_cont); None if empty."""
    if not ordered:
        return None
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _minutes(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 60:
        return f"{value:.1f} min"
    return f"{value / 60:.1f} h"


def rows(summaries: Sequence[Summary]) -> list[tuple[str, list[str]]]:
    """The comparison, one (figure, value per policy) row each: the table's and the page's."""
    return [
        ("shifts per run", [f"{s.shifts}" for s in summaries]),
        ("runs", [f"{s.runs}" for s in summaries]),
        (
            "fill rate (lowest-highest run)",
            [
                f"{s.fill_rate:.1%} ({s.fill_rate_low:.0%}-{s.fill_rate_high:.0%})"
                for s in summaries
            ],
        ),
        ("time to fill, median", [_minutes(s.ttf_median_min) for s in summaries]),
        ("time to fill, p90", [_minutes(s.ttf_p90_min) for s in summaries]),
        ("filled before any call", [f"{s.before_calls:.1%}" for s in summaries]),
        ("texts sent per run", [f"{s.texts:,.0f}" for s in summaries]),
        ("calls made per run", [f"{s.calls:,.0f}" for s in summaries]),
        (
            "texts + calls per shift",
            [f"{(s.texts + s.calls) / max(1, s.shifts):.1f}" for s in summaries],
        ),
        (
            "offers per caregiver, median / p90 / max",
            [
                f"{s.contacts_median:.0f} / {s.contacts_p90:.0f} / {s.contacts_max:.0f}"
                for s in summaries
            ],
        ),
        (
            "offers to the most-contacted 10%",
            [f"{s.top_decile_share:.0%}" for s in summaries],
        ),
    ]


def table(summaries: Sequence[Summary]) -> str:
    """The comparison as aligned plain text, one column per policy."""
    body = rows(summaries)
    header = ["", *(s.name for s in summaries)]
    lines = [[label, *values] for label, values in body]
    widths = [max(len(row[i]) for row in [header, *lines]) for i in range(len(header))]

    def fmt(row: list[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = "  ".join(cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True))
        return f"{first}  {rest}".rstrip()

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    return "\n".join([fmt(header), rule, *map(fmt, lines)]) + "\n"


_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#222;padding:0 1rem}
table{border-collapse:collapse;margin:1rem 0}th,td{padding:.3rem .8rem;border-bottom:1px solid #ddd}
td{text-align:right}th{text-align:left}thead th{text-align:right}dl{display:grid;
grid-template-columns:max-content auto;gap:.2rem 1rem}dt{color:#555}figure{margin:1.5rem 0}
figcaption{color:#555;font-size:.9rem}
"""


def page(summaries: Sequence[Summary], about: Sequence[tuple[str, str]]) -> str:
    """A self-contained HTML page: what was simulated, the comparison, and the charts.

    Nothing in it depends on when or how fast it was made, so a seed gives the same page.
    """
    names = [s.name for s in summaries]
    head = "".join(f"<th>{escape(n)}</th>" for n in names)
    body = "".join(
        f"<tr><th>{escape(label)}</th>{''.join(f'<td>{escape(v)}</td>' for v in values)}</tr>"
        for label, values in rows(summaries)
    )
    facts = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in about)
    # A few shifts fill hours later; drawn to scale they would squash everyone else into
    # the first bar. They are counted in the last bar instead.
    pooled = sorted(v for s in summaries for v in s.ttf_minutes)
    cap = max(1.0, percentile(pooled, 0.95) or 1.0)
    ttf = histogram(
        [Series(s.name, [min(v, cap) for v in s.ttf_minutes]) for s in summaries],
        title="Time to fill (filled shifts, all runs)",
        x_label="minutes from the fanout to the claim",
        bins=30,
    )
    points = [
        Point(
            s.ttf_median_min or 0.0,
            (s.texts + s.calls) / max(1, s.shifts),
            label=s.name,
            series=s.name,
        )
        for s in summaries
    ]
    cost = scatter(
        points,
        title="Cost vs speed",
        x_label="median minutes to fill",
        y_label="texts + calls per shift",
    )
    fill = bar_chart(
        [(s.name, round(s.fill_rate * 100, 1)) for s in summaries],
        title="Fill rate (%)",
        value_label="% of shifts filled",
    )
    reach = histogram(
        [Series(s.name, s.contacts) for s in summaries],
        title="Offers per caregiver per run",
        x_label="offers received",
        bins=20,
    )
    charts = [
        (
            ttf,
            "Further left is faster; each outline is one policy. Fills slower than"
            f" {_minutes(cap)} (the slowest 5%) are counted in the last bar.",
        ),
        (cost, "Lower left is cheaper and faster."),
        (fill, "Share of shifts filled before offers closed, mean over runs."),
        (reach, "Further right: the same caregivers asked again and again."),
    ]
    figures = "".join(
        f"<figure>{svg}<figcaption>{escape(caption)}</figcaption></figure>"
        for svg, caption in charts
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>shiftd simulate: {escape(' vs '.join(names))}</title>"
        f"<style>{_STYLE}</style></head><body>"
        f"<h1>Policies compared: {escape(' vs '.join(names))}</h1>"
        f"<dl>{facts}</dl>"
        f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{body}</tbody></table>"
        f"{figures}</body></html>\n"
    )
