"""The SVG chart functions alone: valid XML, escaped text, empty and huge inputs."""

import math
import re
import xml.etree.ElementTree as ET

import pytest

from app.dashboard import charts

NS = "{http://www.w3.org/2000/svg}"
EVIL = '<script>alert("x")</script> & <b>co</b>'


def parse(markup: str) -> ET.Element:
    root = ET.fromstring(markup)
    assert root.tag == f"{NS}svg"
    assert re.fullmatch(rf"0 0 {charts.WIDTH} \d+(\.\d)?", root.get("viewBox", ""))
    assert root.get("role") == "img"
    assert root[0].tag == f"{NS}title" and root[1].tag == f"{NS}desc"
    return root


def texts(root: ET.Element) -> list[str]:
    return ["".join(node.itertext()) for node in root.iter(f"{NS}text")]


def title(root: ET.Element) -> str:
    return root[0].text or ""


def desc(root: ET.Element) -> str:
    return root[1].text or ""


def assert_inert(markup: str, root: ET.Element) -> None:
    """Nothing that could run, nothing the page's CSP (style-src 'self') would block."""
    tags = {node.tag.removeprefix(NS) for node in root.iter()}
    assert not tags & {"script", "foreignObject", "style", "a", "image", "iframe"}
    assert all("style" not in node.attrib for node in root.iter())
    assert all(not name.startswith("on") for node in root.iter() for name in node.attrib)
    assert "<script" not in markup and "<b>" not in markup
    assert "nan" not in markup.lower().replace("nanosecond", "")


SAMPLES = {
    "line": lambda label: charts.line_chart([(label, 3), ("b", 5)], title=label),
    "bars": lambda label: charts.bar_chart([(label, (1, 2))], title=label, series=("A", "B")),
    "funnel": lambda label: charts.funnel_chart([(label, 4, label), ("b", 2, "")], title=label),
}


class TestEveryChart:
    @pytest.mark.parametrize("kind", sorted(SAMPLES))
    def test_user_text_is_escaped_and_read_back_intact(self, kind: str) -> None:
        markup = SAMPLES[kind](EVIL)
        root = parse(markup)
        assert_inert(markup, root)
        assert "&lt;script&gt;" in markup and "&amp;" in markup
        assert title(root) == EVIL
        assert EVIL.split(" & ")[0] in desc(root)
        assert any(EVIL[:10] in text for text in texts(root))

    @pytest.mark.parametrize("kind", sorted(SAMPLES))
    def test_characters_xml_cannot_hold_are_replaced(self, kind: str) -> None:
        label = "a\x00b\x1bc\x08d\ufffee\ud800f"
        root = parse(SAMPLES[kind](label))
        assert title(root) == "a\ufffdb\ufffdc\ufffdd\ufffde\ufffdf"

    @pytest.mark.parametrize("kind", sorted(SAMPLES))
    def test_quotes_and_non_ascii(self, kind: str) -> None:
        label = "Ünïcødé \"quoted\" 'single' 🚀 日本語"
        assert title(parse(SAMPLES[kind](label))) == label

    @pytest.mark.parametrize(
        ("draw", "kind"),
        [
            (lambda: charts.line_chart([], title="Visits"), "line"),
            (lambda: charts.bar_chart([], title="By network", series=("Visits",)), "bars"),
            (lambda: charts.funnel_chart([], title="Funnel"), "funnel"),
        ],
    )
    def test_empty_data_says_so(self, draw, kind: str) -> None:
        markup = draw()
        root = parse(markup)
        assert_inert(markup, root)
        assert root.get("class") == f"chart chart-{kind}"
        assert texts(root) == ["No data yet"]


