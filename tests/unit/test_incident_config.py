"""Incident configuration files: shipped defaults load, each malformed field is one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsready.errors import ConfigError
from opsready.incidents.config import (
    load_incident_config,
    load_oncall,
    load_runbooks,
    load_severity_matrix,
)
from opsready.settings import PROJECT_ROOT
from workflows.incident_config_types import OnCallRota, SeverityMatrix
from workflows.incident_types import Severity

RUNBOOK_HEAD = '[runbooks.rb]\nversion = "1"\n'
STEP = '[[runbooks.rb.steps]]\nid = "s"\naction = "pause_agent"\ntarget = "agent:a"\n'


def test_shipped_files_load_and_the_matrix_equals_the_built_in_default() -> None:
    config = load_incident_config(PROJECT_ROOT / "agents")
    assert config.matrix == SeverityMatrix()
    [runbook] = config.runbooks
    assert (runbook.name, runbook.agent) == ("support-triage", "support-triage")
    assert runbook.is_automatic("safety_rate", Severity.SEV1)
    assert config.oncall.rota_for("support-triage").owner == "support-tooling"


def test_missing_files_mean_the_built_in_defaults(tmp_path: Path) -> None:
    config = load_incident_config(tmp_path)
    assert config.matrix == SeverityMatrix()
    assert config.runbooks == []
    assert config.oncall.rota_for("any") == OnCallRota()


def test_an_agent_without_its_own_rota_gets_the_default(tmp_path: Path) -> None:
    path = tmp_path / "oncall.toml"
    path.write_text(
        '[oncall]\nowner = "ops"\ntiers = [["a"], ["b"]]\n'
        '[oncall.agents.billing]\nowner = "billing"\ntiers = [["c"]]\n'
    )
    oncall = load_oncall(path)
    assert oncall.rota_for("billing").tiers == [["c"]]
    assert oncall.rota_for("support-triage") == OnCallRota(owner="ops", tiers=[["a"], ["b"]])


SEVERITY_ERRORS = [
    (
        '[[rules]]\nseverity = "SEV1"\nis_safety = true\n' * 2
        + '[[rules]]\nseverity = "SEV5"\nis_safety = true\n',
        "rules[2].severity: unknown severity 'SEV5' (one of SEV1..SEV4)",
    ),
    (
        'default_severity = "sev2"\n',
        "default_severity: unknown severity 'sev2' (one of SEV1..SEV4)",
    ),
    (
        '[[rules]]\nseverity = "SEV2"\nmin_user_impact = "lots"\n',
        "rules[0].min_user_impact: unknown value 'lots' (one of 'none', 'some' or 'many')",
    ),
    (
        '[[rules]]\nseverity = "SEV2"\n',
        "rules[0]: a rule needs a condition (is_safety, min_user_impact, min_cost_usd_per_hour "
        "or trigger_kinds); set default_severity for the catch-all",
    ),
    (
        '[[rules]]\nseverity = "SEV2"\nmin_cost_usd_per_hour = -1\n',
        "rules[0].min_cost_usd_per_hour: input should be greater than or equal to 0, got -1",
    ),
    (
        '[[rules]]\nseverity = "SEV2"\nis_safety = "maybe"\n',
        "rules[0].is_safety: input should be a valid boolean, unable to interpret input, got 'maybe'",
    ),
    (
        "[levels.SEV1]\nack_deadline_seconds = 0\n",
        "levels.SEV1.ack_deadline_seconds: input should be greater than 0, got 0",
    ),
    (
        "[levels.SEV5]\nack_deadline_seconds = 60\nescalation_tiers = 1\n",
        "levels.SEV5: unknown severity 'SEV5' (one of SEV1..SEV4)",
    ),
    (
        "[levels.SEV2]\nescalation_tiers = 0\n",
        "levels.SEV2.escalation_tiers: input should be greater than or equal to 1, got 0",
    ),
    (
        "[levels.SEV2]\nack_deadline = 60\n",
        "levels.SEV2.ack_deadline: unknown field: remove it or fix its spelling "
        "(see agents/incidents/README.md)",
    ),
    (
        '[[rules]]\nseverity = "SEV2"\ntrigger_kinds = ["slo"]\n',
        "rules[0].trigger_kinds[0]: unknown value 'slo' (one of 'slo_burn', 'signal', "
        "'cost_rate', 'safety_rate', 'tool_failure_rate' or 'manual')",
    ),
]


@pytest.mark.parametrize(("text", "message"), SEVERITY_ERRORS)
def test_malformed_severity_field_is_refused_with_one_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "severity.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_severity_matrix(path)
    assert str(caught.value) == f"{path}: {message}"


RUNBOOK_ERRORS = [
    (RUNBOOK_HEAD, "runbooks.rb.steps: required: add it"),
    (
        RUNBOOK_HEAD + STEP.replace("pause_agent", "reboot"),
        "runbooks.rb.steps[0].action: unknown value 'reboot' (one of 'engage_kill_switch', "
        "'rollback_flag', 'rollback_deployment', 'switch_fallback_model', 'pause_agent' or "
        "'drain_task_queue')",
    ),
    (
        RUNBOOK_HEAD + STEP.replace("agent:a", "queue:q"),
        "runbooks.rb.steps[0]: pause_agent targets agent:NAME, got 'queue:q'",
    ),
    (
        RUNBOOK_HEAD + STEP + STEP,
        "runbooks.rb: step id 's' is used twice: give each step its own id",
    ),
    (
        RUNBOOK_HEAD + 'automatic_on = [{ trigger = "slo_burn", severity = "SEV0" }]\n' + STEP,
        "runbooks.rb.automatic_on[0].severity: unknown severity 'SEV0' (one of SEV1..SEV4)",
    ),
    (
        RUNBOOK_HEAD.replace('version = "1"\n', "") + STEP,
        "runbooks.rb.version: required: add it",
    ),
    (
        RUNBOOK_HEAD + STEP + "risky = true\n",
        "runbooks.rb.steps[0].risky: unknown field: remove it or fix its spelling "
        "(see agents/incidents/README.md)",
    ),
    (
        RUNBOOK_HEAD + 'name = "other"\n' + STEP,
        "runbooks.rb.name: 'other' differs from the table name 'rb': drop `name` or make them "
        "equal",
    ),
    (
        "[runbook.rb]\n",
        "runbook: unknown field: remove it or fix its spelling (see agents/incidents/README.md)",
    ),
]


@pytest.mark.parametrize(("text", "message"), RUNBOOK_ERRORS)
def test_malformed_runbook_field_is_refused_with_one_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "runbooks.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_runbooks(path)
    assert str(caught.value) == f"{path}: {message}"


ONCALL_ERRORS = [
    ('[oncall]\nowner = ""\n', "oncall.owner: string should have at least 1 character, got ''"),
    (
        "[oncall]\ntiers = []\n",
        "oncall.tiers: list should have at least 1 item after validation, not 0, got []",
    ),
    ('[oncall]\ntiers = [["a"], []]\n', "oncall: tiers[1] needs at least one non-empty target"),
    ('[oncall]\ntiers = "a"\n', "oncall.tiers: input should be a valid list, got 'a'"),
    (
        '[oncall.agents.billing]\nowner = "b"\ntiers = [[""]]\n',
        "oncall.agents.billing: tiers[0] needs at least one non-empty target",
    ),
]


@pytest.mark.parametrize(("text", "message"), ONCALL_ERRORS)
def test_malformed_oncall_field_is_refused_with_one_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "oncall.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_oncall(path)
    assert str(caught.value) == f"{path}: {message}"


def test_invalid_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "severity.toml"
    path.write_text('default_severity = "SEV2\n')
    with pytest.raises(ConfigError, match=r"severity\.toml: not valid TOML: .*line 1"):
        load_severity_matrix(path)


def test_every_error_is_a_single_line(tmp_path: Path) -> None:
    path = tmp_path / "severity.toml"
    for text, _ in SEVERITY_ERRORS:
        path.write_text(text)
        with pytest.raises(ConfigError) as caught:
            load_severity_matrix(path)
        assert "\n" not in str(caught.value)
