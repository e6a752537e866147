"""The monthly trend chart as a PNG, drawn with matplotlib's Agg backend (no display, no pyplot
state): incidents per month as bars (top panel), MTTA / MTTR medians in minutes as lines
(bottom panel). Any script in a team or service name is drawn (charts/fonts.py). Deterministic:
the same figures give the same bytes."""
from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Sequence

INK = "#333333"
GRID = "#e2e2e2"
BAR = "#6264a7"       # Teams purple
MTTA = "#e67e22"
MTTR = "#2980b9"
DPI = 100
TITLE_BAND = 40       # pixels at the top that hold the title (tests look there)


@dataclass(frozen=True)
class TrendBar:
    label: str                    # "Mar 25"
    count: int
    mtta_minutes: float | None
    mttr_minutes: float | None


def trend_chart(points: Sequence[TrendBar], *, title: str, width: int = 640,
                height: int = 360) -> bytes:
    # matplotlib is imported by the first chart, not at start: most processes (a replica
    # without the monthly report's turn, every `firebell` subcommand but report) never draw one.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from charts.fonts import families
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    fonts = {"family": list(families()), "color": INK}
    fig.text(12 / width, 1 - 12 / height, title[:100], fontdict={**fonts, "size": 13},
             va="top", ha="left", weight="bold")
    bars, lines = fig.subplots(2, 1, sharex=True)
    fig.subplots_adjust(left=0.09, right=0.97, top=1 - (TITLE_BAND + 14) / height,
                        bottom=0.16, hspace=0.3)
    xs = range(len(points))
    _bars(bars, xs, points, fonts)
    _lines(lines, xs, points, fonts)
    lines.set_xticks(list(xs), [p.label[:12] for p in points], fontfamily=fonts["family"])
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def _style(ax, unit: str, fonts: dict) -> None:
    from matplotlib.ticker import MaxNLocator
    ax.set_title(unit, loc="left", fontdict={**fonts, "size": 9})
    ax.grid(axis="y", color=GRID)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(colors=INK, labelsize=8)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    ax.set_ylim(bottom=0)


def _bars(ax, xs, points: Sequence[TrendBar], fonts: dict) -> None:
    counts = [p.count for p in points]
    drawn = ax.bar(list(xs), counts, color=BAR, width=0.6)
    ax.bar_label(drawn, labels=[str(c) for c in counts], fontsize=8, color=INK, padding=2)
    _style(ax, "incidents", fonts)
    ax.set_ylim(top=max(counts, default=0) * 1.25 or 1)


def _lines(ax, xs, points: Sequence[TrendBar], fonts: dict) -> None:
    for attr, color, name in (("mtta_minutes", MTTA, "MTTA"), ("mttr_minutes", MTTR, "MTTR")):
        values = [getattr(p, attr) for p in points]
        ys = [float("nan") if v is None else v for v in values]  # a gap where none was measured
        ax.plot(list(xs), ys, color=color, marker="s", markersize=4, linewidth=2, label=name)
    _style(ax, "minutes (median)", fonts)
    ax.legend(loc="upper right", fontsize=8, frameon=False, ncols=2)