class TestLineChart:
    def test_points_peak_and_total(self) -> None:
        points = [("20 Nov 09:00", 1), ("20 Nov 10:00", 4), ("20 Nov 11:00", 0)]
        root = parse(charts.line_chart(points, title="Visits per hour", series="Visits"))
        assert desc(root) == (
            "Visits: 3 points from 20 Nov 09:00 to 20 Nov 11:00; total 5, peak 4 at 20 Nov 10:00."
        )
        (line,) = root.iter(f"{NS}polyline")
        ys = [float(pair.split(",")[1]) for pair in (line.get("points") or "").split()]
        assert len(ys) == 3
        assert ys[1] < ys[0] < ys[2]  # SVG y grows downwards: the peak is highest
        dots = [c.find(f"{NS}title") for c in root.iter(f"{NS}circle")]
        assert [d.text for d in dots if d is not None][1] == "20 Nov 10:00: 4 visits"
        assert {"0", "1", "2", "3", "4"} <= set(texts(root))  # the y axis, whole steps

    def test_many_points_keep_their_peak_and_stay_small(self) -> None:
        points = [(f"p{i}", i % 7) for i in range(10_000)]
        points[5003] = ("spike", 999)
        markup = charts.line_chart(points, title="Visits")
        root = parse(markup)
        (line,) = root.iter(f"{NS}polyline")
        vertices = (line.get("points") or "").split()
        assert len(vertices) <= charts.MAX_LINE_POINTS
        top = min(float(v.split(",")[1]) for v in vertices)
        assert top < 15  # the spike (999 of an axis to 1,000) reaches the top of the plot (14)
        assert "total " + f"{sum(v for _, v in points):,}" in desc(root)
        assert "peak 999 at spike" in desc(root)
        assert not list(root.iter(f"{NS}circle"))  # no per-point dots at that size
        assert len(markup) < 40_000

    def test_one_point_and_all_zeros(self) -> None:
        for points in ([("only", 2)], [("a", 0), ("b", 0)]):
            markup = charts.line_chart(points, title="Visits")
            assert_inert(markup, parse(markup))

    def test_one_point_is_one_labelled_column_not_a_line_across_the_width(self) -> None:
        markup = charts.line_chart([("20 Nov 09:00", 4)], title="Visits per hour")
        root = parse(markup)
        assert_inert(markup, root)
        assert not list(root.iter(f"{NS}polyline")) and not list(root.iter(f"{NS}path"))
        (column,) = [r for r in root.iter(f"{NS}rect") if r.get("class") == "single"]
        width = float(column.get("width") or 0)
        centre = float(column.get("x") or 0) + width / 2
        assert width < charts.WIDTH / 4
        left, right = 44, charts.WIDTH - 14  # the plot's edges
        assert centre == pytest.approx((left + right) / 2)
        # 4 on an axis whose top is 4: the column stands from the axis (y 200) to the top (14)
        assert float(column.get("y") or 0) == pytest.approx(14)
        assert float(column.get("height") or 0) == pytest.approx(186)
        assert "20 Nov 09:00" in texts(root)  # its moment, under it
        (value,) = [t for t in root.iter(f"{NS}text") if t.get("font-weight") == "600"]
        assert value.text == "4" and float(value.get("x") or 0) > centre + width / 2  # beside it
        assert desc(root) == "Visits: one point, 20 Nov 09:00: 4."

    def test_one_point_of_zero_still_shows_its_moment_and_value(self) -> None:
        root = parse(charts.line_chart([("Fri 20 Nov", 0)], title="Visits per day"))
        (column,) = [r for r in root.iter(f"{NS}rect") if r.get("class") == "single"]
        assert float(column.get("height") or 0) == 0
        assert "Fri 20 Nov" in texts(root)
        assert desc(root) == "Visits: one point, Fri 20 Nov: 0."

    def test_two_points_are_a_line_from_edge_to_edge(self) -> None:
        root = parse(charts.line_chart([("a", 1), ("b", 2)], title="Visits"))
        (line,) = root.iter(f"{NS}polyline")
        xs = [float(pair.split(",")[0]) for pair in (line.get("points") or "").split()]
        assert xs == [44, charts.WIDTH - 14]
        assert not [r for r in root.iter(f"{NS}rect") if r.get("class") == "single"]

    def test_percent_scale(self) -> None:
        points = [("Oct 2026", 3 / 7), ("Nov 2026", 0.5)]
        root = parse(
            charts.line_chart(
                points, title="Engagement", series="Engagement index", percent_scale=True
            )
        )
        assert texts(root)[:5] == ["0%", "25%", "50%", "75%", "100%"]  # the axis, 0..100 %
        assert desc(root) == (
            "Engagement index: 2 points from Oct 2026 to Nov 2026; "
            "highest 50% at Nov 2026, latest 50%."
        )
        dots = [c.find(f"{NS}title") for c in root.iter(f"{NS}circle")]
        assert [d.text for d in dots if d is not None] == [
            "Oct 2026: 42.9% engagement index",
            "Nov 2026: 50% engagement index",
        ]
        (line,) = root.iter(f"{NS}polyline")
        ys = [float(pair.split(",")[1]) for pair in (line.get("points") or "").split()]
        assert ys[1] == pytest.approx(14 + 186 / 2)  # 50 % is half the plot's height

    def test_percent_scale_one_month(self) -> None:
        root = parse(
            charts.line_chart([("Nov 2026", 2 / 3)], title="E", series="Index", percent_scale=True)
        )
        assert desc(root) == "Index: one point, Nov 2026: 66.7%."
        assert "66.7%" in [t.text for t in root.iter(f"{NS}text") if t.get("font-weight")]

    def test_negative_and_non_finite_values_are_drawn_as_zero(self) -> None:
        points = [("a", -5), ("b", math.nan), ("c", math.inf), ("d", 2)]
        markup = charts.line_chart(points, title="Visits")
        root = parse(markup)
        assert_inert(markup, root)
        assert "inf" not in markup
        assert "total 2, peak 2 at d" in desc(root)


