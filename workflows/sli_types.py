"""SLIs over Temporal visibility: what each run writes for them (tallies as threshold marks
in `AgentTallies`) and what the SLI source hands the SLO monitor. Travels in payloads.

Visibility counts runs, not tool calls or safety events. A run therefore writes a mark for
every threshold each tally reaches (`tool_calls>=1`, `tool_calls>=2`, ...): the sum of a
tally over many runs is the sum over thresholds of the runs that reached it, so a handful
of `count_workflows` calls add up calls, errors and timeouts without listing a run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from workflows.slo_types import AlertPolicy, BacklogStats, SliCounts, Slo, WindowStats


class Tally(StrEnum):
    """Per-run counts the SLIs need beyond status, cost, tokens and latency."""

    TOOL_CALLS = "tool_calls"  # calls that ran (executed, or failed for good)
    TOOL_ERRORS = "tool_errors"  # of those, errors that were not timeouts
    TOOL_TIMEOUTS = "tool_timeouts"
    SAFETY_EVENTS = "safety_events"


# The thresholds a tally is marked at: every count up to 10 (exact sums), then sparser, so a
# run writes at most 16 marks per tally (the search attribute stays well under its size
# limit). A count between two thresholds sums as the lower one, and above 100 as 100.
TALLY_LADDER: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 30, 50, 100)


def tally_mark(tally: Tally, threshold: int) -> str:
    """The keyword a run with `tally` >= `threshold` carries in `AgentTallies`."""
    return f"{tally.value}>={threshold}"


def tally_marks(tallies: Mapping[Tally, int]) -> list[str]:
    """Every mark of these tallies, tally by tally, thresholds ascending."""
    return [
        tally_mark(tally, threshold)
        for tally, value in tallies.items()
        for threshold in TALLY_LADDER
        if value >= threshold
    ]


def tally_value(marks: Iterable[str], tally: Tally) -> int:
    """A run's tally read back from its marks (the highest threshold reached)."""
    reached = {mark for mark in marks if mark.startswith(f"{tally.value}>=")}
    return max((t for t in TALLY_LADDER if tally_mark(tally, t) in reached), default=0)


def ladder_sum(runs_reaching: Sequence[int]) -> int:
    """The sum of a tally over runs, from `runs_reaching[i]` = the number of runs whose
    tally reached `TALLY_LADDER[i]` (missing entries are zero)."""
    total, previous = 0, 0
    for threshold, runs in zip(TALLY_LADDER, runs_reaching, strict=False):
        total += runs * (threshold - previous)
        previous = threshold
    return total


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- what the SLO monitor reads --------------------------------------------------------------


class SloWindowCounts(_Model):
    slo: str
    window_seconds: int = Field(gt=0)
    counts: SliCounts


class AgentSlis(_Model):
    """One agent's SLOs with their counts per window, and its alert windows' stats.
    `problem` says why nothing else is filled (an unreadable definition)."""

    agent: str
    slos: list[Slo] = Field(default_factory=list)
    alerts: AlertPolicy = Field(default_factory=AlertPolicy)
    counts: list[SloWindowCounts] = Field(default_factory=list)
    current: WindowStats = Field(default_factory=WindowStats)  # the last alerts.window
    baseline: WindowStats = Field(default_factory=WindowStats)  # the baseline before it
    problem: str | None = None

    def counts_by_window(self, slo: str) -> dict[timedelta, SliCounts]:
        return {
            timedelta(seconds=entry.window_seconds): entry.counts
            for entry in self.counts
            if entry.slo == slo
        }


class ReadSlisInput(_Model):
    """Count every SLO of `agents` (None: every agent the worker knows) over each window
    ending at `as_of`, and the backlog of `task_queues`."""

    as_of: datetime
    agents: list[str] | None = None
    windows_seconds: list[int] = Field(default_factory=list)
    task_queues: list[str] = Field(default_factory=list)
    list_cap: int = Field(default=2000, ge=1)  # runs listed per alert window, at most


class SliSnapshot(_Model):
    as_of: datetime
    agents: list[AgentSlis] = Field(default_factory=list)
    backlogs: list[BacklogStats] = Field(default_factory=list)
    open_incidents: list[str] = Field(default_factory=list)  # dedup keys of open incidents


# --- the runs behind an alert ----------------------------------------------------------------

BadRunKind = Literal["failed", "slow", "costly", "tool_errors", "tool_timeouts", "safety", "any"]


class BadRuns(_Model):
    """Which runs count as bad for an alert: `failed` (failed, timed_out, budget_exceeded),
    `slow` / `costly` (completed above `threshold` seconds / USD), runs with a tool error,
    a tool timeout or a safety event, or `any` ended run."""

    kind: BadRunKind
    threshold: float | None = None


class AffectedRunsInput(_Model):
    agent: str
    bad: BadRuns
    since: datetime
    until: datetime
    # The alert's key: runs that ended before the last incident of that key closed were
    # that incident's, so they do not date this one's first bad outcome (MTTD).
    dedup_key: str | None = None


class AffectedRuns(_Model):
    run_ids: list[str] = Field(default_factory=list)  # the most recent first
    first_bad_at: datetime | None = None  # the oldest bad run's end among those listed
    count: int = 0
