"""Human-readable output of the `opsready` CLI; runs are shown `redacted` (text and `--json`)."""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from typing import Any, TypeVar

from rich.table import Column

from opsready.console import table, table_text
from opsready.redaction import Redactor
from opsready.run_workers import PendingCall
from opsready.runs import RunSummary, state_of
from workflows.types import AgentRunResult, AgentRunState, PendingApproval, ToolCallRecord

M = TypeVar("M", AgentRunState, AgentRunResult)


def redacted(run: M) -> M:
    """A run's state or result as a person may see it: every free-text value (the answer,
    reasons, tool arguments, results and errors, comments, safety details, why a model was
    fallen back from) masked by the one redactor. Ids, names and times are left alone (a
    masked request id could not be approved). The unredacted result stays in history, for
    the client API."""
    r = Redactor.from_env().redact
    data = run.model_dump(mode="json")
    for key in ("output", "reason"):
        data[key] = r(data[key])
    for call in data["tool_calls"]:
        call.update(
            arguments=r(call["arguments"]), output=r(call["output"]), error=r(call["error"])
        )
    for pending in data.get("pending_approvals", []):
        pending.update(arguments=r(pending["arguments"]), reason=r(pending["reason"]))
    for approval in data["approvals"]:
        approval["comment"] = r(approval["comment"])
    for event in data["safety_events"]:
        event["detail"] = r(event["detail"])
    for fallback in data.get("fallbacks", []):
        fallback["reason"] = r(fallback["reason"])
    if data["config"] is not None:
        data["config"]["flags_degraded"] = r(data["config"]["flags_degraded"])
    if data["shadow_comparison"] is not None:
        for side in ("production", "shadow"):
            data["shadow_comparison"][side]["output"] = r(data["shadow_comparison"][side]["output"])
    return type(run).model_validate(data)


def _args(arguments: dict[str, Any]) -> str:
    """Arguments whole, as JSON a person reads (and could paste): non-ASCII as itself."""
    return json.dumps(arguments, ensure_ascii=False, separators=(", ", ": "), default=str)


def decide_commands(run_id: str, pending: PendingApproval) -> list[str]:
    """The exact commands that answer a pending approval, shell-quoted."""
    base = f"{shlex.quote(run_id)} --request-id {shlex.quote(pending.request_id)} --as NAME"
    return [f"opsready approve {base}", f"opsready reject {base}"]


def awaiting_text(run_id: str, pending: PendingApproval) -> str:
    """What a run waits for, and how to answer it (for `run --wait` and `status`)."""
    escalated = " (escalated)" if pending.is_escalated else ""
    approve, reject = decide_commands(run_id, pending)
    return "\n".join(
        [
            f"waiting   approval{escalated} of {pending.tool} {_args(pending.arguments)}: "
            f"{pending.reason}",
            f"          approve:  {approve}",
            f"          reject:   {reject}",
        ]
    )


def _tool_line(call: ToolCallRecord, state: AgentRunState) -> str:
    tier = call.risk_tier.value if call.risk_tier else "-"
    waiting = {p.call_id for p in state.pending_approvals if p.step == call.step}
    is_over = state.status.is_terminal
    # Runs recorded before the hardened AgentRun keep the record's default ("invalid") until
    # the gate decides; newer ones say "awaiting_approval", then "running" (tool_calls.py).
    if call.decision in ("awaiting_approval", "invalid") and call.call_id in waiting:
        outcome = "awaiting approval"
    elif call.decision in ("running", "invalid") and not call.error and not is_over:
        outcome = "in progress"
    else:
        outcome = f"{call.decision}: " + ("ok" if call.ok else (call.error or "not run"))
    return f"tool      step {call.step} {call.tool} [{tier}] {_args(call.arguments)} {outcome}"


def _call_line(call: PendingCall) -> str:
    if not call.is_retrying:
        return f"calling   {call.what} ({call.state})"
    line = f"retrying  {call.what}, attempt {call.attempt}"
    if call.last_error:
        line += f"; last error: {' '.join(call.last_error.split())}"
    if call.next_attempt_at is not None:
        line += f"; next attempt at {call.next_attempt_at:%H:%M:%S}Z"
    return line


def state_text(run_id: str, state: AgentRunState, calls: Sequence[PendingCall] = ()) -> str:
    lines = [f"run       {run_id}", f"status    {state.status.value} at step {state.step}"]
    if state.reason:
        lines.append(f"reason    {state.reason}")
    if state.config is not None:
        c = state.config
        lines.append(
            f"agent     {state.agent} (version {c.agent_version}, prompt {c.prompt_version}, "
            f"model {c.model}, variant {c.variant}, config {c.config_hash[:12]})"
        )
        lines.append(f"build     {c.build_id or 'unversioned worker'}")
        if c.flags_degraded:
            lines.append(f"flags     DEGRADED, agent defaults in use: {c.flags_degraded}")
        if c.is_shadow:
            lines.append("shadow    yes: write tools simulated, nobody sees the answer")
    else:
        lines.append(f"agent     {state.agent}")
    usage = state.usage
    lines.append(
        f"usage     {usage.input_tokens} in + {usage.output_tokens} out tokens, "
        f"${usage.cost_usd:.6f}"
    )
    if state.shadow_run_id:
        lines.append(f"shadow    twin {state.shadow_run_id}")
    lines.extend(_call_line(call) for call in calls)
    lines.extend(awaiting_text(run_id, pending) for pending in state.pending_approvals)
    lines.extend(_tool_line(call, state) for call in state.tool_calls)
    for approval in state.approvals:
        by = f" by {approval.approver}" if approval.approver else ""
        comment = f' "{approval.comment}"' if approval.comment else ""
        lines.append(
            f"approval  {approval.tool} {approval.outcome}{by}{comment} "
            f"at {approval.decided_at:%Y-%m-%d %H:%M:%S}Z"
        )
    for event in state.safety_events:
        lines.append(f"safety    step {event.step} {event.kind}: {event.detail}")
    if state.output:
        lines.append("output")
        lines.extend(f"  {line}" for line in state.output.splitlines())
    return "\n".join(lines)


def result_text(run_id: str, agent: str, result: AgentRunResult) -> str:
    return state_text(run_id, state_of(agent, result))


def runs_table(runs: list[RunSummary], width: int | None = None) -> str:
    """One line per run, as wide as the terminal (or `width`); the run id is never cut:
    it is what the next command needs."""
    if not runs:
        return "no runs"
    rows = table(
        Column("run", no_wrap=True, min_width=max(len(run.run_id) for run in runs)),
        Column("agent", overflow="ellipsis", no_wrap=True),
        Column("status", no_wrap=True),
        Column("tokens", justify="right", no_wrap=True),
        Column("cost $", justify="right", no_wrap=True),
        Column("started", no_wrap=True),
    )
    for run in runs:
        rows.add_row(
            run.run_id,
            run.agent or "-",
            run.status,
            "-" if run.tokens is None else str(run.tokens),
            "-" if run.cost_usd is None else f"{run.cost_usd:.6f}",
            f"{run.started_at:%Y-%m-%d %H:%M:%S}" if run.started_at else "-",
        )
    return table_text(rows, width)
