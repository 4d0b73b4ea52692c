"""Visibility queries for SLIs and canary cohorts: which closed `AgentRun`s count, as
Temporal list filters over the search attributes every run writes (workflows/contract.py).

Bad events are always selected by a positive predicate and good = total - bad, so a run
without an attribute (one recorded before it existed) counts as good, never as bad.
"""

from __future__ import annotations

from datetime import UTC, datetime

from workflows import contract
from workflows.rollout_types import Cohort
from workflows.sli_types import BadRuns, Tally, tally_mark
from workflows.slo_types import Slo, SloKind
from workflows.types import RunStatus

ENDED = tuple(s.value for s in RunStatus if s.is_terminal)
# Runs not ended by a human: the events of task success.
COUNTED = tuple(s for s in ENDED if s not in (RunStatus.REJECTED, RunStatus.HALTED))
FAILED = tuple(s for s in COUNTED if s != RunStatus.COMPLETED)
INCIDENTS_OPEN = "WorkflowType = 'Incident' AND ExecutionStatus = 'Running'"


def literal(value: str) -> str:
    """A quoted string for a query. Names that reach here are validated identifiers; a
    quote or backslash is refused rather than escaped, so nothing can widen a filter."""
    if "'" in value or "\\" in value:
        raise ValueError(f"{value!r} cannot be used in a visibility query")
    return f"'{value}'"


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC, as visibility compares `CloseTime`."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return literal(utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def all_of(*clauses: str | None) -> str:
    return " AND ".join(c if " OR " not in c else f"({c})" for c in clauses if c)


def status_in(statuses: tuple[str, ...]) -> str:
    if len(statuses) == 1:
        return f"AgentStatus = {literal(statuses[0])}"
    return f"AgentStatus IN ({', '.join(literal(s) for s in statuses)})"


def closed_runs(agent: str | None, since: datetime, until: datetime | None = None) -> str:
    """`AgentRun`s of `agent` (None: all) that closed in [since, until) with a final status,
    shadow twins left out. A continued-as-new run closes `running`, so only the last run of
    a chain counts."""
    return all_of(
        f"WorkflowType = {literal(contract.AGENT_RUN_WORKFLOW)}",
        "ExecutionStatus != 'Running'",
        f"CloseTime >= {timestamp(since)}",
        f"CloseTime < {timestamp(until)}" if until is not None else None,
        f"AgentName = {literal(agent)}" if agent is not None else None,
        f"{contract.AGENT_VARIANT.name} != {literal(contract.SHADOW_VARIANT)}",
        status_in(ENDED),
    )


def reached(tally: Tally, threshold: int) -> str:
    return f"{contract.AGENT_TALLIES.name} = {literal(tally_mark(tally, threshold))}"


def slo_events(slo: Slo) -> str:
    """The runs a run-level SLO counts (tool-level SLOs count calls in every ended run)."""
    if slo.kind is SloKind.TASK_SUCCESS:
        return status_in(COUNTED)
    if slo.kind in (SloKind.LATENCY, SloKind.COST_PER_SUCCESS):
        return status_in((RunStatus.COMPLETED.value,))
    return status_in(ENDED)


def slo_bad(slo: Slo) -> str:
    """The bad events among `slo_events` of a run-level SLO."""
    if slo.kind is SloKind.TASK_SUCCESS:
        return bad_runs(BadRuns(kind="failed"))
    if slo.kind is SloKind.LATENCY:
        return bad_runs(BadRuns(kind="slow", threshold=slo.threshold_seconds))
    if slo.kind is SloKind.COST_PER_SUCCESS:
        return bad_runs(BadRuns(kind="costly", threshold=slo.threshold_usd))
    if slo.kind is SloKind.SAFETY_EVENT_RATE:
        return bad_runs(BadRuns(kind="safety"))
    raise ValueError(f"{slo.kind.value} counts tool calls, not runs: sum its tallies")


def bad_runs(bad: BadRuns) -> str:
    """The runs an alert calls bad (added to `closed_runs`)."""
    completed = status_in((RunStatus.COMPLETED.value,))
    if bad.kind == "failed":
        return status_in(FAILED)
    if bad.kind == "slow":
        return all_of(completed, f"{contract.AGENT_LATENCY_SECONDS.name} > {_number(bad)}")
    if bad.kind == "costly":
        return all_of(completed, f"{contract.AGENT_COST_USD.name} > {_number(bad)}")
    if bad.kind == "tool_errors":
        return reached(Tally.TOOL_ERRORS, 1)
    if bad.kind == "tool_timeouts":
        return reached(Tally.TOOL_TIMEOUTS, 1)
    if bad.kind == "safety":
        return reached(Tally.SAFETY_EVENTS, 1)
    return status_in(ENDED)


def _number(bad: BadRuns) -> str:
    if bad.threshold is None:
        raise ValueError(f"{bad.kind} runs need a threshold")
    return repr(float(bad.threshold))


def cohort_runs(cohort: Cohort) -> str:
    """The closed runs of a canary cohort, as `OutcomeStore.stats` selects them: since the
    stage began, by flag variation (a run that never evaluated the flag is in neither
    cohort) or by build id, optionally of one agent."""
    variations = contract.AGENT_FLAG_VARIATIONS.name
    build = contract.AGENT_BUILD_ID.name
    clauses = [closed_runs(cohort.agent, cohort.since)]
    if cohort.build_id is not None:
        clauses.append(f"{build} = {literal(cohort.build_id)}")
    if cohort.exclude_build_id is not None:
        clauses.append(f"{build} != {literal(cohort.exclude_build_id)}")
    if cohort.flag is not None:
        clauses.append(f"{variations} = {literal(cohort.flag)}")
        if cohort.variation is not None:
            clauses.append(f"{variations} = {literal(f'{cohort.flag}={cohort.variation}')}")
        if cohort.exclude_variation is not None:
            excluded = f"{cohort.flag}={cohort.exclude_variation}"
            clauses.append(f"{variations} != {literal(excluded)}")
    return all_of(*clauses)
