"""`opsready shadow report AGENT`: how a shadow candidate compares with production.

Shadow runs are `AgentRun` runs with `AgentVariant = 'shadow'`; each keeps its comparison
with its production twin in its result. The report reads them back through visibility,
so it needs no store of its own and works from any machine that reaches Temporal.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from typing import Any

from pydantic import BaseModel
from temporalio.client import Client, WorkflowExecutionStatus

from opsready.errors import OpsreadyError
from opsready.names import is_known_agent, unknown_agent
from opsready.runs import run_result
from opsready.settings import Settings
from starters.cli_common import (
    JSON_OUTPUT,
    TEMPORAL,
    Subcommands,
    add_command,
    add_group,
    connect_client,
    print_json,
)
from workflows.contract import AGENT_RUN_WORKFLOW
from workflows.types import AgentRunResult, ShadowComparison

_ENDED = (
    WorkflowExecutionStatus.COMPLETED,
    WorkflowExecutionStatus.FAILED,
    WorkflowExecutionStatus.CANCELED,
)

_FETCH_CONCURRENCY = 16


class ShadowReport(BaseModel):
    agent: str
    shadow_runs: int  # closed shadow runs looked at
    compared: int  # of which have a comparison (production ended, comparison recorded)
    candidates: list[str]
    same_tool_plan_rate: float | None
    same_status_rate: float | None
    mean_output_similarity: float | None
    production_mean_cost_usd: float | None
    shadow_mean_cost_usd: float | None
    production_median_latency_s: float | None
    shadow_median_latency_s: float | None
    production_safety_events: int
    shadow_safety_events: int
    differences: list[dict[str, Any]]  # the pairs that disagree, most dissimilar first


def register(commands: Subcommands) -> None:
    shadow = add_group(commands, "shadow", help="shadow runs: a candidate vs production")
    report = add_command(
        shadow,
        "report",
        cmd_shadow_report,
        parents=(TEMPORAL, JSON_OUTPUT),
        help="agreement and differences of an agent's shadows",
    )
    report.add_argument("agent", help="agent name")
    report.add_argument("--limit", type=int, default=200, help="latest shadow runs (200)")


async def cmd_shadow_report(args: argparse.Namespace, settings: Settings) -> int:
    if args.limit < 1:
        raise OpsreadyError("--limit must be at least 1")
    client = await connect_client(args, settings)
    comparisons, closed = await shadow_comparisons(client.temporal, args.agent, args.limit)
    if not closed and not is_known_agent(args.agent, settings.agents_dir):
        raise unknown_agent(args.agent, settings.agents_dir)  # a typo, not "no shadows yet"
    report = summarise(args.agent, comparisons, closed)
    if args.json:
        print_json(report)
    else:
        print(render(report))
    return 0


async def shadow_comparisons(
    client: Client, agent: str, limit: int
) -> tuple[list[ShadowComparison], int]:
    """The comparisons of an agent's latest closed shadow runs, and how many were closed."""
    if "'" in agent:
        raise OpsreadyError(f"invalid agent name {agent!r}")
    query = (
        f"WorkflowType = '{AGENT_RUN_WORKFLOW}' AND AgentName = '{agent}' "
        "AND AgentVariant = 'shadow' AND ExecutionStatus != 'Running'"
    )
    ids = [
        execution.id
        async for execution in client.list_workflows(query, limit=limit)
        # A shadow that failed or was halted compared too (workflows.run_end: closed Failed
        # or Canceled, its result kept in history).
        if execution.status in _ENDED
    ]
    gate = asyncio.Semaphore(_FETCH_CONCURRENCY)

    async def fetch(run_id: str) -> ShadowComparison | None:
        async with gate:
            handle = client.get_workflow_handle(run_id, result_type=AgentRunResult)
            result = await run_result(handle, client.data_converter)
            return result.shadow_comparison

    results = await asyncio.gather(*(fetch(run_id) for run_id in ids))
    return [c for c in results if c is not None], len(ids)


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 6) if values else None


def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def summarise(agent: str, comparisons: list[ShadowComparison], closed: int) -> ShadowReport:
    n = len(comparisons)
    differences = sorted(
        (c for c in comparisons if not (c.same_tool_plan and c.same_status)),
        key=lambda c: c.output_similarity,
    )
    return ShadowReport(
        agent=agent,
        shadow_runs=closed,
        compared=n,
        candidates=sorted({c.candidate.label() for c in comparisons}),
        same_tool_plan_rate=round(sum(c.same_tool_plan for c in comparisons) / n, 3) if n else None,
        same_status_rate=round(sum(c.same_status for c in comparisons) / n, 3) if n else None,
        mean_output_similarity=_mean([c.output_similarity for c in comparisons]),
        production_mean_cost_usd=_mean([c.production.cost_usd for c in comparisons]),
        shadow_mean_cost_usd=_mean([c.shadow.cost_usd for c in comparisons]),
        production_median_latency_s=_median([c.production.latency_s for c in comparisons]),
        shadow_median_latency_s=_median([c.shadow.latency_s for c in comparisons]),
        production_safety_events=sum(len(c.production.safety_events) for c in comparisons),
        shadow_safety_events=sum(len(c.shadow.safety_events) for c in comparisons),
        differences=[
            {
                "production_run": c.production.run_id,
                "shadow_run": c.shadow.run_id,
                "production_tools": c.production.tool_plan,
                "shadow_tools": c.shadow.tool_plan,
                "production_status": c.production.status.value,
                "shadow_status": c.shadow.status.value,
                "output_similarity": c.output_similarity,
            }
            for c in differences
        ],
    )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def render(report: ShadowReport) -> str:
    if report.compared == 0:
        return (
            f"no shadow comparisons for {report.agent} yet ({report.shadow_runs} closed shadow "
            "runs); set the `shadow` flag, e.g. "
            'opsready flags set shadow \'{"prompt_version": "v2", "sample_rate": 0.1}\''
        )
    lines = [
        f"shadow report for {report.agent}: {report.compared} comparisons "
        f"(candidate: {', '.join(report.candidates)})",
        f"  same tool plan   {_pct(report.same_tool_plan_rate)}",
        f"  same outcome     {_pct(report.same_status_rate)}",
        f"  answer overlap   {_num(report.mean_output_similarity, '.2f')} (mean word overlap)",
        f"  cost per run     production ${_num(report.production_mean_cost_usd, '.6f')}"
        f"  shadow ${_num(report.shadow_mean_cost_usd, '.6f')}",
        f"  median latency   production {_num(report.production_median_latency_s, '.2f')}s"
        f"  shadow {_num(report.shadow_median_latency_s, '.2f')}s",
        f"  safety events    production {report.production_safety_events}"
        f"  shadow {report.shadow_safety_events}",
    ]
    if report.differences:
        lines.append(f"  {len(report.differences)} pairs differ (most different first):")
        for diff in report.differences[:10]:
            lines.append(
                f"    {diff['production_run']}: {diff['production_status']} "
                f"{'/'.join(diff['production_tools']) or '-'}  vs shadow "
                f"{diff['shadow_status']} {'/'.join(diff['shadow_tools']) or '-'}"
            )
    return "\n".join(lines)
