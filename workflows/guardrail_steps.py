"""What a run does with its guardrails' findings on one model call (the checks themselves
run in the model activity, `activities/models/guardrails.py`).

Every finding becomes a safety event with its kind and the action taken. A masked input
replaces the run's copy of the user message, so later calls (and retries) carry the
masked text. A blocked input or answer ends the run `failed` (stop reason `guardrail`)
before anything reaches the user; one sent for review waits for a human, who lets it
through or ends the run. Deterministic (workflow code).
"""

from __future__ import annotations

from enum import Enum

from workflows.approvals import ApprovalBook
from workflows.control_types import GuardrailReport
from workflows.human_review import Question, ask_human, end_unapproved
from workflows.payloads import ChatMessage, ModelCallResult, RunConfig
from workflows.run_record import RunRecord
from workflows.tool_calls import RunControls
from workflows.types import RunStatus, StopReason

ACTION_TAKEN = {
    "block": "blocked",
    "review": "sent for review",
    "mask": "masked",
    "allow": "allowed",
}


class Verdict(Enum):
    GO = "go"  # the turn stands (possibly masked)
    ASK_AGAIN = "ask_again"  # a human approved the input: call the model again with it
    STOP = "stop"  # the run ended here


async def screen(
    run: RunControls,
    record: RunRecord,
    approvals: ApprovalBook,
    config: RunConfig,
    turn: ModelCallResult,
    messages: list[ChatMessage],
) -> Verdict:
    report = turn.guardrails
    if report is None:
        return Verdict.GO
    for finding in report.findings:
        where = f" (tool call {finding.call_id})" if finding.call_id else ""
        record.safety(
            finding.kind,
            f"{finding.stage} {finding.guardrail}{where}: {finding.detail}",
            action=ACTION_TAKEN[finding.action],
        )
    if report.input_text is not None:
        _replace_user_message(messages, report.input_text)
    if report.blocked is not None:
        what = "input" if report.stage == "input" else "answer"
        reason = f"{what} blocked by guardrail {report.blocked}"
        record.finish(RunStatus.FAILED, StopReason.GUARDRAIL, reason)
        return Verdict.STOP
    if report.review is not None:
        return await _review(run, record, approvals, config, report)
    return Verdict.GO


async def _review(
    run: RunControls,
    record: RunRecord,
    approvals: ApprovalBook,
    config: RunConfig,
    report: GuardrailReport,
) -> Verdict:
    what = "input" if report.stage == "input" else "answer"
    question = Question(
        subject=what, reason=f"guardrail: {report.review}; approve to let it through"
    )
    outcome = await ask_human(run, record, approvals, config, question)
    if outcome.outcome == "approved":
        return Verdict.ASK_AGAIN if what == "input" else Verdict.GO
    end_unapproved(record, outcome, f"the {what}")
    return Verdict.STOP


def _replace_user_message(messages: list[ChatMessage], text: str) -> None:
    for index, message in enumerate(messages):
        if message.role == "user":
            messages[index] = message.model_copy(update={"content": text})
            return
