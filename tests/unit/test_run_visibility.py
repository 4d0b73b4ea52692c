"""What a run shows without anyone opening its history (workflows.visibility): the memo and
current details redacted by the one redactor, AgentUser pseudonymised."""

from __future__ import annotations

from datetime import UTC, datetime

from workflows import contract
from workflows.redaction import pseudonymous_user
from workflows.types import (
    AgentRunRequest,
    AgentRunState,
    PendingApproval,
    RiskTier,
    RunStatus,
    StopReason,
    Usage,
)
from workflows.visibility import (
    current_details,
    memo,
    search_attribute_updates,
    stop_reason_value,
)

EMAIL, CARD, KEY = "jane.doe@example.com", "4111 1111 1111 1111", "sk-live-abcdefghijklmnop1234"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_memo_redacts_the_answer_and_the_reason() -> None:
    state = AgentRunState(
        agent="a",
        status=RunStatus.FAILED,
        output=f"Wrote to {EMAIL}, charged {CARD}",
        reason=f"model call failed: HTTP 401 for key {KEY}",
        usage=Usage(input_tokens=5, output_tokens=6),
    )
    shown = memo(state)
    assert shown["output_preview"] == "Wrote to [EMAIL], charged [CARD]"
    assert KEY not in shown["reason"] and shown["tokens"] == 11


def test_current_details_redact_the_arguments_and_reason_of_a_pending_call() -> None:
    pending = PendingApproval(
        request_id="r-1",
        step=2,
        call_id="c",
        tool="refund_order",
        arguments={"order_id": "A-1", "note": f"card {CARD}", "password": "hunter2"},
        risk_tier=RiskTier.WRITE,
        reason=f"asked by {EMAIL}",
        requested_at=NOW,
        approvers=["alice"],
    )
    details = current_details(AgentRunState(agent="a", pending_approvals=[pending]))
    for secret in (CARD, "hunter2", EMAIL):
        assert secret not in details
    assert "who may approve: alice" in details and '"order_id": "A-1"' in details


def test_agent_user_is_a_pseudonym_when_the_id_looks_like_personal_data() -> None:
    def user(user_id: str, mode: str) -> str:
        request = AgentRunRequest(agent="a", input="x", user_id=user_id)
        updates = search_attribute_updates(request, AgentRunState(agent="a"), mode)  # type: ignore[arg-type]
        return next(u.value for u in updates if u.key == contract.AGENT_USER)

    hashed = pseudonymous_user(EMAIL)
    assert user(EMAIL, "pseudonym") == hashed and hashed.startswith("user-") and len(hashed) == 21
    assert user("cust-42", "pseudonym") == "cust-42"
    assert user("cust-42", "hash") == pseudonymous_user("cust-42", "hash") != "cust-42"
    assert user(EMAIL, "raw") == EMAIL  # what runs recorded before the setting show


def test_stop_reason_attribute_names_the_kill_switch_for_the_listeners_halts() -> None:
    def ended(status: RunStatus, stop: StopReason, reason: str) -> AgentRunState:
        return AgentRunState(agent="a", status=status, stop_reason=stop, reason=reason)

    by_listener = ended(RunStatus.HALTED, StopReason.HALT, "halted by kill-switch: switch on")
    by_person = ended(RunStatus.HALTED, StopReason.HALT, "halted by alice: wrong customer")
    refused = ended(RunStatus.HALTED, StopReason.KILL_SWITCH, "refused: kill switch is on")
    failed = ended(RunStatus.FAILED, StopReason.MODEL_ERROR, "model call failed")
    answered = ended(RunStatus.COMPLETED, StopReason.ANSWERED, "")
    assert [stop_reason_value(s) for s in (by_listener, by_person, refused, failed, answered)] == [
        "kill_switch",
        "halt",
        "kill_switch",
        "model_error",
        None,
    ]
