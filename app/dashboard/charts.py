"""Dashboard charts as self-contained SVG: pure functions from numbers to markup, no I/O.

Every string that reaches the markup goes through `_text` or `_attr`: XML-escaped, with the
characters XML cannot carry replaced, so a campaign name or a message text can neither inject
markup nor make the document unparseable. The drawings use presentation attributes and
`currentColor` only (no inline style), so they sit under the page's strict CSP and follow its
light or dark text colour. Each chart has a fixed `viewBox` (its height grows with the rows of
a bar chart), a `<title>` and a `<desc>` that says the numbers in words for screen readers.
"""

import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple
from xml.sax.saxutils import escape

WIDTH = 520  # about the width of a dashboard panel: text shows near its real size
FONT = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif"
PALETTE = ("#2563eb", "#f59e0b", "#10b981", "#8b5cf6", "#ef4444", "#0891b2")
MAX_LINE_POINTS = 1000  # more points than pixels only bloat the markup
MAX_DOTS = 60  # points with a hover dot and tooltip
CHAR_WIDTH = 7.5  # a generous advance of one 12 px sans-serif character, for truncation
SINGLE_COLUMN_WIDTH = 56  # the one bucket of a series too young for a line

# Characters XML 1.0 cannot hold at all (most C0 controls, lone surrogates, U+FFFE/U+FFFF).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class Point(NamedTuple):
    """One time-series value; `label` is how its moment is written under the axis."""

    label: str
    value: float


class Bar(NamedTuple):
    """One row of a bar chart: a label and one value per series."""

    label: str
    values: Sequence[float]


class Stage(NamedTuple):
    """One funnel step; `note` is a short remark shown beside it (e.g. a conversion rate)."""

    label: str
    value: float
    note: str = ""


# --- text and numbers ---------------------------------------------------------------------------


def _clean(value: object) -> str:
    return _NOT_XML.sub("\ufffd", str(value))


def _text(value: object) -> str:
    return escape(_clean(value))


def _attr(value: object) -> str:
    return escape(_clean(value), {'"': "&quot;"})


def _one_line(value: str) -> str:
    return " ".join(_clean(value).split())


def truncate(value: str, max_chars: int) -> str:
    """One line of at most `max_chars` characters, an ellipsis marking a cut."""
    line = _one_line(value)
    if len(line) <= max_chars:
        return line
    return line[: max(max_chars - 1, 0)].rstrip() + "…"


def _value(value: float) -> float:
    """Counts are drawn from zero: negative or non-finite values are drawn as 0."""
    number = float(value)
    return number if math.isfinite(number) and number > 0 else 0.0


def number(value: float) -> str:
    """1,234 for whole numbers, 1,234.50 otherwise."""
    value = float(value)
    if not math.isfinite(value):
        return "0"
    if value.is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def percent(value: float) -> str:
    """A share of 0..1 as 50% or 42.9%."""
    share = _value(value) * 100
    whole = round(share)
    return f"{whole}%" if abs(share - whole) < 0.05 else f"{share:.1f}%"


def _c(value: float) -> str:
    """A coordinate, short."""
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _nice_scale(maximum: float, ticks: int = 4) -> tuple[float, float]:
    """An axis top and a whole step (1, 2 or 5 × 10ⁿ) giving about `ticks` grid lines."""
    if maximum <= 0:
        return 1.0, 1.0
    raw = maximum / ticks
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    step = max(step, 1.0)
    return step * math.ceil(maximum / step), step


# --- frame --------------------------------------------------------------------------------------


