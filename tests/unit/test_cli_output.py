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


TRANSPORT_ERRORS = {
    "connection refused": 'Failed client connect: Server connection error: tonic::transport::Error(Transport, ConnectError(ConnectError("tcp connect error", 127.0.0.1:1, Os { code: 111, kind: ConnectionRefused, message: "Connection refused" })))',
    "failed to lookup address information: name or service not known": 'Failed client connect: Server connection error: tonic::transport::Error(Transport, ConnectError(ConnectError("dns error", Custom { kind: Uncategorized, error: "failed to lookup address information: Name or service not known" })))',
    "tcp connect error": 'Failed client connect: Server connection error: tonic::transport::Error(Transport, ConnectError(ConnectError("tcp connect error", 10.0.0.1:7233)))',
}


def test_cannot_reach_temporal_gives_the_transport_reason_in_whole_words() -> None:
    from opsready.connection import connect_failure

    for reason, raw in TRANSPORT_ERRORS.items():
        assert connect_failure(raw) == reason
    long = "Failed client connect: " + "unauthorized token rejected " * 20
    said = connect_failure(long)
    assert said.endswith(" ...") and len(said) <= 160
    assert set(said.removesuffix(" ...").split()) == {"unauthorized", "token", "rejected"}


def test_a_retried_call_shows_its_attempt_last_error_and_next_try() -> None:
    from opsready.run_workers import PendingCall
    from starters.render import state_text
    from workflows.types import AgentRunState

    call = PendingCall(
        activity="opsready.model.chat",
        what="model call",
        state="scheduled",
        attempt=3,
        last_error="429 Too Many Requests:\n  slow down",
        next_attempt_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    text = state_text("r-1", AgentRunState(agent="a", step=1), [call])
    assert (
        "retrying  model call, attempt 3; last error: 429 Too Many Requests: slow down; "
        "next attempt at 03:04:05Z"
    ) in text.splitlines()


def test_printed_commands_are_shell_quoted() -> None:
    from starters.render import decide_commands
    from workflows.types import PendingApproval, RiskTier

    pending = PendingApproval(
        request_id="it's",
        step=1,
        call_id="c",
        tool="refund_order",
        arguments={},
        risk_tier=RiskTier.WRITE,
        reason="r",
        requested_at=datetime(2026, 1, 2, tzinfo=UTC),
    )
    approve, _ = decide_commands("run one", pending)
    assert approve == "opsready approve 'run one' --request-id 'it'\"'\"'s' --as NAME"


def test_a_tool_call_line_says_awaiting_approval_or_in_progress_for_old_and_new_runs() -> None:
    from starters.render import state_text
    from workflows.types import (
        AgentRunState,
        PendingApproval,
        RiskTier,
        RunStatus,
        ToolCallRecord,
        ToolDecision,
    )

    pending = PendingApproval(
        request_id="q-1",
        step=2,
        call_id="c-refund",
        tool="refund_order",
        arguments={},
        risk_tier=RiskTier.WRITE,
        reason="over the threshold",
        requested_at=datetime(2026, 1, 2, tzinfo=UTC),
    )

    def tool_line(decision: ToolDecision, call_id: str) -> str:
        call = ToolCallRecord(step=2, call_id=call_id, tool="t", decision=decision)
        state = AgentRunState(
            agent="a",
            step=2,
            status=RunStatus.AWAITING_APPROVAL,
            tool_calls=[call],
            pending_approvals=[pending],
        )
        return next(line for line in state_text("r", state).splitlines() if line.startswith("tool"))

    # "invalid" is what runs recorded before the hardened AgentRun show until the gate decides.
    for decision in ("awaiting_approval", "invalid"):
        assert tool_line(decision, "c-refund").endswith("{} awaiting approval")
    for decision in ("running", "invalid"):
        assert tool_line(decision, "c-other").endswith("{} in progress")
    assert tool_line("executed", "c-other").endswith("executed: not run")


def test_status_masks_what_the_controls_record_like_every_other_safety_detail() -> None:
    from starters.render import redacted
    from workflows.types import AgentRunState, FallbackRecord, RunStatus, SafetyEvent

    key, card = "sk-live-4f9a8b7c6d5e4f3a2b1c", "4111 1111 1111 1111"
    at = datetime(2026, 1, 2, tzinfo=UTC)
    state = AgentRunState(
        agent="a",
        status=RunStatus.RUNNING,
        safety_events=[
            SafetyEvent(
                kind="quota_exceeded", step=1, detail=f"tenant {key}", at=at, action="refused"
            ),
            SafetyEvent(kind="pii", step=1, detail=f"input card {card}", at=at, action="masked"),
        ],
        fallbacks=[
            FallbackRecord(
                step=1, from_model="p/a", to_model="p/b", reason=f"401 bad key {key}", at=at
            )
        ],
    )
    shown = redacted(state).model_dump_json()
    assert key not in shown and card not in shown
    assert [e.action for e in redacted(state).safety_events] == ["refused", "masked"]
    assert redacted(state).fallbacks[0].to_model == "p/b"  # names stay readable
