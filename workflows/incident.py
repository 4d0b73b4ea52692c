"""`Incident`: one incident as a durable workflow, from the alert to the postmortem draft.

It classifies the alert with the severity matrix, pages the agent's rota tier by tier until
someone acknowledges (pages run beside it: a pager that fails or hangs never holds it up),
runs the runbook steps its policy makes automatic (a SEV1 safety incident engages the
agent's kill switch at once), takes `ack`, `note`, `run_step`, `resolve` and `join` updates,
keeps a timeline of every event with who did it, gathers evidence at open and at resolve,
and on resolve records MTTD and MTTR and drafts a blameless postmortem. All I/O is in
activities (`incident_calls`); decisions are the pure functions of `incident_policy` and
`incident_runbooks`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import timedelta

from temporalio import workflow
from temporalio.common import VersioningBehavior
from temporalio.exceptions import ActivityError, ApplicationError

from workflows import incident_calls as calls
from workflows.calls import cause
from workflows.contract import INCIDENT_WORKFLOW, Query, Update
from workflows.incident_book import OPSREADY, IncidentBook, alert_key, new_status
from workflows.incident_payload_types import (
    MAX_ALERTS_KEPT,
    IncidentCheckpoint,
    IncidentConfigInput,
    IncidentInput,
    IncidentPolicy,
    RunStepInput,
)
from workflows.incident_policy import classify, merge_join, mttr
from workflows.incident_runbooks import automatic_steps, check_run_step, plan_steps
from workflows.incident_types import (
    AckRequest,
    IncidentState,
    IncidentStatus,
    JoinRequest,
    NoteRequest,
    OpenIncidentResult,
    PlannedStep,
    ResolveRequest,
    RunStepRequest,
    Severity,
    StepRun,
    worst,
)

# How long closing waits for pages still being retried before it ends without them.
CLOSE_WAIT_FOR_PAGES = timedelta(seconds=60)


@contextlib.contextmanager
def refused_as_update_failure() -> Iterator[None]:
    """A check that fails inside an update handler fails the update, not the workflow task
    (a validator has already run the same check; state may have moved since)."""
    try:
        yield
    except ValueError as err:
        raise ApplicationError(str(err), non_retryable=True) from None


@workflow.defn(name=INCIDENT_WORKFLOW, versioning_behavior=VersioningBehavior.AUTO_UPGRADE)
class IncidentWorkflow:
    @workflow.init
    def __init__(self, input: IncidentInput) -> None:
        checkpoint = input.checkpoint
        self._input = input
        self._policy: IncidentPolicy | None = input.policy
        self._impact = checkpoint.impact if checkpoint else input.request
        self._alerts = checkpoint.alerts if checkpoint else [input.request.trigger]
        self._alert_keys = (
            checkpoint.alert_keys if checkpoint else [alert_key(input.request.trigger)]
        )
        status = checkpoint.status if checkpoint else new_status(input.request, self._policy)
        self._book = IncidentBook(status, lambda: self._policy)
        self._status = status
        self._open_evidence: asyncio.Task[None] | None = None  # gathered beside the steps
        if checkpoint is None:
            self._record_opening()
        self._step_lock = asyncio.Lock()  # one runbook step at a time
        self._resolving: ResolveRequest | None = None
        self._is_closed = False
        self._is_woken = False  # an ack or a join changed what the watch loop waits for

    # --- public handlers ------------------------------------------------------------------

    @workflow.query(name=Query.STATE)
    def state(self) -> IncidentStatus:
        return self._status

    @workflow.update(name=Update.JOIN)
    async def join(self, request: JoinRequest) -> OpenIncidentResult:
        key = alert_key(request.trigger)
        if key not in self._alert_keys:
            self._merge(request, key)
        return self.result(is_new=key == self._alert_keys[0])

    @join.validator
    def _validate_join(self, request: JoinRequest) -> None:
        if self._resolving is not None:
            raise ValueError(
                f"incident {self._status.id} is resolved: a new alert opens a new incident"
            )

    @workflow.update(name=Update.ACK)
    async def ack(self, request: AckRequest) -> IncidentStatus:
        with refused_as_update_failure():
            self._check_ack(request)
        status, now = self._status, workflow.now()
        status.acknowledged_at, status.acknowledged_by = now, request.by
        for page in status.paged:
            page.acked_at = page.acked_at or now
        if status.state is IncidentState.OPEN:
            status.state = IncidentState.ACKNOWLEDGED
        self._book.event("acknowledged", request.by, "acknowledged: escalation stops")
        self._book.notify_pager("acknowledge")
        self._is_woken = True
        self._book.publish()
        return status

    @ack.validator
    def _validate_ack(self, request: AckRequest) -> None:
        self._check_ack(request)

    @workflow.update(name=Update.NOTE)
    async def note(self, request: NoteRequest) -> IncidentStatus:
        with refused_as_update_failure():
            self._check_open("add a note")
        self._book.event("note", request.by, request.text)
        return self._status

    @note.validator
    def _validate_note(self, request: NoteRequest) -> None:
        self._check_open("add a note")

    @workflow.update(name=Update.RUN_STEP)
    async def run_step(self, request: RunStepRequest) -> StepRun:
        async with self._step_lock:
            with refused_as_update_failure():  # a step may have run meanwhile
                step = self._check_step(request)
            return await self._run(step, request.by, request.approved_by, is_automatic=False)

    @run_step.validator
    def _validate_run_step(self, request: RunStepRequest) -> None:
        self._check_step(request)

    @workflow.update(name=Update.RESOLVE)
    async def resolve(self, request: ResolveRequest) -> IncidentStatus:
        with refused_as_update_failure():
            self._check_open("resolve it again")
        self._resolving = request
        await workflow.wait_condition(lambda: self._is_closed)
        return self._status

    @resolve.validator
    def _validate_resolve(self, request: ResolveRequest) -> None:
        self._check_open("resolve it again")

    # --- the incident ---------------------------------------------------------------------

    @workflow.run
    async def run(self, input: IncidentInput) -> IncidentStatus:
        if self._policy is None:
            self._policy = await self._load_policy()
        if input.checkpoint is None:
            self._open()
            self._book.page_next()  # pages and evidence go out beside the steps, at once
            self._open_evidence = self._book.spawn(self._book.gather_evidence("open", self._alerts))
            await self._run_automatic_steps()
        self._book.publish()
        while self._resolving is None:
            await self._run_automatic_steps()
            self._book.page_next()
            self._book.publish()
            if await self._wait_for_change():
                await self._continue_as_new()
        await self._close(self._resolving)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._status

    async def _load_policy(self) -> IncidentPolicy:
        try:
            return await calls.load_policy(IncidentConfigInput(agent=self._status.agent))
        except ActivityError as err:
            # Fail safe: an incident with the built-in rota and matrix still pages someone.
            return IncidentPolicy(problem=cause(err))

    def _record_opening(self) -> None:
        trigger = self._status.trigger
        numbers = ", ".join(f"{k} = {v:g}" for k, v in sorted(trigger.numbers.items()))
        self._book.event(
            "opened",
            self._impact.opened_by,
            f"opened by the {trigger.kind} alert"
            + (f": {trigger.detail}" if trigger.detail else "")
            + (f" ({numbers})" if numbers else ""),
            {"numbers": dict(trigger.numbers)},
        )

    def _open(self) -> None:
        """Classify with the incident's own policy and plan its steps."""
        status, policy = self._status, self._require_policy()
        declared = self._impact.severity
        status.severity = declared or classify(policy.matrix, self._impact)
        status.plan = self._plan(status.severity)
        how = f"declared by {self._impact.opened_by}" if declared else "by the severity matrix"
        self._book.event("severity", OPSREADY, f"{status.severity.value} {how}")
        if policy.problem:
            self._book.event(
                "config",
                OPSREADY,
                f"incident config unusable, built-in defaults in use: {policy.problem}",
            )

    def _plan(self, severity: Severity) -> list[PlannedStep]:
        policy = self._require_policy()
        return plan_steps(
            policy.runbooks,
            policy.matrix,
            agent=self._status.agent,
            severity=severity,
            trigger=self._status.trigger.kind,
            is_safety=self._impact.is_safety,
        )

    async def _wait_for_change(self) -> bool:
        """Wait for an ack, a join, a resolve or the next escalation; True when it is time
        to continue as new."""
        escalates_at = self._book.escalates_at()
        timeout = None
        if escalates_at is not None:
            timeout = max((escalates_at - workflow.now()).total_seconds(), 0.001)
        self._is_woken = False
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._is_woken or self._resolving is not None or self._is_history_long(),
                timeout=timeout,
            )
        return self._resolving is None and self._is_history_long()

    def _is_history_long(self) -> bool:
        info = workflow.info()
        return (
            info.is_continue_as_new_suggested()
            or info.get_current_history_length() >= self._input.continue_as_new_after_events
        )

    async def _continue_as_new(self) -> None:
        """Once nothing runs beside it (pages, evidence, updates), carry on in a fresh
        history; a resolve meanwhile closes the incident here instead."""
        await workflow.wait_condition(
            lambda: (
                self._resolving is not None
                or (workflow.all_handlers_finished() and self._book.is_idle())
            )
        )
        if self._resolving is not None:
            return
        workflow.continue_as_new(
            IncidentInput(
                request=self._input.request,
                policy=self._policy,
                checkpoint=IncidentCheckpoint(
                    status=self._status,
                    impact=self._impact,
                    alerts=self._alerts,
                    alert_keys=self._alert_keys,
                ),
                continue_as_new_after_events=self._input.continue_as_new_after_events,
            )
        )

    async def _close(self, request: ResolveRequest) -> None:
        status, now = self._status, workflow.now()
        status.resolved_at, status.resolved_by = now, request.by
        status.resolution_summary = request.summary
        status.state = IncidentState.RESOLVED
        status.mttr_s = mttr(status.detected_at, now)
        self._book.event("resolved", request.by, request.summary)
        self._book.notify_pager("resolve")
        self._book.publish()
        async with self._step_lock:  # a step in flight finishes first
            pass
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(self._book.is_idle, timeout=CLOSE_WAIT_FOR_PAGES)
        if not self._book.is_idle():
            self._book.event(
                "pages",
                OPSREADY,
                "closing while pages are still being retried (their outcome is not recorded)",
            )
        if self._open_evidence is not None:
            # The resolve bundle holds the open one: wait for it whatever the page timeout
            # (the evidence activity has its own timeouts and retries).
            await self._open_evidence
        await self._book.gather_evidence("resolve", self._alerts)
        await self._book.record_timings()
        await self._book.write_postmortem()
        self._book.publish()
        self._is_closed = True

    # --- joins and pages ------------------------------------------------------------------

    def _merge(self, request: JoinRequest, key: str) -> None:
        status = self._status
        self._alert_keys.append(key)
        self._alerts = [*self._alerts, request.trigger][-MAX_ALERTS_KEPT:]
        self._impact = merge_join(self._impact, request)
        status.joins += 1
        status.user_impact, status.is_safety = self._impact.user_impact, self._impact.is_safety
        status.cost_usd_per_hour = self._impact.cost_usd_per_hour
        status.affected_run_ids = list(self._impact.affected_run_ids)
        status.trace_ids = list(self._impact.trace_ids)
        numbers = dict(request.trigger.numbers)
        self._book.event(
            "joined",
            OPSREADY,
            f"repeated {request.trigger.kind} alert joined"
            + (f": {request.trigger.detail}" if request.trigger.detail else ""),
            {"numbers": numbers, "detected_at": request.trigger.detected_at.isoformat()},
        )
        if self._policy is not None:
            severity = worst(status.severity, classify(self._policy.matrix, self._impact))
            if severity is not status.severity:
                self._raise_severity(severity)
        self._is_woken = True
        self._book.publish()

    def _raise_severity(self, severity: Severity) -> None:
        """Worse impact, worse severity: a new plan (its automatic steps run in the watch
        loop) and, while nobody has acknowledged, the latest tier is paged again."""
        status = self._status
        before, status.severity = status.severity, severity
        status.plan = self._plan(severity)
        self._book.event("severity", OPSREADY, f"severity raised from {before} to {severity}")
        self._book.repage_latest_tier(f" again: now {severity.value}")

    # --- runbook steps --------------------------------------------------------------------

    async def _run_automatic_steps(self) -> None:
        for step in automatic_steps(self._status.plan):
            tried = {run.step for run in self._status.steps_run if run.is_automatic or run.is_ok}
            if step.key in tried or self._resolving is not None:
                continue
            async with self._step_lock:
                if not any(run.step == step.key and run.is_ok for run in self._status.steps_run):
                    await self._run(step, OPSREADY, None, is_automatic=True)

    async def _run(
        self, step: PlannedStep, by: str, approved_by: str | None, *, is_automatic: bool
    ) -> StepRun:
        run = StepRun(
            step=step.key,
            action=step.action,
            target=step.target,
            by=by,
            approved_by=approved_by,
            is_automatic=is_automatic,
            at=workflow.now(),
        )
        try:
            outcome = await calls.run_step(
                RunStepInput(incident_id=self._status.id, step=step, by=by)
            )
            run.detail = outcome.detail
        except ActivityError as err:
            run.is_ok, run.detail = False, cause(err)
        self._status.steps_run.append(run)
        how = " automatically" if is_automatic else ""
        how += f" approved by {approved_by}" if approved_by else ""
        self._book.event(
            "step",
            by,
            f"{step.key} (runbook {step.runbook} v{step.runbook_version}){how}: "
            f"{step.action} {step.target}: {'done' if run.is_ok else 'FAILED'}: {run.detail}",
            {"step": step.key, "version": step.runbook_version, "is_ok": run.is_ok},
        )
        if run.is_ok and self._status.mitigated_at is None:
            self._status.mitigated_at = workflow.now()
            if self._status.state is not IncidentState.RESOLVED:
                self._status.state = IncidentState.MITIGATED
        self._book.publish()
        return run

    # --- checks ---------------------------------------------------------------------------

    def _check_open(self, doing: str) -> None:
        if self._resolving is not None:
            by = self._status.resolved_by or self._resolving.by
            raise ValueError(f"incident {self._status.id} is resolved (by {by}): cannot {doing}")

    def _check_ack(self, request: AckRequest) -> None:
        self._check_open("acknowledge it")
        status = self._status
        if status.acknowledged_at is not None:
            raise ValueError(
                f"incident {status.id} was already acknowledged by {status.acknowledged_by} "
                f"at {status.acknowledged_at:%Y-%m-%d %H:%M:%S}Z"
            )

    def _check_step(self, request: RunStepRequest) -> PlannedStep:
        self._check_open(f"run {request.step}")
        if self._policy is None:
            raise ValueError("the incident is still loading its runbooks: try again in a moment")
        return check_run_step(self._status.plan, request, self._status.steps_run)

    # --- helpers --------------------------------------------------------------------------

    def result(self, *, is_new: bool) -> OpenIncidentResult:
        status = self._status
        return OpenIncidentResult(
            incident_id=status.id,
            is_new=is_new,
            severity=status.severity,
            state=status.state,
            joins=status.joins,
        )

    def _require_policy(self) -> IncidentPolicy:
        assert self._policy is not None, "the policy loads before anything uses it"
        return self._policy
