"""The static report: one self-contained HTML file with the overview's sections.

Charts are inline SVG, the stylesheet is inlined, and a Content-Security-Policy
meta tag forbids every external load, so the file opens offline and prints.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

from sawubona.report.overview import build_overview

if TYPE_CHECKING:
    from sawubona.store import Store

WEB = Path(__file__).resolve().parents[1] / "web"


def render_report(store: Store) -> str:
    """The report's HTML text."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    import sawubona

    env = Environment(
        loader=FileSystemLoader(str(WEB / "templates")), autoescape=select_autoescape(["html"])
    )
    env.filters["urlencode"] = lambda d: ""
    env.filters["fmt"] = str
    template = env.get_template("report.html")
    return template.render(
        ov=build_overview(store),
        base="",
        report=True,
        nav_lenses=[],
        inline_css=(WEB / "static" / "style.css").read_text(encoding="utf-8"),
        generated=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        version=sawubona.__version__,
    )


def write_report(store: Store, out: str | Path) -> Path:
    path = Path(out)
    path.write_text(render_report(store), encoding="utf-8")
    return path
