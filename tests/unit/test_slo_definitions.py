"""SLO definitions from an agent's TOML or the file beside it, the defaults, and one-line
errors that name the file, the field and the fix."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from opsready.errors import ConfigError
from opsready.slo import default_slos, load_agent_slos, load_slos
from workflows.slo_types import SloKind

SOURCE = Path("agents/x.toml")


def agent(toml: str) -> dict:
    return tomllib.loads(toml)


def error_of(toml: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_slos(agent(toml), source=SOURCE, beside=None)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_agent_without_slos_gets_the_defaults() -> None:
    slos = load_slos(agent('name = "x"'), source=SOURCE, beside=None)
    assert slos == default_slos()
    by_kind = {slo.kind: slo for slo in slos}
    assert set(by_kind) == set(SloKind)
    assert by_kind[SloKind.TASK_SUCCESS].objective == 0.95
    assert by_kind[SloKind.TASK_SUCCESS].window_days == 30
    assert by_kind[SloKind.LATENCY].threshold_seconds == 120
    assert by_kind[SloKind.COST_PER_SUCCESS].threshold_usd == 0.05
    assert by_kind[SloKind.TOOL_ERROR_RATE].objective == 0.99
    assert by_kind[SloKind.TOOL_TIMEOUT_RATE].objective == 0.995
    assert by_kind[SloKind.SAFETY_EVENT_RATE].objective == 0.99
    assert load_slos(None, source=SOURCE, beside=None) == default_slos()


def test_declared_slos_replace_the_defaults_in_file_order() -> None:
    slos = load_slos(
        agent(
            """
            [slo.fast]
            kind = "latency"
            objective = 0.9
            threshold_seconds = 30
            window_days = 7

            [slo.success]
            kind = "task_success"
            objective = 0.99
            """
        ),
        source=SOURCE,
        beside=None,
    )
    assert [(s.name, s.kind, s.objective, s.window_days) for s in slos] == [
        ("fast", SloKind.LATENCY, 0.9, 7),
        ("success", SloKind.TASK_SUCCESS, 0.99, 30),
    ]
    assert slos[0].threshold_seconds == 30


def test_slos_may_live_in_a_file_beside_the_agent(tmp_path: Path) -> None:
    beside = tmp_path / "x.slo.toml"
    beside.write_text(
        '[slo.cheap]\nkind = "cost_per_success"\nobjective = 0.9\nthreshold_usd = 0.1\n'
    )
    (slo,) = load_slos(agent('name = "x"'), source=SOURCE, beside=beside)
    assert (slo.name, slo.threshold_usd) == ("cheap", 0.1)
    assert load_slos(None, source=SOURCE, beside=tmp_path / "absent.slo.toml") == default_slos()


def test_slos_in_both_places_are_refused(tmp_path: Path) -> None:
    beside = tmp_path / "x.slo.toml"
    beside.write_text('[slo.a]\nkind = "task_success"\nobjective = 0.9\n')
    inline = agent('[slo.b]\nkind = "task_success"\nobjective = 0.9\n')
    with pytest.raises(ConfigError, match="keep SLOs in one of the two"):
        load_slos(inline, source=SOURCE, beside=beside)


def test_errors_in_the_file_beside_name_that_file(tmp_path: Path) -> None:
    beside = tmp_path / "x.slo.toml"
    beside.write_text('[slo.a]\nkind = "task_success"\nobjective = 2\n')
    with pytest.raises(ConfigError) as caught:
        load_slos(None, source=SOURCE, beside=beside)
    assert str(caught.value) == f"{beside}: slo.a.objective: must be between 0 and 1 (e.g. 0.95)"
    beside.write_text("[slo.a\n")
    with pytest.raises(ConfigError, match=r"x\.slo\.toml: not valid TOML"):
        load_slos(None, source=SOURCE, beside=beside)
    beside.write_text('[slos.a]\nkind = "task_success"\n')
    with pytest.raises(ConfigError, match=r"x\.slo\.toml: slos: unknown field"):
        load_slos(None, source=SOURCE, beside=beside)


@pytest.mark.parametrize(
    ("table", "expected"),
    [
        (
            'kind = "task_success"\nobjective = 1.5',
            "agents/x.toml: slo.s.objective: must be between 0 and 1 (e.g. 0.95)",
        ),
        (
            'kind = "task_success"\nobjective = 0',
            "agents/x.toml: slo.s.objective: must be between 0 and 1 (e.g. 0.95)",
        ),
        (
            'kind = "task_success"\nobjective = "high"',
            "agents/x.toml: slo.s.objective: must be between 0 and 1 (e.g. 0.95)",
        ),
        (
            'kind = "task_success"\nobjective = true',
            "agents/x.toml: slo.s.objective: must be between 0 and 1 (e.g. 0.95)",
        ),
        (
            'kind = "task_success"',
            "agents/x.toml: slo.s.objective: missing: must be between 0 and 1 (e.g. 0.95)",
        ),
        (
            "objective = 0.9",
            "agents/x.toml: slo.s.kind: missing: one of task_success, latency, cost_per_success,"
            " tool_error_rate, tool_timeout_rate, safety_event_rate",
        ),
        (
            'kind = "latency"\nobjective = 0.9',
            "agents/x.toml: slo.s.threshold_seconds: a latency SLO needs it"
            " (e.g. threshold_seconds = 120)",
        ),
        (
            'kind = "latency"\nobjective = 0.9\nthreshold_seconds = -1',
            "agents/x.toml: slo.s.threshold_seconds: must be greater than 0 (e.g. 120)",
        ),
        (
            'kind = "latency"\nobjective = 0.9\nthreshold_seconds = "2m"',
            "agents/x.toml: slo.s.threshold_seconds: must be a number of seconds greater than 0"
            " (e.g. 120)",
        ),
        (
            'kind = "cost_per_success"\nobjective = 0.9',
            "agents/x.toml: slo.s.threshold_usd: a cost_per_success SLO needs it"
            " (e.g. threshold_usd = 0.05)",
        ),
        (
            'kind = "cost_per_success"\nobjective = 0.9\nthreshold_usd = 0',
            "agents/x.toml: slo.s.threshold_usd: must be greater than 0 (e.g. 0.05)",
        ),
        (
            'kind = "task_success"\nobjective = 0.9\nthreshold_usd = 0.05',
            "agents/x.toml: slo.s.threshold_usd: only cost_per_success SLOs take it: remove it",
        ),
        (
            'kind = "task_success"\nobjective = 0.9\nthreshold_seconds = 5',
            "agents/x.toml: slo.s.threshold_seconds: only latency SLOs take it: remove it",
        ),
        (
            'kind = "task_success"\nobjective = 0.9\nwindow_days = 0',
            "agents/x.toml: slo.s.window_days: must be a whole number of days from 1 to 90"
            " (e.g. 30)",
        ),
        (
            'kind = "task_success"\nobjective = 0.9\nwindow_days = 7.5',
            "agents/x.toml: slo.s.window_days: must be a whole number of days from 1 to 90"
            " (e.g. 30)",
        ),
        (
            'kind = "task_sucess"\nobjective = 0.9',
            "agents/x.toml: slo.s.kind: unknown kind 'task_sucess' (did you mean 'task_success'?):"
            " one of task_success, latency, cost_per_success, tool_error_rate, tool_timeout_rate,"
            " safety_event_rate",
        ),
        (
            'kind = "task_success"\nobjectve = 0.9',
            "agents/x.toml: slo.s.objectve: unknown field: did you mean 'objective'? (allowed:"
            " kind, objective, window_days, threshold_seconds, threshold_usd)",
        ),
    ],
)
def test_every_malformed_field_gives_one_line_naming_file_field_and_fix(
    table: str, expected: str
) -> None:
    assert error_of(f"[slo.s]\n{table}\n") == expected


def test_malformed_tables_and_names_are_named_too() -> None:
    assert error_of("slo = 3") == (
        "agents/x.toml: slo: must be a table of SLOs (e.g. [slo.success] kind = ...)"
    )
    assert error_of("[slo]\ns = 1") == (
        'agents/x.toml: slo.s: must be a table (e.g. [slo.s] kind = "task_success")'
    )
    assert error_of('[slo."Big Name"]\nkind = "task_success"\nobjective = 0.9') == (
        "agents/x.toml: slo.Big Name: use lowercase letters, digits, '-' and '_'"
        " (e.g. [slo.success])"
    )


def test_every_agent_in_a_directory_gets_its_slos(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('name = "a"\n')
    (tmp_path / "b.toml").write_text('name = "b"\n')
    (tmp_path / "b.slo.toml").write_text('[slo.s]\nkind = "task_success"\nobjective = 0.9\n')
    (tmp_path / "pricing.toml").write_text("[models]\n")
    slos = load_agent_slos(tmp_path)
    assert sorted(slos) == ["a", "b"]
    assert slos["a"] == default_slos()
    assert [s.name for s in slos["b"]] == ["s"]
