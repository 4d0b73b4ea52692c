"""What the Temporal UI shows of a waiting run: current details a person can act on, labelled
timers, only the signals meant for people, and a tool call that says it awaits approval."""

from __future__ import annotations

import json
import re
from typing import Any

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter

from opsready.runs import run_result
from tests.workflows.conftest import Harness
from workflows.contract import Update
from workflows.types import AgentRunResult, AgentRunState, ApprovalDecision, RunStatus

BIG_REFUND = "My headphones from order A-1002 arrived broken, I want a refund"
CODE_BLOCK = re.compile(r"```json\n(.*?)\n```", re.S)


async def metadata(handle: WorkflowHandle[Any, AgentRunResult]) -> WorkflowMetadata:
    """What the UI reads: the SDK's built-in metadata query (definitions, current details)."""
    found: WorkflowMetadata = await handle.query(
        "__temporal_workflow_metadata", result_type=WorkflowMetadata
    )
    return found


async def timer_summaries(handle: WorkflowHandle[Any, AgentRunResult]) -> list[str]:
    history = await handle.fetch_history()
    return [
        pydantic_data_converter.payload_converter.from_payload(e.user_metadata.summary, str)
        for e in history.events
        if e.HasField("timer_started_event_attributes") and e.user_metadata.HasField("summary")
    ]


async def test_current_details_say_what_waits_who_may_approve_and_how_to_answer(
    harness: Harness,
) -> None:
    handle = await harness.start("support-triage", BIG_REFUND)
    waiting = await harness.wait_for_status(handle, "awaiting_approval")
    details = (await metadata(handle)).current_details

    assert "**waiting for approval**: `refund_order` (write): " in details
    assert "order_id A-1002" in details and "amount_usd 129" in details
    assert "who may approve: alice, bob" in details
    blocks = [json.loads(block) for block in CODE_BLOCK.findall(details)]  # pastes as JSON
    assert blocks[0]["order_id"] == "A-1002"
    assert blocks[1] == {"approved": True, "approver": "NAME", "comment": "why"}
    assert "“" not in details and "”" not in details
    assert waiting.tool_calls[-1].decision == "awaiting_approval"

    await handle.execute_update(
        Update.DECIDE,
        ApprovalDecision(approved=True, approver="alice", comment="receipt checked"),
        result_type=AgentRunState,
    )
    assert (await run_result(handle)).status is RunStatus.COMPLETED
    after = (await metadata(handle)).current_details
    assert "`refund_order` approved by alice: receipt checked" in after
    assert "waiting for approval" not in after


async def test_timers_are_labelled_and_the_ui_offers_only_the_signals_for_people(
    harness: Harness,
) -> None:
    handle = await harness.start("support-triage", BIG_REFUND)  # nobody decides: times out
    await run_result(handle)
    assert await timer_summaries(handle) == [
        "run timeout",
        "approval timeout",
        "escalation timeout",
    ]
    definition = (await metadata(handle)).definition
    assert {s.name for s in definition.signal_definitions} == {"approval_decision", "halt"}
    assert {u.name for u in definition.update_definitions} == {"decide", "halt"}
    assert all(s.description for s in definition.signal_definitions)
