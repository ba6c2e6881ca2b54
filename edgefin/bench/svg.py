"""Small inline-SVG charts for the self-contained HTML report: no JavaScript, no network, no plotting
dependency. Written by hand because the report needs four simple chart types, and pulling in
matplotlib (tens of MiB, a font cache, a backend) to draw scatter, line and box plots would make
the toolkit heavier for no gain in fidelity; the SVG also stays crisp at any zoom and is searchable text.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
W, H = 560, 340
ML, MR, MT, MB = 64, 18, 30, 48


def color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0) * 0.1
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=raw)
    start = math.ceil(lo / step) * step
    ticks, v = [], start
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 12))
        v += step
    return ticks


def _fmt(v: float, step: float | None = None) -> str:
    if v == 0:
        return "0"
    if step is not None and 0 < step < 1:  # enough decimals to show the step exactly (0.25 -> 2)
        d = max(0, -math.floor(math.log10(step) + 1e-9))
        while d < 8 and abs(round(step, d) - step) > step * 1e-6:
            d += 1
        return f"{v:.{d}f}"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.0f}"
    if a >= 1:
        return f"{v:.1f}".rstrip("0").rstrip(".")
    return f"{v:.3g}"


class Axes:
    """Linear or log10 axes mapping data to pixels, with gridlines and labels."""

    def __init__(
        self,
        x: tuple[float, float],
        y: tuple[float, float],
        *,
        xlog: bool = False,
        ylog: bool = False,
        w: int = W,
        h: int = H,
        ml: int = ML,
        yticks: bool = True,
        xticks: bool = True,
    ) -> None:
        self.w, self.h, self.xlog, self.ylog, self.ml, self.yticks = w, h, xlog, ylog, ml, yticks
        self.xticks = xticks
        self.x0, self.x1 = self._pad(*x, xlog)
        self.y0, self.y1 = self._pad(*y, ylog)

    @staticmethod
    def _pad(lo: float, hi: float, log: bool) -> tuple[float, float]:
        if log:
            lo, hi = math.log10(max(lo, 1e-12)), math.log10(max(hi, 1e-12))
            return (math.floor(lo * 4) / 4, math.ceil(hi * 4) / 4) if hi > lo else (lo - 0.5, hi + 0.5)
        span = hi - lo
        if span <= 0:
            span = abs(hi) * 0.1 or 1.0
            return lo - span / 2, hi + span / 2
        return lo - span * 0.06, hi + span * 0.06

    def px(self, v: float) -> float:
        v = math.log10(max(v, 1e-12)) if self.xlog else v
        return self.ml + (v - self.x0) / (self.x1 - self.x0) * (self.w - self.ml - MR)

    def py(self, v: float) -> float:
        v = math.log10(max(v, 1e-12)) if self.ylog else v
        return self.h - MB - (v - self.y0) / (self.y1 - self.y0) * (self.h - MT - MB)

    def _ticks(self, lo: float, hi: float, log: bool) -> list[float]:
        if log:
            mult = (1, 2, 5) if hi - lo < 2.5 else (1,)
            ticks = [
                m * 10**e
                for e in range(math.floor(lo), math.ceil(hi) + 1)
                for m in mult
                if lo - 1e-9 <= math.log10(m * 10**e) <= hi + 1e-9
            ]
            return ticks or [10**lo, 10**hi]
        return _nice_ticks(lo, hi)

    def frame(self, title: str, xlabel: str, ylabel: str) -> list[str]:
        out = [
            f'<svg viewBox="0 0 {self.w} {self.h}" width="{self.w}" height="{self.h}" role="img" '
            f'aria-label="{escape(title)}" font-family="sans-serif" font-size="11">',
            f'<text x="{self.w / 2}" y="16" text-anchor="middle" font-size="13" font-weight="bold">'
            f"{escape(title)}</text>",
        ]
        ml = self.ml
        xt = self._ticks(self.x0, self.x1, self.xlog) if self.xticks else []
        xstep = None if self.xlog or len(xt) < 2 else xt[1] - xt[0]
        for t in xt:
            x = self.px(t)
            out.append(f'<line x1="{x:.1f}" y1="{MT}" x2="{x:.1f}" y2="{self.h - MB}" stroke="#e4e4e4"/>')
            out.append(f'<text x="{x:.1f}" y="{self.h - MB + 14}" text-anchor="middle">{_fmt(t, xstep)}</text>')
        yt = self._ticks(self.y0, self.y1, self.ylog) if self.yticks else []
        ystep = None if self.ylog or len(yt) < 2 else yt[1] - yt[0]
        for t in yt:
            y = self.py(t)
            out.append(f'<line x1="{ml}" y1="{y:.1f}" x2="{self.w - MR}" y2="{y:.1f}" stroke="#e4e4e4"/>')
            out.append(f'<text x="{ml - 6}" y="{y + 4:.1f}" text-anchor="end">{_fmt(t, ystep)}</text>')
        out.append(
            f'<rect x="{ml}" y="{MT}" width="{self.w - ml - MR}" height="{self.h - MT - MB}" '
            f'fill="none" stroke="#888"/>'
        )
        out.append(f'<text x="{(ml + self.w - MR) / 2}" y="{self.h - 10}" text-anchor="middle">{escape(xlabel)}</text>')
        out.append(
            f'<text transform="translate(14,{(MT + self.h - MB) / 2}) rotate(-90)" '
            f'text-anchor="middle">{escape(ylabel)}</text>'
        )
        return out


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated when smaller x and larger y are better."""
    front = []
    for i, (x, y) in enumerate(points):
        if not any((x2 <= x and y2 >= y) and (x2 < x or y2 > y) for j, (x2, y2) in enumerate(points) if j != i):
            front.append(i)
    return sorted(front, key=lambda i: points[i][0])


