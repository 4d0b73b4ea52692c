"""What the SLO monitor alerts on, as pure functions of one SLI snapshot: every SLO's
multiwindow burn rate, the playbook's signals (alert window against its baseline), the
agent's automatic triggers (cost rate, safety-event rate, tool failure rate) and the task
queues' backlog; and the incident request each alert becomes.

Dedup keys say what is wrong where, so a repeated alert finds the open incident:
`{agent}:slo:{name}` (pages; tickets add `:ticket`, so a slow burn's ticket never hides a
page), `{agent}:signal:{name}`, `{agent}:{trigger}`, `queue:{queue}:{signal}`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from workflows.incident_types import IncidentTrigger, OpenIncidentRequest, UserImpact
from workflows.sli_types import AffectedRuns, AgentSlis, BadRuns, SliSnapshot
from workflows.slo_monitor_types import MonitorAlert
from workflows.slo_policy import evaluate_burn
from workflows.slo_signals import detect_backlog, detect_signals
from workflows.slo_types import (
    BurnAlert,
    SignalAlert,
    SignalName,
    SignalThresholds,
    Slo,
    SloKind,
    format_window,
)

BACKLOG_AGENT = "*"  # a queue's backlog is every agent's problem
Trigger = Literal["cost_rate", "safety_rate", "tool_failure_rate"]

# Who a burning SLO hurts: (page, ticket). Safety burns are also `is_safety`.
_IMPACT: dict[SloKind, tuple[UserImpact, UserImpact]] = {
    SloKind.TASK_SUCCESS: ("many", "some"),
    SloKind.LATENCY: ("many", "some"),
    SloKind.COST_PER_SUCCESS: ("none", "none"),
    SloKind.TOOL_ERROR_RATE: ("some", "none"),
    SloKind.TOOL_TIMEOUT_RATE: ("some", "none"),
    SloKind.SAFETY_EVENT_RATE: ("some", "none"),
}
_SIGNAL_IMPACT: dict[SignalName, UserImpact] = {
    SignalName.SUCCESS_DROP: "some",
    SignalName.LATENCY_REGRESSION: "some",
    SignalName.TOOL_ERROR_SPIKE: "some",
    SignalName.TOOL_TIMEOUT_SPIKE: "some",
    SignalName.BACKLOG_SIZE: "some",
    SignalName.BACKLOG_AGE: "some",
}
# The runs a signal blames, where it blames any.
_SIGNAL_BAD: dict[SignalName, BadRuns] = {
    SignalName.SUCCESS_DROP: BadRuns(kind="failed"),
    SignalName.SAFETY_SPIKE: BadRuns(kind="safety"),
    SignalName.TOOL_ERROR_SPIKE: BadRuns(kind="tool_errors"),
    SignalName.TOOL_TIMEOUT_SPIKE: BadRuns(kind="tool_timeouts"),
}


def alerts_of(
    snapshot: SliSnapshot, *, min_events: int, backlog: SignalThresholds
) -> list[MonitorAlert]:
    """Every alert in the snapshot: per agent its burning SLOs (the worst pair of each),
    signals and triggers, then the backlogs."""
    alerts: list[MonitorAlert] = []
    for agent in snapshot.agents:
        if agent.problem is None:
            alerts += _agent_alerts(agent, snapshot.as_of, min_events)
    for stats in snapshot.backlogs:
        queue = _key_part(stats.task_queue)
        for signal in detect_backlog(stats, backlog):
            alerts.append(
                MonitorAlert(
                    dedup_key=f"queue:{queue}:{signal.signal.value}",
                    agent=BACKLOG_AGENT,
                    kind="signal",
                    name=signal.signal.value,
                    action="page",
                    title=f"task queue {stats.task_queue}: {signal.signal.value}",
                    detail=signal.detail,
                    numbers=_signal_numbers(signal),
                    user_impact="some",
                    since=snapshot.as_of,
                )
            )
    return alerts


def is_covered(alert: MonitorAlert, open_keys: set[str]) -> bool:
    """An open incident already covers the alert: the same key, or for a ticket, the page
    incident of the same SLO (a page covers its ticket, not the other way round)."""
    if alert.dedup_key in open_keys:
        return True
    return alert.action == "ticket" and alert.dedup_key.removesuffix(":ticket") in open_keys


def incident_request(
    alert: MonitorAlert, affected: AffectedRuns | None, detected_at: datetime
) -> OpenIncidentRequest:
    """The `Incident` the alert asks for. The first bad outcome is the oldest bad run the
    alert's window holds (an upper bound of MTTD), unknown when the alert blames no run."""
    first_bad_at = affected.first_bad_at if affected is not None else None
    return OpenIncidentRequest(
        dedup_key=alert.dedup_key,
        title=alert.title,
        agent=alert.agent,
        trigger=IncidentTrigger(
            kind=alert.kind,
            agent=alert.agent,
            detail=alert.detail,
            numbers=alert.numbers,
            first_bad_at=first_bad_at,
            detected_at=detected_at,
        ),
        user_impact=alert.user_impact,
        is_safety=alert.is_safety,
        cost_usd_per_hour=alert.cost_usd_per_hour,
        affected_run_ids=affected.run_ids if affected is not None else [],
    )


# --- one agent -------------------------------------------------------------------------------


