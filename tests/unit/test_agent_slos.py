"""An agent's SLOs and alert triggers as part of its definition: in its TOML, in
`<agent>.slo.toml` beside it, or the defaults; bad ones are refused at load in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsready.agents import agent_slos, list_agents, load_agent
from opsready.errors import ConfigError
from opsready.slo import default_slos
from tests.conftest import write_agent
from workflows.slo_types import AlertPolicy, SloKind

AGENT = """
name = "helper"
version = "1.0.0"
model = "local/support-triage"
prompt_version = "v1"
[prompts.v1]
system = "Be helpful."
"""


def test_an_agent_without_slos_or_alerts_gets_the_defaults(tmp_path: Path) -> None:
    write_agent(tmp_path, "helper", AGENT)
    definition, slos = agent_slos(tmp_path, "helper")
    assert slos == default_slos()
    assert definition.alerts == AlertPolicy()


def test_slos_and_alerts_in_the_agent_file(tmp_path: Path) -> None:
    write_agent(
        tmp_path,
        "helper",
        AGENT
        + """
[slo.fast]
kind = "latency"
objective = 0.9
threshold_seconds = 30

[alerts]
cost_usd_per_hour = 2.5
safety_events_per_run = 0  # off
[alerts.signals]
min_runs = 50
""",
    )
    definition, slos = agent_slos(tmp_path, "helper")
    assert [(s.name, s.kind, s.threshold_seconds) for s in slos] == [("fast", SloKind.LATENCY, 30)]
    assert definition.alerts.cost_usd_per_hour == 2.5
    assert definition.alerts.safety_events_per_run == 0
    assert definition.alerts.signals.min_runs == 50


def test_slos_beside_the_agent_are_its_slos_and_not_an_agent(tmp_path: Path) -> None:
    write_agent(tmp_path, "helper", AGENT)
    (tmp_path / "helper.slo.toml").write_text(
        '[slo.success]\nkind = "task_success"\nobjective = 0.999\n'
    )
    assert list_agents(tmp_path) == ["helper"]
    _, slos = agent_slos(tmp_path, "helper")
    assert [(s.name, s.objective) for s in slos] == [("success", 0.999)]


@pytest.mark.parametrize(
    ("extra", "where", "fix"),
    [
        ('[slo.ok]\nkind = "task_sucess"\nobjective = 0.9\n', "slo.ok.kind", "did you mean"),
        ('[slo.ok]\nkind = "latency"\nobjective = 0.9\n', "slo.ok.threshold_seconds", "needs"),
        ('[slo.ok]\nkind = "task_success"\nobjective = 9\n', "slo.ok.objective", "between 0"),
        ("[alerts]\ncost_usd_per_hour = -1\n", "alerts.cost_usd_per_hour", "greater than"),
        ("[alerts]\nwindow = 5\n", "alerts.window", "unknown field"),
    ],
)
def test_a_malformed_slo_or_alert_refuses_the_agent_in_one_line(
    tmp_path: Path, extra: str, where: str, fix: str
) -> None:
    write_agent(tmp_path, "helper", AGENT + extra)
    with pytest.raises(ConfigError) as caught:
        load_agent(tmp_path, "helper")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(tmp_path / "helper.toml"))
    assert where in message and fix in message


def test_a_malformed_file_beside_is_named(tmp_path: Path) -> None:
    write_agent(tmp_path, "helper", AGENT)
    beside = tmp_path / "helper.slo.toml"
    beside.write_text('[slo.ok]\nkind = "task_success"\nobjective = "high"\n')
    with pytest.raises(ConfigError, match=rf"^{beside}: slo.ok.objective: "):
        load_agent(tmp_path, "helper")
