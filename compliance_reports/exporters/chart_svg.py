"""A document's ``chart`` section drawn as SVG with matplotlib, byte for byte the same for the
same data.

Determinism: matplotlib's SVG backend names its clip paths and glyphs from a hash salted with
``svg.hashsalt`` (fixed here), writes no creation date when the ``Date`` metadata is None, and
with ``svg.fonttype = "none"`` keeps text as text (no glyph outlines that depend on the font
files found), which the PDF renderer then sets in the report's own fonts. Every figure is a
``Figure`` object (no pyplot, no global figure state) drawn inside an ``rc_context`` so that
nothing leaks into other matplotlib users of the process.

Colours: the report's severity colours (``SEVERITY_COLOURS``, the same as report.css), so a
failure is the same red in a chart, a finding card and the legend.
"""

from __future__ import annotations

import io
from typing import Any
from urllib.parse import quote, unquote

CHART_SCHEME = "chart:"
SEVERITY_COLOURS = {"critical": "#b3261e", "warning": "#c77c02", "info": "#2f6fad"}
ROLE_COLOURS = {"main": "#7d93a8", "failure": SEVERITY_COLOURS["critical"],
                "warning": SEVERITY_COLOURS["warning"]}
WIDTH_IN = 7.0
HEIGHT_IN = 2.3
RC = {
    "svg.hashsalt": "compliance_reports",
    "svg.fonttype": "none",
    "font.family": "DejaVu Sans",
    "font.size": 7.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#9aa7b4",
    "axes.labelcolor": "#33414f",
    "xtick.color": "#33414f",
    "ytick.color": "#33414f",
    "path.simplify": False,
}
MAX_TICK_LABELS = 16


def _thousands(value: float, _pos: Any = None) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def chart_svg(section: dict[str, Any]) -> bytes:
    """The SVG of one chart section (see ``reports.document``)."""
    import matplotlib
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    spec = section["chart"]
    categories = list(spec["categories"])
    series = spec["series"]
    with matplotlib.rc_context(RC):
        horizontal = spec["type"] == "barh"
        height = max(HEIGHT_IN, 0.22 * len(categories) + 0.6) if horizontal else HEIGHT_IN
        fig = Figure(figsize=(WIDTH_IN, height))
        ax = fig.subplots()
        positions = list(range(len(categories)))
        base = [0.0] * len(categories)
        stacked = spec["type"] in ("stacked_bar", "barh")
        width = 0.8 / (1 if stacked else max(len(series), 1))
        for index, item in enumerate(series):
            values = [float(v or 0) for v in item["values"]]
            colour = ROLE_COLOURS.get(item.get("role", "main"), ROLE_COLOURS["main"])
            if horizontal:
                ax.barh(positions, values, left=base, height=0.7, color=colour, linewidth=0,
                        label=item["name"])
            elif stacked:
                ax.bar(positions, values, bottom=base, width=width, color=colour, linewidth=0,
                       label=item["name"])
            else:
                shift = [p + (index - (len(series) - 1) / 2) * width for p in positions]
                ax.bar(shift, values, width=width, color=colour, linewidth=0, label=item["name"])
            if stacked:
                base = [b + v for b, v in zip(base, values)]
        value_axis = ax.xaxis if horizontal else ax.yaxis
        value_axis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        value_axis.set_major_formatter(FuncFormatter(_thousands))
        if horizontal:
            ax.set_yticks(positions, categories)
            ax.invert_yaxis()
        else:
            step = max(1, -(-len(categories) // MAX_TICK_LABELS))
            ax.set_xticks(positions[::step], categories[::step],
                          rotation=0 if len(categories) <= 8 else 45,
                          ha="center" if len(categories) <= 8 else "right")
        reference = spec.get("reference")
        if reference and reference.get("at") in categories:
            at = categories.index(reference["at"]) - 0.5
            ax.axvline(at, color=SEVERITY_COLOURS["critical"], linestyle="--", linewidth=1)
            ax.annotate(reference["label"], (at, 1.0), xycoords=("data", "axes fraction"),
                        xytext=(3, -2), textcoords="offset points", va="top",
                        color=SEVERITY_COLOURS["critical"])
        ax.set_xlabel(spec.get("x_label") or "")
        ax.set_ylabel(spec.get("y_label") or "")
        ax.margins(x=0.01)
        if len(series) > 1 or reference:
            # above the plot, right-aligned: never over a bar
            ax.legend(frameon=False, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=3,
                      fontsize=7, borderaxespad=0.2)
        fig.tight_layout(pad=0.4)
        out = io.BytesIO()
        fig.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    return out.getvalue()


def chart_url(section: dict[str, Any]) -> str:
    """The URL of the chart's ``<img>`` in the report HTML: ``chart:<section id>``. The PDF
    process draws it (pdf_writer), so that matplotlib is loaded there, not in its caller."""
    return CHART_SCHEME + quote(str(section["id"]), safe="")


def section_id(url: str) -> str | None:
    """The section id a `chart_url` names (None: not a chart URL)."""
    return unquote(url[len(CHART_SCHEME):]) if url.startswith(CHART_SCHEME) else None