def scatter_pareto(
    title: str,
    xlabel: str,
    ylabel: str,
    names: Sequence[str],
    xs: Sequence[float],
    ys: Sequence[float],
    *,
    xlog: bool = False,
    highlight: str | None = None,
) -> str:
    """Scatter with the Pareto front (smaller x, larger y) joined by a line and labelled points."""
    if not xs:
        return "<p>(no measured variants)</p>"
    ax = Axes((min(xs), max(xs)), (min(ys), max(ys)), xlog=xlog)
    out = ax.frame(title, xlabel, ylabel)
    front = pareto_front(list(zip(xs, ys)))
    if len(front) > 1:
        pts = " ".join(f"{ax.px(xs[i]):.1f},{ax.py(ys[i]):.1f}" for i in front)
        out.append(f'<polyline points="{pts}" fill="none" stroke="#999" stroke-dasharray="4 3"/>')
    for i, (n, x, y) in enumerate(zip(names, xs, ys)):
        cx, cy = ax.px(x), ax.py(y)
        ring = ' stroke="#000" stroke-width="2"' if n == highlight else ""
        out.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="{color(i)}"{ring}>'
            f"<title>{escape(n)}: {_fmt(x)}, {y:.4f}</title></circle>"
        )
        # labels alternate above and below their point so that neighbours rarely overlap
        ly = cy - 7 if i % 2 == 0 else cy + 15
        right = cx > ax.w - MR - 90  # near the right edge: put the label on the left of its point
        lx, anchor = (cx - 7, "end") if right else (cx + 7, "start")
        out.append(
            f'<text x="{lx:.1f}" y="{ly:.1f}" font-size="10" text-anchor="{anchor}">{escape(n)}'
            f"{' *' if i in front else ''}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def lines(
    title: str,
    xlabel: str,
    ylabel: str,
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    *,
    diagonal: bool = False,
    markers: bool = False,
    unit_square: bool = True,
) -> str:
    """Line chart (ROC, calibration); optional y = x reference."""
    allx = [v for _, xs, _ in series for v in xs] or [0.0, 1.0]
    ally = [v for _, _, ys in series for v in ys] or [0.0, 1.0]
    rng = ((0.0, 1.0), (0.0, 1.0)) if unit_square else ((min(allx), max(allx)), (min(ally), max(ally)))
    ax = Axes(*rng)
    out = ax.frame(title, xlabel, ylabel)
    if diagonal:
        out.append(
            f'<line x1="{ax.px(0):.1f}" y1="{ax.py(0):.1f}" x2="{ax.px(1):.1f}" y2="{ax.py(1):.1f}" '
            f'stroke="#aaa" stroke-dasharray="4 3"/>'
        )
    for i, (name, xs, ys) in enumerate(series):
        pts = " ".join(f"{ax.px(x):.1f},{ax.py(y):.1f}" for x, y in zip(xs, ys))
        out.append(f'<polyline points="{pts}" fill="none" stroke="{color(i)}" stroke-width="2"/>')
        if markers:
            out.extend(
                f'<circle cx="{ax.px(x):.1f}" cy="{ax.py(y):.1f}" r="3" fill="{color(i)}"/>' for x, y in zip(xs, ys)
            )
        ly = MT + 14 + 14 * i
        out.append(
            f'<rect x="{ML + 10}" y="{ly - 8}" width="10" height="10" fill="{color(i)}"/>'
            f'<text x="{ML + 24}" y="{ly + 1}">{escape(name)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def boxes(title: str, xlabel: str, rows: Sequence[tuple[str, Sequence[float]]], *, xlog: bool = True) -> str:
    """Horizontal box plots from 101-point quantile sketches: box p25-p75, line p50, whiskers p1-p99."""
    rows = [(n, q) for n, q in rows if len(q) == 101]
    if not rows:
        return "<p>(no latency samples)</p>"
    h = MT + MB + 22 * len(rows) + 10
    lo = min(q[1] for _, q in rows)
    hi = max(q[99] for _, q in rows)
    ax = Axes((lo, hi), (0, len(rows)), xlog=xlog, w=W + 120, h=h, ml=130, yticks=False)
    ax.y0, ax.y1 = 0.0, float(len(rows))
    out = ax.frame(title, xlabel, "")
    for i, (name, q) in enumerate(rows):
        yc = ax.py(len(rows) - i - 0.5)
        c = color(i)
        x1, x25, x50, x75, x99 = (ax.px(q[k]) for k in (1, 25, 50, 75, 99))
        out.append(f'<line x1="{x1:.1f}" y1="{yc:.1f}" x2="{x99:.1f}" y2="{yc:.1f}" stroke="{c}"/>')
        out.append(
            f'<rect x="{x25:.1f}" y="{yc - 7:.1f}" width="{max(x75 - x25, 1):.1f}" height="14" '
            f'fill="{c}" fill-opacity="0.35" stroke="{c}"><title>{escape(name)}: p25 {_fmt(q[25])}, '
            f"p50 {_fmt(q[50])}, p75 {_fmt(q[75])}, p99 {_fmt(q[99])}</title></rect>"
        )
        out.append(
            f'<line x1="{x50:.1f}" y1="{yc - 8:.1f}" x2="{x50:.1f}" y2="{yc + 8:.1f}" stroke="#000" stroke-width="2"/>'
        )
        out.append(f'<text x="{ax.ml - 6}" y="{yc + 4:.1f}" text-anchor="end">{escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def hbars(
    title: str, xlabel: str, rows: Sequence[tuple[str, float, float | None]], *, value_fmt: str = "{:.4f}"
) -> str:
    """Horizontal bars, largest first as given, with an optional +- error whisker (e.g. one sd)."""
    if not rows:
        return "<p>(nothing to draw)</p>"
    h = MT + MB + 20 * len(rows) + 10
    lo = min(0.0, min(v - (e or 0.0) for _, v, e in rows))
    hi = max(max(v + (e or 0.0) for _, v, e in rows), lo + 1e-9)
    ax = Axes((lo, hi), (0, len(rows)), w=W, h=h, ml=110, yticks=False)
    ax.y0, ax.y1 = 0.0, float(len(rows))
    out = ax.frame(title, xlabel, "")
    x0 = ax.px(0.0)
    for i, (name, v, err) in enumerate(rows):
        yc = ax.py(len(rows) - i - 0.5)
        xv = ax.px(v)
        out.append(
            f'<rect x="{min(x0, xv):.1f}" y="{yc - 6:.1f}" width="{max(abs(xv - x0), 1):.1f}" height="12" '
            f'fill="{color(0)}" fill-opacity="0.7"><title>{escape(name)}: {value_fmt.format(v)}'
            f"{'' if err is None else ' +- ' + value_fmt.format(err)}</title></rect>"
        )
        if err:
            a, b = ax.px(v - err), ax.px(v + err)
            out.append(f'<line x1="{a:.1f}" y1="{yc:.1f}" x2="{b:.1f}" y2="{yc:.1f}" stroke="#333"/>')
        out.append(f'<text x="{ax.ml - 6}" y="{yc + 4:.1f}" text-anchor="end">{escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def dependence(
    title: str,
    xlabel: str,
    grid: Sequence[float | str],
    pd: Sequence[float],
    ice: Sequence[Sequence[float]] = (),
) -> str:
    """Partial dependence (thick line, left axis: mean score) over centred ICE curves (thin, drawn
    from the PD's first point so both share the axis). A categorical grid is drawn at even positions
    with its labels."""
    if not grid or len(pd) != len(grid):
        return "<p>(no grid to draw)</p>"
    categorical = any(isinstance(g, str) for g in grid)
    xs = [float(i) for i in range(len(grid))] if categorical else [float(g) for g in grid]
    curves = [[pd[0] + d for d in row] for row in ice if len(row) == len(grid)]
    ally = list(pd) + [v for c in curves for v in c]
    ax = Axes((min(xs), max(xs)), (min(ally), max(ally)), xticks=not categorical)
    out = ax.frame(title, xlabel, "mean score (PD); ICE from PD's start")
    if categorical:  # the categories as x labels
        out.extend(
            f'<text x="{ax.px(x):.1f}" y="{ax.h - MB + 14}" text-anchor="middle">{escape(str(g))}</text>'
            for x, g in zip(xs, grid)
        )
    for c in curves:
        pts = " ".join(f"{ax.px(x):.1f},{ax.py(y):.1f}" for x, y in zip(xs, c))
        out.append(f'<polyline points="{pts}" fill="none" stroke="#999" stroke-opacity="0.45" stroke-width="1"/>')
    pts = " ".join(f"{ax.px(x):.1f},{ax.py(y):.1f}" for x, y in zip(xs, pd))
    out.append(f'<polyline points="{pts}" fill="none" stroke="{color(0)}" stroke-width="3"/>')
    out.extend(f'<circle cx="{ax.px(x):.1f}" cy="{ax.py(y):.1f}" r="3" fill="{color(0)}"/>' for x, y in zip(xs, pd))
    out.append("</svg>")
    return "".join(out)
