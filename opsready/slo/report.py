"""The SLO report: one self-contained HTML file (inline SVG plots, no scripts, nothing
fetched) with error budgets, burn rates, cost per success and incidents of one agent.

Plots are drawn by matplotlib on its Agg canvas (never pyplot, so never a GUI backend and
no global figure state) and written as SVG inline in the page.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
from matplotlib.figure import Figure
from pydantic import BaseModel, ConfigDict, Field

from workflows.slo_types import BurnWindow, Slo

_SEVERITY_COLOURS = {"sev1": "#d62728", "sev2": "#ff7f0e", "sev3": "#e6c229"}
_OTHER_SEVERITY = "#9467bd"
# Matplotlib's default SVG metadata links to Dublin Core and Creative Commons URLs.
_NO_METADATA: dict[str, str | None] = {"Date": None, "Creator": None, "Format": None, "Type": None}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TimePoint(_Model):
    at: datetime
    value: float


class BurnSeries(_Model):
    """A window pair's burn rate over time. Give min(long, short) per point: the pair alerts
    exactly when that crosses `window.factor`, which the plot draws."""

    window: BurnWindow
    points: list[TimePoint] = Field(default_factory=list)


class SloSeries(_Model):
    slo: Slo
    budget_remaining: list[TimePoint] = Field(default_factory=list)  # fractions, 1 = untouched
    burn_rates: list[BurnSeries] = Field(default_factory=list)


class ReportIncident(_Model):
    title: str
    severity: str  # e.g. sev1, sev2, sev3
    opened_at: datetime
    resolved_at: datetime | None = None  # still open: drawn to the end of the report


class SloReportData(_Model):
    """Everything one agent's report shows, over [start, end]."""

    agent: str
    start: datetime
    end: datetime
    generated_at: datetime
    slos: list[SloSeries] = Field(default_factory=list)
    cost_per_success: list[TimePoint] = Field(default_factory=list)  # USD per completed run
    incidents: list[ReportIncident] = Field(default_factory=list)


