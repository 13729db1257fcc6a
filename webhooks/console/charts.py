"""Charts as SVG drawn on the server: the geometry here, the markup in
``templates/console/_charts.html``. Colours come from CSS classes (``s1``…``s6``), so the
SVG needs no inline style and the page's policy stays strict."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 960, 260
LEFT, RIGHT, TOP, BOTTOM = 48, 8, 10, 28

# A fixed colour per outcome, so a status keeps its colour from one refresh to the next.
STATUS_CLASS = {
    "processed": "s2",
    "received": "s1",
    "processing": "s5",
    "failed": "s3",
    "dead": "s6",
    "invalid": "s4",
    "pending": "s1",
    "sending": "s5",
    "sent": "s2",
    "unknown": "s4",
    "bounced": "s6",
    "unsubscribed": "s3",
}


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    title: str


@dataclass(frozen=True)
class Tick:
    position: float
    label: str


@dataclass(frozen=True)
class StackedBars:
    """A stacked bar chart: the rectangles, the axes' ticks, the legend."""

    width: int
    height: int
    bars: list[Bar]
    y_ticks: list[Tick]
    x_ticks: list[Tick]
    legend: list[tuple[str, str]]
    plot_left: int
    plot_right: int
    plot_top: int
    plot_bottom: int
    empty: bool


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten at least ``value`` (1 for 0)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _number(value: float) -> str:
    return f"{value:.0f}" if value == int(value) else f"{value:.3g}"


def stacked_bars(
    series: Mapping[str, Sequence[float]],
    *,
    start: dt.datetime,
    step: dt.timedelta,
    unit: str,
    label_every: int = 16,
) -> StackedBars:
    """Bars for each slot of ``series`` (one list per stacked part, all of one length)."""
    slots = max((len(values) for values in series.values()), default=0)
    totals = [sum(values[i] for values in series.values()) for i in range(slots)]
    top = nice_ceiling(max(totals, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot_w = plot_w / slots if slots else plot_w
    bars: list[Bar] = []
    for i in range(slots):
        base = 0.0
        when = (start + step * i).strftime("%H:%M")
        for name, values in series.items():
            value = values[i]
            if value <= 0:
                continue
            height = value / top * plot_h
            y = TOP + plot_h - (base + value) / top * plot_h
            title = f"{when} UTC: {_number(value)} {name} {unit}"
            css = STATUS_CLASS.get(name, "s6")
            bars.append(Bar(LEFT + i * slot_w + 0.5, y, max(slot_w - 1, 0.5), height, css, title))
            base += value
    y_ticks = [Tick(TOP + plot_h - f * plot_h, _number(top * f)) for f in (0, 0.25, 0.5, 0.75, 1)]
    x_ticks = [
        Tick(LEFT + i * slot_w, (start + step * i).strftime("%H:%M"))
        for i in range(0, slots, label_every)
    ]
    legend = [(name, STATUS_CLASS.get(name, "s6")) for name in series]
    return StackedBars(
        WIDTH, HEIGHT, bars, y_ticks, x_ticks, legend,
        LEFT, WIDTH - RIGHT, TOP, TOP + plot_h, not any(totals),
    )  # fmt: skip
