"""Charts: well-formed SVG, every text escaped, values drawn to scale, bad values refused."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from shiftd.charts import Point, Series, bar_chart, histogram, number, scatter

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<script>alert(\"x\")</script> & 'quotes'"


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def test_bar_chart_draws_one_bar_per_value_to_scale() -> None:
    root = parse(bar_chart([("A", 10), ("B", 20)], title="Texts sent"))
    bars = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert len(bars) == 2
    heights = [float(r.get("height", "0")) for r in bars]
    assert heights[1] == pytest.approx(2 * heights[0], rel=0.02)
    assert {"A", "B", "10", "20", "Texts sent"} <= set(texts(root))


def test_negative_bars_hang_below_the_zero_line() -> None:
    root = parse(bar_chart([("up", 5), ("down", -5)], title="Delta"))
    up, down = [r for r in root.iter(f"{SVG}rect") if r.find(f"{SVG}title") is not None]
    assert float(up.get("y", "0")) + float(up.get("height", "0")) == pytest.approx(
        float(down.get("y", "0"))
    )


def test_every_text_is_escaped_in_every_chart() -> None:
    charts = [
        bar_chart([(HOSTILE, 1)], title=HOSTILE, value_label=HOSTILE),
        histogram([Series(HOSTILE, [1, 2, 3])], title=HOSTILE, x_label=HOSTILE),
        scatter(
            [Point(1, 2, label=HOSTILE, series=HOSTILE)],
            title=HOSTILE,
            x_label=HOSTILE,
            y_label=HOSTILE,
        ),
    ]
    for svg in charts:
        assert "<script>" not in svg
        root = parse(svg)
        assert HOSTILE in texts(root)
        assert root.get("aria-label") == HOSTILE


def test_histogram_series_share_bins_so_a_concentrated_series_peaks_higher() -> None:
    svg = histogram(
        [Series("fast", [1, 1, 1, 1]), Series("spread", [1, 3, 5, 7])],
        title="Time to fill",
        bins=4,
    )
    fast, spread = parse(svg).iter(f"{SVG}polygon")

    def peak(polygon: ET.Element) -> float:
        return min(float(p.split(",")[1]) for p in polygon.get("points", "").split())

    assert peak(fast) < peak(spread)  # smaller y is higher on the page


def test_histogram_bar_heights_are_the_counts_per_bin() -> None:
    svg = histogram([Series("one", [0, 1, 9, 9, 10])], title="t", bins=2)
    (polygon,) = parse(svg).iter(f"{SVG}polygon")
    points = [tuple(map(float, p.split(","))) for p in polygon.get("points", "").split()]
    base = points[0][1]
    first, second = base - points[1][1], base - points[3][1]
    assert second == pytest.approx(1.5 * first)  # 2 values in [0, 5), 3 in [5, 10]


def test_scatter_colours_points_by_series_and_lists_them_in_the_legend() -> None:
    svg = scatter(
        [Point(1, 1, "A", series="sms"), Point(2, 3, "B", series="voice")],
        title="Cost vs speed",
    )
    root = parse(svg)
    circles = list(root.iter(f"{SVG}circle"))
    assert len(circles) == 2
    assert circles[0].get("fill") != circles[1].get("fill")
    assert {"sms", "voice", "A", "B"} <= set(texts(root))


def test_empty_data_draws_a_no_data_note() -> None:
    for svg in (
        bar_chart([], title="t"),
        histogram([Series("a", [])], title="t"),
        scatter([], title="t"),
    ):
        assert "no data" in texts(parse(svg))


def test_a_single_repeated_value_still_gets_an_axis() -> None:
    root = parse(histogram([Series("same", [5, 5, 5])], title="t"))
    assert len(list(root.iter(f"{SVG}polygon"))) == 1


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_values_are_refused(bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        bar_chart([("a", bad)], title="t")
    with pytest.raises(ValueError, match="finite"):
        histogram([Series("a", [bad])], title="t")
    with pytest.raises(ValueError, match="finite"):
        scatter([Point(bad, 1)], title="t")


def test_tick_labels_are_short() -> None:
    assert number(1200) == "1200"
    assert number(25_000) == "25k"
    assert number(3_500_000) == "3.5M"
    assert number(0.25) == "0.25"
    assert number(0) == "0"
