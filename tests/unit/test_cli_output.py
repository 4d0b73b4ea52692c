"""The CLI's tables fit the terminal without cutting what the next command needs, and
keep every value whole on a pipe."""

from __future__ import annotations

from datetime import UTC, datetime

from opsready.runs import RunSummary
from starters.render import runs_table

LONG_ID = "support-triage-" + "r" * 40


def summary(run_id: str, agent: str = "support-triage") -> RunSummary:
    return RunSummary(
        run_id=run_id,
        agent=agent,
        status="awaiting_approval",
        user=None,
        tenant=None,
        cost_usd=0.000428,
        tokens=2216,
        started_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        closed_at=None,
    )


def test_a_narrow_terminal_cuts_the_agent_but_never_the_run_id() -> None:
    text = runs_table([summary(LONG_ID, agent="a-very-long-agent-name-indeed")], width=100)
    lines = text.splitlines()
    assert all(len(line) <= 100 for line in lines)
    assert lines[1].split()[0] == LONG_ID
    assert "a-very-long-agent-name-indeed" not in text


def test_on_a_pipe_every_value_is_whole() -> None:
    text = runs_table([summary(LONG_ID, agent="a-very-long-agent-name-indeed")])
    row = text.splitlines()[1].split()
    assert row[:3] == [LONG_ID, "a-very-long-agent-name-indeed", "awaiting_approval"]
    assert row[3:5] == ["2216", "0.000428"]


def test_the_id_column_is_as_wide_as_the_ids_not_a_fixed_44() -> None:
    header = runs_table([summary("r-1")]).splitlines()[0]
    assert header.startswith("run  agent")


def test_brackets_in_a_cell_are_text_not_markup() -> None:
    text = runs_table([summary("r-1", agent="[variants.v2]")])
    assert "[variants.v2]" in text
