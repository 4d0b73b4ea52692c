"""The incident's book, kept by the `Incident` workflow: its state and timeline, the work
that runs beside it without holding it up (pages, the evidence at open), the paging (who
is paged when, and what the pager answered), and what it keeps when it closes: evidence,
MTTD and MTTR, the postmortem draft.

Deterministic workflow code: every clock read is `workflow.now()`, every page an activity.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows import incident_calls as calls
from workflows import incident_view
from workflows.calls import cause
from workflows.incident_payload_types import (
    EvidenceInput,
    IncidentPolicy,
    IncidentTimings,
    PostmortemInput,
)
from workflows.incident_policy import classify, mttd, next_escalation_at, next_page
from workflows.incident_types import (
    IncidentPhase,
    IncidentState,
    IncidentStatus,
    IncidentTrigger,
    OpenIncidentRequest,
    Page,
    PageAction,
    PageRecord,
    Severity,
    TimelineEntry,
)

OPSREADY = "opsready"  # who did it, when the workflow acted on its own


def alert_key(trigger: IncidentTrigger) -> str:
    """One alert's identity: a repeated `join` of the same alert (a retried activity) is
    a no-op."""
    return f"{trigger.kind}|{trigger.detected_at.isoformat()}|{trigger.detail}"


def new_status(request: OpenIncidentRequest, policy: IncidentPolicy | None) -> IncidentStatus:
    """The state of an incident that opens now (classified with the built-in matrix until
    its own policy is loaded)."""
    trigger = request.trigger
    matrix = (policy or IncidentPolicy()).matrix
    return IncidentStatus(
        id=workflow.info().workflow_id,
        dedup_key=request.dedup_key,
        title=request.title,
        agent=request.agent,
        severity=request.severity or classify(matrix, request),
        state=IncidentState.OPEN,
        trigger=trigger,
        user_impact=request.user_impact,
        is_safety=request.is_safety,
        cost_usd_per_hour=request.cost_usd_per_hour,
        affected_run_ids=list(request.affected_run_ids),
        trace_ids=list(request.trace_ids),
        opened_at=workflow.now(),
        detected_at=trigger.detected_at,
        first_bad_at=trigger.first_bad_at,
        mttd_s=mttd(trigger.first_bad_at, trigger.detected_at),
    )


class IncidentBook:
    """The state, the timeline and the background work of one incident. `policy` is read
    through a callable: it is loaded after the book is made."""

    def __init__(self, status: IncidentStatus, policy: Callable[[], IncidentPolicy | None]) -> None:
        self.status = status
        self._policy = policy
        self._tasks: list[asyncio.Task[None]] = []
        self._published: tuple[Severity, IncidentState] | None = None

    # --- the record -----------------------------------------------------------------------

    def event(self, kind: str, by: str, text: str, data: dict[str, Any] | None = None) -> None:
        self.status.timeline.append(
            TimelineEntry(at=workflow.now(), kind=kind, by=by, text=text, data=data or {})
        )

    def publish(self) -> None:
        """Search attributes (on a change of severity or state) and current details."""
        status = self.status
        if self._published != (status.severity, status.state):
            workflow.upsert_search_attributes(incident_view.search_attribute_updates(status))
            self._published = (status.severity, status.state)
        escalates_at = self.escalates_at() if self._policy() is not None else None
        workflow.set_current_details(incident_view.current_details(status, escalates_at))

    # --- work beside the workflow ---------------------------------------------------------

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        self._tasks = [task for task in self._tasks if not task.done()]
        task = asyncio.create_task(work)
        self._tasks.append(task)
        return task

    def is_idle(self) -> bool:
        return all(task.done() for task in self._tasks)

    # --- paging ---------------------------------------------------------------------------

    def _require_policy(self) -> IncidentPolicy:
        policy = self._policy()
        assert policy is not None, "the policy loads before anything pages"
        return policy

    def page_next(self) -> None:
        """Page the first tier, or the next one once the ack deadline has passed."""
        status, policy = self.status, self._require_policy()
        decision = next_page(
            policy.rota,
            policy.matrix.level(status.severity),
            status.paged,
            workflow.now(),
            is_acknowledged=status.acknowledged_at is not None,
        )
        if decision is not None:
            self.page(decision.tier, decision.targets)

    def escalates_at(self) -> datetime | None:
        status, policy = self.status, self._require_policy()
        return next_escalation_at(
            policy.rota,
            policy.matrix.level(status.severity),
            status.paged,
            is_acknowledged=status.acknowledged_at is not None,
        )

    def page(self, tier: int, targets: list[str], why: str = "") -> None:
        """Page a tier now: recorded at once (its ack deadline runs from now), delivered
        beside the workflow by the notify activity with its retries."""
        now = workflow.now()
        records = [PageRecord(tier=tier, target=target, at=now) for target in targets]
        self.status.paged.extend(records)
        self.event(
            "paged", OPSREADY, f"paged tier {tier}: {', '.join(targets)}{why}", {"tier": tier}
        )
        self.spawn(self._deliver(self._page_of("trigger", tier, targets), records))

    def repage_latest_tier(self, why: str) -> None:
        paged = self.status.paged
        if paged and self.status.acknowledged_at is None:
            tier = max(p.tier for p in paged)
            self.page(tier, list(dict.fromkeys(p.target for p in paged if p.tier == tier)), why)

    def notify_pager(self, action: PageAction) -> None:
        """Tell the pager the incident was acknowledged or resolved (PagerDuty acts on its
        own incident by the dedup key)."""
        paged = self.status.paged
        if paged:
            targets = list(dict.fromkeys(p.target for p in paged))
            tier = max(p.tier for p in paged)
            self.spawn(self._deliver(self._page_of(action, tier, targets), []))

    def _page_of(self, action: PageAction, tier: int, targets: list[str]) -> Page:
        status = self.status
        return Page(
            incident_id=status.id,
            dedup_key=status.dedup_key,
            action=action,
            title=status.title,
            agent=status.agent,
            severity=status.severity,
            tier=tier,
            targets=targets,
            details={
                "state": status.state.value,
                "trigger": status.trigger.kind,
                **dict(sorted(status.trigger.numbers.items())),
            },
        )

    async def _deliver(self, page: Page, records: list[PageRecord]) -> None:
        try:
            receipt = await calls.notify(page)
        except ActivityError as err:
            why = cause(err)
            for record in records:
                record.is_delivered, record.error = False, why
            self.event(
                "page_failed",
                OPSREADY,
                f"{page.action} page to tier {page.tier} ({', '.join(page.targets)}) failed: {why}",
                {"tier": page.tier, "action": page.action},
            )
        else:
            for record in records:
                record.is_delivered = True
            if receipt.channel == "log" and not any(
                e.kind == "pager" for e in self.status.timeline
            ):
                self.event("pager", OPSREADY, "no pager configured: pages go to the log only")
        self.publish()

    # --- evidence, timings, postmortem ----------------------------------------------------

    async def gather_evidence(self, phase: IncidentPhase, alerts: list[IncidentTrigger]) -> None:
        """Bundle what is known now; the resolve bundle holds the open one too."""
        status = self.status
        try:
            result = await calls.gather_evidence(
                EvidenceInput(
                    incident_id=status.id,
                    phase=phase,
                    status=status,
                    alerts=alerts,
                    open_bundle=status.evidence_open if phase == "resolve" else None,
                )
            )
        except ActivityError as err:
            self.event("evidence", OPSREADY, f"evidence at {phase} failed: {cause(err)}")
            return
        if phase == "open":
            status.evidence_open = result.ref
        else:
            status.evidence_resolve = result.ref
        problems = (
            f"; {len(result.problems)} problems: {result.problems[0]}" if result.problems else ""
        )
        self.event(
            "evidence",
            OPSREADY,
            f"evidence at {phase}: {result.runs} runs, {result.histories} histories, "
            f"sha256 {result.ref.sha256[:16]}... in {result.ref.path}{problems}",
            {"path": result.ref.path, "sha256": result.ref.sha256},
        )

    async def record_timings(self) -> None:
        """MTTD and MTTR as metrics (an activity: workflows record no metrics themselves)."""
        status = self.status
        timings = IncidentTimings(
            incident_id=status.id,
            agent=status.agent,
            severity=status.severity,
            trigger=status.trigger.kind,
            mttd_s=status.mttd_s,
            mttr_s=status.mttr_s,
        )
        with contextlib.suppress(ActivityError):  # metrics are not worth failing a close
            await calls.record_timings(timings)

    async def write_postmortem(self) -> None:
        try:
            result = await calls.write_postmortem(PostmortemInput(status=self.status))
        except ActivityError as err:
            self.event("postmortem", OPSREADY, f"postmortem draft failed: {cause(err)}")
            return
        self.status.postmortem_path = result.path
