"""Human-readable output of the `opsready` CLI; runs are shown `redacted` (text and `--json`)."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from rich.table import Column

from opsready.client import RunSummary, state_of
from opsready.console import table, table_text
from opsready.redaction import Redactor
from workflows.types import AgentRunResult, AgentRunState

M = TypeVar("M", AgentRunState, AgentRunResult)


def redacted(run: M) -> M:
    """A run's state or result as a person may see it: every free-text value (the answer,
    reasons, tool arguments, results and errors, comments, safety details) masked by the one
    redactor. Ids, names and times are left alone (a masked request id could not be
    approved). The unredacted result stays in history, for the client API."""
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
    if data["config"] is not None:
        data["config"]["flags_degraded"] = r(data["config"]["flags_degraded"])
    if data["shadow_comparison"] is not None:
        for side in ("production", "shadow"):
            data["shadow_comparison"][side]["output"] = r(data["shadow_comparison"][side]["output"])
    return type(run).model_validate(data)


def _args(arguments: dict[str, Any]) -> str:
    text = json.dumps(arguments, separators=(",", ":"), default=str)
    return text if len(text) <= 80 else text[:77] + "..."


def state_text(run_id: str, state: AgentRunState) -> str:
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
    for pending in state.pending_approvals:
        escalated = " (escalated)" if pending.is_escalated else ""
        lines.append(
            f"waiting   {pending.tool} {_args(pending.arguments)}{escalated}: {pending.reason}"
        )
        lines.append(f"          request {pending.request_id}")
        lines.append(f"          opsready approve {run_id} --as NAME   (or: opsready reject ...)")
    for call in state.tool_calls:
        outcome = "ok" if call.ok else (call.error or "not run")
        tier = call.risk_tier.value if call.risk_tier else "-"
        lines.append(
            f"tool      step {call.step} {call.tool} [{tier}] {call.decision}: {outcome[:100]}"
        )
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