def _svg(kind: str, height: float, title: str, desc: str, body: Iterable[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {_c(height)}" '
        f'class="chart chart-{kind}" role="img" font-family="{_attr(FONT)}" font-size="12" '
        f'fill="currentColor"><title>{_text(title)}</title><desc>{_text(desc)}</desc>'
        + "".join(body)
        + "</svg>"
    )


def _empty(kind: str, title: str, message: str = "No data yet") -> str:
    height = 120
    body = [
        f'<rect x="0.5" y="0.5" width="{WIDTH - 1}" height="{height - 1}" rx="8" fill="none" '
        'stroke="currentColor" stroke-opacity="0.15" stroke-dasharray="4 4"/>',
        f'<text x="{WIDTH / 2:g}" y="{height / 2 + 4:g}" text-anchor="middle" '
        f'fill-opacity="0.7">{_text(message)}</text>',
    ]
    return _svg(kind, height, title, message + ".", body)


# --- line chart ---------------------------------------------------------------------------------


def _downsample(points: list[Point], limit: int) -> list[Point]:
    """At most `limit` points: consecutive runs keep their first label and their peak, so a
    spike stays visible however long the series."""
    if len(points) <= limit:
        return points
    size = math.ceil(len(points) / limit)
    return [
        Point(points[i].label, max(p.value for p in points[i : i + size]))
        for i in range(0, len(points), size)
    ]


class _Axis(NamedTuple):
    """The y axis of a line chart: its top value, its grid step and how a value is written."""

    top: float
    step: float
    write: Callable[[float], str]


def _axis(values: Iterable[float], *, percent_scale: bool) -> _Axis:
    if percent_scale:
        return _Axis(1.0, 0.25, percent)
    top, step = _nice_scale(max(values, default=0.0))
    return _Axis(top, step, number)


def _line_desc(series: str, given: Sequence[Point], axis: _Axis, percent_scale: bool) -> str:
    peak = max(given, key=lambda p: p.value)
    write = axis.write
    if len(given) == 1:
        return f"{series}: one point, {given[0].label}: {write(given[0].value)}."
    span = f"{series}: {len(given)} points from {given[0].label} to {given[-1].label}; "
    if percent_scale:
        return span + (
            f"highest {write(peak.value)} at {peak.label}, latest {write(given[-1].value)}."
        )
    total = sum(p.value for p in given)
    return span + f"total {number(total)}, peak {number(peak.value)} at {peak.label}."


def line_chart(
    points: Sequence[tuple[str, float]],
    *,
    title: str,
    series: str = "Visits",
    percent_scale: bool = False,
) -> str:
    """An area chart of a time series: `points` in time order, labels already formatted.

    `percent_scale` draws shares of 0..1 on a 0–100 % axis. A single point is a time series
    too young for a line: it is drawn as one labelled column in the middle, not as a flat line
    across the width that would claim a trend.
    """
    given = [Point(_one_line(label), _value(value)) for label, value in points]
    if percent_scale:
        given = [Point(p.label, min(p.value, 1.0)) for p in given]
    if not given:
        return _empty("line", title)
    shown = _downsample(given, MAX_LINE_POINTS)
    axis = _axis((p.value for p in shown), percent_scale=percent_scale)
    desc = _line_desc(series, given, axis, percent_scale)
    height, left, right, top, bottom = 240, 44, 14, 14, 40
    plot_w, plot_h = WIDTH - left - right, height - top - bottom
    count = len(shown)

    def x(i: int) -> float:
        return left + (plot_w * i / (count - 1) if count > 1 else plot_w / 2)

    def y(v: float) -> float:
        return top + plot_h - plot_h * v / axis.top

    body: list[str] = []
    for k in range(round(axis.top / axis.step) + 1):
        level = y(k * axis.step)
        body.append(
            f'<line x1="{left}" x2="{WIDTH - right}" y1="{_c(level)}" y2="{_c(level)}" '
            f'stroke="currentColor" stroke-opacity="{0.35 if k == 0 else 0.12}"/>'
            f'<text x="{left - 8}" y="{_c(level + 4)}" text-anchor="end" fill-opacity="0.7">'
            f"{_text(axis.write(k * axis.step))}</text>"
        )
    widest = max(len(truncate(p.label, 24)) for p in shown) * CHAR_WIDTH + 16
    ticks = max(min(count, int(plot_w / widest)), 2 if count > 1 else 1)
    indexes = sorted(
        {round(i * (count - 1) / (ticks - 1)) for i in range(ticks)} if ticks > 1 else {0}
    )
    for i in indexes:
        anchor = "middle"
        if count > 1 and i == 0:
            anchor = "start"
        elif count > 1 and i == count - 1:
            anchor = "end"
        body.append(
            f'<text x="{_c(x(i))}" y="{height - bottom + 20}" text-anchor="{anchor}" '
            f'fill-opacity="0.7">{_text(truncate(shown[i].label, 24))}</text>'
        )
    if count == 1:
        body.append(_column(x(0), y(shown[0].value), y(0), axis.write(shown[0].value)))
    else:
        line = " ".join(f"{_c(x(i))},{_c(y(p.value))}" for i, p in enumerate(shown))
        base = _c(y(0))
        area = f"M{_c(x(0))},{base} L{line.replace(' ', ' L')} L{_c(x(count - 1))},{base} Z"
        body.append(f'<path d="{area}" fill="{PALETTE[0]}" fill-opacity="0.14" stroke="none"/>')
        body.append(
            f'<polyline points="{line}" fill="none" stroke="{PALETTE[0]}" stroke-width="2" '
            'stroke-linejoin="round" stroke-linecap="round"/>'
        )
    if count <= MAX_DOTS:
        for i, p in enumerate(shown):
            body.append(
                f'<circle cx="{_c(x(i))}" cy="{_c(y(p.value))}" r="3" fill="{PALETTE[0]}">'
                f"<title>{_text(p.label)}: {_text(axis.write(p.value))} "
                f"{_text(series.lower())}</title></circle>"
            )
    return _svg("line", height, title, desc, body)


def _column(centre: float, value_y: float, base_y: float, value: str) -> str:
    """The one bucket of a single-point series: a column up from the axis, its value beside
    its top (never clipped, also when the value is the top of the axis)."""
    half = SINGLE_COLUMN_WIDTH / 2
    return (
        f'<rect class="single" x="{_c(centre - half)}" y="{_c(value_y)}" '
        f'width="{SINGLE_COLUMN_WIDTH}" height="{_c(base_y - value_y)}" rx="3" '
        f'fill="{PALETTE[0]}" fill-opacity="0.3" stroke="{PALETTE[0]}" stroke-width="1.5"/>'
        f'<text x="{_c(centre + half + 8)}" y="{_c(max(value_y + 4, 16))}" font-weight="600">'
        f"{_text(value)}</text>"
    )


# --- horizontal bars ----------------------------------------------------------------------------


def bar_chart(
    rows: Sequence[tuple[str, Sequence[float]]], *, title: str, series: Sequence[str]
) -> str:
    """Horizontal bars, one group per row and one bar per series, all on one scale."""
    if not series:
        raise ValueError("a bar chart needs at least one series")
    given = [Bar(label, [_value(v) for v in values]) for label, values in rows]
    for bar in given:
        if len(bar.values) != len(series):
            raise ValueError(
                f"row {bar.label!r} has {len(bar.values)} values for {len(series)} series"
            )
    if not given:
        return _empty("bars", title)
    desc = "; ".join(
        f"{_one_line(bar.label)}: "
        + ", ".join(
            f"{number(v)} {name.lower()}" for v, name in zip(bar.values, series, strict=True)
        )
        for bar in given
    )
    label_w, value_w, bar_h, gap, pad = 150, 44, 14, 3, 14
    left = label_w + 10
    plot_w = WIDTH - left - value_w
    legend_h = 26 if len(series) > 1 else 4
    group_h = len(series) * (bar_h + gap) - gap
    row_h = group_h + pad
    height = legend_h + len(given) * row_h + 4
    maximum = max((v for bar in given for v in bar.values), default=0.0) or 1.0

    body: list[str] = []
    if len(series) > 1:
        x = float(left)
        for j, name in enumerate(series):
            body.append(
                f'<rect x="{_c(x)}" y="6" width="10" height="10" rx="2" '
                f'fill="{PALETTE[j % len(PALETTE)]}"/>'
                f'<text x="{_c(x + 15)}" y="15">{_text(truncate(name, 24))}</text>'
            )
            x += 15 + len(truncate(name, 24)) * CHAR_WIDTH + 18
    max_chars = int(label_w / CHAR_WIDTH)
    for i, bar in enumerate(given):
        y0 = legend_h + i * row_h + pad / 2
        body.append(f"<g><title>{_text(_one_line(bar.label))}</title>")
        body.append(
            f'<text x="{label_w}" y="{_c(y0 + group_h / 2 + 4)}" text-anchor="end">'
            f"{_text(truncate(bar.label, max_chars))}</text>"
        )
        for j, value in enumerate(bar.values):
            top = y0 + j * (bar_h + gap)
            width = plot_w * value / maximum
            if value > 0:
                width = max(width, 2.0)
            body.append(
                f'<rect x="{left}" y="{_c(top)}" width="{_c(width)}" height="{bar_h}" rx="2" '
                f'fill="{PALETTE[j % len(PALETTE)]}"/>'
                f'<text x="{_c(left + width + 5)}" y="{_c(top + bar_h - 3)}" font-size="11">'
                f"{_text(number(value))}</text>"
            )
        body.append("</g>")
    return _svg("bars", height, title, desc, body)


# --- funnel -------------------------------------------------------------------------------------


def funnel_chart(stages: Sequence[tuple[str, float, str]], *, title: str) -> str:
    """Stages top to bottom, each bar centred and as wide as its share of the largest."""
    given = [
        Stage(_one_line(label), _value(value), _one_line(note)) for label, value, note in stages
    ]
    if not given:
        return _empty("funnel", title)
    desc = "; ".join(
        f"{s.label}: {number(s.value)}" + (f" ({s.note})" if s.note else "") for s in given
    )
    label_w, note_w, bar_h, row_h, top = 92, 150, 30, 50, 8
    area_left, area_w = label_w + 8, WIDTH - label_w - 8 - note_w
    center = area_left + area_w / 2
    height = top + len(given) * row_h - (row_h - bar_h) + 8
    maximum = max(s.value for s in given) or 1.0

    widths = [max(area_w * s.value / maximum, 2.0 if s.value > 0 else 0.0) for s in given]
    body: list[str] = []
    for i in range(len(given) - 1):
        upper, lower = widths[i], widths[i + 1]
        y1, y2 = top + i * row_h + bar_h, top + (i + 1) * row_h
        body.append(
            f'<polygon points="{_c(center - upper / 2)},{y1} {_c(center + upper / 2)},{y1} '
            f'{_c(center + lower / 2)},{y2} {_c(center - lower / 2)},{y2}" '
            f'fill="{PALETTE[0]}" fill-opacity="0.12"/>'
        )
    for i, (stage, width) in enumerate(zip(given, widths, strict=True)):
        y0 = top + i * row_h
        colour = PALETTE[i % len(PALETTE)]
        body.append(f"<g><title>{_text(stage.label)}: {_text(number(stage.value))}</title>")
        body.append(
            f'<text x="{label_w}" y="{y0 + bar_h / 2 + 4:g}" text-anchor="end" '
            f'font-weight="600">{_text(truncate(stage.label, int(label_w / CHAR_WIDTH)))}</text>'
        )
        body.append(
            f'<rect x="{area_left}" y="{y0}" width="{_c(area_w)}" height="{bar_h}" rx="4" '
            'fill="currentColor" fill-opacity="0.05"/>'
            f'<rect x="{_c(center - width / 2)}" y="{y0}" width="{_c(width)}" height="{bar_h}" '
            f'rx="4" fill="{colour}"/>'
        )
        note_x = WIDTH - note_w + 12
        body.append(
            f'<text x="{note_x}" y="{y0 + 13}" font-size="15" font-weight="700">'
            f"{_text(number(stage.value))}</text>"
        )
        if stage.note:
            body.append(
                f'<text x="{note_x}" y="{y0 + 28}" font-size="11" fill-opacity="0.7">'
                f"{_text(truncate(stage.note, int(note_w / 6)))}</text>"
            )
        body.append("</g>")
    return _svg("funnel", height, title, desc, body)
