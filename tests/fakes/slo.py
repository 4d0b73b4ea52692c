"""Doubles for the SLO monitor's workflow tests: its two SLI activities over a scripted
stream of runs (so many runs a minute, a scripted share of them failing), and the incident
side's `opsready.incident.open`, which records each request and keeps its key open.

Each monitor pass is one minute of the stream: the first pass is minute `first_minute`,
the next one a minute later, and so on; a window ending at a pass counts the whole minutes
before it. Passes are told apart by their `as_of`, never by the server's clock: the
time-skipping server moves its clock to an activity's schedule-to-close deadline once the
activity is done (ten years when none is set).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from temporalio import activity

from workflows.contract import Activity
from workflows.incident_types import OpenIncidentRequest
from workflows.sli_types import (
    AffectedRuns,
    AffectedRunsInput,
    AgentSlis,
    ReadSlisInput,
    SliSnapshot,
    SloWindowCounts,
)
from workflows.slo_types import AlertPolicy, SliCounts, Slo, SloKind

SUCCESS = Slo(name="success", kind=SloKind.TASK_SUCCESS, objective=0.95)


class SloDesk:
    """`failure_share(minute)` is the share of that minute's runs that fail."""

    def __init__(
        self,
        agent: str,
        failure_share: Callable[[int], float],
        *,
        first_minute: int = 0,
        runs_per_minute: int = 100,
    ) -> None:
        self.agent = agent
        self.failure_share = failure_share
        self.first_minute = first_minute
        self.runs_per_minute = runs_per_minute
        self.requests: list[OpenIncidentRequest] = []
        self.open_keys: set[str] = set()
        self.passes: list[datetime] = []  # each pass's as_of, in order

    def minute(self, as_of: datetime) -> int:
        """The stream minute of the pass that read SLIs as of `as_of`."""
        return self.first_minute + self.passes.index(as_of)

    def at(self, as_of: datetime, minute: int) -> datetime:
        """When `minute` began, on the clock of the pass at `as_of`."""
        return as_of - timedelta(minutes=self.minute(as_of) - minute)

    def bad(self, minute: int) -> int:
        return round(self.runs_per_minute * self.failure_share(minute))

    def counts_before(self, end: int, window: timedelta) -> SliCounts:
        minutes = range(end - int(window.total_seconds() // 60), end)
        total = self.runs_per_minute * len(minutes)
        return SliCounts(good=total - sum(self.bad(m) for m in minutes), total=total)

    # --- the activities ---------------------------------------------------------------------

    @activity.defn(name=Activity.SLO_READ_SLIS)
    async def read_slis(self, request: ReadSlisInput) -> SliSnapshot:
        if request.as_of not in self.passes:  # a retried read is the same pass
            self.passes.append(request.as_of)
        end = self.minute(request.as_of)
        counts = [
            SloWindowCounts(
                slo=SUCCESS.name,
                window_seconds=seconds,
                counts=self.counts_before(end, timedelta(seconds=seconds)),
            )
            for seconds in request.windows_seconds
        ]
        # No cost, tool or safety numbers: these tests are about the burn rate alone.
        agent = AgentSlis(agent=self.agent, slos=[SUCCESS], alerts=AlertPolicy(), counts=counts)
        return SliSnapshot(
            as_of=request.as_of, agents=[agent], open_incidents=sorted(self.open_keys)
        )

    @activity.defn(name=Activity.SLO_AFFECTED_RUNS)
    async def affected_runs(self, request: AffectedRunsInput) -> AffectedRuns:
        end = self.minute(request.until)
        span = int((request.until - request.since).total_seconds() // 60)
        bad = [m for m in range(end - span, end) if self.bad(m) > 0]
        return AffectedRuns(
            run_ids=[f"{self.agent}-run-{m}" for m in reversed(bad)][:200],
            first_bad_at=self.at(request.until, bad[0]) if bad else None,
            count=sum(self.bad(m) for m in bad),
        )

    @activity.defn(name=Activity.INCIDENT_OPEN)
    async def open_incident(self, request: OpenIncidentRequest) -> str:
        self.requests.append(request)
        self.open_keys.add(request.dedup_key)
        return f"incident-{request.dedup_key}"
