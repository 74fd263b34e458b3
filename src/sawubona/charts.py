"""Charts as server-rendered SVG: no JavaScript, no network, works in print and in the report.

Why not a JavaScript chart library: the web app and the static report must work
offline under a strict Content-Security-Policy (no inline script), and the
report must be one self-contained file. An SVG drawn on the server satisfies all
three with one code path. Every label is escaped.

Charts show uncertainty: :func:`intervals` draws each estimate as a dot with its
interval and its n, which is how sawubona shows every rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

WIDTH = 640
ROW = 26
LEFT = 190
RIGHT = 90


@dataclass(frozen=True)
class Estimate:
    label: str
    value: float
    low: float | None = None
    high: float | None = None
    n: int | None = None


def _num(x: float) -> str:
    if abs(x) >= 100:
        return f"{x:,.0f}"
    if abs(x) >= 1:
        return f"{x:.1f}"
    return f"{x:.3g}"


def _finite(*xs: float | None) -> list[float]:
    return [x for x in xs if x is not None and not math.isnan(x) and not math.isinf(x)]


def intervals(
    rows: Sequence[Estimate],
    *,
    title: str,
    percent: bool = False,
    domain: tuple[float, float] | None = None,
) -> str:
    """Dot-and-whisker chart: one row per estimate, its interval, and n on the right."""
    rows = [r for r in rows if _finite(r.value)]
    if not rows:
        return ""
    scale = 100.0 if percent else 1.0
    values = [x * scale for r in rows for x in _finite(r.value, r.low, r.high)]
    lo, hi = domain if domain else (min([*values, 0.0]), max(values))
    if hi <= lo:
        hi = lo + 1
    plot = WIDTH - LEFT - RIGHT
    height = 34 + ROW * len(rows)

    def x(v: float) -> float:
        return LEFT + (v * scale - lo) / (hi - lo) * plot

    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{LEFT}" y1="20" x2="{LEFT}" y2="{height - 8}" class="axis"/>',
    ]
    if lo < 0 < hi:
        out.append(
            f'<line x1="{x(0):.1f}" y1="20" x2="{x(0):.1f}" y2="{height - 8}" class="zero"/>'
        )
    unit = "%" if percent else ""
    out.append(f'<text x="{LEFT}" y="14" class="tick">{_num(lo)}{unit}</text>')
    out.append(
        f'<text x="{LEFT + plot}" y="14" class="tick" text-anchor="end">{_num(hi)}{unit}</text>'
    )
    for i, r in enumerate(rows):
        y = 34 + i * ROW
        out.append(
            f'<text x="{LEFT - 8}" y="{y + 4}" text-anchor="end" class="label">'
            f"{escape(r.label[:32])}</text>"
        )
        if r.low is not None and r.high is not None and _finite(r.low, r.high):
            out.append(
                f'<line x1="{x(r.low):.1f}" y1="{y}" x2="{x(r.high):.1f}" y2="{y}" '
                'class="interval"/>'
            )
        out.append(
            f'<circle cx="{x(r.value):.1f}" cy="{y}" r="4" class="dot">'
            f"<title>{escape(r.label)}: {_num(r.value * scale)}{unit}</title></circle>"
        )
        n = f"n = {r.n:,}" if r.n is not None else ""
        out.append(f'<text x="{WIDTH - RIGHT + 8}" y="{y + 4}" class="n">{n}</text>')
    out.append("</svg>")
    return "".join(out)


def bars(rows: Sequence[tuple[str, float]], *, title: str) -> str:
    """Horizontal bars for counts."""
    rows = [(label, v) for label, v in rows if _finite(v)]
    if not rows:
        return ""
    top = max(v for _, v in rows) or 1.0
    plot = WIDTH - LEFT - RIGHT
    height = 20 + ROW * len(rows)
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'width="{WIDTH}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, v) in enumerate(rows):
        y = 10 + i * ROW
        w = max(1.0, v / top * plot)
        out.append(
            f'<text x="{LEFT - 8}" y="{y + 14}" text-anchor="end" class="label">'
            f"{escape(label[:32])}</text>"
        )
        out.append(
            f'<rect x="{LEFT}" y="{y + 2}" width="{w:.1f}" height="{ROW - 8}" '
            f'class="bar"><title>{escape(label)}: {_num(v)}</title></rect>'
        )
        out.append(f'<text x="{LEFT + w + 6:.1f}" y="{y + 14}" class="n">{_num(v)}</text>')
    out.append("</svg>")
    return "".join(out)
