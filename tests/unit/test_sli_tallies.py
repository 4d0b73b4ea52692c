"""Per-run tallies as threshold marks, sums over runs from counts of marks, and the search
attributes a run writes for SLIs (workflows/sli_types.py, workflows/visibility.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workflows import contract, visibility
from workflows.sli_types import (
    TALLY_LADDER,
    Tally,
    ladder_sum,
    tally_mark,
    tally_marks,
    tally_value,
)
from workflows.types import (
    AgentRunRequest,
    AgentRunState,
    ConfigSummary,
    FlagEvaluation,
    RunStatus,
    SafetyEvent,
    ToolCallRecord,
    ToolDecision,
)

START = datetime(2030, 1, 1, tzinfo=UTC)


def sum_from_counts(values: list[int], tally: Tally = Tally.TOOL_CALLS) -> int:
    """What the SLI source computes: per ladder threshold, how many runs' marks reach it."""
    marks = [tally_marks({tally: value}) for value in values]
    reaching = [sum(1 for m in marks if tally_mark(tally, t) in m) for t in TALLY_LADDER]
    return ladder_sum(reaching)


def test_sums_from_mark_counts_are_exact_up_to_ten_per_run() -> None:
    values = [0, 1, 1, 2, 3, 7, 10, 10]
    assert sum_from_counts(values) == sum(values)


def test_sums_above_ten_round_down_to_the_ladder() -> None:
    assert sum_from_counts([12, 15, 100]) == 127
    assert sum_from_counts([13]) == 12  # between 12 and 15: counted as 12
    assert sum_from_counts([250]) == 100  # the ladder stops at 100


def test_a_run_reads_back_its_tally_from_its_marks() -> None:
    marks = tally_marks({Tally.TOOL_CALLS: 4, Tally.TOOL_ERRORS: 1, Tally.SAFETY_EVENTS: 0})
    assert marks == [
        "tool_calls>=1",
        "tool_calls>=2",
        "tool_calls>=3",
        "tool_calls>=4",
        "tool_errors>=1",
    ]
    assert tally_value(marks, Tally.TOOL_CALLS) == 4
    assert tally_value(marks, Tally.SAFETY_EVENTS) == 0


def test_marks_stay_small_whatever_the_tallies() -> None:
    marks = tally_marks(dict.fromkeys(Tally, 10_000))
    assert len(marks) == len(Tally) * len(TALLY_LADDER)
    assert len(str(marks)) < 1500  # visibility refuses a value over 2 KB


def call(decision: ToolDecision, *, ok: bool = True, error: str | None = None) -> ToolCallRecord:
    return ToolCallRecord(step=1, call_id="c", tool="t", decision=decision, ok=ok, error=error)


@pytest.mark.parametrize(
    ("record", "is_timeout"),
    [
        (call("failed", ok=False, error="tool timed out: activity StartToClose timeout"), True),
        (call("failed", ok=False, error="tool failed: activity timeout"), False),
        # A tool that answered with its own error mentioning a timeout is an error.
        (call("executed", ok=False, error="upstream timeout"), False),
    ],
)
def test_timeouts_are_activities_that_timed_out_for_good(
    record: ToolCallRecord, is_timeout: bool
) -> None:
    assert visibility.is_timeout(record) is is_timeout


def ended_state() -> AgentRunState:
    return AgentRunState(
        agent="a",
        status=RunStatus.COMPLETED,
        started_at=START,
        config=ConfigSummary(
            agent_version="1",
            prompt_version="v1",
            model="local/x",
            variant="control",
            config_hash="h",
            build_id="b7",
            flags=[
                FlagEvaluation(key="agent-variant", variation=1, reason="FALLTHROUGH"),
                FlagEvaluation(key="model", reason="ERROR", error="FLAG_NOT_FOUND"),
            ],
        ),
        tool_calls=[
            call("executed"),
            call("executed", ok=False, error="invalid arguments"),
            call("failed", ok=False, error="tool timed out: activity StartToClose timeout"),
            call("denied", ok=False, error="refused"),  # never ran: not a call
        ],
        safety_events=[SafetyEvent(kind="tool_refused", step=1, detail="d", at=START)],
    )


def test_an_ended_run_writes_tallies_flags_build_and_latency() -> None:
    state = ended_state()
    updates = visibility.search_attribute_updates(
        AgentRunRequest(agent="a", input="x"), state, now=START + timedelta(seconds=42.5)
    )
    written = {update.key.name: update.value for update in updates}
    assert visibility.tallies(state) == {
        Tally.TOOL_CALLS: 3,
        Tally.TOOL_ERRORS: 1,
        Tally.TOOL_TIMEOUTS: 1,
        Tally.SAFETY_EVENTS: 1,
    }
    assert written[contract.AGENT_TALLIES.name] == [
        "tool_calls>=1",
        "tool_calls>=2",
        "tool_calls>=3",
        "tool_errors>=1",
        "tool_timeouts>=1",
        "safety_events>=1",
    ]
    assert written[contract.AGENT_FLAG_VARIATIONS.name] == ["agent-variant", "agent-variant=1"]
    assert written[contract.AGENT_BUILD_ID.name] == "b7"
    assert written[contract.AGENT_LATENCY_SECONDS.name] == 42.5


def test_a_running_run_has_no_latency_yet() -> None:
    state = ended_state().model_copy(update={"status": RunStatus.RUNNING})
    updates = visibility.search_attribute_updates(
        AgentRunRequest(agent="a", input="x"), state, now=START + timedelta(seconds=5)
    )
    assert contract.AGENT_LATENCY_SECONDS.name not in {u.key.name for u in updates}
