"""The generated Prometheus rules pass promtool's checks and its unit tests (a burn pages, a
blip does not), the shipped rules and dashboard are current and name only real series."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from opsready.settings import PROJECT_ROOT
from opsready.slo import default_slos, load_agent_slos, rules_yaml
from opsready.slo.prometheus import (
    BUDGET_REMAINING,
    BURN_RATE,
    COST_BUCKETS,
    ERROR_RATIO,
    EVENTS,
    EXPORTED_SERIES,
    RUN_DURATION_BUCKETS,
)
from opsready.telemetry import _SECONDS, _USD
from tests.slo_rule_tests import rule_tests_yaml
from workflows.slo_policy import windows_needed
from workflows.slo_types import Slo, SloKind, format_window

RULES_FILE = PROJECT_ROOT / "monitoring" / "prometheus" / "opsready-rules.yml"
DASHBOARD = PROJECT_ROOT / "monitoring" / "grafana" / "opsready-dashboard.json"


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool not found: CI must install it (apt-get install prometheus)")
        pytest.skip("promtool not found: apt-get install prometheus")
    return found


def run_promtool(promtool: str, *args: str, cwd: Path) -> str:
    done = subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def write_rules(tmp_path: Path, agent_slos: dict[str, list[Slo]]) -> None:
    (tmp_path / "rules.yml").write_text(rules_yaml(agent_slos))
    (tmp_path / "tests.yml").write_text(rule_tests_yaml("rules.yml", agent_slos))


def test_generated_rules_pass_promtool_check(promtool: str, tmp_path: Path) -> None:
    write_rules(tmp_path, {"support-triage": default_slos(), "other": default_slos()})
    out = run_promtool(promtool, "check", "rules", "rules.yml", cwd=tmp_path)
    assert "SUCCESS" in out


def test_promtool_unit_tests_page_on_a_burn_and_not_on_a_blip(
    promtool: str, tmp_path: Path
) -> None:
    strict = Slo(name="strict", kind=SloKind.TASK_SUCCESS, objective=0.99)
    write_rules(tmp_path, {"support-triage": default_slos(), "other": [strict]})
    tests = (tmp_path / "tests.yml").read_text()
    assert "severity: page" in tests  # the burn scenario expects a page
    assert tests.count("exp_alerts: []") >= 1  # and the blip expects silence
    run_promtool(promtool, "test", "rules", "tests.yml", cwd=tmp_path)


def test_promtool_unit_tests_fail_when_the_short_window_is_not_required(
    promtool: str, tmp_path: Path
) -> None:
    """The rule tests have teeth: drop the confirming window and the stale burn pages."""
    write_rules(tmp_path, {"support-triage": default_slos()})
    rules = tmp_path / "rules.yml"
    lines = rules.read_text().splitlines()
    rules.write_text("\n".join(line for line in lines if "and opsready:slo_burn_rate" not in line))
    done = subprocess.run(
        [promtool, "test", "rules", "tests.yml"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "no longer sees" in done.stdout + done.stderr


def test_latency_threshold_between_buckets_is_interpolated(promtool: str, tmp_path: Path) -> None:
    """120 s lies a quarter of the way from the 60 s to the 300 s bucket: of 10 runs a
    minute, 8 under 60 s and 10 under 300 s count as 8.5 good: an error ratio of 0.150.
    The 60 s bucket is written "60.0" as Prometheus 3 scrapes it; OTLP writes "300"."""
    (tmp_path / "rules.yml").write_text(rules_yaml({"a": default_slos()}))
    series = 'opsready_run_duration_seconds_{part}{{opsready_agent="a", status="completed"{le}}}'
    (tmp_path / "tests.yml").write_text(
        json.dumps(
            {
                "rule_files": ["rules.yml"],
                "evaluation_interval": "1m",
                "tests": [
                    {
                        "interval": "1m",
                        "input_series": [
                            {"series": series.format(part="count", le=""), "values": "0+10x120"},
                            {
                                "series": series.format(part="bucket", le=', le="60.0"'),
                                "values": "0+8x120",
                            },
                            {
                                "series": series.format(part="bucket", le=', le="300"'),
                                "values": "0+10x120",
                            },
                        ],
                        "promql_expr_test": [
                            {
                                # Rounded: promtool 2.42 compares floats exactly.
                                "expr": f"round({ERROR_RATIO.format(window='1h')}"
                                '{slo="latency"} * 1000)',
                                "eval_time": "120m",
                                "exp_samples": [
                                    {
                                        "labels": '{opsready_agent="a", slo="latency",'
                                        ' slo_kind="latency"}',
                                        "value": 150,
                                    }
                                ],
                            }
                        ],
                    }
                ],
            }
        )
    )
    run_promtool(promtool, "test", "rules", "tests.yml", cwd=tmp_path)


def test_checked_in_rules_equal_the_generator_output() -> None:
    expected = rules_yaml(load_agent_slos(PROJECT_ROOT / "agents"))
    assert RULES_FILE.read_text() == expected, (
        "monitoring/prometheus/opsready-rules.yml is stale: regenerate it with "
        "`.venv/bin/python -m opsready.slo > monitoring/prometheus/opsready-rules.yml`"
    )


def test_assumed_histogram_buckets_match_the_telemetry() -> None:
    assert list(RUN_DURATION_BUCKETS) == _SECONDS
    assert list(COST_BUCKETS) == _USD


def test_dashboard_is_valid_json_naming_only_metrics_that_exist() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "opsready"
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    recorded = {BUDGET_REMAINING} | {
        template.format(window=format_window(window))
        for template in (ERROR_RATIO, EVENTS, BURN_RATE)
        for window in windows_needed()
    }
    rules_text = RULES_FILE.read_text()
    assert all(f"record: {name}" in rules_text for name in recorded)
    named = set()
    for expr in exprs:
        # Drop label matchers and grouping clauses: what is left of ours are metric names.
        bare = re.sub(r"\b(by|without)\s*\([^)]*\)", "", re.sub(r"\{[^}]*\}", "{}", expr))
        named |= set(re.findall(r"\b(?:opsready|gen_ai)[a-zA-Z0-9_:]*", bare))
    agent_values = dashboard["templating"]["list"][1]["definition"]
    named |= set(re.findall(r"label_values\((\w+),", agent_values))
    assert len(named) >= 10, named
    assert named <= EXPORTED_SERIES | recorded, named - (EXPORTED_SERIES | recorded)
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for topic in ("status", "success", "burn", "latency", "cost", "tokens", "tool", "safety"):
        assert topic in titles
    assert "approval" in titles
