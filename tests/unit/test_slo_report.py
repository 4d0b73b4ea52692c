"""The HTML SLO report is one self-contained file: inline SVG plots, nothing fetched."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from opsready.slo import default_slos
from opsready.slo.report import (
    BurnSeries,
    ReportIncident,
    SloReportData,
    SloSeries,
    TimePoint,
    write_html_report,
)
from workflows.slo_types import DEFAULT_BURN_POLICY

START = datetime(2026, 3, 1, tzinfo=UTC)
END = START + timedelta(days=7)
# What an SVG may name without fetching anything: its own XML namespaces.
NAMESPACES = {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}


def points(value: float, step: float) -> list[TimePoint]:
    return [
        TimePoint(at=START + timedelta(hours=h), value=value + step * h) for h in range(0, 168, 6)
    ]


def report_data() -> SloReportData:
    slos = [
        SloSeries(
            slo=slo,
            budget_remaining=points(1.0, -0.01),
            burn_rates=[
                BurnSeries(window=pair, points=points(0.5, 0.1)) for pair in DEFAULT_BURN_POLICY
            ],
        )
        for slo in default_slos()
    ]
    return SloReportData(
        agent="support-triage",
        start=START,
        end=END,
        generated_at=END,
        slos=slos,
        cost_per_success=points(0.01, 0.0001),
        incidents=[
            ReportIncident(
                title="refunds failing <db>",
                severity="sev1",
                opened_at=START + timedelta(days=2),
                resolved_at=START + timedelta(days=2, hours=4),
            ),
            ReportIncident(
                title="slow replies", severity="sev3", opened_at=START + timedelta(days=6)
            ),
        ],
    )


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("report") / "out" / "slo.html"
    return write_html_report(path, report_data()).read_text(encoding="utf-8")


def test_report_is_written_with_inline_svg_plots_and_every_slo(page: str) -> None:
    data = report_data()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count("<svg") == len(data.slos) + 1  # one per SLO, one for cost
    for series in data.slos:
        assert f"<h2>{series.slo.name} " in page
    assert "refunds failing &lt;db&gt;" in page  # escaped, not markup
    assert "sev1" in page and "open" in page


def test_report_references_nothing_outside_itself(page: str) -> None:
    urls = set(re.findall(r"https?://[^\s\"'<>)]+", page))
    assert urls <= NAMESPACES, urls - NAMESPACES
    for url in re.finditer(r"https?://", page):
        assert page[: url.start()].endswith(('xmlns="', 'xmlns:xlink="'))
    assert "<script" not in page and "<link" not in page and "@import" not in page
    assert not re.search(r"""(src|href)\s*=\s*["'](?!#)""", page)


def test_report_without_data_still_renders(tmp_path: Path) -> None:
    empty = SloReportData(agent="quiet", start=START, end=END, generated_at=END)
    page = write_html_report(tmp_path / "slo.html", empty).read_text()
    assert "SLO report: quiet" in page and "<svg" not in page
    series = SloSeries(slo=default_slos()[0])
    page = write_html_report(
        tmp_path / "slo.html", empty.model_copy(update={"slos": [series]})
    ).read_text()
    assert "no data" in page and page.count("<svg") == 1