class TestBarChart:
    def test_bars_share_one_scale(self) -> None:
        rows = [("LinkedIn", (2, 8)), ("X", (0, 4))]
        root = parse(charts.bar_chart(rows, title="By network", series=("Share clicks", "Visits")))
        widths = [
            float(r.get("width") or 0) for r in root.iter(f"{NS}rect") if r.get("height") == "14"
        ]
        assert widths[1] == pytest.approx(2 * widths[3])  # 8 visits vs 4 visits
        assert widths[0] == pytest.approx(widths[1] / 4)
        assert widths[2] == 0
        assert desc(root) == "LinkedIn: 2 share clicks, 8 visits; X: 0 share clicks, 4 visits"
        assert "Share clicks" in texts(root) and "Visits" in texts(root)  # the legend

    def test_long_labels_are_cut_but_kept_whole_in_the_tooltip(self) -> None:
        label = "A very long message text that goes on and on\nacross lines " * 3
        root = parse(charts.bar_chart([(label, (1,))], title="By message", series=("Visits",)))
        shown = [t for t in texts(root) if t.startswith("A very")]
        assert len(shown) == 1 and shown[0].endswith("…") and len(shown[0]) < 40
        group_title = next(root.iter(f"{NS}g")).find(f"{NS}title")
        assert group_title is not None and group_title.text == " ".join(label.split())

    def test_many_rows(self) -> None:
        rows = [(f"Message {i}", (i, i * 2)) for i in range(200)]
        markup = charts.bar_chart(rows, title="By message", series=("Share clicks", "Visits"))
        root = parse(markup)
        assert len(list(root.iter(f"{NS}g"))) == 200
        assert_inert(markup, root)

    def test_values_must_match_the_series(self) -> None:
        with pytest.raises(ValueError):
            charts.bar_chart([("X", (1, 2))], title="t", series=("Visits",))
        with pytest.raises(ValueError):
            charts.bar_chart([("X", (1,))], title="t", series=())


class TestFunnel:
    def test_widths_follow_the_values_and_notes_show(self) -> None:
        stages = [
            ("Sent", 10, "of 12 recipients"),
            ("Sharers", 5, "50% of sent"),
            ("Share clicks", 8, "1.6 per sharer"),
            ("Visits", 20, "2.5 per share click"),
        ]
        root = parse(charts.funnel_chart(stages, title="Funnel"))
        bars = [r for r in root.iter(f"{NS}rect") if r.get("fill", "").startswith("#")]
        widths = [float(r.get("width") or 0) for r in bars]
        assert widths[3] == pytest.approx(2 * widths[0]) == pytest.approx(4 * widths[1])
        centres = {round(float(r.get("x") or 0) + float(r.get("width") or 0) / 2) for r in bars}
        assert len(centres) == 1
        assert desc(root) == (
            "Sent: 10 (of 12 recipients); Sharers: 5 (50% of sent); "
            "Share clicks: 8 (1.6 per sharer); Visits: 20 (2.5 per share click)"
        )
        assert {"Sent", "Sharers", "Share clicks", "Visits", "50% of sent"} <= set(texts(root))

    def test_all_zero(self) -> None:
        stages = [("Sent", 0, ""), ("Sharers", 0, ""), ("Share clicks", 0, ""), ("Visits", 0, "")]
        markup = charts.funnel_chart(stages, title="Funnel")
        root = parse(markup)
        assert_inert(markup, root)
        assert texts(root).count("0") == 4


class TestHelpers:
    def test_number(self) -> None:
        assert charts.number(1234567) == "1,234,567"
        assert charts.number(11.5) == "11.50"
        assert charts.number(math.nan) == "0"

    def test_percent(self) -> None:
        assert charts.percent(0.5) == "50%"
        assert charts.percent(2 / 3) == "66.7%"
        assert charts.percent(1) == "100%"
        assert charts.percent(math.nan) == "0%"

    def test_truncate(self) -> None:
        assert charts.truncate("  short \n text ", 20) == "short text"
        assert charts.truncate("abcdefghij", 5) == "abcd…"
