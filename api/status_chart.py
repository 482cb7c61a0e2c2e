"""The restoration progress chart: geometry for an inline SVG, computed on the server.

A step chart of two lines over time, services affected (dashed) and services restored (solid),
each labelled at its end in words, so neither colour nor line style is needed to tell them
apart. The template draws it; the same points go in a table beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from projections.progress import CurvePoint

WIDTH, HEIGHT = 360, 190
LEFT, RIGHT, TOP, BOTTOM = 26, 74, 10, 24
"""Margins: room for the count axis on the left, the lines' labels on the right, dates below."""
X_TICKS = 4


@dataclass(frozen=True)
class Tick:
    at: float
    label: str


@dataclass(frozen=True)
class LineEnd:
    x: float
    y: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot_left: int
    plot_right: int
    plot_bottom: int
    restored_path: str
    affected_path: str
    restored_end: LineEnd
    affected_end: LineEnd
    x_ticks: list[Tick]
    y_ticks: list[Tick]


def progress_chart(curve: list[CurvePoint], until: datetime, day_label: Callable[[datetime], str]) -> Chart | None:
    """The chart of ``curve`` from its first point to ``until`` (None without points).

    ``day_label`` writes a moment as the short date shown under the axis (in the page's zone).
    """
    if not curve:
        return None
    start = curve[0].at
    end = max(until, curve[-1].at)
    if end - start < timedelta(days=1):
        end = start + timedelta(days=1)
    span = (end - start).total_seconds()
    plot_right = WIDTH - RIGHT
    plot_bottom = HEIGHT - BOTTOM
    top_count = max(point.total for point in curve) or 1

    def x(moment: datetime) -> float:
        return round(LEFT + (moment - start).total_seconds() / span * (plot_right - LEFT), 1)

    def y(count: int) -> float:
        return round(plot_bottom - count / top_count * (plot_bottom - TOP), 1)

    def steps(value: Callable[[CurvePoint], int]) -> str:
        path = [f"M{x(curve[0].at)},{y(value(curve[0]))}"]
        for before, point in zip(curve, curve[1:]):
            if value(point) != value(before):
                path.append(f"H{x(point.at)}V{y(value(point))}")
        path.append(f"H{plot_right}")
        return "".join(path)

    last = curve[-1]
    restored_end = LineEnd(plot_right + 4, y(last.restored), f"{last.restored} restored")
    affected_end = LineEnd(plot_right + 4, y(last.total), f"{last.total} affected")
    if abs(restored_end.y - affected_end.y) < 12:  # the same or nearly: keep both labels legible
        affected_end = LineEnd(affected_end.x, affected_end.y - 6, affected_end.label)
        restored_end = LineEnd(restored_end.x, restored_end.y + 6, restored_end.label)
    ticks = [start + (end - start) * n / (X_TICKS - 1) for n in range(X_TICKS)]
    counts = sorted({0, top_count, top_count // 2} if top_count >= 4 else {0, top_count})
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        plot_left=LEFT,
        plot_right=plot_right,
        plot_bottom=plot_bottom,
        restored_path=steps(lambda p: p.restored),
        affected_path=steps(lambda p: p.total),
        restored_end=restored_end,
        affected_end=affected_end,
        x_ticks=[Tick(x(moment), day_label(moment)) for moment in ticks],
        y_ticks=[Tick(y(count), str(count)) for count in counts],
    )
