"""`SloMonitor`: one pass of the SLO monitor, started every minute by a Temporal Schedule
(`opsready slo monitor start`).

It reads every agent's SLIs from the shared source (an activity), judges them
(`slo_alerts.alerts_of`: burn rates, signals, triggers, backlog) and asks for an incident
for each alert no open incident covers: the runs it blames (an activity), then
`opsready.incident.open` with an `OpenIncidentRequest`. Failing to open one incident does
not stop the others; the report says what was asked and what failed.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, VersioningBehavior
from temporalio.exceptions import ActivityError

from workflows.contract import SLO_MONITOR_WORKFLOW, Activity
from workflows.sli_types import AffectedRuns, AffectedRunsInput, ReadSlisInput, SliSnapshot
from workflows.slo_alerts import alerts_of, incident_request, is_covered
from workflows.slo_monitor_types import MonitorAlert, SloMonitorInput, SloMonitorReport
from workflows.slo_policy import windows_needed

# A pass that cannot read its SLIs fails; the Schedule's next pass tries again anyway.
_READ_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10), maximum_attempts=3)
_OPEN_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=10), maximum_attempts=5)


@workflow.defn(name=SLO_MONITOR_WORKFLOW, versioning_behavior=VersioningBehavior.PINNED)
class SloMonitorWorkflow:
    @workflow.run
    async def run(self, request: SloMonitorInput) -> SloMonitorReport:
        as_of = workflow.now()
        snapshot: SliSnapshot = await workflow.execute_activity(
            Activity.SLO_READ_SLIS,
            ReadSlisInput(
                as_of=as_of,
                agents=request.agents,
                windows_seconds=[int(w.total_seconds()) for w in windows_needed()],
                task_queues=request.task_queues,
                list_cap=request.list_cap,
            ),
            result_type=SliSnapshot,
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=_READ_RETRY,
            summary="read SLIs",
        )
        report = SloMonitorReport(
            as_of=as_of,
            agents=[agent.agent for agent in snapshot.agents],
            alerts=[
                alert
                for alert in alerts_of(
                    snapshot, min_events=request.min_events, backlog=request.backlog
                )
                if request.only is None or alert.name in request.only
            ],
            problems=[f"{a.agent}: {a.problem}" for a in snapshot.agents if a.problem],
        )
        open_keys = set(snapshot.open_incidents)
        for alert in report.alerts:
            if is_covered(alert, open_keys):
                report.already_open.append(alert.dedup_key)
            elif request.open_incidents:
                await self._open_incident(alert, report)
                open_keys.add(alert.dedup_key)
        workflow.set_current_details(_details(report))
        return report

    async def _open_incident(self, alert: MonitorAlert, report: SloMonitorReport) -> None:
        affected = await _affected_runs(alert, report)
        try:
            await workflow.execute_activity(
                Activity.INCIDENT_OPEN,
                incident_request(alert, affected, report.as_of),
                # Opening waits up to a minute for a resolved incident of the same key to
                # close (opsready.incidents.service.CLOSE_WAIT); give up within two.
                start_to_close_timeout=timedelta(seconds=90),
                schedule_to_close_timeout=timedelta(minutes=2),
                retry_policy=_OPEN_RETRY,
                summary=f"open incident {alert.dedup_key}",
            )
            report.requested.append(alert.dedup_key)
        except ActivityError as err:
            workflow.logger.warning("incident not opened for %s: %s", alert.dedup_key, err.cause)
            report.failed.append(f"{alert.dedup_key}: {err.cause or err}")


async def _affected_runs(alert: MonitorAlert, report: SloMonitorReport) -> AffectedRuns | None:
    """The runs the alert blames; None (an incident without them) when it blames none or
    they cannot be listed: the incident matters more than its evidence."""
    if alert.bad is None:
        return None
    try:
        result: AffectedRuns = await workflow.execute_activity(
            Activity.SLO_AFFECTED_RUNS,
            AffectedRunsInput(
                agent=alert.agent,
                bad=alert.bad,
                since=alert.since,
                until=report.as_of,
                dedup_key=alert.dedup_key,
            ),
            result_type=AffectedRuns,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=_READ_RETRY,
            summary=f"runs behind {alert.dedup_key}",
        )
    except ActivityError as err:
        workflow.logger.warning("affected runs of %s not listed: %s", alert.dedup_key, err.cause)
        return None
    return result


def _details(report: SloMonitorReport) -> str:
    """Markdown for the UI's current details."""
    lines = [
        f"**{len(report.alerts)} alerts** over {len(report.agents)} agents; incidents "
        f"requested: {len(report.requested)}, already open: {len(report.already_open)}"
    ]
    lines += [f"- {alert.title}" for alert in report.alerts]
    lines += [f"failed: {failure}" for failure in report.failed]
    lines += [f"not monitored: {problem}" for problem in report.problems]
    return "\n\n".join(lines)
