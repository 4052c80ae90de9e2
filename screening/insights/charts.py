"""Bar charts as plain geometry for inline SVG: no scripts, no CDN, the same in HTML and PDF.

A withheld figure is drawn as an empty outlined stub labelled "<5" (or "-" for a rate), never
as a bar of guessed height.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 220, 44, 36, 16


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    w: float
    h: float
    label: str
    text: str
    withheld: bool


@dataclass(frozen=True)
class Tick:
    y: float
    text: str


@dataclass(frozen=True)
class BarChart:
    title: str
    bars: list[Bar]
    ticks: list[Tick]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: float = HEIGHT - BOTTOM


def _nice_max(v: float, percent: bool) -> float:
    if percent:
        return 1.0 if v > 0.5 else max(0.1, round(v + 0.05, 1))
    for step in (5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if v <= step:
            return float(step)
    return float(v)


def bar_chart(title: str, labels: Sequence[str], values: Sequence[int | float | str | None], *,
              percent: bool = False) -> BarChart:
    """One bar per label; a value of "<5" or None is withheld."""
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    top = _nice_max(max(numbers, default=0), percent)
    plot_h = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT - 8) / max(len(labels), 1)
    bars = []
    for i, (label, v) in enumerate(zip(labels, values, strict=True)):
        x = LEFT + i * slot + slot * 0.15
        w = slot * 0.7
        if isinstance(v, int | float) and not isinstance(v, bool):
            h = plot_h * (v / top) if top else 0
            text = f"{v:.0%}" if percent else str(v)
            bars.append(Bar(x, HEIGHT - BOTTOM - h, w, h, label, text, False))
        else:
            stub = 6.0
            bars.append(Bar(x, HEIGHT - BOTTOM - stub, w, stub, label, "-" if percent else "<5", True))
    ticks = [Tick(HEIGHT - BOTTOM - plot_h * f, f"{top * f:.0%}" if percent else f"{top * f:g}")
             for f in (0, 0.5, 1)]
    return BarChart(title=title, bars=bars, ticks=ticks)
