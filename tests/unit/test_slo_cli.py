"""`opsready slo` and `opsready agents slos` without a server: bad input gets one line and
exit 2 before anything connects; rules and SLO tables print what the definitions say."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from opsready.slo import load_agent_slos, rules_yaml
from opsready.slo.schedule import MonitorState, RecentPass
from opsready.slo.status import PairBurn, SloStatus
from starters.cli import main
from starters.slo_cli import monitor_text, status_table
from tests.conftest import write_agent
from workflows.slo_monitor_types import SloMonitorReport
from workflows.slo_types import DEFAULT_BURN_POLICY, ErrorBudget, SliCounts, Slo, SloKind

AGENT = """
name = "helper"
version = "1.0.0"
model = "local/support-triage"
prompt_version = "v1"
[prompts.v1]
system = "Be helpful."
[slo.fast]
kind = "latency"
objective = 0.9
threshold_seconds = 30
"""
NOWHERE = "127.0.0.1:1"  # nothing listens: a command that connected would fail with exit 4


@pytest.fixture
def agents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write_agent(tmp_path / "agents", "helper", AGENT)
    monkeypatch.setenv("OPSREADY_AGENTS_DIR", str(tmp_path / "agents"))
    return tmp_path / "agents"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("slo", "status", "--agent", "nope"), "unknown agent 'nope'"),
        (("slo", "report", "--agent", "helper", "--html", "r.html", "--days", "0"), "--days"),
        (("slo", "report", "--agent", "helper", "--html", "r.html", "--points", "1"), "--points"),
        (("slo", "report", "--agent", "nope", "--html", "r.html"), "unknown agent"),
        (("slo", "monitor", "start", "--every", "5s"), "at least 10s"),
        (("slo", "monitor", "start", "--every", "soon"), "not a duration"),
        (("slo", "monitor", "start", "--agent", "nope"), "unknown agent 'nope'"),
        (("agents", "slos", "nope"), "unknown agent 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_connecting(
    agents: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], fragment: str
) -> None:
    code, out, err = run(capsys, "--address", NOWHERE, *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("opsready: error: ") and fragment in err


def test_a_malformed_slo_is_refused_naming_file_and_field(
    agents: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (agents / "helper.toml").write_text(AGENT.replace("threshold_seconds = 30", ""))
    code, _, err = run(capsys, "agents", "slos")
    assert code == 2
    assert err.strip() == (
        f"opsready: error: {agents / 'helper.toml'}: slo.fast.threshold_seconds: a latency "
        "SLO needs it (e.g. threshold_seconds = 120)"
    )


def test_rules_are_the_generators_output_on_stdout_or_in_a_file(
    agents: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    expected = rules_yaml(load_agent_slos(agents))
    assert "opsready-slo-helper" in expected
    assert run(capsys, "slo", "rules") == (0, expected, "")
    out_file = tmp_path / "rules" / "opsready.yml"
    code, out, _ = run(capsys, "slo", "rules", "--out", str(out_file))
    assert code == 0 and out_file.read_text() == expected and str(out_file) in out


def test_agents_slos_shows_each_slo_and_the_triggers(
    agents: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "agents", "slos")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "helper"
    assert lines[2].split() == ["fast", "latency", "90.00%", "30d", "<=", "30", "s"]
    assert lines[3].startswith("incident triggers over the last 30 min: cost >= $10/h")
    code, out, _ = run(capsys, "agents", "slos", "helper", "--json")
    assert json.loads(out)["helper"]["slos"][0]["threshold_seconds"] == 30


def test_status_table_marks_the_pair_that_alerts() -> None:
    slo = Slo(name="success", kind=SloKind.TASK_SUCCESS, objective=0.95)
    burns = [
        PairBurn(window=pair, long_rate=rate, short_rate=rate, is_alerting=rate >= pair.factor)
        for pair, rate in zip(DEFAULT_BURN_POLICY, (20.0, 20.0, 20.0), strict=True)
    ]
    status = SloStatus(
        agent="helper",
        slo=slo,
        budget=ErrorBudget.of(0.95, SliCounts(good=90, total=100)),
        burns=burns,
    )
    row = status_table([status]).splitlines()[1].split()
    assert row[:6] == ["helper", "success", "task_success", "95.00%/30d", "100", "-100.0%"]
    assert row[6:] == ["20.0x/20.0x", "PAGE", "20.0x/20.0x", "PAGE", "20.0x/20.0x", "TICKET"]


def test_monitor_status_says_whether_it_runs_and_what_passes_found() -> None:
    assert "not started" in monitor_text(MonitorState(exists=False))
    at = datetime(2030, 1, 1, 12, tzinfo=UTC)
    state = MonitorState(
        exists=True,
        paused=True,
        note="maintenance",
        every_seconds=60,
        task_queue="q",
        next_runs=[at + timedelta(minutes=1)],
        recent=[
            RecentPass(
                workflow_id="slo-monitor-1",
                started_at=at,
                status="completed",
                report=SloMonitorReport(as_of=at, requested=["a:slo:success"]),
            )
        ],
    )
    text = monitor_text(state)
    assert text.splitlines()[0].startswith("SLO monitor: PAUSED (every 60s, every agent")
    assert "note: maintenance" in text and "next pass" not in text
    assert "slo-monitor-1 completed: 0 alerts, 1 incidents asked for" in text