def write_html_report(path: Path, data: SloReportData) -> Path:
    """Write the report to `path` (parents created) and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(data), encoding="utf-8")
    return path


def render_html(data: SloReportData) -> str:
    title = f"SLO report: {data.agent}"
    sections = [f"<h1>{_e(title)}</h1>", _period(data), _summary_table(data)]
    if data.incidents:
        sections.append(_incident_table(data.incidents))
    for series in data.slos:
        sections += [
            f"<h2>{_e(series.slo.name)} <small>{_e(series.slo.kind.value)}</small></h2>",
            _figure(_slo_figure(series, data)),
        ]
    if data.cost_per_success:
        sections += ["<h2>Cost per success</h2>", _figure(_cost_figure(data))]
    body = "\n".join(sections)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:64em;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;"
    "padding:.3em .6em;text-align:left}small{color:#777;font-weight:normal}"
    ".bad{color:#d62728;font-weight:bold}figure{margin:0}svg{max-width:100%;height:auto}"
)


def _period(data: SloReportData) -> str:
    return (
        f"<p>{_e(_when(data.start))} to {_e(_when(data.end))}; "
        f"generated {_e(_when(data.generated_at))}.</p>"
    )


def _summary_table(data: SloReportData) -> str:
    rows = []
    for series in data.slos:
        slo = series.slo
        left = series.budget_remaining[-1].value if series.budget_remaining else None
        shown = "no data" if left is None else f"{left:.1%}"
        css = ' class="bad"' if left is not None and left <= 0 else ""
        rows.append(
            f"<tr><td>{_e(slo.name)}</td><td>{_e(slo.kind.value)}</td>"
            f"<td>{slo.objective:.2%}{_e(_threshold(slo))}</td><td>{slo.window_days} d</td>"
            f"<td{css}>{shown}</td></tr>"
        )
    head = "<tr><th>SLO</th><th>kind</th><th>objective</th><th>window</th><th>budget left</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _threshold(slo: Slo) -> str:
    if slo.threshold_seconds is not None:
        return f" within {slo.threshold_seconds:g} s"
    if slo.threshold_usd is not None:
        return f" at most ${slo.threshold_usd:g}"
    return ""


def _incident_table(incidents: Sequence[ReportIncident]) -> str:
    rows = "".join(
        f"<tr><td>{_e(i.severity)}</td><td>{_e(i.title)}</td><td>{_e(_when(i.opened_at))}</td>"
        f"<td>{_e(_when(i.resolved_at)) if i.resolved_at else 'open'}</td></tr>"
        for i in incidents
    )
    head = "<tr><th>severity</th><th>incident</th><th>opened</th><th>resolved</th></tr>"
    return f"<h2>Incidents</h2><table>{head}{rows}</table>"


def _slo_figure(series: SloSeries, data: SloReportData) -> Figure:
    figure = Figure(figsize=(10, 5.5), layout="constrained")
    budget, burn = figure.subplots(2, 1, sharex=True)
    _line(budget, series.budget_remaining, "budget left", "#1f77b4")
    budget.axhline(0, color="#d62728", linewidth=1, linestyle="--")
    budget.set_ylabel("error budget left")
    budget.yaxis.set_major_formatter(lambda value, _: f"{value:.0%}")
    for index, pair in enumerate(series.burn_rates):
        colour = f"C{index % 10}"
        _line(burn, pair.points, f"{pair.window.label} ({pair.window.action})", colour)
        burn.axhline(pair.window.factor, color=colour, linestyle=":", linewidth=1.2)
        burn.annotate(
            f"{pair.window.factor:g}x",
            (1.0, pair.window.factor),
            xycoords=("axes fraction", "data"),
            ha="left",
            va="center",
            color=colour,
            fontsize=8,
        )
    burn.set_ylabel("burn rate (x budget)")
    if series.burn_rates:
        burn.legend(loc="upper left", fontsize=8)
    for axes in (budget, burn):
        _incidents(axes, data)
        _time_axis(axes, data)
    return figure


def _cost_figure(data: SloReportData) -> Figure:
    figure = Figure(figsize=(10, 3), layout="constrained")
    axes = figure.subplots()
    _line(axes, data.cost_per_success, "cost per success", "#2ca02c")
    axes.set_ylabel("USD per completed run")
    _incidents(axes, data)
    _time_axis(axes, data)
    return figure


def _line(axes: Axes, points: Sequence[TimePoint], label: str, colour: str) -> None:
    times = [_x(p.at) for p in points]
    axes.plot(times, [p.value for p in points], label=label, color=colour, marker=".")
    axes.grid(True, alpha=0.3)


def _incidents(axes: Axes, data: SloReportData) -> None:
    """Each incident as a shaded span from opened to resolved (or the report's end)."""
    for incident in data.incidents:
        colour = _SEVERITY_COLOURS.get(incident.severity.lower(), _OTHER_SEVERITY)
        end = incident.resolved_at or data.end
        axes.axvspan(_x(incident.opened_at), _x(end), color=colour, alpha=0.18)
        axes.annotate(
            incident.severity,
            (_x(incident.opened_at), 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -2),
            textcoords="offset points",
            va="top",
            fontsize=8,
            color=colour,
        )


def _time_axis(axes: Axes, data: SloReportData) -> None:
    axes.set_xlim(_x(data.start), _x(data.end))
    axes.xaxis_date()
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]  # matplotlib leaves it bare
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]


def _x(moment: datetime) -> float:
    """A time as matplotlib's date number (the axes are told they hold dates)."""
    return float(date2num(moment))  # type: ignore[no-untyped-call]


def _figure(figure: Figure) -> str:
    """The figure as an inline <svg> element (no XML prolog, no DTD, no metadata)."""
    FigureCanvasAgg(figure)
    buffer = io.StringIO()
    # A fixed salt keeps element ids stable, so the same data gives the same file.
    with matplotlib.rc_context({"svg.hashsalt": "opsready", "svg.fonttype": "path"}):
        figure.savefig(buffer, format="svg", metadata=_NO_METADATA)
    svg = buffer.getvalue()
    return f"<figure>{svg[svg.index('<svg') :]}</figure>"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M %Z").strip()


def _e(text: str) -> str:
    return html.escape(text, quote=True)
