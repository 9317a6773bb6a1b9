"""The HTML report: one self-contained file (styles inline, figures embedded as data URIs, no remote URL)."""

from __future__ import annotations

import base64

import jinja2

from .content import ReportContent

__all__ = ["render_html"]


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.PackageLoader("hsi_stats.report", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined)
    env.filters["b64"] = lambda data: base64.b64encode(data).decode("ascii")
    return env


def render_html(content: ReportContent) -> str:
    """Render the report's content as a standalone HTML page."""
    return _environment().get_template("report.html.j2").render(c=content)