def _agent_alerts(agent: AgentSlis, as_of: datetime, min_events: int) -> list[MonitorAlert]:
    window_hours = agent.alerts.window.total_seconds() / 3600
    cost_rate = agent.current.cost_usd / window_hours
    since = as_of - agent.alerts.window
    alerts: list[MonitorAlert] = []
    for slo in agent.slos:
        burns = evaluate_burn(slo, agent.counts_by_window(slo.name), min_events=min_events)
        if burns:
            alerts.append(_burn_alert(agent.agent, slo, burns[0], as_of, cost_rate))
    for signal in detect_signals(agent.current, agent.baseline, agent.alerts.signals):
        alerts.append(
            MonitorAlert(
                dedup_key=f"{agent.agent}:signal:{signal.signal.value}",
                agent=agent.agent,
                kind="signal",
                name=signal.signal.value,
                action="page",
                title=f"{agent.agent}: {signal.signal.value.replace('_', ' ')}",
                detail=signal.detail,
                numbers=_signal_numbers(signal),
                user_impact=_SIGNAL_IMPACT.get(signal.signal, "none"),
                is_safety=signal.signal is SignalName.SAFETY_SPIKE,
                cost_usd_per_hour=cost_rate,
                bad=_SIGNAL_BAD.get(signal.signal),
                since=since,
            )
        )
    return alerts + _triggers(agent, since, cost_rate)


def _burn_alert(
    agent: str, slo: Slo, burn: BurnAlert, as_of: datetime, cost_rate: float
) -> MonitorAlert:
    page, ticket = _IMPACT[slo.kind]
    pair = burn.window
    suffix = "" if burn.action == "page" else ":ticket"
    return MonitorAlert(
        dedup_key=f"{agent}:slo:{slo.name}{suffix}",
        agent=agent,
        kind="slo_burn",
        name=slo.name,
        action=burn.action,
        title=f"{agent}: SLO {slo.name} burns its error budget at {burn.long_rate:.1f}x",
        detail=(
            f"{slo.kind.value} objective {slo.objective:.2%} over {slo.window_days}d: burn "
            f"{burn.long_rate:.1f}x over {format_window(pair.long)} and {burn.short_rate:.1f}x "
            f"over {format_window(pair.short)} (alerts at {pair.factor:g}x, {burn.action})"
        ),
        numbers={
            "long_burn_rate": burn.long_rate,
            "short_burn_rate": burn.short_rate,
            "factor": pair.factor,
            "long_window_seconds": pair.long.total_seconds(),
            "short_window_seconds": pair.short.total_seconds(),
            "objective": slo.objective,
        },
        user_impact=page if burn.action == "page" else ticket,
        is_safety=slo.kind is SloKind.SAFETY_EVENT_RATE,
        cost_usd_per_hour=cost_rate,
        bad=_slo_bad(slo),
        since=as_of - pair.long,
    )


def _slo_bad(slo: Slo) -> BadRuns:
    return {
        SloKind.TASK_SUCCESS: BadRuns(kind="failed"),
        SloKind.LATENCY: BadRuns(kind="slow", threshold=slo.threshold_seconds),
        SloKind.COST_PER_SUCCESS: BadRuns(kind="costly", threshold=slo.threshold_usd),
        SloKind.TOOL_ERROR_RATE: BadRuns(kind="tool_errors"),
        SloKind.TOOL_TIMEOUT_RATE: BadRuns(kind="tool_timeouts"),
        SloKind.SAFETY_EVENT_RATE: BadRuns(kind="safety"),
    }[slo.kind]


def _triggers(agent: AgentSlis, since: datetime, cost_rate: float) -> list[MonitorAlert]:
    """The agent's automatic triggers over its alert window (a limit of 0 is off)."""
    policy, now = agent.alerts, agent.current
    window = format_window(policy.window)
    alerts: list[MonitorAlert] = []

    def trigger(
        kind: Trigger, value: float, limit: float, what: str, impact: UserImpact, bad: BadRuns
    ) -> None:
        alerts.append(
            MonitorAlert(
                dedup_key=f"{agent.agent}:{kind}",
                agent=agent.agent,
                kind=kind,
                name=kind,
                action="page",
                title=f"{agent.agent}: {what} {value:.4g} over the last {window}",
                detail=f"{what} {value:.4g} over the last {window} (limit {limit:g})",
                numbers={"value": value, "threshold": limit, "runs": float(now.runs)},
                user_impact=impact,
                is_safety=kind == "safety_rate",
                cost_usd_per_hour=cost_rate,
                bad=bad,
                since=since,
            )
        )

    if policy.cost_usd_per_hour > 0 and cost_rate >= policy.cost_usd_per_hour:
        trigger("cost_rate", cost_rate, policy.cost_usd_per_hour, "USD per hour", "none", _ANY)
    if now.runs >= policy.min_runs and policy.safety_events_per_run > 0:
        rate = now.safety_events / now.runs
        if rate >= policy.safety_events_per_run:
            trigger(
                "safety_rate",
                rate,
                policy.safety_events_per_run,
                "safety events per run",
                "some",
                BadRuns(kind="safety"),
            )
    if now.tool_calls >= policy.min_tool_calls and policy.tool_failure_rate > 0:
        rate = (now.tool_errors + now.tool_timeouts) / now.tool_calls
        if rate >= policy.tool_failure_rate:
            trigger(
                "tool_failure_rate",
                rate,
                policy.tool_failure_rate,
                "failed tool calls per call",
                "some",
                BadRuns(kind="tool_errors"),
            )
    return alerts


_ANY = BadRuns(kind="any")


def _signal_numbers(signal: SignalAlert) -> dict[str, float]:
    numbers = {"current": signal.current, "threshold": signal.threshold}
    if signal.baseline is not None:
        numbers["baseline"] = signal.baseline
    return numbers


def _key_part(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")
